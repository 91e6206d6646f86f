{#-
  One row per person × cutoff (int_prediction_cutoffs) for every person with at least one completed
  visit before the cutoff: what was known about them at the cutoff, and nothing later. The same model
  gives today's features (cutoff = as-of date) and the training rows (past cutoffs), so every feature
  has one definition. "Before the cutoff" is strict: a visit, payment, no-show, plan or call on the
  cutoff date itself is not known yet. A booking counts when it was made before the cutoff for a date
  on or after it, whatever later became of it (its cancellation may come after the cutoff).
  The rows of the scoring cutoff are all there, and those of the backtest cutoff on a day predict runs
  the backtest (int_prediction_backtest_kept: weekly, not daily); of the training rows (past cutoffs at
  least one step back), beyond `prediction_max_training_rows` a stable hash sample of about that many
  (`is_training_row`), chosen before any feature is computed: at a million persons the 13 cutoffs'
  features for everyone cost most of the build, and the models read at most that many. The training
  rows are left out on the days predict keeps the last fit of the models (is_models_kept: weekly).
  Definitions: docs/decisions.md, "Return prediction".
-#}
{%- set episode_gap_days = var('churn_episode_gap_days', 14) | int -%}
{%- set step = var('prediction_step_days', 30) | int -%}
{%- set max_training_rows = var('prediction_max_training_rows', 400000) | int -%}
{%- set num = api.Column.numeric_type('numeric', 18, 2) -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

cutoffs as (

    select * from {{ ref('int_prediction_cutoffs') }}

),

backtest as (

    select * from {{ ref('int_prediction_backtest_kept') }}

),

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

payments as (

    select * from {{ ref('int_payments_resolved') }}

),

plans as (

    select * from {{ ref('stg_mis__treatment_plans') }}

),

card_persons as (

    select * from {{ ref('int_patients_resolved_to_persons') }}

),

calls as (

    select * from {{ ref('int_calls_attributed') }}

),

patients as (

    select * from {{ ref('dim_patients') }}

),

completed_visits as (

    select
        person_id,
        visit_date,
        specialty,
        -- a visit more than churn_episode_gap_days after the previous one starts a new episode of care
        coalesce(days_since_prev_visit >= {{ episode_gap_days }}, true) as is_episode_start
    from visits
    where is_completed
        and person_id is not null

),

first_visits as (

    select
        person_id,
        min(visit_date) as first_visit_date
    from completed_visits
    group by person_id

),

-- every person with a completed visit before the cutoff: the model's grain before sampling
person_cutoffs as (

    select
        cutoffs.cutoff_date,
        first_visits.person_id,
        cutoffs.days_before_as_of,
        cutoffs.is_scoring_cutoff,
        cutoffs.is_backtest_cutoff
    from first_visits
    inner join cutoffs
        on first_visits.first_visit_date < cutoffs.cutoff_date

),

training_rows as (

    select count(*) as total
    from person_cutoffs
    where days_before_as_of >= {{ step }}

),

-- the rows this build may compute, before the sample is drawn: today's; the backtest cutoff's only
-- when predict runs the backtest today (not when it keeps the last); the training candidates only when
-- it fits the models (not when it keeps the last fit). Filtered first, so the sample's hash is
-- computed only for the candidates it decides (none on a day the fit is kept).
candidates as (

    select
        person_cutoffs.*,
        backtest.is_kept as is_backtest_kept
    from person_cutoffs
    cross join backtest
    where person_cutoffs.is_scoring_cutoff
        or (person_cutoffs.is_backtest_cutoff and not backtest.is_kept)
        or (person_cutoffs.days_before_as_of >= {{ step }} and not backtest.is_models_kept)

),

sampled as (

    select
        candidates.*,
        candidates.days_before_as_of >= {{ step }}
        and (
            training_rows.total <= {{ max_training_rows }}
            or {{ patient_base.stable_bucket(['candidates.person_id', 'candidates.days_before_as_of']) }}
            * training_rows.total < cast(4294967296 as {{ dbt.type_bigint() }}) * {{ max_training_rows }}
        ) as is_training_row
    from candidates
    cross join training_rows

),

kept as (

    select
        cutoff_date,
        person_id,
        days_before_as_of,
        is_scoring_cutoff,
        is_backtest_cutoff,
        is_training_row
    from sampled
    where is_scoring_cutoff
        or (is_backtest_cutoff and not is_backtest_kept)
        or is_training_row

),

visits_before_cutoff as (

    select
        kept.cutoff_date,
        completed_visits.person_id,
        completed_visits.visit_date,
        completed_visits.specialty,
        completed_visits.is_episode_start,
        {{ patient_base.days_between('completed_visits.visit_date', 'kept.cutoff_date') }} as days_before_cutoff
    from completed_visits
    inner join kept
        on completed_visits.person_id = kept.person_id
        and completed_visits.visit_date < kept.cutoff_date

),

visit_history as (

    select
        cutoff_date,
        person_id,
        count(*) as frequency,
        sum(case when is_episode_start then 1 else 0 end) as episodes,
        sum(case when days_before_cutoff <= 365 then 1 else 0 end) as visits_365d,
        count(distinct specialty) as specialties_used,
        min(visit_date) as first_visit_date,
        max(visit_date) as last_visit_date,
        max(case when is_episode_start then visit_date end) as last_episode_date
    from visits_before_cutoff
    group by cutoff_date, person_id

),

last_specialty as (

    select
        visit_history.cutoff_date,
        visit_history.person_id,
        min(visits_before_cutoff.specialty) as last_specialty
    from visit_history
    inner join visits_before_cutoff
        on visit_history.cutoff_date = visits_before_cutoff.cutoff_date
        and visit_history.person_id = visits_before_cutoff.person_id
        and visit_history.last_visit_date = visits_before_cutoff.visit_date
    group by visit_history.cutoff_date, visit_history.person_id

),

no_shows as (

    select
        kept.cutoff_date,
        visits.person_id,
        count(*) as no_shows
    from visits
    inner join kept
        on visits.person_id = kept.person_id
        and visits.visit_date < kept.cutoff_date
    where visits.status = 'no_show'
    group by kept.cutoff_date, visits.person_id

),

bookings as (

    -- appointments on or after the cutoff that were booked before it, whatever became of them
    select
        kept.cutoff_date,
        visits.person_id,
        min({{ patient_base.days_between('kept.cutoff_date', 'visits.visit_date') }}) as days_to_booked_visit
    from visits
    inner join kept
        on visits.person_id = kept.person_id
        and visits.visit_date >= kept.cutoff_date
        and cast(visits.booked_at as date) < kept.cutoff_date
    group by kept.cutoff_date, visits.person_id

),

money as (

    select
        kept.cutoff_date,
        payments.person_id,
        sum(payments.amount) as revenue_total,
        sum(case
            when {{ patient_base.days_between('payments.paid_date', 'kept.cutoff_date') }} <= 365
                then payments.amount else 0
        end) as revenue_365d
    from payments
    inner join kept
        on payments.person_id = kept.person_id
        and payments.paid_date < kept.cutoff_date
    group by kept.cutoff_date, payments.person_id

),

plans_made as (

    select
        kept.cutoff_date,
        card_persons.person_id,
        count(*) as plans_365d,
        sum(coalesce(plans.total_amount, 0)) as plan_amount_365d
    from plans
    inner join card_persons
        on plans.patient_id = card_persons.patient_id
    inner join kept
        on card_persons.person_id = kept.person_id
        and cast(plans.created_at as date) < kept.cutoff_date
        and {{ patient_base.days_between('cast(plans.created_at as date)', 'kept.cutoff_date') }} <= 365
    group by kept.cutoff_date, card_persons.person_id

),

calls_made as (

    select
        kept.cutoff_date,
        calls.person_id,
        count(*) as calls_90d,
        sum(case when calls.is_reached then 1 else 0 end) as reached_calls_90d
    from calls
    inner join kept
        on calls.person_id = kept.person_id
        and cast(calls.called_at as date) < kept.cutoff_date
        and {{ patient_base.days_between('cast(calls.called_at as date)', 'kept.cutoff_date') }} <= 90
    group by kept.cutoff_date, calls.person_id

),

final as (

    select
        visit_history.cutoff_date,
        visit_history.person_id,
        cutoffs.is_scoring_cutoff,
        cutoffs.is_backtest_cutoff,
        kept.is_training_row,
        cutoffs.days_before_as_of,
        visit_history.first_visit_date,
        visit_history.last_visit_date,
        {{ patient_base.days_between('visit_history.last_visit_date', 'visit_history.cutoff_date') }} as recency_days,
        {{ patient_base.days_between('visit_history.first_visit_date', 'visit_history.cutoff_date') }} as tenure_days,
        cast(visit_history.frequency as {{ dbt.type_int() }}) as frequency,
        cast(visit_history.episodes as {{ dbt.type_int() }}) as episodes,
        cast(visit_history.visits_365d as {{ dbt.type_int() }}) as visits_365d,
        cast(visit_history.specialties_used as {{ dbt.type_int() }}) as specialties_used,
        -- BG/NBD's (x, t_x): repeat episodes and the day of the last one since the first visit
        cast(visit_history.episodes - 1 as {{ dbt.type_int() }}) as repeat_episodes,
        {{ patient_base.days_between('visit_history.first_visit_date', 'visit_history.last_episode_date') }} as last_episode_day,
        case
            when visit_history.episodes > 1 then cast(
                cast({{ dbt.datediff('visit_history.first_visit_date', 'visit_history.last_episode_date', 'day') }} as {{ num }})
                / (visit_history.episodes - 1) as {{ num }})
        end as mean_return_gap_days,
        case
            when visit_history.episodes > 1 then cast(
                {{ dbt.datediff('visit_history.last_visit_date', 'visit_history.cutoff_date', 'day') }}
                - cast({{ dbt.datediff('visit_history.first_visit_date', 'visit_history.last_episode_date', 'day') }} as {{ num }})
                / (visit_history.episodes - 1) as {{ num }})
        end as days_overdue,
        cast(coalesce(money.revenue_total, 0) as {{ num }}) as revenue_total,
        cast(coalesce(money.revenue_365d, 0) as {{ num }}) as revenue_365d,
        cast(coalesce(money.revenue_total, 0) / visit_history.frequency as {{ num }}) as avg_check,
        cast(coalesce(no_shows.no_shows, 0) as {{ dbt.type_int() }}) as no_shows,
        bookings.days_to_booked_visit,
        cast(coalesce(plans_made.plans_365d, 0) as {{ dbt.type_int() }}) as plans_365d,
        cast(coalesce(plans_made.plan_amount_365d, 0) as {{ num }}) as plan_amount_365d,
        cast(coalesce(calls_made.calls_90d, 0) as {{ dbt.type_int() }}) as calls_90d,
        cast(coalesce(calls_made.reached_calls_90d, 0) as {{ dbt.type_int() }}) as reached_calls_90d,
        last_specialty.last_specialty,
        -- age at the as-of date less the whole years back to the cutoff (within a year of exact)
        cast(patients.age_years - floor(cutoffs.days_before_as_of / 365.25) as {{ dbt.type_int() }}) as age_years,
        patients.acquisition_channel,
        cutoffs.as_of_date
    from visit_history
    inner join cutoffs
        on visit_history.cutoff_date = cutoffs.cutoff_date
    inner join kept
        on visit_history.cutoff_date = kept.cutoff_date
        and visit_history.person_id = kept.person_id
    left join last_specialty
        on visit_history.cutoff_date = last_specialty.cutoff_date
        and visit_history.person_id = last_specialty.person_id
    left join no_shows
        on visit_history.cutoff_date = no_shows.cutoff_date
        and visit_history.person_id = no_shows.person_id
    left join bookings
        on visit_history.cutoff_date = bookings.cutoff_date
        and visit_history.person_id = bookings.person_id
    left join money
        on visit_history.cutoff_date = money.cutoff_date
        and visit_history.person_id = money.person_id
    left join plans_made
        on visit_history.cutoff_date = plans_made.cutoff_date
        and visit_history.person_id = plans_made.person_id
    left join calls_made
        on visit_history.cutoff_date = calls_made.cutoff_date
        and visit_history.person_id = calls_made.person_id
    left join patients
        on visit_history.person_id = patients.person_id

)

select * from final
