{#-
  Next best offer, step 2: one row per person who has one. From the categories of the person's last
  completed visit (A), the category B with the highest probability in int_service_transitions that the
  person has not had in the last `transition_window_days` days, among transitions resting on at least
  `transition_min_from_visits` visits and with a probability of at least `offer_min_probability`.
  Ties go to the transition with more followed visits, then to the category code. A person whose last
  visit had no categorised service, or who had every likely B recently, has no row (the action's
  default offer text is used instead).
-#}
{%- set categories = patient_base.service_category_codes() -%}
{%- set window_days = var('transition_window_days', 180) | int -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

transition_visits as (

    select * from {{ ref('int_service_transition_visits') }}

),

transitions as (

    select * from {{ ref('int_service_transitions') }}

),

category_rules as (

    select * from {{ ref('recall_rules') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

numbered_visits as (

    select
        *,
        max(visit_number) over (partition by person_id) as last_visit_number
    from transition_visits

),

last_visits as (

    select *
    from numbered_visits
    where visit_number = last_visit_number
        and has_services

),

last_visit_categories as (
    {%- for category in categories %}

    select person_id, '{{ category }}' as from_category
    from last_visits
    where has_{{ category }}
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}

),

recent_categories as (

    select
        transition_visits.person_id,
        {%- for category in categories %}
        max(case when transition_visits.has_{{ category }} then 1 else 0 end) as had_{{ category }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from transition_visits
    cross join as_of
    where transition_visits.visit_date >= {{ patient_base.date_plus_days('as_of.as_of_date', -window_days) }}
    group by transition_visits.person_id

),

trusted_transitions as (

    select *
    from transitions
    where from_visits >= {{ var('transition_min_from_visits', 30) }}
        and probability >= {{ var('offer_min_probability', 0.15) }}

),

candidates as (

    select
        last_visit_categories.person_id,
        trusted_transitions.from_category,
        trusted_transitions.to_category,
        trusted_transitions.probability,
        trusted_transitions.followed_visits
    from last_visit_categories
    inner join trusted_transitions
        on last_visit_categories.from_category = trusted_transitions.from_category
    left join recent_categories
        on last_visit_categories.person_id = recent_categories.person_id
    where coalesce(
        case trusted_transitions.to_category
            {%- for category in categories %}
            when '{{ category }}' then recent_categories.had_{{ category }}
            {%- endfor %}
        end, 0) = 0

),

ranked as (

    select
        *,
        row_number() over (
            partition by person_id
            order by probability desc, followed_visits desc, to_category asc, from_category asc
        ) as offer_rank
    from candidates

),

final as (

    select
        ranked.person_id,
        ranked.from_category as offer_from_category,
        ranked.to_category as offer_category,
        ranked.probability as offer_probability,
        category_rules.label_en as offer_category_label_en,
        category_rules.label_ru as offer_category_label_ru,
        category_rules.offer_ru,
        category_rules.offer_en,
        from_rules.label_en as offer_from_label_en,
        from_rules.label_ru as offer_from_label_ru
    from ranked
    left join category_rules
        on ranked.to_category = category_rules.service_category
    left join category_rules as from_rules
        on ranked.from_category = from_rules.service_category
    where ranked.offer_rank = 1

)

select * from final
