with

cohort_revenue_sliced as (

    select * from {{ ref('cohort_revenue_sliced') }}

),

final as (

    select
        cohort_month,
        months_since_first,
        activity_month,
        is_complete_month,
        cohort_size,
        revenue,
        cumulative_revenue,
        cumulative_revenue_per_patient
    from cohort_revenue_sliced
    where slice_type = 'all'

)

select * from final
