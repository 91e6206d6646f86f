{#-
  One row per person x month for the last `migration_months` complete months before `as_of_date`, from
  the month the person first had a completed visit: RFM recomputed as of that month's end (that is, as
  of the first day of the next month, the same exclusive "as of" rule as rfm_scores), with the segment
  the person had at the previous month end (null when the person had no completed visit by then).

  Built from history, no snapshots and no per-month self-joins:
  1. visits and payments are summed per person and month (months older than the first state month, or
     than the window before it, are folded into one opening month);
  2. with `rfm_window_months` = N, every month's visits and money also "expire" as a negative event N
     months later, so a running total over the events is the total of the last N months;
  3. running totals are taken over these activity rows only (a few per person), each valid until the
     person's next activity month;
  4. each activity row is spread over the state months it is valid for with one range join to the
     month list, giving the person x month states;
  5. scoring and segment mapping are the macros rfm_scores uses (macros/rfm.sql), per month.
-#}
{#- incremental: a build recomputes only the months whose inputs changed (int_rfm_monthly_inputs);
    Spark's Parquet tables cannot delete rows, so there it is a table rebuilt whole -#}
{{ config(
    materialized=('table' if target.type == 'spark' else 'incremental'),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ patient_base.prune_changed_months(ref('int_rfm_monthly_inputs')) }}",
) }}
{%- set settings = patient_base.rfm_settings() -%}
{%- set window = settings.window_months -%}
{%- set state_months = settings.migration_months + 1 -%}

with

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

payments as (

    select * from {{ ref('int_payments_resolved') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

inputs as (

    select * from {{ ref('int_rfm_monthly_inputs') }}

),

{% if is_incremental() -%}
-- the months to compute: those the table does not hold (the prune hook deleted every month from the
-- first changed one on, and the months a replay or a longer window adds were never there)
kept as (

    select distinct month from {{ this }}

),

missing as (

    select inputs.month
    from inputs
    left join kept
        on kept.month = inputs.month
    where inputs.has_states and kept.month is null

),
{%- endif %}

-- read by rfm_scoring_ctes() when rfm_method = 'thresholds'
thresholds as (  -- noqa: ST03

    select * from {{ ref('rfm_thresholds') }}

),

segment_map as (

    {{ patient_base.rfm_segment_map() }}

),

-- last_month: the last complete month before the as-of date; first_state_month: the month whose end
-- is the "from" state of the first migration month; opening_month: events up to it are folded into it
-- (the window's length before the first state month, or the first state month itself)
bounds as (

    select
        cast({{ dbt.dateadd('month', -1, dbt.date_trunc('month', 'as_of_date')) }} as date) as last_month,
        cast({{ dbt.dateadd('month', -state_months, dbt.date_trunc('month', 'as_of_date')) }} as date) as first_state_month,
        cast({{ dbt.dateadd('month', -state_months - (window or 0), dbt.date_trunc('month', 'as_of_date')) }} as date) as opening_month,
        cast({{ dbt.date_trunc('month', 'as_of_date') }} as date) as history_end_date
    from as_of

),

month_numbers as (

    {{ dbt.generate_series(state_months) }}

),

months as (

    select
        cast({{ dbt.dateadd(
            'month',
            '(1 - cast(month_numbers.generated_number as ' ~ dbt.type_int() ~ '))',
            'bounds.last_month',
        ) }} as date) as month
    from month_numbers
    cross join bounds

){% if is_incremental() %},

-- the states to compute: the missing months and the month before each (its segment is the previous)
computed_months as (

    select months.month
    from months
    where months.month in (select month from missing)
        or cast({{ dbt.dateadd('month', 1, 'months.month') }} as date) in (select month from missing)

){% endif %},

-- the last state month computed: no event after it is read, so a day with nothing to recompute reads
-- no history (null: no month is missing); a full build computes every month to the last complete one
last_computed as (

    {% if is_incremental() -%}
    select max(month) as month from missing
    {%- else -%}
    select last_month as month from bounds
    {%- endif %}

),

visit_months as (

    select
        visits.person_id,
        case
            when visits.visit_month < bounds.opening_month then bounds.opening_month
            else visits.visit_month
        end as month,
        count(*) as visits,
        max(visits.visit_date) as last_visit_date,
        0 as amount
    from visits
    cross join bounds
    cross join last_computed
    where visits.is_completed
        and visits.person_id is not null
        and visits.visit_date < bounds.history_end_date
        and visits.visit_month <= last_computed.month
    group by
        visits.person_id,
        case
            when visits.visit_month < bounds.opening_month then bounds.opening_month
            else visits.visit_month
        end

),

payment_months as (

    select
        payments.person_id,
        case
            when payments.paid_month < bounds.opening_month then bounds.opening_month
            else payments.paid_month
        end as month,
        0 as visits,
        cast(null as date) as last_visit_date,
        sum(payments.amount) as amount
    from payments
    cross join bounds
    cross join last_computed
    where payments.person_id is not null
        and payments.paid_date < bounds.history_end_date
        and payments.paid_month <= last_computed.month
    group by
        payments.person_id,
        case
            when payments.paid_month < bounds.opening_month then bounds.opening_month
            else payments.paid_month
        end

),

arrivals as (

    select
        person_id,
        month,
        visits,
        last_visit_date,
        amount,
        visits as window_visits,
        amount as window_amount
    from visit_months

    union all

    select
        person_id,
        month,
        visits,
        last_visit_date,
        amount,
        visits as window_visits,
        amount as window_amount
    from payment_months

),

{% if window -%}
-- a month's visits and money leave the window N months later: the same amounts, negated
expiries as (

    select
        arrivals.person_id,
        cast({{ dbt.dateadd('month', window, 'arrivals.month') }} as date) as month,
        0 as visits,
        cast(null as date) as last_visit_date,
        0 as amount,
        -arrivals.window_visits as window_visits,
        -arrivals.window_amount as window_amount
    from arrivals
    cross join bounds
    where arrivals.month <= cast({{ dbt.dateadd('month', -window, 'bounds.last_month') }} as date)

),

events as (

    select * from arrivals
    union all
    select * from expiries

),
{%- else -%}
events as (

    select * from arrivals

),
{%- endif %}

activity_months as (

    select
        person_id,
        month,
        sum(visits) as visits,
        max(last_visit_date) as last_visit_date,
        sum(amount) as amount,
        sum(window_visits) as window_visits,
        sum(window_amount) as window_amount
    from events
    group by person_id, month

),

-- running totals as of each activity month, valid until the person's next activity month
running_totals as (

    select
        person_id,
        month as valid_from_month,
        lead(month) over (partition by person_id order by month) as valid_until_month,
        sum(visits) over (
            partition by person_id order by month rows between unbounded preceding and current row
        ) as visits_to_date,
        max(last_visit_date) over (
            partition by person_id order by month rows between unbounded preceding and current row
        ) as last_visit_date,
        sum(window_visits) over (
            partition by person_id order by month rows between unbounded preceding and current row
        ) as frequency,
        sum(window_amount) over (
            partition by person_id order by month rows between unbounded preceding and current row
        ) as monetary
    from activity_months

),

-- one row per person and state month: the running totals valid in that month, from the first month
-- with a completed visit (a person with payments only has no state); as of the next month's 1st
states as (

    select
        running_totals.person_id,
        months.month,
        cast({{ dbt.dateadd('month', 1, 'months.month') }} as date) as state_as_of_date,
        running_totals.last_visit_date,
        running_totals.frequency,
        running_totals.monetary
    from running_totals
    inner join {{ 'computed_months' if is_incremental() else 'months' }} as months
        on months.month >= running_totals.valid_from_month
        and months.month < coalesce(running_totals.valid_until_month, cast('9999-12-01' as date))
    where running_totals.visits_to_date > 0

),

metrics as (

    select
        person_id,
        month,
        state_as_of_date,
        last_visit_date,
        cast({{ dbt.datediff('last_visit_date', 'state_as_of_date', 'day') }} as {{ dbt.type_int() }}) as recency_days,
        cast(frequency as {{ dbt.type_int() }}) as frequency,
        {{ patient_base.cast_money('monetary') }} as monetary
    from states

),

{{ patient_base.rfm_scoring_ctes('metrics', 'thresholds', 'segment_map', partition_by='month') }},

with_previous as (

    select
        *,
        lag(segment) over (partition by person_id order by month) as previous_segment
    from rfm_segmented

),

final as (

    select
        with_previous.person_id,
        with_previous.month,
        with_previous.state_as_of_date,
        with_previous.last_visit_date,
        with_previous.recency_days,
        with_previous.frequency,
        with_previous.monetary,
        with_previous.r_score,
        with_previous.f_score,
        with_previous.m_score,
        with_previous.rfm_cell,
        with_previous.rfm_code,
        with_previous.segment,
        with_previous.previous_segment,
        inputs.input_fingerprint,
        '{{ invocation_id }}' as computed_by_invocation_id
    from with_previous
    cross join bounds
    left join inputs
        on inputs.month = with_previous.month
    where with_previous.month > bounds.first_state_month
    {%- if is_incremental() %}
        and with_previous.month in (select month from missing)
    {%- endif %}

)

select * from final
