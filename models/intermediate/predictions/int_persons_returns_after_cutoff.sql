{#-
  One row per person × cutoff of int_persons_features_at_cutoff: what happened after the cutoff, the
  labels the return models learn from and the backtest compares with. Kept apart from the features so
  no feature can read them. A window is complete when it ends on or before the as-of date
  (`is_step_observed`, `is_horizon_observed`); an incomplete window's label says nothing.
-#}
{%- set horizon = var('prediction_horizon_days', 180) | int -%}
{%- set step = var('prediction_step_days', 30) | int -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

features as (

    select * from {{ ref('int_persons_features_at_cutoff') }}

),

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

payments as (

    select * from {{ ref('int_payments_resolved') }}

),

visits_after as (

    select
        features.cutoff_date,
        features.person_id,
        min({{ patient_base.days_between('features.cutoff_date', 'visits.visit_date') }}) as days_to_return,
        sum(case
            when {{ patient_base.days_between('features.cutoff_date', 'visits.visit_date') }} < {{ horizon }}
                then 1 else 0
        end) as visits_in_horizon
    from features
    inner join visits
        on features.person_id = visits.person_id
        and visits.visit_date >= features.cutoff_date
    where visits.is_completed
    group by features.cutoff_date, features.person_id

),

money_after as (

    select
        features.cutoff_date,
        features.person_id,
        sum(payments.amount) as revenue_in_horizon
    from features
    inner join payments
        on features.person_id = payments.person_id
        and payments.paid_date >= features.cutoff_date
        and {{ patient_base.days_between('features.cutoff_date', 'payments.paid_date') }} < {{ horizon }}
    group by features.cutoff_date, features.person_id

),

final as (

    select
        features.cutoff_date,
        features.person_id,
        visits_after.days_to_return,
        coalesce(visits_after.days_to_return < {{ step }}, false) as returned_in_step,
        coalesce(visits_after.days_to_return < {{ horizon }}, false) as returned_in_horizon,
        cast(coalesce(visits_after.visits_in_horizon, 0) as {{ dbt.type_int() }}) as visits_in_horizon,
        cast(coalesce(money_after.revenue_in_horizon, 0) as {{ api.Column.numeric_type('numeric', 18, 2) }}) as revenue_in_horizon,
        features.days_before_as_of >= {{ step }} as is_step_observed,
        features.days_before_as_of >= {{ horizon }} as is_horizon_observed
    from features
    left join visits_after
        on features.cutoff_date = visits_after.cutoff_date
        and features.person_id = visits_after.person_id
    left join money_after
        on features.cutoff_date = money_after.cutoff_date
        and features.person_id = money_after.person_id

)

select * from final
