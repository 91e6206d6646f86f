{#- The scores `patientbase predict` wrote (source predictions.patient_scores), typed; no rows before
    predict has run once. -#}
{%- set num = api.Column.numeric_type('numeric', 18, 4) -%}
{{ patient_base.optional_source('predictions', 'patient_scores', [
    ['person_id', dbt.type_string()],
    ['as_of_date', 'date'],
    ['horizon_days', dbt.type_int()],
    ['p_return', num],
    ['expected_visits_12m', num],
    ['predicted_revenue_12m', patient_base.type_money()],
    ['p_alive', num],
    ['model_name', dbt.type_string()],
    ['decile', dbt.type_int()],
]) }}
