{#-
  One row per month of the calendar int_months: from the first month with a completed visit (or a
  payment, if one came earlier) to the last month observed before the as-of date; a month the as-of
  date cuts in two is included and flagged is_complete_month = false.
-#}
with

patient_flow as (

    select * from {{ ref('int_patient_flow_monthly') }}

),

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

payments as (

    select * from {{ ref('int_payments_resolved') }}

),

months as (

    select * from {{ ref('int_months') }}

),

visits_monthly as (

    select
        visit_month as month,
        count(*) as completed_visits
    from visits
    where is_completed
    group by visit_month

),

revenue_monthly as (

    select
        paid_month as month,
        sum(amount) as revenue,
        sum(case when is_primary_visit_payment then amount else 0 end) as primary_revenue,
        sum(case when not is_visit_payment then amount else 0 end) as advance_revenue
    from payments
    group by paid_month

),

joined as (

    select
        months.month,
        months.is_complete_month,
        coalesce(patient_flow.new_patients, 0) as new_patients,
        coalesce(patient_flow.returning_patients, 0) as returning_patients,
        coalesce(patient_flow.active_patients, 0) as active_patients,
        coalesce(visits_monthly.completed_visits, 0) as completed_visits,
        coalesce(revenue_monthly.revenue, 0) as revenue,
        coalesce(revenue_monthly.primary_revenue, 0) as primary_revenue,
        coalesce(revenue_monthly.advance_revenue, 0) as advance_revenue,
        coalesce(patient_flow.active_base_patients, 0) as active_base_patients,
        coalesce(patient_flow.churned_patients, 0) as churned_patients
    from months
    left join patient_flow
        on months.month = patient_flow.month
    left join visits_monthly
        on months.month = visits_monthly.month
    left join revenue_monthly
        on months.month = revenue_monthly.month

),

final as (

    select
        month,
        is_complete_month,
        cast(new_patients as {{ dbt.type_int() }}) as new_patients,
        cast(returning_patients as {{ dbt.type_int() }}) as returning_patients,
        cast(active_patients as {{ dbt.type_int() }}) as active_patients,
        cast(completed_visits as {{ dbt.type_int() }}) as completed_visits,
        {{ patient_base.cast_money('revenue') }} as revenue,
        {{ patient_base.cast_money('primary_revenue') }} as primary_revenue,
        {{ patient_base.cast_money('revenue - primary_revenue') }} as repeat_revenue,
        {{ patient_base.cast_money('advance_revenue') }} as advance_revenue,
        {{ patient_base.ratio_or_null('revenue - primary_revenue', 'revenue') }} as repeat_revenue_share,
        {{ patient_base.ratio_or_null('revenue', 'completed_visits', 2) }} as avg_check,
        cast(active_base_patients as {{ dbt.type_int() }}) as active_base_patients,
        cast(churned_patients as {{ dbt.type_int() }}) as churned_patients,
        {{ patient_base.ratio_or_null('churned_patients', 'active_base_patients') }} as churn_rate,
        {{ patient_base.ratio_or_null('active_base_patients - churned_patients', 'active_base_patients') }} as retention_rate
    from joined

)

select * from final
