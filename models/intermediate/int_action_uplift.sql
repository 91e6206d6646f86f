{#-
  What the calls of each action are measured to add, for the call list to learn from: one row per
  action with recorded occurrences, over the occurrences whose outcome window is over
  (int_call_occurrences_scored): arm sizes, came-rates, the uplift and its 95% interval. An action is
  learned once both arms have var `call_learn_min_arm` (100) final occurrences; its uplift is about
  zero when the interval's upper end is below var `call_uplift_about_zero` (0.02, two points).
-#}
{%- set min_arm = var('call_learn_min_arm', 100) | int -%}
{%- set about_zero = var('call_uplift_about_zero', 0.02) | float -%}

with

scored as (

    select * from {{ ref('int_call_occurrences_scored') }}

),

per_action as (

    select
        action_code,
        sum(case when arm = 'call' then 1 else 0 end) as called,
        sum(case when arm = 'control' then 1 else 0 end) as control,
        sum(case when arm = 'call' then came else 0 end) as came_called,
        sum(case when arm = 'control' then came else 0 end) as came_control
    from scored
    where is_final
    group by action_code

),

rated as (

    select
        *,
        cast(came_called as {{ dbt.type_numeric() }}) / nullif(called, 0) as p_called,
        cast(came_control as {{ dbt.type_numeric() }}) / nullif(control, 0) as p_control
    from per_action

),

intervals as (

    select
        *,
        p_called - p_control as diff,
        {{ patient_base.uplift_half_width('p_called', 'called', 'p_control', 'control') }} as half_width
    from rated

),

final as (

    select
        action_code,
        cast(called as {{ dbt.type_int() }}) as called,
        cast(control as {{ dbt.type_int() }}) as control,
        cast(round(p_called, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}) as rate_called,
        cast(round(p_control, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}) as rate_control,
        cast(round(diff, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}) as uplift,
        cast(round(diff - half_width, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}) as uplift_low,
        cast(round(diff + half_width, 4) as {{ api.Column.numeric_type('numeric', 18, 4) }}) as uplift_high,
        called >= {{ min_arm }} and control >= {{ min_arm }} as is_learned,
        coalesce(
            called >= {{ min_arm }} and control >= {{ min_arm }} and diff + half_width < {{ about_zero }},
            false
        ) as is_uplift_about_zero
    from intervals

)

select * from final
