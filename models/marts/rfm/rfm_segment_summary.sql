{%- set settings = patient_base.rfm_settings() -%}
{#- shares keep 10 decimals so that they still sum to 1 (within 1e-9) after rounding -#}
{%- set share_type = api.Column.numeric_type('numeric', 18, 10) -%}
{%- set wide_type = api.Column.numeric_type('numeric', 28, 10) -%}
{%- set average_type = api.Column.numeric_type('numeric', 18, 2) -%}

with

scores as (

    select * from {{ ref('rfm_scores') }}

),

segments as (

    select * from {{ ref('rfm_segments') }}

),

segments_of_scale as (

    select
        segment,
        label_en,
        label_ru,
        default_action,
        sort_order
    from segments
    where rfm_scale = {{ settings.scale }}

),

per_segment as (

    select
        segment,
        count(*) as patients,
        sum(monetary) as revenue,
        cast(avg(cast(recency_days as {{ wide_type }})) as {{ average_type }}) as avg_recency_days,
        cast(avg(cast(frequency as {{ wide_type }})) as {{ average_type }}) as avg_frequency
    from scores
    group by segment

),

-- every segment of the scale, also those nobody is in (a stable list for charts), plus any segment
-- the map uses that the segments seed lacks (caught by the tests on rfm_scores)
all_segments as (

    select segment from segments_of_scale
    union
    select segment from per_segment

),

totals as (

    select
        count(*) as patients,
        sum(monetary) as revenue
    from scores

),

final as (

    select
        all_segments.segment,
        segments_of_scale.label_ru as segment_label_ru,
        segments_of_scale.label_en as segment_label_en,
        segments_of_scale.default_action,
        segments_of_scale.sort_order,
        cast(coalesce(per_segment.patients, 0) as {{ dbt.type_int() }}) as patients,
        -- cast outside the case: PostgreSQL drops a case branch's precision and scale
        cast(
            case
                when totals.patients > 0
                    then cast(coalesce(per_segment.patients, 0) as {{ wide_type }}) / totals.patients
            end
            as {{ share_type }}
        ) as share_of_patients,
        {{ patient_base.cast_money('coalesce(per_segment.revenue, 0)') }} as revenue,
        -- cast outside the case: PostgreSQL drops a case branch's precision and scale
        cast(
            case
                when totals.revenue <> 0
                    then cast(coalesce(per_segment.revenue, 0) as {{ wide_type }}) / totals.revenue
            end
            as {{ share_type }}
        ) as share_of_revenue,
        {{ patient_base.cast_money(patient_base.exact_quotient('per_segment.revenue', 'per_segment.patients')) }} as avg_revenue_per_patient,
        per_segment.avg_recency_days,
        per_segment.avg_frequency
    from all_segments
    cross join totals
    left join segments_of_scale
        on all_segments.segment = segments_of_scale.segment
    left join per_segment
        on all_segments.segment = per_segment.segment

)

select * from final
