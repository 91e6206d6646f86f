{#-
  One row per action code of seed action_rules: the conversion rate the expected value uses.

  Assumed (the seed's assumed_conversion_rate) until real outcomes exist; observed once at least
  `observed_rate_min_patients` persons were called for the action with a complete outcome window:
  persons who came (a completed visit attributed to one of their calls for the action, see
  int_calls_attributed) / persons called for it.
-#}
with

action_rules as (

    select * from {{ ref('action_rules') }}

),

calls as (

    select * from {{ ref('int_calls_attributed') }}

),

observed as (

    select
        action_code,
        count(distinct person_id) as patients_called,
        count(distinct case when has_visit_after then person_id end) as patients_came
    from calls
    where person_id is not null
        and action_code is not null
        and is_outcome_window_complete
    group by action_code

),

final as (

    select
        action_rules.action_code,
        cast(action_rules.assumed_conversion_rate as {{ api.Column.numeric_type('numeric', 18, 4) }}) as assumed_conversion_rate,
        coalesce(observed.patients_called, 0) as patients_called,
        coalesce(observed.patients_came, 0) as patients_came,
        {{ patient_base.ratio_or_null('observed.patients_came', 'observed.patients_called') }} as observed_conversion_rate,
        case
            when coalesce(observed.patients_called, 0) >= {{ var('observed_rate_min_patients', 100) }}
                then 'observed'
            else 'assumed'
        end as conversion_rate_source,
        case
            when coalesce(observed.patients_called, 0) >= {{ var('observed_rate_min_patients', 100) }}
                then {{ patient_base.ratio_or_null('observed.patients_came', 'observed.patients_called') }}
            else cast(action_rules.assumed_conversion_rate as {{ api.Column.numeric_type('numeric', 18, 4) }})
        end as conversion_rate
    from action_rules
    left join observed
        on action_rules.action_code = observed.action_code

)

select * from final
