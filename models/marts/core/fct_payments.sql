with

payments as (

    select * from {{ ref('int_payments_resolved') }}

),

final as (

    select
        payment_id,
        patient_id,
        person_id,
        visit_id,
        paid_at,
        paid_date,
        paid_month,
        amount,
        is_refund,
        method,
        is_visit_payment,
        is_primary_visit_payment
    from payments

)

select * from final
