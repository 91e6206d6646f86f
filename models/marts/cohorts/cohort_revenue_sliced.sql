with

cohort_months as (

    select * from {{ ref('int_cohort_months_sliced') }}

),

final as (

    select
        slice_type,
        slice_value,
        cohort_month,
        months_since_first,
        activity_month,
        is_complete_month,
        cohort_size,
        revenue,
        cumulative_revenue,
        {{ patient_base.ratio_or_null('cumulative_revenue', 'cohort_size', 2) }} as cumulative_revenue_per_patient
    from cohort_months

)

select * from final
