{#- One row per model × backtest cutoff (decile null: all persons) and per model × cutoff × decile of
    the model's own ranking: how the models, trained only on what happened before the cutoff
    (as-of minus the horizon), predicted who came back within the horizon after it. -#}
with

backtest as (

    select * from {{ ref('stg_predictions__backtest') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

final as (

    select
        backtest.model_name,
        backtest.is_chosen_model,
        backtest.cutoff_date,
        backtest.horizon_days,
        backtest.decile,
        backtest.persons,
        backtest.returners,
        backtest.returners as actual_returners,
        backtest.predicted_returners,
        {{ patient_base.ratio_or_null('backtest.returners', 'backtest.persons', 4) }} as return_rate,
        {{ patient_base.ratio_or_null('backtest.predicted_returners', 'backtest.persons', 4) }} as predicted_return_rate,
        backtest.auc,
        backtest.top_decile_lift,
        backtest.actual_revenue,
        backtest.predicted_revenue,
        backtest.training_rows,
        backtest.as_of_date,
        coalesce(backtest.backtest_as_of_date, backtest.as_of_date) as backtest_as_of_date
    from backtest
    inner join as_of
        on backtest.as_of_date = as_of.as_of_date

)

select * from final
