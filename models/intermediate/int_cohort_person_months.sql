{#-
  One row per person (with at least one completed visit) and month since their first completed visit
  in which they had a completed visit or a payment: the sparse person-level base of every cohort view
  and of the monthly patient flow. Reads int_persons_profiled, where the person's cohort month,
  acquisition channel and first specialty are defined once (dim_patients shows the same).

  Months are counted between first-of-month dates (cohort month = month of the first completed
  visit). Revenue is net payments by payment month (refunds subtract); a payment dated before the
  cohort month (an advance paid before the first visit) counts in month 0, so a cohort's revenue
  always sums to its members' net revenue. Payments and visits after the as-of date are already left
  out by int_visits_sequenced and int_payments_resolved.
-#}
with

patients as (

    select * from {{ ref('int_persons_profiled') }}

),

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

payments as (

    select * from {{ ref('int_payments_resolved') }}

),

cohort_members as (

    select
        person_id,
        cohort_month,
        acquisition_channel,
        coalesce(first_specialty, 'unknown') as first_specialty
    from patients
    where cohort_month is not null

),

visit_months as (

    select
        person_id,
        visit_month as activity_month,
        count(*) as completed_visits,
        cast(0 as {{ patient_base.type_money() }}) as revenue
    from visits
    where is_completed
        and person_id is not null
    group by person_id, visit_month

),

payment_months as (

    select
        person_id,
        paid_month as activity_month,
        0 as completed_visits,
        sum(amount) as revenue
    from payments
    where person_id is not null
    group by person_id, paid_month

),

activity as (

    select
        person_id,
        activity_month,
        completed_visits,
        revenue
    from visit_months
    union all
    select
        person_id,
        activity_month,
        completed_visits,
        revenue
    from payment_months

),

placed as (

    select
        cohort_members.person_id,
        cohort_members.cohort_month,
        cohort_members.acquisition_channel,
        cohort_members.first_specialty,
        case
            when activity.activity_month < cohort_members.cohort_month then 0
            else {{ dbt.datediff('cohort_members.cohort_month', 'activity.activity_month', 'month') }}
        end as months_since_first,
        activity.completed_visits,
        activity.revenue,
        case
            when activity.activity_month < cohort_members.cohort_month then activity.revenue
            else 0
        end as revenue_before_cohort_month
    from activity
    inner join cohort_members
        on activity.person_id = cohort_members.person_id

),

aggregated as (

    select
        person_id,
        cohort_month,
        acquisition_channel,
        first_specialty,
        months_since_first,
        sum(completed_visits) as completed_visits,
        sum(revenue) as revenue,
        sum(revenue_before_cohort_month) as revenue_before_cohort_month
    from placed
    group by person_id, cohort_month, acquisition_channel, first_specialty, months_since_first

),

final as (

    select
        person_id,
        cohort_month,
        acquisition_channel,
        first_specialty,
        cast(months_since_first as {{ dbt.type_int() }}) as months_since_first,
        cast({{ dbt.dateadd('month', 'months_since_first', 'cohort_month') }} as date) as activity_month,
        cast(completed_visits as {{ dbt.type_int() }}) as completed_visits,
        completed_visits > 0 as is_active,
        {{ patient_base.cast_money('revenue') }} as revenue,
        {{ patient_base.cast_money('revenue_before_cohort_month') }} as revenue_before_cohort_month
    from aggregated

)

select * from final
