{#-
  The complete cohort grid, once for every slice in `cohort_slices()` ('all', acquisition channel,
  first specialty): one row per slice value x cohort month x month since the first visit, from 0 up
  to the last month observed before the as-of date (see `last_observed_month`), months without any
  revenue or visit included with zeros. cohort_revenue(_sliced) and cohort_retention(_sliced) read it.

  Set-based at any size: persons are summed to the finest cut (cohort x channel x specialty x month)
  first; the grid is then built per cohort from the calendar's month numbers (int_months), never
  persons x months.
-#}
with

person_months as (

    select * from {{ ref('int_cohort_person_months') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

-- the calendar's month numbers are the grid's spine: no cohort is older than the calendar
month_offsets as (

    select month_offset from {{ ref('int_months') }}

),

observation as (

    select
        as_of_date,
        {{ patient_base.last_observed_month('as_of_date') }} as last_observed_month
    from as_of

),

cells as (

    select
        cohort_month,
        acquisition_channel,
        first_specialty,
        months_since_first,
        sum(case when months_since_first = 0 then 1 else 0 end) as entrants,
        sum(case when is_active then 1 else 0 end) as active_patients,
        sum(revenue) as revenue
    from person_months
    group by cohort_month, acquisition_channel, first_specialty, months_since_first

),

cells_per_slice as (

    {% for slice in patient_base.cohort_slices() %}
    select
        cast('{{ slice.slice_type }}' as {{ dbt.type_string() }}) as slice_type,
        cast({{ slice.slice_value }} as {{ dbt.type_string() }}) as slice_value,
        cohort_month,
        months_since_first,
        entrants,
        active_patients,
        revenue
    from cells
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

sliced as (

    select
        slice_type,
        slice_value,
        cohort_month,
        months_since_first,
        sum(entrants) as entrants,
        sum(active_patients) as active_patients,
        sum(revenue) as revenue
    from cells_per_slice
    group by slice_type, slice_value, cohort_month, months_since_first

),

cohorts as (

    select
        sliced.slice_type,
        sliced.slice_value,
        sliced.cohort_month,
        sliced.entrants as cohort_size,
        {{ dbt.datediff('sliced.cohort_month', 'observation.last_observed_month', 'month') }} as last_month_since_first,
        observation.as_of_date
    from sliced
    cross join observation
    where sliced.months_since_first = 0

),

grid as (

    select
        cohorts.slice_type,
        cohorts.slice_value,
        cohorts.cohort_month,
        month_offsets.month_offset as months_since_first,
        cohorts.cohort_size,
        cohorts.as_of_date
    from cohorts
    inner join month_offsets
        on month_offsets.month_offset <= cohorts.last_month_since_first

),

filled as (

    select
        grid.slice_type,
        grid.slice_value,
        grid.cohort_month,
        grid.months_since_first,
        cast({{ dbt.dateadd('month', 'grid.months_since_first', 'grid.cohort_month') }} as date) as activity_month,
        grid.cohort_size,
        coalesce(sliced.active_patients, 0) as active_patients,
        coalesce(sliced.revenue, 0) as revenue,
        grid.as_of_date
    from grid
    left join sliced
        on grid.slice_type = sliced.slice_type
        and grid.slice_value = sliced.slice_value
        and grid.cohort_month = sliced.cohort_month
        and grid.months_since_first = sliced.months_since_first

),

final as (

    select
        slice_type,
        slice_value,
        cohort_month,
        cast(months_since_first as {{ dbt.type_int() }}) as months_since_first,
        activity_month,
        cast({{ dbt.dateadd('month', 1, 'activity_month') }} as date) <= as_of_date as is_complete_month,
        cast(cohort_size as {{ dbt.type_int() }}) as cohort_size,
        cast(active_patients as {{ dbt.type_int() }}) as active_patients,
        {{ patient_base.cast_money('revenue') }} as revenue,
        {{ patient_base.cast_money(
            'sum(revenue) over (partition by slice_type, slice_value, cohort_month'
            ~ ' order by months_since_first rows between unbounded preceding and current row)'
        ) }} as cumulative_revenue
    from filled

)

select * from final
