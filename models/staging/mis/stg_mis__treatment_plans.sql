with

source as (

    select * from {{ source('mis', 'treatment_plans') }}

),

cleaned as (

    select
        {{ clean_text('plan_id') }} as plan_id,
        {{ clean_text('patient_id') }} as patient_id,
        {{ clean_text('doctor_id') }} as doctor_id,
        {{ clean_code('specialty') }} as specialty,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        {{ cast_money('total_amount') }} as total_amount,
        {{ clean_status('status') }} as status,
        cast(status_changed_at as {{ dbt.type_timestamp() }}) as status_changed_at

    from source

),

final as (

    select
        plan_id,
        patient_id,
        doctor_id,
        specialty,
        created_at,
        cast(created_at as date) as created_date,
        total_amount,
        status,
        status_changed_at

    from cleaned

)

select * from final
