with

cohort_retention_sliced as (

    select * from {{ ref('cohort_retention_sliced') }}

),

final as (

    select
        cohort_month,
        months_since_first,
        activity_month,
        is_complete_month,
        cohort_size,
        active_patients,
        retention_rate
    from cohort_retention_sliced
    where slice_type = 'all'

)

select * from final
