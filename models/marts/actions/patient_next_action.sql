{%- set language = patient_base.text_language() -%}
{%- set deceased_en = "'Deceased: do not contact'" -%}
{%- set deceased_ru = "'Пациент умер: не связываться'" -%}

with

matched as (

    select * from {{ ref('int_persons_action_matched') }}

),

action_rules as (

    select * from {{ ref('action_rules') }}

),

no_action as (

    select
        label_en,
        label_ru,
        cast(priority as {{ dbt.type_int() }}) as priority
    from action_rules
    where action_code = 'none'

),

final as (

    -- a deceased person never gets an action, whatever the rules matched
    select
        matched.person_id,
        case when matched.is_deceased then 'none' else matched.action_code end as action_code,
        case
            when matched.is_deceased then no_action.label_{{ language }} else matched.action_label
        end as action_label,
        case when matched.is_deceased then no_action.label_en else matched.action_label_en end as action_label_en,
        case when matched.is_deceased then no_action.label_ru else matched.action_label_ru end as action_label_ru,
        case when matched.is_deceased then {{ deceased_en if language == 'en' else deceased_ru }} else matched.reason end as reason,
        case when matched.is_deceased then {{ deceased_en }} else matched.reason_en end as reason_en,
        case when matched.is_deceased then {{ deceased_ru }} else matched.reason_ru end as reason_ru,
        case when matched.is_deceased then 'none' else matched.channel end as channel,
        case when matched.is_deceased then no_action.priority else matched.priority end as priority,
        case when matched.is_deceased then null else matched.due_date end as due_date,
        case when matched.is_deceased then null else matched.trigger_date end as trigger_date,
        case when matched.is_deceased then null else matched.offer end as offer,
        case when matched.is_deceased then null else matched.offer_en end as offer_en,
        case when matched.is_deceased then null else matched.offer_ru end as offer_ru,
        case when matched.is_deceased then null else matched.offer_category end as offer_category,
        case when matched.is_deceased then null else matched.offer_probability end as offer_probability,
        case
            when matched.is_deceased then {{ patient_base.cast_money(0) }} else matched.expected_revenue
        end as expected_revenue,
        case when matched.is_deceased then null else matched.conversion_rate end as conversion_rate,
        case when matched.is_deceased then null else matched.conversion_rate_source end as conversion_rate_source,
        case
            when matched.is_deceased then {{ patient_base.cast_money(0) }} else matched.expected_value
        end as expected_value,
        matched.segment,
        matched.lifecycle_status,
        matched.last_visit_date,
        matched.last_specialty,
        matched.last_doctor_id,
        matched.next_scheduled_at,
        matched.last_call_at,
        matched.can_call,
        matched.can_message,
        matched.as_of_date
    from matched
    left join no_action
        on 1 = 1

)

select * from final
