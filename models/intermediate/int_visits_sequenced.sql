{#-
  One row per appointment that existed as of `as_of_date`, resolved to its person and numbered.

  As-of replay: an appointment at or after the as-of date counts as 'scheduled' (unless it was
  cancelled), and one booked after the as-of date did not exist yet, so it is left out. Visit numbers,
  primary flags and gaps are computed over completed visits only.
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
    where visits.booked_at is null
        or cast(visits.booked_at as date) < as_of.as_of_date

),

flagged as (

    select
        *,
        status = 'completed' as is_completed,
        status = 'scheduled' and visit_date >= as_of_date as is_future
    from visits_as_of

),

sequenced as (

    select
        *,
        case when is_completed and person_id is not null then
            row_number() over (
                partition by person_id, is_completed order by visit_at, visit_id
            )
        end as visit_number,
        case when is_completed and person_id is not null then
            row_number() over (
                partition by person_id, is_completed, specialty order by visit_at, visit_id
            )
        end as visit_number_in_specialty,
        case when is_completed and person_id is not null then
            lag(visit_date) over (
                partition by person_id, is_completed order by visit_at, visit_id
            )
        end as prev_visit_date
    from flagged

),

final as (

    select
        visit_id,
        patient_id,
        person_id,
        visit_at,
        visit_date,
        cast({{ dbt.date_trunc('month', 'visit_date') }} as date) as visit_month,
        status,
        is_completed,
        is_future,
        specialty,
        branch_id,
        doctor_id,
        booked_at,
        visit_number,
        coalesce(visit_number = 1, false) as is_primary,
        coalesce(visit_number_in_specialty = 1, false) as is_primary_in_specialty,
        prev_visit_date,
        {{ dbt.datediff('prev_visit_date', 'visit_date', 'day') }} as days_since_prev_visit
    from sequenced

)

select * from final
