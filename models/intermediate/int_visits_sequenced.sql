{#-
  One row per appointment that existed as of `as_of_date`, resolved to its person and numbered.

  As-of replay: an appointment at or after the as-of date counts as 'scheduled' (unless it was
  cancelled), and one booked after the as-of date did not exist yet, so it is left out; in a replay
  (int_as_of_date.is_replay) one without booked_at is left out too, as nothing says it was known. Visit numbers,
  primary flags and gaps are computed over completed visits only.

  The visit's money is joined here, once, so fct_visits is a plain view of this table: net payments
  made for the visit before the as-of date (the same rule as int_payments_resolved, read straight from
  staging because int_payments_resolved needs this model's primary flag) and the billed services.
  One wide table instead of two copies of 8M rows: docs/decisions.md, "Performance".
-#}
with

visits as (

    select * from {{ ref('stg_mis__visits') }}

),

persons as (

    select * from {{ ref('int_patients_resolved_to_persons') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

payments as (

    select * from {{ ref('stg_mis__payments') }}

),

services as (

    select * from {{ ref('stg_mis__visit_services') }}

),

revenue_per_visit as (

    select
        payments.visit_id,
        sum(payments.amount) as revenue
    from payments
    cross join as_of
    where payments.visit_id is not null
        and payments.paid_date < as_of.as_of_date
    group by payments.visit_id

),

billed_per_visit as (

    select
        visit_id,
        sum(amount) as billed_amount,
        count(*) as services
    from services
    group by visit_id

),

visits_as_of as (

    select
        visits.visit_id,
        visits.patient_id,
        persons.person_id,
        visits.visit_at,
        visits.visit_date,
        case
            when visits.visit_date < as_of.as_of_date then visits.status
            when visits.status = 'cancelled' then 'cancelled'
            else 'scheduled'
        end as status,
        visits.specialty,
        visits.branch_id,
        visits.doctor_id,
        visits.booked_at,
        as_of.as_of_date
    from visits
    cross join as_of
    left join persons
        on visits.patient_id = persons.patient_id
    -- known that day: booked before it; or, without booked_at, already past, or in the future of an
    -- export made that day (not a replay: a replay must not see bookings made after the as-of date)
    where cast(visits.booked_at as date) < as_of.as_of_date
        or (
            visits.booked_at is null
            and (visits.visit_date < as_of.as_of_date or not coalesce(as_of.is_replay, false))
        )

),

flagged as (

    select
        *,
        status = 'completed' as is_completed,
        status = 'scheduled' and visit_date >= as_of_date as is_future
    from visits_as_of

),

-- numbers and gaps over completed visits of known persons only, on the few columns the windows
-- need (sorting every appointment with all its columns cost more than joining the numbers back)
numbered as (

    select
        visit_id,
        row_number() over (
            partition by person_id order by visit_at, visit_id
        ) as visit_number,
        row_number() over (
            partition by person_id, specialty order by visit_at, visit_id
        ) as visit_number_in_specialty,
        lag(visit_date) over (
            partition by person_id order by visit_at, visit_id
        ) as prev_visit_date
    from flagged
    where is_completed
        and person_id is not null

),

sequenced as (

    select
        flagged.*,
        numbered.visit_number,
        numbered.visit_number_in_specialty,
        numbered.prev_visit_date
    from flagged
    left join numbered
        on flagged.visit_id = numbered.visit_id

),

final as (

    select
        sequenced.visit_id,
        sequenced.patient_id,
        sequenced.person_id,
        sequenced.visit_at,
        sequenced.visit_date,
        cast({{ dbt.date_trunc('month', 'sequenced.visit_date') }} as date) as visit_month,
        sequenced.status,
        sequenced.is_completed,
        sequenced.is_future,
        sequenced.specialty,
        sequenced.branch_id,
        sequenced.doctor_id,
        sequenced.booked_at,
        sequenced.visit_number,
        coalesce(sequenced.visit_number = 1, false) as is_primary,
        coalesce(sequenced.visit_number_in_specialty = 1, false) as is_primary_in_specialty,
        sequenced.prev_visit_date,
        {{ dbt.datediff('sequenced.prev_visit_date', 'sequenced.visit_date', 'day') }} as days_since_prev_visit,
        {{ patient_base.cast_money('coalesce(revenue_per_visit.revenue, 0)') }} as revenue,
        {{ patient_base.cast_money('coalesce(billed_per_visit.billed_amount, 0)') }} as billed_amount,
        coalesce(billed_per_visit.services, 0) as services
    from sequenced
    left join revenue_per_visit
        on sequenced.visit_id = revenue_per_visit.visit_id
    left join billed_per_visit
        on sequenced.visit_id = billed_per_visit.visit_id

)

select * from final
