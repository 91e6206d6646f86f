{#-
  A view of int_payments_resolved (the same rows and columns; a second 7.5M-row copy as a table cost
  ~4 s at a network's scale: docs/decisions.md, "Performance").
-#}
{{ config(materialized='view') }}

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
