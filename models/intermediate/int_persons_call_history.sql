{#-
  One row per person with at least one call up to and including the as-of date: when they were last called, by
  whom, with what result, and when they last refused. Feeds the action rules (no_next_step: "no call
  since the visit"; vip_curator: "no contact") and the call list's exclusions.
-#}
with

calls as (

    select * from {{ ref('int_calls_attributed') }}

),

known_calls as (

    select
        *,
        row_number() over (
            partition by person_id order by called_at desc, call_id desc
        ) as recency_rank
    from calls
    where person_id is not null

),

per_person as (

    select
        person_id,
        count(*) as calls,
        max(called_at) as last_call_at,
        max(case when is_refused then called_at end) as last_refusal_at,
        max(case when is_reached then called_at end) as last_reached_call_at
    from known_calls
    group by person_id

),

last_call as (

    select
        person_id,
        operator_id as last_operator_id,
        action_code as last_call_action_code,
        result as last_call_result
    from known_calls
    where recency_rank = 1

),

final as (

    select
        per_person.person_id,
        per_person.calls,
        per_person.last_call_at,
        cast(per_person.last_call_at as date) as last_call_date,
        last_call.last_operator_id,
        last_call.last_call_action_code,
        last_call.last_call_result,
        per_person.last_reached_call_at,
        per_person.last_refusal_at,
        cast(per_person.last_refusal_at as date) as last_refusal_date
    from per_person
    inner join last_call
        on per_person.person_id = last_call.person_id

)

select * from final
