{#-
  Revenue waiting in the base, per RFM segment of the configured scale (every segment, also empty
  ones): if the segment's expected share comes back (seed reactivation_rates) and each returning
  patient makes `transactions` visits at the segment's average check. Plus how long the call centre
  needs to reach the segment once. Deceased persons are left out: they are no potential.
-#}
{%- set settings = patient_base.rfm_settings() -%}
{%- set daily_calls = patient_base.daily_call_capacity() -%}

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
        -- visits per year of the relationship (first to last visit, counted as at least one year):
        -- the rhythm a returning patient goes back to
        cast(patients.completed_visits as {{ api.Column.numeric_type('numeric', 28, 10) }}) * 365
            / (case when patients.tenure_days > 365 then patients.tenure_days else 365 end) as visits_per_year
    from scores
    inner join patients
        on scores.person_id = patients.person_id
    where not patients.is_deceased

),

per_segment as (

    select
        segment,
        count(*) as patients,
        sum(case when can_call then 1 else 0 end) as callable_patients,
        sum(completed_visits) as completed_visits,
        sum(total_revenue) as revenue,
        avg(visits_per_year) as transactions
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
        segments_of_scale.reactivation_rate,
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
        cast(measured.patients * measured.reactivation_rate as {{ api.Column.numeric_type('numeric', 18, 2) }}) as expected_returns,
        measured.transactions,
        measured.avg_check,
        case
            when measured.patients = 0 then {{ patient_base.cast_money(0) }}
            else {{ patient_base.cast_money(
                'measured.patients * measured.reactivation_rate * measured.transactions * measured.avg_check'
            ) }}
        end as potential_revenue,
        cast(measured.callable_patients as {{ dbt.type_int() }}) as callable_patients,
        cast({{ daily_calls }} as {{ dbt.type_int() }}) as daily_call_capacity,
        {{ patient_base.ratio_or_null('measured.callable_patients', daily_calls, 2) }} as working_days_to_reach,
        as_of.as_of_date
    from measured
    cross join as_of

)

select * from final
