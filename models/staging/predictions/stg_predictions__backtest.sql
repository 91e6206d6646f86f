{#- The backtest `patientbase predict` wrote (source predictions.backtest), typed; no rows before
    predict has run once. -#}
{%- set num = api.Column.numeric_type('numeric', 18, 4) -%}
{{ patient_base.optional_source('predictions', 'backtest', [
    ['model_name', dbt.type_string()],
    ['is_chosen_model', dbt.type_boolean()],
    ['as_of_date', 'date'],
    ['cutoff_date', 'date'],
    ['horizon_days', dbt.type_int()],
    ['decile', dbt.type_int()],
    ['persons', dbt.type_int()],
    ['returners', dbt.type_int()],
    ['predicted_returners', num],
    ['auc', num],
    ['top_decile_lift', num],
    ['actual_revenue', patient_base.type_money()],
    ['predicted_revenue', patient_base.type_money()],
    ['training_rows', dbt.type_int()],
    ['backtest_as_of_date', 'date'],
]) }}
