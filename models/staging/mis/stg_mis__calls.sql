with

source as (

    select * from {{ source('mis', 'calls') }}

),

cleaned as (

    select
        {{ clean_text('call_id') }} as call_id,
        {{ clean_text('patient_id') }} as patient_id,
        {{ clean_text('operator_id') }} as operator_id,
        cast(called_at as {{ dbt.type_timestamp() }}) as called_at,
        coalesce(cast(duration_s as {{ dbt.type_int() }}), 0) as duration_s,
        cast(duration_s as {{ dbt.type_int() }}) as duration_recorded_s,
        {{ clean_status('result') }} as result,
        {{ clean_code('action_code') }} as action_code,
        {{ clean_text('comment') }} as comment

    from source

),

final as (

    select
        call_id,
        patient_id,
        operator_id,
        called_at,
        cast(called_at as date) as called_date,
        duration_s,
        result,
        -- a booking proves a conversation even when the call list brought back no duration; so do a
        -- callback request or a refusal when no duration was recorded (results from a call list)
        case
            when result = 'booked' then true
            when duration_recorded_s is null and result in ('callback', 'refused') then true
            when result not in ('no_answer', 'wrong_number')
                and duration_s >= {{ var('reached_call_min_seconds', 20) }} then true
            else false
        end as is_reached,
        action_code,
        comment

    from cleaned

)

select * from final
