{#-
  Next best offer, step 1: how often a visit with service category A is followed by a visit with
  category B. Counted over visits whose whole window lies before the as-of date (no right-censoring),
  in two small steps: visits are first grouped by their pattern (the categories they had x the
  categories that followed within the window; a few hundred patterns at most), then the patterns are
  unpivoted to category pairs. No self-join of visits.
-#}
{%- set categories = patient_base.service_category_codes() -%}
{%- set window_days = var('transition_window_days', 180) | int -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

transition_visits as (

    select * from {{ ref('int_service_transition_visits') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

category_rules as (

    select * from {{ ref('recall_rules') }}

),

observed_visits as (

    -- visits whose window [visit, visit + window] ends before the as-of date
    select transition_visits.*
    from transition_visits
    cross join as_of
    where {{ patient_base.date_plus_days('transition_visits.visit_date', window_days) }} < as_of.as_of_date

),

visit_patterns as (

    select
        {%- for category in categories %}
        has_{{ category }},
        {%- endfor %}
        {%- for category in categories %}
        coalesce(
            next_{{ category }}_date <= {{ patient_base.date_plus_days('visit_date', window_days) }}, false
        ) as is_followed_by_{{ category }},
        {%- endfor %}
        count(*) as visits
    from observed_visits
    group by
        {%- for category in categories %}
        has_{{ category }},
        {%- endfor %}
        {%- for category in categories %}
        coalesce(
            next_{{ category }}_date <= {{ patient_base.date_plus_days('visit_date', window_days) }}, false
        ){% if not loop.last %},{% endif %}
        {%- endfor %}

),

categories_seen as (

    -- categories any completed visit had: the possible "to" side
    select
        {%- for category in categories %}
        max(case when has_{{ category }} then 1 else 0 end) as seen_{{ category }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from transition_visits

),

category_list as (

    -- the vocabulary as rows: the pairs below are this list joined to itself (81 rows), so each CTE
    -- above is read once (a union of one select per pair made Spark recompute them per branch)
    {%- for category in categories %}
    select '{{ category }}' as category
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

category_pairs as (

    select
        from_list.category as from_category,
        to_list.category as to_category,
        max(
            case to_list.category
                {%- for category in categories %}
                when '{{ category }}' then categories_seen.seen_{{ category }}
                {%- endfor %}
            end
        ) as is_to_category_seen,
        coalesce(sum(
            case
                {%- for category in categories %}
                when from_list.category = '{{ category }}' and visit_patterns.has_{{ category }}
                    then visit_patterns.visits
                {%- endfor %}
                else 0
            end
        ), 0) as from_visits,
        coalesce(sum(
            case
                {%- for from_category in categories %}
                when from_list.category = '{{ from_category }}' and visit_patterns.has_{{ from_category }} then
                    case to_list.category
                        {%- for to_category in categories %}
                        when '{{ to_category }}' then
                            case when visit_patterns.is_followed_by_{{ to_category }} then visit_patterns.visits else 0 end
                        {%- endfor %}
                    end
                {%- endfor %}
                else 0
            end
        ), 0) as followed_visits
    from category_list as from_list
    cross join category_list as to_list
    cross join categories_seen
    left join visit_patterns
        on 1 = 1
    group by
        from_list.category,
        to_list.category

),

final as (

    select
        category_pairs.from_category,
        category_pairs.to_category,
        from_rules.label_en as from_label_en,
        from_rules.label_ru as from_label_ru,
        to_rules.label_en as to_label_en,
        to_rules.label_ru as to_label_ru,
        category_pairs.from_category = category_pairs.to_category as is_same_category,
        cast({{ window_days }} as {{ dbt.type_int() }}) as window_days,
        cast(category_pairs.from_visits as {{ dbt.type_bigint() }}) as from_visits,
        cast(category_pairs.followed_visits as {{ dbt.type_bigint() }}) as followed_visits,
        {{ patient_base.ratio_or_null('category_pairs.followed_visits', 'category_pairs.from_visits') }} as probability,
        as_of.as_of_date
    from category_pairs
    cross join as_of
    left join category_rules as from_rules
        on category_pairs.from_category = from_rules.service_category
    left join category_rules as to_rules
        on category_pairs.to_category = to_rules.service_category
    where category_pairs.from_visits > 0
        and category_pairs.is_to_category_seen = 1

)

select * from final
