{#-
  The month calendar, defined once: one row per calendar month from the first month with a completed
  visit or a payment (whichever came first) to the last month observed before the as-of date (see
  `last_observed_month`). A month the as-of date cuts in two is included with is_complete_month =
  false. month_offset counts months from the first (0, 1, …), so it also serves as the bounded number
  spine of the cohort grid (no cohort is older than the calendar). kpi_monthly, the monthly patient
  flow and the cohort grid read it. Empty when there is no activity yet.
-#}
-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

payments as (

    select * from {{ ref('int_payments_resolved') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

month_offsets as (

    {{ patient_base.cohort_month_offsets() }}

),

first_months as (

    select min(visit_month) as first_month
    from visits
    where is_completed
    union all
    select min(paid_month) as first_month from payments

),

observation as (

    select
        min(first_months.first_month) as first_month,
        {{ patient_base.last_observed_month('as_of.as_of_date') }} as last_observed_month,
        as_of.as_of_date
    from as_of
    cross join first_months
    group by as_of.as_of_date

),

final as (

    select
        cast({{ dbt.dateadd('month', 'month_offsets.month_offset', 'observation.first_month') }} as date) as month,
        month_offsets.month_offset,
        cast(
            {{ dbt.dateadd('month', 'month_offsets.month_offset + 1', 'observation.first_month') }} as date
        ) <= observation.as_of_date as is_complete_month,
        observation.as_of_date
    from observation
    inner join month_offsets
        on month_offsets.month_offset
            <= {{ dbt.datediff('observation.first_month', 'observation.last_observed_month', 'month') }}

)

select * from final
