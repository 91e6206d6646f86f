{#-
  One row per recorded action occurrence (stg_mis__call_assignments) listed before the as-of date,
  resolved to today's person, with its outcome: came (a completed visit after the list date, at most
  `call_outcome_days` later), booked (a visit booked from the list date to the end of the window), the
  visits and revenue of the window, and whether the window has fully elapsed (is_final). The building
  block of call_uplift and int_action_uplift.
-#}
{%- set outcome_days = var('call_outcome_days', 30) | int -%}

with

assignments as (

    select * from {{ ref('stg_mis__call_assignments') }}

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

occurrences as (

    select
        assignments.call_assignment_id,
        coalesce(persons.person_id, assignments.patient_id) as person_id,
        assignments.action_code,
        assignments.arm,
        case when assignments.arm = 'call' then coalesce(assignments.operator_id, 'unknown') end as operator_id,
        assignments.list_date,
        cast({{ dbt.date_trunc('month', 'assignments.list_date') }} as date) as month,
        {{ patient_base.date_plus_days('assignments.list_date', outcome_days) }} as window_ends_on,
        {{ patient_base.date_plus_days('assignments.list_date', outcome_days) }} < as_of.as_of_date as is_final,
        as_of.as_of_date
    from assignments
    cross join as_of
    left join persons
        on assignments.patient_id = persons.patient_id
    where assignments.list_date < as_of.as_of_date

),

came_visits as (

    select
        occurrences.call_assignment_id,
        count(*) as visits,
        sum(coalesce(visits.revenue, 0)) as revenue
    from occurrences
    inner join visits
        on occurrences.person_id = visits.person_id
        and visits.is_completed
        and visits.visit_date > occurrences.list_date
        and visits.visit_date <= occurrences.window_ends_on
    group by occurrences.call_assignment_id

),

bookings as (

    select
        occurrences.call_assignment_id,
        count(*) as bookings
    from occurrences
    inner join visits
        on occurrences.person_id = visits.person_id
        and cast(visits.booked_at as date) >= occurrences.list_date
        and cast(visits.booked_at as date) <= occurrences.window_ends_on
    group by occurrences.call_assignment_id

),

scored as (

    select
        occurrences.*,
        case when came_visits.call_assignment_id is not null then 1 else 0 end as came,
        case when bookings.call_assignment_id is not null then 1 else 0 end as booked,
        coalesce(came_visits.visits, 0) as visits,
        coalesce(came_visits.revenue, 0) as revenue
    from occurrences
    left join came_visits
        on occurrences.call_assignment_id = came_visits.call_assignment_id
    left join bookings
        on occurrences.call_assignment_id = bookings.call_assignment_id

),

final as (

    select
        call_assignment_id,
        person_id,
        action_code,
        arm,
        operator_id,
        list_date,
        month,
        window_ends_on,
        is_final,
        cast(came as {{ dbt.type_int() }}) as came,
        cast(booked as {{ dbt.type_int() }}) as booked,
        cast(visits as {{ dbt.type_int() }}) as visits,
        {{ patient_base.cast_money('revenue') }} as revenue,
        as_of_date
    from scored

)

select * from final
