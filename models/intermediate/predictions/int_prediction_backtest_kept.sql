{#-
  One row: whether today's predict keeps the backtest the warehouse already holds (source
  predictions.backtest) instead of running it again, decided here once, for the build and for predict:
  the features of the backtest cutoff's persons are computed only when the backtest runs.
  Kept when var `prediction_backtest_every_days` is above 1 and the stored backtest is one run, dated
  at most that many days minus one before the as-of date (never after it: a replay of an earlier day
  reruns it), for the same horizon and made by the same code, prediction vars and dbt project
  (var `prediction_backtest_key`, which the runner passes; without it, as in a plain `dbt build`, the
  backtest always runs).
  The fitted models are kept on the same terms (`is_models_kept`), and only when the backtest is:
  source predictions.model_fit holds one fit, made at most that many days minus one before the as-of
  date (never after it), by the same code and settings, for the same horizon, whose file the runner
  holds in its workspace (var `prediction_models_available`: the SHA-256 digests of the model files
  there, verified; without it, as in a plain `dbt build`, the models are always refitted). Then the
  build leaves out the training rows' features too, and predict only scores.
-#}
{%- set key = var('prediction_backtest_key', none) -%}
{%- set every = var('prediction_backtest_every_days', 7) -%}
{%- set every = 1 if every is none else every | int -%}
{%- set horizon = var('prediction_horizon_days', 180) | int -%}
{%- set available = var('prediction_models_available', []) or [] -%}
{%- set keyed = "'" ~ ((key or '') | replace("'", "''")) ~ "'" -%}

with

stored as (

    {{ patient_base.optional_source('predictions', 'backtest', [
        ['horizon_days', dbt.type_int()],
        ['backtest_as_of_date', 'date'],
        ['backtest_key', dbt.type_string()],
    ]) | indent(4) }}

),

fits as (

    {{ patient_base.optional_source('predictions', 'model_fit', [
        ['fitted_as_of_date', 'date'],
        ['horizon_days', dbt.type_int()],
        ['backtest_key', dbt.type_string()],
        ['models_digest', dbt.type_string()],
    ]) | indent(4) }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

runs as (

    select
        count(*) as backtest_rows,
        count(distinct backtest_as_of_date) as run_dates,
        sum(case when backtest_as_of_date is null then 1 else 0 end) as undated_rows,
        max(backtest_as_of_date) as backtest_as_of_date,
        sum(case
            when backtest_key = {{ keyed }} and horizon_days = {{ horizon }} then 0
            else 1
        end) as other_rows
    from stored

),

fit as (

    select
        count(*) as fits,
        max(fitted_as_of_date) as fitted_as_of_date,
        max(models_digest) as models_digest,
        sum(case
            when backtest_key = {{ keyed }} and horizon_days = {{ horizon }}
                {% if available -%}
                and models_digest in (
                    {%- for digest in available | sort %}'{{ digest | replace("'", "''") }}'{{ ', ' if not loop.last }}{% endfor -%}
                )
                {%- else -%}
                and 1 = 0
                {%- endif %}
                then 0
            else 1
        end) as other_fits
    from fits

),

kept as (

    select
        runs.backtest_as_of_date,
        {% if key and every > 1 -%}
        coalesce(
            runs.backtest_rows > 0
            and runs.run_dates = 1
            and runs.undated_rows = 0
            and runs.other_rows = 0
            and runs.backtest_as_of_date <= as_of.as_of_date
            and {{ patient_base.days_between('runs.backtest_as_of_date', 'as_of.as_of_date') }} < {{ every }},
            false
        )
        {%- else -%}
        false
        {%- endif %} as is_kept,
        fit.fitted_as_of_date as models_fitted_as_of_date,
        fit.models_digest,
        coalesce(
            fit.fits = 1
            and fit.other_fits = 0
            and fit.fitted_as_of_date <= as_of.as_of_date
            and {{ patient_base.days_between('fit.fitted_as_of_date', 'as_of.as_of_date') }} < {{ every }},
            false
        ) as is_fit_current
    from runs
    cross join fit
    cross join as_of

),

final as (

    select
        backtest_as_of_date,
        is_kept,
        models_fitted_as_of_date,
        models_digest,
        -- the backtest trains on the training rows: a day it runs, the models are refitted with it
        is_kept and is_fit_current as is_models_kept
    from kept

)

select * from final
