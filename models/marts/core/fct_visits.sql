{#-
  A view: int_visits_sequenced already holds every column, money included, materialised once.
  Writing the same 8M rows a second time as a table cost ~8 s at a network's scale for nothing a BI
  tool notices (docs/decisions.md, "Performance").
-#}
{{ config(materialized='view') }}

with

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

final as (

    select
        visit_id,
        patient_id,
        person_id,
        visit_at,
        visit_date,
        visit_month,
        status,
        is_completed,
        is_future,
        specialty,
        branch_id,
        doctor_id,
        booked_at,
        visit_number,
        is_primary,
        is_primary_in_specialty,
        days_since_prev_visit,
        revenue,
        billed_amount,
        services
    from visits

)

select * from final
