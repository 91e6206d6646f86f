{#-
  One row per person: the next best action the rules give from the person's facts, before the
  deceased override of patient_next_action (so the call list can say *why* a deceased person is not
  called). First match wins, in this order (docs/decisions.md, "Next best action"):

    plan_follow_up > no_show_recovery > recall_due > no_next_step > welcome_second_visit >
    churn_prevention > vip_curator > reactivation > cross_sell > none

  Each action also gets its dates, a readable reason with the facts, the offer (next best offer where
  the action uses one), the expected value and the channel. Texts exist in English and Russian
  (`_en`, `_ru`); the plain columns are in var `language`. A reason is a template whose one day count
  is `{days}` (counted from reason_counted_from), worded here as of the as-of date and by the call
  list as of its list date.
  `priority` comes from seed action_rules and only ranks the call list; it never changes which rule
  matches.

  With predictions for the as-of date (patientbase predict, int_persons_predicted): the conversion is
  the person's p_return unless enough real outcomes give an observed rate (var
  `action_conversion_rates: seed` keeps the seed's assumed rates instead); churn prevention also fires
  for a watched segment whose p_return fell below `churn_p_return_below`; a 'none' person likely to
  come back anyway says so in the reason. Without predictions the rules are as before.
-#}
{%- set plan_days = var('plan_follow_up_days', 14) | int -%}
{%- set declined_plan_days = var('declined_plan_days', 180) | int -%}
{%- set no_show_days = var('no_show_recovery_days', 90) | int -%}
{%- set no_next_step_days = var('no_next_step_days', 7) | int -%}
{%- set new_days = var('new_days', 90) | int -%}
{%- set sleeping_days = var('sleeping_days', 180) | int -%}
{%- set lost_days = var('lost_days', 365) | int -%}
{%- set vip_contact_days = var('vip_contact_days', 30) | int -%}
{%- set window_days = var('transition_window_days', 180) | int -%}
{%- set top_segments = patient_base.quoted_list(var('churn_prevention_segments', ['champions', 'loyal'])) -%}
{%- set vip_segments = patient_base.quoted_list(var('vip_segments', ['champions'])) -%}
{%- set text = patient_base.as_text -%}
{%- set amount = patient_base.format_amount -%}
{%- set language = patient_base.text_language() -%}
{%- set use_predicted_rates = var('action_conversion_rates', 'predicted') == 'predicted' -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

facts as (

    select * from {{ ref('int_persons_action_facts') }}

),

action_rules as (

    select * from {{ ref('action_rules') }}

),

conversion_rates as (

    select * from {{ ref('int_action_conversion_rates') }}

),

predicted as (

    select * from {{ ref('int_persons_predicted') }}

),

specialty_labels as (

    select
        lower(trim(specialty)) as specialty_code,
        label_en,
        label_ru
    from {{ ref('specialty_labels') }}

),

measured as (

    select
        facts.*,
        {{ patient_base.days_between('facts.last_contact_date', 'facts.as_of_date') }} as days_since_contact,
        predicted.p_return
    from facts
    left join predicted
        on facts.person_id = predicted.person_id

),

matched as (

    select
        *,
        case
            when latest_plan_status in ('proposed', 'declined')
                and plan_age_days >= {{ plan_days }}
                and plan_age_days <= {{ declined_plan_days }}
                then 'plan_follow_up'
            when last_no_show_date is not null
                and days_since_no_show <= {{ no_show_days }}
                and not has_booked_visit
                and (last_visit_date is null or last_visit_date < last_no_show_date)
                then 'no_show_recovery'
            when recall_category is not null
                and not has_booked_visit
                then 'recall_due'
            when days_since_last_visit <= {{ no_next_step_days }}
                and not has_booked_visit
                and (last_call_date is null or last_call_date < last_visit_date)
                then 'no_next_step'
            when completed_visits = 1
                and days_since_first_visit <= {{ new_days }}
                then 'welcome_second_visit'
            when segment in ({{ top_segments }})
                and return_intervals > 0
                and (days_since_last_visit > expected_return_days
                    or p_return < {{ var('churn_p_return_below', 0.3) }})
                and days_since_last_visit <= {{ sleeping_days }}
                then 'churn_prevention'
            when segment in ({{ vip_segments }})
                and days_since_contact > {{ vip_contact_days }}
                then 'vip_curator'
            when completed_visits > 0
                and days_since_last_visit > {{ sleeping_days }}
                and total_revenue > {{ var('reactivation_min_revenue', 0) }}
                then 'reactivation'
            when completed_visits > 0
                and days_since_last_visit <= {{ sleeping_days }}
                and specialties_used = 1
                and offer_category is not null
                then 'cross_sell'
            else 'none'
        end as action_code
    from measured

),

dated as (

    select
        matched.*,
        case matched.action_code
            when 'plan_follow_up' then {{ patient_base.date_plus_days('matched.latest_plan_date', plan_days) }}
            when 'no_show_recovery' then matched.last_no_show_date
            when 'recall_due' then matched.recall_date
            when 'no_next_step' then matched.last_visit_date
            when 'welcome_second_visit' then matched.first_visit_date
            when 'churn_prevention' then {{ patient_base.date_plus_days('matched.last_visit_date', 'matched.expected_return_days') }}
            when 'vip_curator' then {{ patient_base.date_plus_days('matched.last_contact_date', vip_contact_days) }}
            when 'reactivation' then {{ patient_base.date_plus_days('matched.last_visit_date', sleeping_days) }}
            when 'cross_sell' then matched.last_visit_date
        end as due_date,
        -- specialties named by the seed the clinic edits; a code missing there as the MIS spells it
        coalesce(last_labels.label_en, matched.last_specialty, 'no specialty') as specialty_en,
        coalesce(last_labels.label_ru, matched.last_specialty, 'без направления') as specialty_ru,
        coalesce(plan_labels.label_en, matched.latest_plan_specialty, 'no specialty') as plan_specialty_en,
        coalesce(plan_labels.label_ru, matched.latest_plan_specialty, 'без направления') as plan_specialty_ru,
        coalesce(no_show_labels.label_en, matched.last_no_show_specialty, 'no specialty') as no_show_specialty_en,
        coalesce(no_show_labels.label_ru, matched.last_no_show_specialty, 'без направления') as no_show_specialty_ru
    from matched
    left join specialty_labels as last_labels
        on lower(trim(matched.last_specialty)) = last_labels.specialty_code
    left join specialty_labels as plan_labels
        on lower(trim(matched.latest_plan_specialty)) = plan_labels.specialty_code
    left join specialty_labels as no_show_labels
        on lower(trim(matched.last_no_show_specialty)) = no_show_labels.specialty_code

),

-- each reason is a template whose one day count is `{days}`, counted from reason_counted_from: the
-- next best action says it as of the as-of date, the call list as of its list date (macro reason_on)
explained as (

    select
        *,
        case
            when action_code = 'recall_due' then recall_window_opens_on
            else due_date
        end as trigger_date,
        case action_code
            when 'plan_follow_up' then latest_plan_date
            when 'no_show_recovery' then last_no_show_date
            when 'recall_due' then recall_last_visit_date
            when 'no_next_step' then last_visit_date
            when 'welcome_second_visit' then first_visit_date
            when 'churn_prevention' then last_visit_date
            when 'vip_curator' then last_contact_date
            when 'reactivation' then last_visit_date
        end as reason_counted_from,
        case action_code
            when 'plan_follow_up' then {{ dbt.concat([
                "'Treatment plan '", "coalesce(latest_plan_id, '')", "' for '", amount('latest_plan_amount'),
                "' ('", "plan_specialty_en", "'), made on '", text('latest_plan_date'),
                "case when latest_plan_status = 'declined' then ': declined by the patient' else ': not accepted yet' end",
                "'; not started {days} days later'",
            ]) }}
            when 'no_show_recovery' then {{ dbt.concat([
                "'Missed the appointment on '", text('last_no_show_date'),
                "' ('", "no_show_specialty_en", "'), {days} days ago; not rebooked'",
            ]) }}
            when 'recall_due' then {{ dbt.concat([
                "coalesce(recall_category_label_en, recall_category)", "' on '", text('recall_last_visit_date'),
                "', {days} days ago; due every '", text('recall_interval_days'), "' days'",
            ]) }}
            when 'no_next_step' then {{ dbt.concat([
                "'Visit on '", text('last_visit_date'), "' ('", "specialty_en",
                "'), {days} days ago; nothing booked and no call since'",
            ]) }}
            when 'welcome_second_visit' then {{ dbt.concat([
                "'First visit on '", text('first_visit_date'), "' ('", "specialty_en",
                "'), {days} days ago; no second visit yet'",
            ]) }}
            when 'churn_prevention' then {{ dbt.concat([
                "coalesce(segment_label_en, segment)", "': usually comes back every '",
                text('cast(' ~ patient_base.round_to('median_return_days') ~ ' as ' ~ dbt.type_int() ~ ')'),
                "' days (median); last visit on '", text('last_visit_date'), "', {days} days ago'",
            ]) }}
            when 'vip_curator' then {{ dbt.concat([
                "coalesce(segment_label_en, segment)", "': no visit or call for {days} days (last contact on '",
                text('last_contact_date'), "')'",
            ]) }}
            when 'reactivation' then {{ dbt.concat([
                "case when days_since_last_visit > " ~ lost_days ~ " then 'Lost patient' else 'Sleeping patient' end",
                "': last visit on '", text('last_visit_date'), "', {days} days ago; paid '", amount('total_revenue'),
                "' in total'",
            ]) }}
            when 'cross_sell' then {{ dbt.concat([
                "'Active, one specialty only ('", "specialty_en", "'); '",
                text('cast(' ~ patient_base.round_to('offer_probability * 100') ~ ' as ' ~ dbt.type_int() ~ ')'),
                "'% of patients come for '", "lower(coalesce(offer_category_label_en, offer_category))",
                "' within " ~ window_days ~ " days after '", "lower(coalesce(offer_from_label_en, offer_from_category))",
            ]) }}
            else {{ dbt.concat(["'Nothing due as of '", text('as_of_date'),
                "case when p_return >= 0.5 then " ~ dbt.concat([
                    "'; likely to come back without a call ('", text('cast(round(p_return * 100, 0) as ' ~ dbt.type_int() ~ ')'),
                    "'% within the prediction horizon)'"]) ~ " else '' end"]) }}
        end as reason_template_en,
        case action_code
            when 'plan_follow_up' then {{ dbt.concat([
                "'План лечения '", "coalesce(latest_plan_id, '')", "' на '", amount('latest_plan_amount'),
                "' ('", "plan_specialty_ru", "') от '", text('latest_plan_date'),
                "case when latest_plan_status = 'declined' then ': пациент отказался' else ': ещё не принят' end",
                "', не начат за {days} дн.'",
            ]) }}
            when 'no_show_recovery' then {{ dbt.concat([
                "'Не пришёл на приём '", text('last_no_show_date'),
                "' ('", "no_show_specialty_ru", "'), {days} дн. назад; не перезаписан'",
            ]) }}
            when 'recall_due' then {{ dbt.concat([
                "coalesce(recall_category_label_ru, recall_category)", "' '", text('recall_last_visit_date'),
                "', {days} дн. назад; повтор каждые '", text('recall_interval_days'), "' дн.'",
            ]) }}
            when 'no_next_step' then {{ dbt.concat([
                "'Приём '", text('last_visit_date'), "' ('", "specialty_ru",
                "'), {days} дн. назад; нет ни записи, ни звонка после него'",
            ]) }}
            when 'welcome_second_visit' then {{ dbt.concat([
                "'Первый приём '", text('first_visit_date'), "' ('", "specialty_ru",
                "'), {days} дн. назад; второго визита пока нет'",
            ]) }}
            when 'churn_prevention' then {{ dbt.concat([
                "coalesce(segment_label_ru, segment)", "': обычно приходит раз в '",
                text('cast(' ~ patient_base.round_to('median_return_days') ~ ' as ' ~ dbt.type_int() ~ ')'),
                "' дн. (медиана); последний приём '", text('last_visit_date'), "', {days} дн. назад'",
            ]) }}
            when 'vip_curator' then {{ dbt.concat([
                "coalesce(segment_label_ru, segment)", "': ни визита, ни звонка {days} дн. (последний контакт '",
                text('last_contact_date'), "')'",
            ]) }}
            when 'reactivation' then {{ dbt.concat([
                "case when days_since_last_visit > " ~ lost_days ~ " then 'Потерянный пациент' else 'Спящий пациент' end",
                "': последний приём '", text('last_visit_date'), "', {days} дн. назад; всего оплачено '",
                amount('total_revenue'),
            ]) }}
            when 'cross_sell' then {{ dbt.concat([
                "'Активен, одно направление ('", "specialty_ru", "'); после «'",
                "coalesce(offer_from_label_ru, offer_from_category)", "'» '",
                text('cast(' ~ patient_base.round_to('offer_probability * 100') ~ ' as ' ~ dbt.type_int() ~ ')'),
                "'% приходят на «'", "coalesce(offer_category_label_ru, offer_category)",
                "'» в течение " ~ window_days ~ " дн.'",
            ]) }}
            else {{ dbt.concat(["'Нет повода для контакта на '", text('as_of_date'),
                "case when p_return >= 0.5 then " ~ dbt.concat([
                    "'; скорее всего придёт и без звонка ('", text('cast(round(p_return * 100, 0) as ' ~ dbt.type_int() ~ ')'),
                    "'% за горизонт прогноза)'"]) ~ " else '' end"]) }}
        end as reason_template_ru
    from dated

),

valued as (

    select
        explained.*,
        action_rules.label_en as action_label_en,
        action_rules.label_ru as action_label_ru,
        action_rules.channel_preference,
        cast(action_rules.priority as {{ dbt.type_int() }}) as priority,
        coalesce(action_rules.is_about_booking, false) as is_action_about_booking,
        coalesce(action_rules.uses_next_best_offer, false) as uses_next_best_offer,
        action_rules.offer_ru as default_offer_ru,
        action_rules.offer_en as default_offer_en,
        -- the person's own p_return is the conversion, unless enough real outcomes were observed
        case
            when conversion_rates.conversion_rate_source = 'observed' then conversion_rates.conversion_rate
            {% if use_predicted_rates -%}
            when explained.p_return is not null
                then cast(explained.p_return as {{ api.Column.numeric_type('numeric', 18, 4) }})
            {% endif -%}
            else conversion_rates.conversion_rate
        end as conversion_rate,
        case
            when conversion_rates.conversion_rate_source = 'observed' then 'observed'
            {% if use_predicted_rates -%}
            when explained.p_return is not null then 'predicted'
            {% endif -%}
            else conversion_rates.conversion_rate_source
        end as conversion_rate_source,
        case
            when explained.action_code = 'none' then {{ patient_base.cast_money(0) }}
            when explained.action_code = 'plan_follow_up'
                then {{ patient_base.cast_money('coalesce(explained.latest_plan_amount, 0)') }}
            else explained.visit_revenue_estimate
        end as expected_revenue
    from explained
    left join action_rules
        on explained.action_code = action_rules.action_code
    left join conversion_rates
        on explained.action_code = conversion_rates.action_code

),

-- the texts in both languages; reasons as of the as-of date
worded as (

    select
        *,
        {{ patient_base.reason_on('reason_template_en', 'reason_counted_from', 'as_of_date') }} as reason_en,
        {{ patient_base.reason_on('reason_template_ru', 'reason_counted_from', 'as_of_date') }} as reason_ru,
        case
            when action_code = 'none' then null
            when action_code = 'recall_due' then coalesce(recall_offer_en, default_offer_en)
            when uses_next_best_offer and offer_category is not null then offer_category_en
            else default_offer_en
        end as offer_en,
        case
            when action_code = 'none' then null
            when action_code = 'recall_due' then coalesce(recall_offer_ru, default_offer_ru)
            when uses_next_best_offer and offer_category is not null then offer_category_ru
            else default_offer_ru
        end as offer_ru
    from valued

),

final as (

    select
        person_id,
        action_code,
        action_label_{{ language }} as action_label,
        action_label_en,
        action_label_ru,
        reason_{{ language }} as reason,
        reason_en,
        reason_ru,
        reason_template_en,
        reason_template_ru,
        reason_counted_from,
        offer_{{ language }} as offer,
        offer_en,
        offer_ru,
        channel_preference,
        {{ patient_base.action_channel('channel_preference', 'can_call', 'can_message') }} as channel,
        priority,
        trigger_date,
        due_date,
        case
            when action_code = 'recall_due' then recall_category
            when action_code <> 'none' and uses_next_best_offer then offer_category
        end as offer_category,
        case
            when action_code <> 'none' and uses_next_best_offer and offer_category is not null
                then offer_probability
        end as offer_probability,
        expected_revenue,
        conversion_rate,
        conversion_rate_source,
        {{ patient_base.cast_money(patient_base.exact_product('coalesce(conversion_rate, 0)', 'expected_revenue')) }} as expected_value,
        is_action_about_booking,
        segment,
        lifecycle_status,
        last_visit_date,
        last_specialty,
        last_doctor_id,
        next_scheduled_at,
        has_booked_visit,
        last_call_at,
        last_operator_id,
        is_deceased,
        can_call,
        can_message,
        do_not_call,
        has_valid_phone,
        as_of_date
    from worded

)

select * from final
