{#-
  A view of int_persons_profiled, where each person's facts and lifecycle are defined once (the
  intermediates that need them read it, not this mart). The same rows and columns; a second copy of a
  person-grain table is not worth writing (docs/decisions.md, "Performance").
-#}
{{ config(materialized='view') }}

with

persons as (

    select * from {{ ref('int_persons_profiled') }}

),

final as (

    select
        person_id,
        patient_ids,
        cards,
        display_name,
        phone_e164,
        email,
        sex,
        age_years,
        branch_id,
        first_card_created_at,
        first_visit_at,
        last_visit_at,
        cohort_month,
        completed_visits,
        no_shows,
        cancellations,
        specialties_used,
        total_revenue,
        refunded_amount,
        avg_check,
        tenure_days,
        days_since_last_visit,
        acquisition_channel,
        acquisition_source,
        first_specialty,
        next_scheduled_at,
        open_plan_amount,
        has_active_plan,
        latest_plan_status,
        lifecycle_status,
        can_call,
        can_message,
        do_not_call,
        do_not_message,
        is_deceased,
        as_of_date
    from persons

)

select * from final
