{#- One row per person with a completed visit, scored by `patientbase predict` for this build's as-of
    date: the probability of a completed visit within the horizon, the visits and revenue expected in
    the next 12 months, and which model scored the person. Empty until predict has run. -#}
with

predicted as (

    select * from {{ ref('int_persons_predicted') }}

),

final as (

    select
        person_id,
        as_of_date,
        horizon_days,
        p_return,
        expected_visits_12m,
        predicted_revenue_12m,
        p_alive,
        model_name,
        decile
    from predicted

)

select * from final
