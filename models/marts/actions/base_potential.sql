{#-
  Revenue waiting in the base, per RFM segment of the configured scale (every segment, also empty
  ones): if the segment's expected share comes back (seed reactivation_rates) and each returning
  patient makes `transactions` visits at the segment's average check. Plus how long the call centre
  needs to reach the segment once. Deceased persons are left out: they are no potential.
  With predictions for the as-of date (int_persons_predicted) the returns and the revenue come from the
  segment's lapsed persons' p_return and predicted_revenue_12m instead of the seed's rate, so active
  persons' ordinary future visits no longer count as waiting in the base.
-#}
{%- set settings = patient_base.rfm_settings() -%}
{%- set daily_calls = patient_base.daily_call_capacity() -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

scores as (

    select * from {{ ref('rfm_scores') }}

),

patients as (

    select * from {{ ref('dim_patients') }}

),

segments as (

    select * from {{ ref('rfm_segments') }}

),

rates as (

    select * from {{ ref('reactivation_rates') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

predicted as (

    select * from {{ ref('int_persons_predicted') }}

),

segments_of_scale as (

    select
        segments.segment,
        segments.label_en,
        segments.label_ru,
        segments.sort_order,
        cast(rates.reactivation_rate as {{ api.Column.numeric_type('numeric', 18, 4) }}) as reactivation_rate
    from segments
    left join rates
        on segments.rfm_scale = rates.rfm_scale
        and segments.segment = rates.segment
    where segments.rfm_scale = {{ settings.scale }}

),

living_persons as (

    select
        scores.segment,
        patients.person_id,
        patients.completed_visits,
        patients.total_revenue,
        patients.can_call,
        patients.days_since_last_visit > {{ var('sleeping_days', 180) }} as is_lapsed,
        predicted.p_return,
        predicted.predicted_revenue_12m,
        -- visits per year of the relationship (first to last visit, counted as at least one year):
        -- the rhythm a returning patient goes back to
        cast(patients.completed_visits as {{ api.Column.numeric_type('numeric', 28, 10) }}) * 365
            / (case when patients.tenure_days > 365 then patients.tenure_days else 365 end) as visits_per_year
    from scores
    inner join patients
        on scores.person_id = patients.person_id
    left join predicted
        on scores.person_id = predicted.person_id
    where not patients.is_deceased

),

per_segment as (

    select
        segment,
        count(*) as patients,
        sum(case when can_call then 1 else 0 end) as callable_patients,
        sum(completed_visits) as completed_visits,
        sum(total_revenue) as revenue,
        avg(visits_per_year) as transactions,
        count(p_return) as scored_patients,
        sum(case when is_lapsed then 1 else 0 end) as lapsed_patients,
        sum(case when is_lapsed then p_return else 0 end) as predicted_returns,
        sum(case when is_lapsed then predicted_revenue_12m else 0 end) as predicted_potential
    from living_persons
    group by segment

),

measured as (

    select
        segments_of_scale.segment,
        segments_of_scale.label_en,
        segments_of_scale.label_ru,
        segments_of_scale.sort_order,
        coalesce(per_segment.patients, 0) as patients,
        coalesce(per_segment.callable_patients, 0) as callable_patients,
        coalesce(per_segment.scored_patients, 0) > 0 as is_predicted,
        case
            when coalesce(per_segment.scored_patients, 0) > 0
                then coalesce({{ patient_base.ratio_or_null('per_segment.predicted_returns', 'per_segment.lapsed_patients', 4) }}, 0)
            else segments_of_scale.reactivation_rate
        end as reactivation_rate,
        per_segment.predicted_returns,
        per_segment.predicted_potential,
        cast(per_segment.transactions as {{ api.Column.numeric_type('numeric', 18, 2) }}) as transactions,
        {{ patient_base.ratio_or_null('per_segment.revenue', 'per_segment.completed_visits', 2) }} as avg_check
    from segments_of_scale
    left join per_segment
        on segments_of_scale.segment = per_segment.segment

),

final as (

    select
        measured.segment,
        measured.label_en as segment_label_en,
        measured.label_ru as segment_label_ru,
        measured.sort_order,
        cast(measured.patients as {{ dbt.type_int() }}) as patients,
        measured.reactivation_rate,
        case
            when measured.is_predicted then cast(measured.predicted_returns as {{ api.Column.numeric_type('numeric', 18, 2) }})
            else cast(measured.patients * measured.reactivation_rate as {{ api.Column.numeric_type('numeric', 18, 2) }})
        end as expected_returns,
        measured.transactions,
        measured.avg_check,
        case
            when measured.patients = 0 then {{ patient_base.cast_money(0) }}
            when measured.is_predicted then {{ patient_base.cast_money('measured.predicted_potential') }}
            else {{ patient_base.cast_money(
                'measured.patients * measured.reactivation_rate * measured.transactions * measured.avg_check'
            ) }}
        end as potential_revenue,
        cast(measured.callable_patients as {{ dbt.type_int() }}) as callable_patients,
        cast({{ daily_calls }} as {{ dbt.type_int() }}) as daily_call_capacity,
        {{ patient_base.ratio_or_null('measured.callable_patients', daily_calls, 2) }} as working_days_to_reach,
        case when measured.is_predicted then 'predicted' else 'seed' end as returns_source,
        as_of.as_of_date
    from measured
    cross join as_of

)

select * from final
