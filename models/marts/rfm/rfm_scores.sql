{%- set settings = patient_base.rfm_settings() -%}
{%- set language = patient_base.text_language() -%}

with

scored as (

    select * from {{ ref('int_persons_scored_rfm') }}

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

final as (

    select
        scored.person_id,
        scored.as_of_date,
        scored.first_visit_date,
        scored.last_visit_date,
        scored.recency_days,
        scored.frequency,
        scored.monetary,
        scored.r_score,
        scored.f_score,
        scored.m_score,
        scored.rfm_cell,
        scored.rfm_code,
        scored.segment,
        segments_of_scale.label_{{ language }} as segment_label,
        segments_of_scale.label_ru as segment_label_ru,
        segments_of_scale.label_en as segment_label_en,
        segments_of_scale.default_action,
        segments_of_scale.sort_order as segment_sort_order,
        {{ settings.scale }} as rfm_scale,
        '{{ settings.method }}' as rfm_method,
        {% if settings.window_months -%}
        {{ settings.window_months }}
        {%- else -%}
        cast(null as {{ dbt.type_int() }})
        {%- endif %} as rfm_window_months
    from scored
    left join segments_of_scale
        on scored.segment = segments_of_scale.segment

)

select * from final
