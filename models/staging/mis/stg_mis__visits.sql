with

source as (

    select * from {{ source('mis', 'visits') }}

),

cleaned as (

    select
        {{ clean_text('visit_id') }} as visit_id,
        {{ clean_text('patient_id') }} as patient_id,
        cast(scheduled_at as {{ dbt.type_timestamp() }}) as visit_at,
        {{ clean_status('status') }} as status,
        {{ clean_text('doctor_id') }} as doctor_id,
        {{ clean_code('specialty') }} as specialty,
        {{ clean_text('branch_id') }} as branch_id,
        cast(booked_at as {{ dbt.type_timestamp() }}) as booked_at

    from source

),

final as (

    select
        visit_id,
        patient_id,
        visit_at,
        cast(visit_at as date) as visit_date,
        status,
        coalesce(status = 'completed', false) as is_completed,
        doctor_id,
        specialty,
        branch_id,
        booked_at

    from cleaned

)

select * from final
