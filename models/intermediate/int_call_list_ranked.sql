{#-
  Who the day's call list is drawn from, and who makes it: one row per call-list candidate eligible
  on the list date (the lasting exclusions from call_list_candidates, the two expiring ones re-applied
  for the list date), with

  - its arm: a stable draw from the action occurrence (person, action, trigger date; macro
    stable_uniform) below the action's control share (macro call_control_share) is 'control', the
    rest 'call'. The same occurrence gets the same arm on every replay and re-export; an occurrence
    already recorded with a list (stg_mis__call_assignments) keeps its recorded arm, so a changed share
    never moves a patient between arms mid-occurrence.
  - its expected value, learned: once the action's uplift is measured on enough final occurrences
    (int_action_uplift) and the clinic keeps a control group for it, expected revenue x measured uplift
    (0 when the uplift is at or below 0) replaces the assumed-conversion value (kept as
    assumed_expected_value); with a control share of 0 the list works as before.
  - its person_rank over all eligible candidates, both arms: within-quota candidates first (an action
    named in var `call_list_quotas` keeps at most its slots for the call arm; the call-arm candidates
    beyond them go after every within-quota one, so they fill leftover capacity), then actions whose
    uplift is measured at about zero after all others, then priority, expected value (desc), person id.
  - for the call arm: the rank of its phone (a family sharing a phone ranks as its best member) and,
    when the phone fits the capacity, its list_rank (is_listed).
  - for the control arm: would_have_been_listed, true when it ranks better than the last phone that
    made the list (every control when the list is not full): the control group the uplift compares.
-#}
{#- equal expected values (a clinic without payment data has none): the likelier to come, then the more
    recent visitor, before the person id -#}
{%- set tie_break = "coalesce(conversion_rate, 0) desc, coalesce(last_visit_date, cast('1900-01-01' as date)) desc" -%}
{%- set capacity = patient_base.daily_call_capacity() -%}
{%- set list_date = var('call_list_date', none) -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

candidates_all as (

    select * from {{ ref('call_list_candidates') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

recorded as (

    select * from {{ ref('stg_mis__call_assignments') }}

),

action_uplift as (

    select * from {{ ref('int_action_uplift') }}

),

settings as (

    select
        as_of_date,
        {% if list_date -%}
        cast('{{ list_date }}' as date)
        {%- else -%}
        as_of_date
        {%- endif %} as list_date
    from as_of

),

eligible as (

    select
        candidates_all.*,
        settings.list_date
    from candidates_all
    cross join settings
    where candidates_all.base_exclusion_reason is null
        and candidates_all.phone_e164 is not null
        and (
            candidates_all.called_recently_until is null
            or settings.list_date > candidates_all.called_recently_until
        )
        and (
            candidates_all.refused_recently_until is null
            or settings.list_date > candidates_all.refused_recently_until
        )

),

drawn as (

    select
        *,
        {{ patient_base.stable_uniform(['person_id', 'action_code', 'trigger_date']) }} as arm_draw,
        {{ patient_base.call_control_share('action_code') }} as control_share,
        {{ patient_base.call_quota_slots('action_code') }} as quota_slots
    from eligible

),

-- the list learns: an action measured on enough controls is worth its measured uplift x the revenue
-- at stake, not its assumed conversion; only while the clinic keeps a control group for it
valued as (

    select
        drawn.*,
        drawn.expected_value as assumed_expected_value,
        action_uplift.uplift as measured_uplift,
        coalesce(action_uplift.is_learned and drawn.control_share > 0, false) as is_value_learned,
        coalesce(action_uplift.is_uplift_about_zero and drawn.control_share > 0, false) as is_uplift_about_zero
    from drawn
    left join action_uplift
        on drawn.action_code = action_uplift.action_code

),

revalued as (

    select
        *,
        case
            when is_value_learned then {{ patient_base.cast_money(
                'coalesce(expected_revenue, 0) * case when measured_uplift > 0 then measured_uplift else 0 end'
            ) }}
            else assumed_expected_value
        end as learned_expected_value
    from valued

),

-- an occurrence already on a recorded list keeps its arm (history wins over a changed share)
armed as (

    select
        drawn.*,
        coalesce(
            recorded.arm,
            case when drawn.arm_draw < drawn.control_share then 'control' else 'call' end
        ) as arm
    from revalued as drawn
    left join recorded
        on drawn.person_id = recorded.patient_id
        and drawn.action_code = recorded.action_code
        and (
            drawn.trigger_date = recorded.trigger_date
            or (drawn.trigger_date is null and recorded.trigger_date is null)
        )

),

-- call-arm candidates of the same action ranked before this one (a control counts as if it were called)
quota_counted as (

    select
        *,
        sum(case when arm = 'call' then 1 else 0 end) over (
            partition by action_code
            order by priority, learned_expected_value desc, {{ tie_break }}, person_id
            rows between unbounded preceding and current row
        ) - case when arm = 'call' then 1 else 0 end as call_arm_before
    from armed

),

ranked as (

    select
        *,
        quota_slots is null or call_arm_before < quota_slots as is_within_quota,
        row_number() over (
            order by
                case when quota_slots is null or call_arm_before < quota_slots then 0 else 1 end,
                case when is_uplift_about_zero then 1 else 0 end,
                priority,
                learned_expected_value desc,
                {{ tie_break }},
                person_id
        ) as person_rank
    from quota_counted

),

phone_ranks as (

    select
        phone_e164,
        min(person_rank) as phone_rank
    from ranked
    where arm = 'call'
    group by phone_e164

),

listed_phones as (

    select
        phone_e164,
        phone_rank,
        row_number() over (order by phone_rank) as list_rank
    from phone_ranks

),

capped_phones as (

    select *
    from listed_phones
    where list_rank <= {{ capacity }}

),

-- the last phone that made a full list; null when the list has room left
cutoff as (

    select
        case when count(*) >= {{ capacity }} then max(phone_rank) end as last_listed_phone_rank
    from capped_phones

),

final as (

    select
        ranked.person_id,
        ranked.patient_ids,
        ranked.display_name,
        ranked.phone_e164,
        ranked.action_code,
        ranked.action_label_en,
        ranked.action_label_ru,
        ranked.reason_template_en,
        ranked.reason_template_ru,
        ranked.reason_counted_from,
        ranked.offer_en,
        ranked.offer_ru,
        ranked.priority,
        ranked.learned_expected_value as expected_value,
        ranked.assumed_expected_value,
        ranked.measured_uplift,
        ranked.is_value_learned,
        ranked.is_uplift_about_zero,
        ranked.trigger_date,
        ranked.last_visit_date,
        ranked.last_doctor_id,
        ranked.last_specialty,
        ranked.last_call_at,
        ranked.last_operator_id,
        cast(ranked.arm_draw as {{ dbt.type_numeric() }}) as arm_draw,
        ranked.control_share,
        ranked.arm,
        cast(ranked.quota_slots as {{ dbt.type_int() }}) as quota_slots,
        ranked.is_within_quota,
        cast(ranked.person_rank as {{ dbt.type_int() }}) as person_rank,
        cast(listed.phone_rank as {{ dbt.type_int() }}) as phone_rank,
        cast(listed.list_rank as {{ dbt.type_int() }}) as list_rank,
        ranked.arm = 'call' and listed.list_rank is not null as is_listed,
        ranked.arm = 'control' and (
            cutoff.last_listed_phone_rank is null or ranked.person_rank < cutoff.last_listed_phone_rank
        ) as would_have_been_listed,
        ranked.list_date,
        ranked.as_of_date
    from ranked
    cross join cutoff
    left join capped_phones as listed
        on ranked.phone_e164 = listed.phone_e164
        and ranked.arm = 'call'

)

select * from final
