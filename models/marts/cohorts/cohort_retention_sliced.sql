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
        active_patients,
        {{ patient_base.ratio_or_null('active_patients', 'cohort_size') }} as retention_rate
    from cohort_months

)

select * from final
