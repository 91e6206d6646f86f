{#- One row per payment made before `as_of_date`, resolved to its person (null for a payment whose
    card is unknown) and, where it pays for a visit, to that visit's primary flag. -#}
with

payments as (

    select * from {{ ref('stg_mis__payments') }}

),

persons as (

    select * from {{ ref('int_patients_resolved_to_persons') }}

),

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

final as (

    select
        payments.payment_id,
        payments.patient_id,
        persons.person_id,
        payments.visit_id,
        payments.paid_at,
        payments.paid_date,
        cast({{ dbt.date_trunc('month', 'payments.paid_date') }} as date) as paid_month,
        payments.amount,
        payments.is_refund,
        payments.method,
        visits.visit_id is not null as is_visit_payment,
        coalesce(visits.is_primary, false) as is_primary_visit_payment
    from payments
    cross join as_of
    left join persons
        on payments.patient_id = persons.patient_id
    left join visits
        on payments.visit_id = visits.visit_id
    where payments.paid_date < as_of.as_of_date

)

select * from final
