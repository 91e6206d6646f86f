{#-
  One row per person (dim_patients grain): every fact the next-best-action rules read, gathered in one
  place so the rules themselves (int_persons_action_matched) are a readable `case` over one row and
  can be unit-tested. Nothing here decides an action.

  Contact facts come from int_persons_profiled (can_call, can_message, next_scheduled_at,
  lifecycle_status, avg_check; dim_patients shows the same) and int_persons_scored_rfm (segment, as in
  rfm_scores), so the call list agrees with the core marts.
-#}
{%- set factor = var('churn_interval_factor', 1.5) -%}
{%- set episode_gap_days = var('churn_episode_gap_days', 14) | int -%}

with

patients as (

    select * from {{ ref('int_persons_profiled') }}

),

rfm_scored as (

    select * from {{ ref('int_persons_scored_rfm') }}

),

rfm_segments as (

    select * from {{ ref('rfm_segments') }}

),

rfm as (

    select
        rfm_scored.person_id,
        rfm_scored.segment,
        rfm_segments.label_en as segment_label_en,
        rfm_segments.label_ru as segment_label_ru
    from rfm_scored
    left join rfm_segments
        on rfm_scored.segment = rfm_segments.segment
        and rfm_segments.rfm_scale = {{ patient_base.rfm_settings().scale }}

),

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

plans as (

    select * from {{ ref('stg_mis__treatment_plans') }}

),

persons as (

    select * from {{ ref('int_patients_resolved_to_persons') }}

),

recalls as (

    select * from {{ ref('int_persons_recall_due') }}

),

call_history as (

    select * from {{ ref('int_persons_call_history') }}

),

offers as (

    select * from {{ ref('int_persons_transition_offer') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

clinic_check as (

    -- the clinic's average check, for persons without one of their own (no completed visit yet)
    select
        {{ patient_base.ratio_or_null('sum(total_revenue)', 'sum(completed_visits)', 2) }} as clinic_avg_check
    from patients

),

last_visits as (

    select
        person_id,
        specialty as last_specialty,
        doctor_id as last_doctor_id,
        visit_number
    from visits
    where is_completed
        and person_id is not null

),

return_intervals as (

    -- the person's usual return interval: gaps between completed visits, leaving out gaps shorter
    -- than churn_episode_gap_days (a follow-up or the tests of the same episode of care are not a
    -- return; with them a regular who comes every 90 days for a visit and its tests looks like
    -- someone who comes every few days)
    select
        person_id,
        count(*) as return_intervals,
        {{ patient_base.median_of('days_since_prev_visit') }} as median_return_days
    from visits
    where is_completed
        and person_id is not null
        and days_since_prev_visit >= {{ episode_gap_days }}
    group by person_id

),

no_shows as (

    select
        person_id,
        visit_date,
        specialty,
        doctor_id,
        row_number() over (partition by person_id order by visit_at desc, visit_id desc) as recency_rank
    from visits
    where status = 'no_show'
        and person_id is not null

),

last_no_show as (

    select
        person_id,
        visit_date as last_no_show_date,
        specialty as last_no_show_specialty,
        doctor_id as last_no_show_doctor_id
    from no_shows
    where recency_rank = 1

),

plans_as_of as (

    -- the same "latest plan" as dim_patients.latest_plan_status: newest by creation, as of the as-of date
    select
        persons.person_id,
        plans.plan_id,
        plans.status,
        plans.total_amount,
        plans.created_date,
        plans.specialty,
        row_number() over (
            partition by persons.person_id order by plans.created_at desc, plans.plan_id desc
        ) as recency_rank
    from plans
    cross join as_of
    inner join persons
        on plans.patient_id = persons.patient_id
    where plans.created_date < as_of.as_of_date

),

latest_plan as (

    select
        person_id,
        plan_id as latest_plan_id,
        status as latest_plan_status,
        total_amount as latest_plan_amount,
        created_date as latest_plan_date,
        specialty as latest_plan_specialty
    from plans_as_of
    where recency_rank = 1

),

first_open_recall as (

    select *
    from recalls
    where is_first_open_recall

),

joined as (

    select
        patients.person_id,
        patients.as_of_date,
        patients.is_deceased,
        patients.can_call,
        patients.can_message,
        patients.do_not_call,
        patients.phone_e164 is not null as has_valid_phone,
        patients.lifecycle_status,
        patients.completed_visits,
        patients.specialties_used,
        patients.total_revenue,
        patients.avg_check,
        clinic_check.clinic_avg_check,
        cast(patients.first_visit_at as date) as first_visit_date,
        cast(patients.last_visit_at as date) as last_visit_date,
        patients.days_since_last_visit,
        patients.next_scheduled_at,
        patients.next_scheduled_at is not null as has_booked_visit,
        rfm.segment,
        rfm.segment_label_en,
        rfm.segment_label_ru,
        last_visits.last_specialty,
        last_visits.last_doctor_id,
        coalesce(return_intervals.return_intervals, 0) as return_intervals,
        return_intervals.median_return_days,
        latest_plan.latest_plan_id,
        latest_plan.latest_plan_status,
        latest_plan.latest_plan_amount,
        latest_plan.latest_plan_date,
        latest_plan.latest_plan_specialty,
        last_no_show.last_no_show_date,
        last_no_show.last_no_show_specialty,
        last_no_show.last_no_show_doctor_id,
        first_open_recall.service_category as recall_category,
        first_open_recall.category_label_en as recall_category_label_en,
        first_open_recall.category_label_ru as recall_category_label_ru,
        first_open_recall.recall_offer_ru,
        first_open_recall.recall_offer_en,
        first_open_recall.interval_days as recall_interval_days,
        first_open_recall.lead_days as recall_lead_days,
        first_open_recall.last_category_visit_date as recall_last_visit_date,
        first_open_recall.days_since_category_visit as recall_days_since_visit,
        first_open_recall.recall_date,
        first_open_recall.recall_window_opens_on,
        call_history.last_call_at,
        call_history.last_call_date,
        call_history.last_operator_id,
        cast(call_history.last_reached_call_at as date) as last_reached_call_date,
        offers.offer_category,
        offers.offer_probability,
        offers.offer_ru as offer_category_ru,
        offers.offer_en as offer_category_en,
        offers.offer_category_label_en,
        offers.offer_category_label_ru,
        offers.offer_from_category,
        offers.offer_from_label_en,
        offers.offer_from_label_ru
    from patients
    cross join clinic_check
    left join rfm
        on patients.person_id = rfm.person_id
    left join last_visits
        on patients.person_id = last_visits.person_id
        and patients.completed_visits = last_visits.visit_number
    left join return_intervals
        on patients.person_id = return_intervals.person_id
    left join latest_plan
        on patients.person_id = latest_plan.person_id
    left join last_no_show
        on patients.person_id = last_no_show.person_id
    left join first_open_recall
        on patients.person_id = first_open_recall.person_id
    left join call_history
        on patients.person_id = call_history.person_id
    left join offers
        on patients.person_id = offers.person_id

),

final as (

    select
        person_id,
        as_of_date,
        is_deceased,
        can_call,
        can_message,
        do_not_call,
        has_valid_phone,
        lifecycle_status,
        segment,
        segment_label_en,
        segment_label_ru,
        completed_visits,
        specialties_used,
        total_revenue,
        avg_check,
        clinic_avg_check,
        -- the revenue one more visit is expected to bring: the person's average check, else the clinic's
        {{ patient_base.cast_money('greatest(coalesce(avg_check, clinic_avg_check, 0), 0)') }} as visit_revenue_estimate,
        first_visit_date,
        last_visit_date,
        {{ patient_base.days_between('first_visit_date', 'as_of_date') }} as days_since_first_visit,
        days_since_last_visit,
        last_specialty,
        last_doctor_id,
        next_scheduled_at,
        has_booked_visit,
        return_intervals,
        cast(median_return_days as {{ api.Column.numeric_type('numeric', 18, 1) }}) as median_return_days,
        cast({{ patient_base.round_to('median_return_days * ' ~ factor) }} as {{ dbt.type_int() }}) as expected_return_days,
        latest_plan_id,
        latest_plan_status,
        latest_plan_amount,
        latest_plan_date,
        latest_plan_specialty,
        {{ patient_base.days_between('latest_plan_date', 'as_of_date') }} as plan_age_days,
        last_no_show_date,
        last_no_show_specialty,
        last_no_show_doctor_id,
        {{ patient_base.days_between('last_no_show_date', 'as_of_date') }} as days_since_no_show,
        recall_category,
        recall_category_label_en,
        recall_category_label_ru,
        recall_offer_ru,
        recall_offer_en,
        recall_interval_days,
        recall_lead_days,
        recall_last_visit_date,
        recall_days_since_visit,
        recall_date,
        recall_window_opens_on,
        last_call_at,
        last_call_date,
        last_operator_id,
        last_reached_call_date,
        -- a contact is a completed visit or a call that reached the person
        case
            when last_reached_call_date is null then last_visit_date
            when last_visit_date is null then last_reached_call_date
            when last_reached_call_date > last_visit_date then last_reached_call_date
            else last_visit_date
        end as last_contact_date,
        offer_category,
        offer_probability,
        offer_category_ru,
        offer_category_en,
        offer_category_label_en,
        offer_category_label_ru,
        offer_from_category,
        offer_from_label_en,
        offer_from_label_ru
    from joined

)

select * from final
