with

source as (

    select * from {{ source('mis', 'payments') }}

),

cleaned as (

    select
        {{ clean_text('payment_id') }} as payment_id,
        {{ clean_text('patient_id') }} as patient_id,
        {{ clean_text('visit_id') }} as visit_id,
        cast(paid_at as {{ dbt.type_timestamp() }}) as paid_at,
        {{ cast_money('amount') }} as amount,
        {{ clean_code('method') }} as method

    from source

),

final as (

    select
        payment_id,
        patient_id,
        visit_id,
        paid_at,
        cast(paid_at as date) as paid_date,
        amount,
        coalesce(amount < 0, false) as is_refund,
        method

    from cleaned

)

select * from final
