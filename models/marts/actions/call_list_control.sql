{#-
  The control group of the day's list: one row per person x action occurrence that was eligible, drew
  the control arm (int_call_list_ranked) and ranked well enough to have made the list. They are not
  called; the uplift compares them with the persons who were.
-#}
with

ranked as (

    select * from {{ ref('int_call_list_ranked') }}

),

final as (

    select
        person_id,
        action_code,
        trigger_date,
        list_date,
        arm,
        person_rank,
        priority,
        expected_value,
        arm_draw,
        control_share,
        as_of_date
    from ranked
    where would_have_been_listed

)

select * from final
