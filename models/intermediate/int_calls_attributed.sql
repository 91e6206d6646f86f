{#-
  One row per call made up to and including the as-of date (stg_mis__calls, incl. results loaded
  back from call lists), resolved to its person, with what came of it. The as-of day's own calls
  count: outcomes loaded from today's list show after a plain `build`.

  Outcome, last touch: a completed visit belongs to the person's latest call before it, if that call
  was at most `call_outcome_days` (30) days earlier. So a visit after two attempts counts once, for the
  attempt that got through, and two operators never share a patient. Calls whose card is unknown keep
  a null person and no outcome. A call less than `call_outcome_days` before the as-of date has an
  incomplete window (`is_outcome_window_complete` false): its outcome may still come.
  Bounded range join: each call meets only its person's completed visits inside its window.
-#}
{%- set outcome_days = var('call_outcome_days', 30) | int -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

calls as (

    select * from {{ ref('stg_mis__calls') }}

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

calls_as_of as (

    select
        calls.call_id,
        calls.patient_id,
        persons.person_id,
        calls.operator_id,
        calls.action_code,
        calls.called_at,
        calls.called_date,
        cast({{ dbt.date_trunc('week', 'calls.called_date') }} as date) as week_start,
        calls.duration_s,
        calls.result,
        calls.is_reached,
        coalesce(calls.result = 'booked', false) as is_booked,
        coalesce(calls.result = 'refused', false) as is_refused,
        {{ patient_base.date_plus_days('calls.called_date', outcome_days) }} as outcome_window_ends_on,
        as_of.as_of_date
    from calls
    cross join as_of
    left join persons
        on calls.patient_id = persons.patient_id
    where calls.called_date <= as_of.as_of_date

),

sequenced as (

    select
        *,
        case when person_id is not null then
            lead(called_at) over (partition by person_id order by called_at, call_id)
        end as next_called_at
    from calls_as_of

),

completed_visits as (

    select
        visit_id,
        person_id,
        visit_at,
        visit_date,
        revenue
    from visits
    where is_completed
        and person_id is not null

),

attributed_visits as (

    select
        sequenced.call_id,
        count(*) as visits_after,
        sum(completed_visits.revenue) as revenue_after
    from sequenced
    inner join completed_visits
        on sequenced.person_id = completed_visits.person_id
        and completed_visits.visit_at > sequenced.called_at
        and completed_visits.visit_date <= sequenced.outcome_window_ends_on
        and (sequenced.next_called_at is null or completed_visits.visit_at <= sequenced.next_called_at)
    group by sequenced.call_id

),

final as (

    select
        sequenced.call_id,
        sequenced.patient_id,
        sequenced.person_id,
        sequenced.operator_id,
        sequenced.action_code,
        sequenced.called_at,
        sequenced.called_date,
        sequenced.week_start,
        sequenced.duration_s,
        sequenced.result,
        sequenced.is_reached,
        sequenced.is_booked,
        sequenced.is_refused,
        coalesce(attributed_visits.visits_after, 0) as visits_after,
        {{ patient_base.cast_money('coalesce(attributed_visits.revenue_after, 0)') }} as revenue_after,
        attributed_visits.call_id is not null as has_visit_after,
        sequenced.outcome_window_ends_on < sequenced.as_of_date as is_outcome_window_complete,
        sequenced.as_of_date
    from sequenced
    left join attributed_visits
        on sequenced.call_id = attributed_visits.call_id

)

select * from final
