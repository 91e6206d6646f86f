{#-
  One row per person x recall category (seed recall_rules rows with an interval) the person has had a
  completed visit with: when that was, when the recall falls, and whether the recall is open as of the
  as-of date.

  Open = the recall date (last visit with the category + interval_days) minus lead_days is on or before
  the as-of date (the interval has elapsed, or falls within its lead days), and the recall is not
  overdue by more than max_overdue_days (after that the person is a reactivation case, not a recall;
  empty = no limit). Whether a visit is booked is the action rule's business (recall_due needs none).
  Of a person's open recalls the earliest recall date is the one acted on (`is_first_open_recall`).
  The visits' categories come from int_service_transition_visits (computed there once for all uses).
-#}
{%- set categories = patient_base.service_category_codes() -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

transition_visits as (

    select * from {{ ref('int_service_transition_visits') }}

),

recall_rules as (

    select * from {{ ref('recall_rules') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

person_category_dates as (

    -- per person and category: the latest completed visit with it (the visits' category flags are
    -- computed once, in int_service_transition_visits)
    select
        person_id,
        {%- for category in categories %}
        max(case when has_{{ category }} then visit_date end) as last_{{ category }}_date,
        sum(case when has_{{ category }} then 1 else 0 end) as {{ category }}_visits{% if not loop.last %},{% endif %}
        {%- endfor %}
    from transition_visits
    where has_services
    group by person_id

),

category_visits as (
    {%- for category in categories %}

    select
        person_id,
        '{{ category }}' as service_category,
        last_{{ category }}_date as last_category_visit_date,
        {{ category }}_visits as category_visits
    from person_category_dates
    where last_{{ category }}_date is not null
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

recall_dates as (

    select
        category_visits.person_id,
        category_visits.service_category,
        recall_rules.label_en as category_label_en,
        recall_rules.label_ru as category_label_ru,
        recall_rules.offer_ru as recall_offer_ru,
        recall_rules.offer_en as recall_offer_en,
        cast(recall_rules.interval_days as {{ dbt.type_int() }}) as interval_days,
        cast(coalesce(recall_rules.lead_days, 0) as {{ dbt.type_int() }}) as lead_days,
        cast(recall_rules.max_overdue_days as {{ dbt.type_int() }}) as max_overdue_days,
        category_visits.category_visits,
        category_visits.last_category_visit_date,
        {{ patient_base.date_plus_days('category_visits.last_category_visit_date', 'recall_rules.interval_days') }} as recall_date,
        as_of.as_of_date
    from category_visits
    cross join as_of
    inner join recall_rules
        on category_visits.service_category = recall_rules.service_category
    where recall_rules.interval_days is not null

),

measured as (

    select
        *,
        {{ patient_base.date_plus_days('recall_date', '-lead_days') }} as recall_window_opens_on,
        {{ patient_base.days_between('last_category_visit_date', 'as_of_date') }} as days_since_category_visit,
        {{ patient_base.days_between('recall_date', 'as_of_date') }} as days_overdue
    from recall_dates

),

flagged as (

    select
        *,
        recall_window_opens_on <= as_of_date
            and (max_overdue_days is null or days_overdue <= max_overdue_days) as is_open_recall
    from measured

),

ranked as (

    select
        *,
        case
            when is_open_recall then
                row_number() over (
                    partition by person_id, is_open_recall
                    order by recall_date, service_category
                )
        end as open_recall_rank
    from flagged

),

final as (

    select
        person_id,
        service_category,
        category_label_en,
        category_label_ru,
        recall_offer_ru,
        recall_offer_en,
        interval_days,
        lead_days,
        max_overdue_days,
        category_visits,
        last_category_visit_date,
        days_since_category_visit,
        recall_date,
        recall_window_opens_on,
        days_overdue,
        is_open_recall,
        coalesce(open_recall_rank = 1, false) as is_first_open_recall,
        as_of_date
    from ranked

)

select * from final
