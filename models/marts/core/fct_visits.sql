with

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

payments as (

    select * from {{ ref('int_payments_resolved') }}

),

services as (

    select * from {{ ref('stg_mis__visit_services') }}

),

revenue_per_visit as (

    select
        visit_id,
        sum(amount) as revenue
    from payments
    where visit_id is not null
    group by visit_id

),

billed_per_visit as (

    select
        visit_id,
        sum(amount) as billed_amount,
        count(*) as services
    from services
    group by visit_id

),

final as (

    select
        visits.visit_id,
        visits.patient_id,
        visits.person_id,
        visits.visit_at,
        visits.visit_date,
        visits.visit_month,
        visits.status,
        visits.is_completed,
        visits.is_future,
        visits.specialty,
        visits.branch_id,
        visits.doctor_id,
        visits.booked_at,
        visits.visit_number,
        visits.is_primary,
        visits.is_primary_in_specialty,
        visits.days_since_prev_visit,
        coalesce(revenue_per_visit.revenue, 0) as revenue,
        coalesce(billed_per_visit.billed_amount, 0) as billed_amount,
        coalesce(billed_per_visit.services, 0) as services
    from visits
    left join revenue_per_visit
        on visits.visit_id = revenue_per_visit.visit_id
    left join billed_per_visit
        on visits.visit_id = billed_per_visit.visit_id

)

select * from final
