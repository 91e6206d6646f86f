{#-
  The interface `patientbase export call-list` reads: one row per person whose next best action asks
  for a call, eligible or not, with why not. Ranking, capacity, family grouping by phone and operator
  assignment are the export's job, not this model's.
-#}
{%- set recent_call_days = var('recent_call_days', 14) | int -%}
{%- set refusal_days = var('refusal_days', 90) | int -%}
{%- set max_attempts = var('max_attempts_on_action', 3) | int -%}
{%- set attempts_window_days = var('attempts_window_days', 90) | int -%}

with

matched as (

    select * from {{ ref('int_persons_action_matched') }}

),

patients as (

    select * from {{ ref('dim_patients') }}

),

call_history as (

    select * from {{ ref('int_persons_call_history') }}

),

calls as (

    select * from {{ ref('int_calls_attributed') }}

),

call_actions as (

    -- actions meant for a call, including persons who cannot be called (they get an exclusion)
    select
        *,
        case
            when trigger_date > {{ patient_base.date_plus_days('as_of_date', -attempts_window_days) }}
                then trigger_date
            else {{ patient_base.date_plus_days('as_of_date', -attempts_window_days) }}
        end as attempts_window_start
    from matched
    where action_code <> 'none'
        and channel_preference = 'call'

),

attempts as (

    select
        call_actions.person_id,
        count(*) as attempts_on_action
    from call_actions
    inner join calls
        on call_actions.person_id = calls.person_id
        and call_actions.action_code = calls.action_code
        and calls.called_date >= call_actions.attempts_window_start
    group by call_actions.person_id

),

joined as (

    select
        call_actions.*,
        patients.patient_ids,
        patients.display_name,
        patients.phone_e164,
        call_history.last_refusal_at,
        cast(call_history.last_call_at as date) as last_call_date,
        call_history.last_refusal_date,
        coalesce(attempts.attempts_on_action, 0) as attempts_on_action
    from call_actions
    inner join patients
        on call_actions.person_id = patients.person_id
    left join call_history
        on call_actions.person_id = call_history.person_id
    left join attempts
        on call_actions.person_id = attempts.person_id

),

excluded as (

    select
        *,
        case
            when not has_valid_phone then 'no_valid_phone'
            when do_not_call then 'calls_not_allowed'
            when is_deceased then 'deceased'
            when has_booked_visit and not is_action_about_booking then 'visit_booked'
            when last_call_date >= {{ patient_base.date_plus_days('as_of_date', -recent_call_days) }}
                then 'called_recently'
            when last_refusal_date >= {{ patient_base.date_plus_days('as_of_date', -refusal_days) }}
                then 'refused_recently'
            when attempts_on_action > {{ max_attempts }} then 'too_many_attempts'
        end as exclusion_reason,
        -- the same without the time-based reasons, for a list made for a later date
        case
            when not has_valid_phone then 'no_valid_phone'
            when do_not_call then 'calls_not_allowed'
            when is_deceased then 'deceased'
            when has_booked_visit and not is_action_about_booking then 'visit_booked'
            when attempts_on_action > {{ max_attempts }} then 'too_many_attempts'
        end as base_exclusion_reason
    from joined

),

final as (

    select
        person_id,
        patient_ids,
        display_name,
        phone_e164,
        action_code,
        action_label,
        action_label_en,
        action_label_ru,
        reason,
        reason_en,
        reason_ru,
        reason_template_en,
        reason_template_ru,
        reason_counted_from,
        offer,
        offer_en,
        offer_ru,
        offer_category,
        priority,
        expected_value,
        expected_revenue,
        conversion_rate,
        due_date,
        trigger_date,
        segment,
        lifecycle_status,
        last_visit_date,
        last_doctor_id,
        last_specialty,
        next_scheduled_at,
        last_call_at,
        last_refusal_at,
        cast(attempts_on_action as {{ dbt.type_int() }}) as attempts_on_action,
        attempts_window_start,
        last_operator_id,
        is_action_about_booking,
        channel,
        exclusion_reason,
        base_exclusion_reason,
        {{ patient_base.date_plus_days('last_call_date', recent_call_days) }} as called_recently_until,
        {{ patient_base.date_plus_days('last_refusal_date', refusal_days) }} as refused_recently_until,
        cast({{ recent_call_days }} as {{ dbt.type_int() }}) as recent_call_days,
        cast({{ refusal_days }} as {{ dbt.type_int() }}) as refusal_days,
        cast({{ max_attempts }} as {{ dbt.type_int() }}) as max_attempts_on_action,
        as_of_date
    from excluded

)

select * from final
