{#-
  One row per calendar month, from the first month with a completed visit to the last month observed
  before the as-of date: how many persons came for the first time, came back, made up the active
  base at the month start, and lapsed during the month. kpi_monthly reads it.

  Active = at least one completed visit in the last `churn_window_months` calendar months (default
  12, the monthly form of the 365-day `lost_days` rule). Each active month of a person opens a spell
  that lasts until their next active month or until the window runs out, whichever comes first; the
  base at a month start is the running sum of spells opened minus spells closed before that month,
  and a spell that runs out (no visit in the window) is a churn in the month it runs out. Set-based:
  one row per person and active month, no persons x months grid.
-#}
{%- set window_months = var('churn_window_months', 12) | int -%}

with

person_months as (

    select * from {{ ref('int_cohort_person_months') }}

),

calendar as (

    select * from {{ ref('int_months') }}

),

active_months as (

    select
        person_id,
        activity_month,
        months_since_first
    from person_months
    where is_active

),

-- the calendar from the first month with a completed visit (a payment alone opens no flow)
months as (

    select calendar.month
    from calendar
    where calendar.month >= (select min(active_months.activity_month) from active_months)

),

visitors as (

    select
        activity_month as month,
        sum(case when months_since_first = 0 then 1 else 0 end) as new_patients,
        sum(case when months_since_first > 0 then 1 else 0 end) as returning_patients,
        count(*) as active_patients
    from active_months
    group by activity_month

),

spells as (

    select
        person_id,
        activity_month as spell_start_month,
        lead(activity_month) over (partition by person_id order by activity_month) as next_active_month,
        cast({{ dbt.dateadd('month', window_months, 'activity_month') }} as date) as lapse_month
    from active_months

),

spell_ends as (

    select
        person_id,
        spell_start_month,
        case
            when next_active_month is not null and next_active_month <= lapse_month then next_active_month
            else lapse_month
        end as spell_end_month,
        next_active_month is null or next_active_month > lapse_month as is_lapse
    from spells

),

base_changes as (

    select
        spell_start_month as month,
        1 as base_change,
        0 as churned
    from spell_ends
    union all
    select
        spell_end_month as month,
        -1 as base_change,
        case when is_lapse then 1 else 0 end as churned
    from spell_ends

),

base_changes_monthly as (

    select
        month,
        sum(base_change) as base_change,
        sum(churned) as churned_patients
    from base_changes
    group by month

),

joined as (

    select
        months.month,
        coalesce(visitors.new_patients, 0) as new_patients,
        coalesce(visitors.returning_patients, 0) as returning_patients,
        coalesce(visitors.active_patients, 0) as active_patients,
        coalesce(base_changes_monthly.base_change, 0) as base_change,
        coalesce(base_changes_monthly.churned_patients, 0) as churned_patients
    from months
    left join visitors
        on months.month = visitors.month
    left join base_changes_monthly
        on months.month = base_changes_monthly.month

),

final as (

    select
        month,
        cast(new_patients as {{ dbt.type_int() }}) as new_patients,
        cast(returning_patients as {{ dbt.type_int() }}) as returning_patients,
        cast(active_patients as {{ dbt.type_int() }}) as active_patients,
        cast(coalesce(
            sum(base_change) over (order by month rows between unbounded preceding and 1 preceding),
            0
        ) as {{ dbt.type_int() }}) as active_base_patients,
        cast(churned_patients as {{ dbt.type_int() }}) as churned_patients
    from joined

)

select * from final
