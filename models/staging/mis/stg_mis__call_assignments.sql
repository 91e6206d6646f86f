with

source as (

    select * from {{ source('mis', 'call_assignments') }}

),

cleaned as (

    select
        cast(list_date as date) as list_date,
        {{ clean_text('patient_id') }} as patient_id,
        {{ clean_code('action_code') }} as action_code,
        cast(trigger_date as date) as trigger_date,
        {{ clean_code('arm') }} as arm,
        cast(list_rank as {{ dbt.type_int() }}) as list_rank,
        {{ clean_text('operator_id') }} as operator_id,
        {{ cast_money('expected_value') }} as expected_value,
        cast(recorded_at as {{ dbt.type_timestamp() }}) as recorded_at

    from source

),

final as (

    select
        {{ dbt.concat([
            'patient_id', "'|'", 'action_code', "'|'",
            "coalesce(cast(trigger_date as " ~ dbt.type_string() ~ "), '')",
        ]) }} as call_assignment_id,
        list_date,
        patient_id,
        action_code,
        trigger_date,
        arm,
        list_rank,
        operator_id,
        expected_value,
        recorded_at

    from cleaned

)

select * from final
