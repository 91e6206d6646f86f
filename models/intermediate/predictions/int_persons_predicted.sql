{#- One row per person scored by `patientbase predict` for this build's as-of date. Scores written for
    another as-of date (predict not run since the last build) are left out, so nothing downstream
    mixes two dates; with no current scores every reader falls back to its rules. -#}
with

scores as (

    select * from {{ ref('stg_predictions__patient_scores') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

final as (

    select
        scores.person_id,
        scores.as_of_date,
        scores.horizon_days,
        scores.p_return,
        scores.expected_visits_12m,
        scores.predicted_revenue_12m,
        scores.p_alive,
        scores.model_name,
        scores.decile
    from scores
    inner join as_of
        on scores.as_of_date = as_of.as_of_date

)

select * from final
