{#-
  One row per completed visit of a known person (before the as-of date) with the service categories
  it had and, for every category, the date of the person's next completed visit with that category.

  This is what makes service_transitions linear in visits: instead of joining each visit to the
  person's later visits, one window per category ("the smallest date among the following rows") reads
  the next occurrence. It is written as a running minimum in reverse order (rows before the current one,
  latest visit first), the same frame, which engines compute in one pass instead of a frame tree. Rows are ordered by visit_number (visit time, then visit id), so a second
  visit later the same day follows the first; a visit's own categories never follow itself.
  The category list is compile-time (service_category_codes()), the staging vocabulary.
-#}
{%- set categories = patient_base.service_category_codes() -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

services as (

    select * from {{ ref('stg_mis__visit_services') }}

),

completed_visits as (

    select
        visit_id,
        person_id,
        visit_date,
        visit_number
    from visits
    where is_completed
        and person_id is not null

),

visit_category_flags as (

    select
        visit_id,
        {%- for category in categories %}
        max(case when service_category = '{{ category }}' then 1 else 0 end) as has_{{ category }}{% if not loop.last %},{% endif %}
        {%- endfor %}
    from services
    group by visit_id

),

flagged as (

    select
        completed_visits.visit_id,
        completed_visits.person_id,
        completed_visits.visit_date,
        completed_visits.visit_number,
        {%- for category in categories %}
        coalesce(visit_category_flags.has_{{ category }}, 0) = 1 as has_{{ category }},
        {%- endfor %}
        visit_category_flags.visit_id is not null as has_services
    from completed_visits
    left join visit_category_flags
        on completed_visits.visit_id = visit_category_flags.visit_id

),

final as (

    select
        visit_id,
        person_id,
        visit_date,
        visit_number,
        has_services,
        {%- for category in categories %}
        has_{{ category }},
        {%- endfor %}
        {%- for category in categories %}
        min(case when has_{{ category }} then visit_date end) over (
            partition by person_id
            order by visit_number desc
            rows between unbounded preceding and 1 preceding
        ) as next_{{ category }}_date{% if not loop.last %},{% endif %}
        {%- endfor %}
    from flagged

)

select * from final
