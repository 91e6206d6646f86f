{#-
  One row per person with at least one completed visit before `as_of_date`: recency, frequency and
  monetary as of that date, their scores and the segment.

  Recency counts days from the last completed visit to the as-of date (always all history). Frequency
  (completed visits) and monetary (net payments, refunds negative) count the last `rfm_window_months`
  months before the as-of date, or all history when the var is null. Scoring and segment mapping come
  from the macros in macros/rfm.sql, shared with int_persons_rfm_monthly.
-#}
{%- set window_start = patient_base.rfm_window_start('as_of.as_of_date') -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

payments as (

    select * from {{ ref('int_payments_resolved') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

-- read by rfm_scoring_ctes() when rfm_method = 'thresholds'
thresholds as (  -- noqa: ST03

    select * from {{ ref('rfm_thresholds') }}

),

segment_map as (

    {{ patient_base.rfm_segment_map() }}

),

visit_metrics as (

    select
        visits.person_id,
        min(visits.visit_date) as first_visit_date,
        max(visits.visit_date) as last_visit_date,
        {% if window_start -%}
        sum(case when visits.visit_date >= {{ window_start }} then 1 else 0 end) as frequency
        {%- else -%}
        count(*) as frequency
        {%- endif %}
    from visits
    cross join as_of
    where visits.is_completed
        and visits.person_id is not null
        and visits.visit_date < as_of.as_of_date
    group by visits.person_id

),

payment_metrics as (

    select
        payments.person_id,
        sum(payments.amount) as monetary
    from payments
    cross join as_of
    where payments.person_id is not null
        and payments.paid_date < as_of.as_of_date
        {% if window_start -%}
        and payments.paid_date >= {{ window_start }}
        {%- endif %}
    group by payments.person_id

),

metrics as (

    select
        visit_metrics.person_id,
        as_of.as_of_date,
        visit_metrics.first_visit_date,
        visit_metrics.last_visit_date,
        cast({{ dbt.datediff('visit_metrics.last_visit_date', 'as_of.as_of_date', 'day') }} as {{ dbt.type_int() }}) as recency_days,
        cast(visit_metrics.frequency as {{ dbt.type_int() }}) as frequency,
        {{ patient_base.cast_money('coalesce(payment_metrics.monetary, 0)') }} as monetary
    from visit_metrics
    cross join as_of
    left join payment_metrics
        on visit_metrics.person_id = payment_metrics.person_id

),

{{ patient_base.rfm_scoring_ctes('metrics', 'thresholds', 'segment_map') }},

final as (

    select
        person_id,
        as_of_date,
        first_visit_date,
        last_visit_date,
        recency_days,
        frequency,
        monetary,
        r_score,
        f_score,
        m_score,
        rfm_cell,
        rfm_code,
        segment
    from rfm_segmented

)

select * from final
