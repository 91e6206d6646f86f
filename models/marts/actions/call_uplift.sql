{#-
  What the calls changed, measured against the control group: per action x month of the list date,
  per action in total, for all actions, and per action x operator (calls of one operator against the
  action's whole control group). Each row counts the recorded action occurrences
  (stg_mis__call_assignments) whose outcome window (var `call_outcome_days` after the list date) has
  fully elapsed before the as-of date; the others are counted as pending.

  came = a completed visit after the list date, within the window; booked = a visit booked (booked_at)
  within the window from the list date on. Intent to treat: the called arm is everyone listed, reached
  or not. Uplift = rate_called - rate_control with a 95% Wald interval; incremental visits and revenue
  = (per-occurrence mean in the called arm - in the control arm) x called. docs/decisions.md,
  "Measuring the calls".
-#}
{%- set outcome_days = var('call_outcome_days', 30) | int -%}
{%- set min_arm = var('call_uplift_min_arm', 30) | int -%}

{%- set arm_sums -%}
        sum(case when arm = 'call' and is_final then 1 else 0 end) as called,
        sum(case when arm = 'control' and is_final then 1 else 0 end) as control,
        sum(case when arm = 'call' and is_final then came else 0 end) as came_called,
        sum(case when arm = 'control' and is_final then came else 0 end) as came_control,
        sum(case when arm = 'call' and is_final then booked else 0 end) as booked_called,
        sum(case when arm = 'control' and is_final then booked else 0 end) as booked_control,
        sum(case when arm = 'call' and is_final then visits else 0 end) as visits_called,
        sum(case when arm = 'control' and is_final then visits else 0 end) as visits_control,
        sum(case when arm = 'call' and is_final then revenue else 0 end) as revenue_called,
        sum(case when arm = 'control' and is_final then revenue else 0 end) as revenue_control,
        sum(case when is_final then 0 else 1 end) as pending
{%- endset -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

scored as (

    select * from {{ ref('int_call_occurrences_scored') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

-- the cells: action x month, action, month, everything (operator 'all'; month null = all months)
arm_cells as (

    select action_code, 'all' as operator_id, month, {{ arm_sums }}
    from scored
    group by action_code, month

    union all

    select action_code, 'all' as operator_id, cast(null as date) as month, {{ arm_sums }}
    from scored
    group by action_code

    union all

    select 'all' as action_code, 'all' as operator_id, month, {{ arm_sums }}
    from scored
    group by month

    union all

    select 'all' as action_code, 'all' as operator_id, cast(null as date) as month, {{ arm_sums }}
    from scored
    having count(*) > 0

),

-- one operator's calls of an action against the action's whole control group (controls have no operator)
operator_called as (

    select action_code, operator_id, {{ arm_sums }}
    from scored
    where arm = 'call'
    group by action_code, operator_id

),

action_control as (

    select action_code, {{ arm_sums }}
    from scored
    where arm = 'control'
    group by action_code

),

operator_cells as (

    select
        operator_called.action_code,
        operator_called.operator_id,
        cast(null as date) as month,
        operator_called.called,
        coalesce(action_control.control, 0) as control,
        operator_called.came_called,
        coalesce(action_control.came_control, 0) as came_control,
        operator_called.booked_called,
        coalesce(action_control.booked_control, 0) as booked_control,
        operator_called.visits_called,
        coalesce(action_control.visits_control, 0) as visits_control,
        operator_called.revenue_called,
        coalesce(action_control.revenue_control, 0) as revenue_control,
        operator_called.pending
    from operator_called
    left join action_control
        on operator_called.action_code = action_control.action_code

),

cells as (

    select * from arm_cells
    union all
    select * from operator_cells

),

rated as (

    select
        *,
        cast(came_called as {{ dbt.type_numeric() }}) / nullif(called, 0) as p_called,
        cast(came_control as {{ dbt.type_numeric() }}) / nullif(control, 0) as p_control,
        cast(booked_called as {{ dbt.type_numeric() }}) / nullif(called, 0) as q_called,
        cast(booked_control as {{ dbt.type_numeric() }}) / nullif(control, 0) as q_control
    from cells

),

intervals as (

    select
        *,
        p_called - p_control as diff,
        {{ patient_base.uplift_half_width('p_called', 'called', 'p_control', 'control') }} as half_width,
        q_called - q_control as booked_diff,
        {{ patient_base.uplift_half_width('q_called', 'called', 'q_control', 'control') }} as booked_half_width
    from rated

),

final as (

    select
        intervals.action_code,
        intervals.operator_id,
        intervals.month,
        case
            when intervals.month is null then 'all'
            else substring(cast(intervals.month as {{ dbt.type_string() }}), 1, 7)
        end as period,
        cast(intervals.called as {{ dbt.type_int() }}) as called,
        cast(intervals.control as {{ dbt.type_int() }}) as control,
        cast(intervals.came_called as {{ dbt.type_int() }}) as came_called,
        cast(intervals.came_control as {{ dbt.type_int() }}) as came_control,
        cast(round(intervals.p_called, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}) as rate_called,
        cast(round(intervals.p_control, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}) as rate_control,
        cast(round(intervals.diff, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}) as uplift,
        cast(
            round(intervals.diff - intervals.half_width, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}
        ) as uplift_low,
        cast(
            round(intervals.diff + intervals.half_width, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}
        ) as uplift_high,
        coalesce(
            intervals.called >= {{ min_arm }} and intervals.control >= {{ min_arm }}
            and (
                intervals.diff - intervals.half_width > 0
                or intervals.diff + intervals.half_width < 0
            ),
            false
        ) as is_significant,
        cast(round(
            (cast(intervals.visits_called as {{ dbt.type_numeric() }}) / nullif(intervals.called, 0)
                - cast(intervals.visits_control as {{ dbt.type_numeric() }}) / nullif(intervals.control, 0))
            * intervals.called,
            2
        ) as {{ api.Column.numeric_type('numeric', 18, 2) }}) as incremental_visits,
        {{ patient_base.cast_money(
            '(cast(intervals.revenue_called as ' ~ dbt.type_numeric() ~ ') / nullif(intervals.called, 0)'
            ~ ' - cast(intervals.revenue_control as ' ~ dbt.type_numeric() ~ ') / nullif(intervals.control, 0))'
            ~ ' * intervals.called'
        ) }} as incremental_revenue,
        cast(intervals.booked_called as {{ dbt.type_int() }}) as booked_called,
        cast(intervals.booked_control as {{ dbt.type_int() }}) as booked_control,
        cast(round(intervals.q_called, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}) as booked_rate_called,
        cast(round(intervals.q_control, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}) as booked_rate_control,
        cast(round(intervals.booked_diff, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}) as booked_uplift,
        cast(
            round(intervals.booked_diff - intervals.booked_half_width, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}
        ) as booked_uplift_low,
        cast(
            round(intervals.booked_diff + intervals.booked_half_width, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}
        ) as booked_uplift_high,
        coalesce(
            intervals.called >= {{ min_arm }} and intervals.control >= {{ min_arm }}
            and (
                intervals.booked_diff - intervals.booked_half_width > 0
                or intervals.booked_diff + intervals.booked_half_width < 0
            ),
            false
        ) as is_booked_significant,
        {{ patient_base.cast_money('intervals.revenue_called') }} as revenue_called,
        {{ patient_base.cast_money('intervals.revenue_control') }} as revenue_control,
        cast(intervals.pending as {{ dbt.type_int() }}) as pending,
        intervals.pending = 0 as is_window_complete,
        cast({{ outcome_days }} as {{ dbt.type_int() }}) as outcome_days,
        as_of.as_of_date
    from intervals
    cross join as_of

)

select * from final
