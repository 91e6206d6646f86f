{#-
  One row per cutoff date the return models see: the as-of date (today's scoring), every
  `prediction_step_days` (30) days back for `prediction_training_cutoffs` (12) steps (training: a
  person's features at a past cutoff and whether they came back after it), and as-of minus
  `prediction_horizon_days` (180), the backtest cutoff. A cutoff is a date: everything known "at" it
  happened strictly before it. A cutoff before the first completed visit gives no rows downstream.
-#}
{%- set horizon = var('prediction_horizon_days', 180) | int -%}
{%- set step = var('prediction_step_days', 30) | int -%}
{%- set steps = var('prediction_training_cutoffs', 12) | int -%}
{%- set offsets = [] -%}
{%- for k in range(0, steps + 1) -%}
{%- do offsets.append(k * step) -%}
{%- endfor -%}
{%- if horizon not in offsets -%}
{%- do offsets.append(horizon) -%}
{%- endif -%}

with

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

offsets as (

    {% for offset in offsets | sort -%}
    select cast({{ offset }} as {{ dbt.type_int() }}) as days_before_as_of
    {% if not loop.last %}union all
    {% endif -%}
    {%- endfor %}

),

final as (

    select
        {{ patient_base.date_plus_days('as_of.as_of_date', '-1 * offsets.days_before_as_of') }} as cutoff_date,
        offsets.days_before_as_of,
        offsets.days_before_as_of = 0 as is_scoring_cutoff,
        offsets.days_before_as_of = {{ horizon }} as is_backtest_cutoff,
        as_of.as_of_date
    from offsets
    cross join as_of

)

select * from final
