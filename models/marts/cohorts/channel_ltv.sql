{#-
  One row per acquisition channel: what a person the channel brought is worth 6, 12 and 24 months
  after their first completed visit, next to what the channel cost.

  LTV at N months = the average over the channel's persons whose first visit date + N months is on or
  before the as-of date (so their whole window is observed: no right-censoring) of their net payments
  dated before first visit date + N months (advances paid before the first visit included; a payment
  on the anniversary date belongs to the next window). Day-exact windows, unlike the calendar-month
  grid of cohort_revenue, so a person is in or out of a horizon by their own dates.
-#}
{%- set horizons = [6, 12, 24] -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

patients as (

    select * from {{ ref('dim_patients') }}

),

payments as (

    select * from {{ ref('fct_payments') }}

),

marketing_spend as (

    select * from {{ ref('stg_mis__marketing_spend') }}

),

channel_map as (

    select * from {{ ref('channel_map') }}

),

source_channels as (

    select * from {{ ref('int_source_channels_mapped') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

acquired as (

    select
        patients.person_id,
        patients.acquisition_channel as channel,
        cast(patients.first_visit_at as date) as first_visit_date,
        as_of.as_of_date
    from patients
    cross join as_of
    where patients.first_visit_at is not null

),

horizons as (

    select
        person_id,
        channel,
        {%- for months in horizons %}
        cast({{ dbt.dateadd('month', months, 'first_visit_date') }} as date) as horizon_{{ months }}m_date,
        {%- endfor %}
        as_of_date
    from acquired

),

observed as (

    select
        person_id,
        channel,
        {%- for months in horizons %}
        horizon_{{ months }}m_date,
        case when horizon_{{ months }}m_date <= as_of_date then 1 else 0 end as is_observed_{{ months }}m{% if not loop.last %},{% endif %}
        {%- endfor %}
    from horizons

),

person_ltv as (

    select
        observed.person_id,
        observed.channel,
        {%- for months in horizons %}
        observed.is_observed_{{ months }}m,
        sum(
            case when payments.paid_date < observed.horizon_{{ months }}m_date then payments.amount else 0 end
        ) as revenue_{{ months }}m{% if not loop.last %},{% endif %}
        {%- endfor %}
    from observed
    left join payments
        on observed.person_id = payments.person_id
    group by
        observed.person_id,
        observed.channel
        {%- for months in horizons %},
        observed.is_observed_{{ months }}m
        {%- endfor %}

),

channel_patients as (

    select
        channel,
        count(*) as patients,
        {%- for months in horizons %}
        sum(is_observed_{{ months }}m) as patients_{{ months }}m,
        sum(case when is_observed_{{ months }}m = 1 then revenue_{{ months }}m end) as observed_revenue_{{ months }}m{% if not loop.last %},{% endif %}
        {%- endfor %}
    from person_ltv
    group by channel

),

-- spend mapped to canonical channels by the same model dim_patients uses for a card's source
spend_mapped as (

    select
        coalesce(source_channels.channel, 'unknown') as channel,
        marketing_spend.amount
    from marketing_spend
    cross join as_of
    left join source_channels
        on marketing_spend.source_channel = source_channels.source_channel
    where marketing_spend.spend_month < as_of.as_of_date

),

channel_spend as (

    select
        channel,
        sum(amount) as spend
    from spend_mapped
    group by channel

),

channel_labels as (

    select
        channel,
        min(channel_label_en) as channel_label_en,
        min(channel_label_ru) as channel_label_ru
    from channel_map
    group by channel

),

channels as (

    select channel from channel_patients
    union
    select channel from channel_spend

),

joined as (

    select
        channels.channel,
        channel_labels.channel_label_en,
        channel_labels.channel_label_ru,
        coalesce(channel_patients.patients, 0) as patients,
        {%- for months in horizons %}
        coalesce(channel_patients.patients_{{ months }}m, 0) as patients_{{ months }}m,
        channel_patients.observed_revenue_{{ months }}m,
        {%- endfor %}
        coalesce(channel_spend.spend, 0) as spend
    from channels
    left join channel_patients
        on channels.channel = channel_patients.channel
    left join channel_spend
        on channels.channel = channel_spend.channel
    left join channel_labels
        on channels.channel = channel_labels.channel

),

measured as (

    select
        *,
        {%- for months in horizons %}
        {{ patient_base.ratio_or_null('observed_revenue_' ~ months ~ 'm', 'patients_' ~ months ~ 'm', 2) }} as ltv_{{ months }}m,
        {%- endfor %}
        {{ patient_base.cast_money("case when spend > 0 then " ~ patient_base.ratio_or_null('spend', 'patients', 2) ~ " end") }} as cac
    from joined

),

final as (

    select
        channel,
        coalesce(
            channel_label_en,
            case channel when 'other' then 'Other' when 'unknown' then 'Unknown' else channel end
        ) as channel_label_en,
        coalesce(
            channel_label_ru,
            case channel when 'other' then 'Прочие' when 'unknown' then 'Не указан' else channel end
        ) as channel_label_ru,
        cast(patients as {{ dbt.type_int() }}) as patients,
        {%- for months in horizons %}
        cast(patients_{{ months }}m as {{ dbt.type_int() }}) as patients_{{ months }}m,
        ltv_{{ months }}m,
        {%- endfor %}
        {{ patient_base.cast_money('spend') }} as spend,
        cac,
        {{ patient_base.ratio_or_null('ltv_12m', 'cac') }} as ltv_12m_to_cac
    from measured

)

select * from final
