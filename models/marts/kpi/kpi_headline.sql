{#-
  One row: the headline figures the owner's report and the run summary show, each defined once here
  and named with its period (_12m = the last 12 complete months of kpi_monthly, _all_time = all
  history before the as-of date). Python only formats them.
-#}

with

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

cards as (

    select * from {{ ref('stg_mis__patients') }}

),

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

payments as (

    select * from {{ ref('int_payments_resolved') }}

),

patients as (

    select * from {{ ref('dim_patients') }}

),

months as (

    select * from {{ ref('kpi_monthly') }}

),

channels as (

    select * from {{ ref('channel_ltv') }}

),

segments as (

    select * from {{ ref('rfm_segment_summary') }}

),

potential as (

    select * from {{ ref('base_potential') }}

),

card_counts as (

    select
        count(*) as patient_cards,
        sum(case when has_valid_phone then 1 else 0 end) as cards_with_valid_phone
    from cards

),

visit_counts as (

    select
        count(*) as completed_visits_all_time,
        min(visit_date) as first_visit_date,
        max(visit_date) as last_visit_date
    from visits
    where is_completed

),

money_all_time as (

    select
        coalesce(sum(amount), 0) as net_revenue_all_time,
        coalesce(-sum(case when is_refund then amount else 0 end), 0) as refunds_all_time
    from payments

),

base as (

    select
        count(*) as persons_with_visits,
        sum(case when lifecycle_status not in ('lost', 'deceased') then 1 else 0 end) as active_patients,
        sum(case when lifecycle_status = 'sleeping' then 1 else 0 end) as sleeping_patients,
        sum(case when lifecycle_status = 'lost' then 1 else 0 end) as lost_patients
    from patients
    where completed_visits > 0

),

-- the top 15% of persons with a visit by net revenue: ceiling(15% of them), ties broken by person_id
ranked_persons as (

    select
        total_revenue,
        row_number() over (order by total_revenue desc, person_id asc) as revenue_rank,
        count(*) over () as persons
    from patients
    where completed_visits > 0

),

pareto as (

    select
        sum(case when revenue_rank <= ceiling(0.15 * persons) then total_revenue else 0 end) as top15_revenue,
        sum(total_revenue) as revenue
    from ranked_persons

),

complete_months as (

    select
        *,
        row_number() over (order by month desc) as months_back
    from months
    where is_complete_month

),

last_year as (

    select
        min(month) as period_start,
        max(month) as period_end,
        count(*) as months_in_period,
        coalesce(sum(revenue), 0) as revenue_12m,
        coalesce(sum(repeat_revenue), 0) as repeat_revenue_12m,
        coalesce(sum(completed_visits), 0) as completed_visits_12m
    from complete_months
    where months_back <= 12

),

last_month as (

    select
        month as churn_month,
        churn_rate,
        churned_patients,
        active_base_patients as churn_base_patients
    from complete_months
    where months_back = 1

),

ltv as (

    select
        sum(ltv_12m * patients_12m) as ltv_revenue_12m,
        sum(patients_12m) as ltv_patients_12m
    from channels

),

top_segment as (

    select
        segment as top_segment,
        segment_label_en as top_segment_label_en,
        segment_label_ru as top_segment_label_ru,
        share_of_patients as top_segment_share_of_patients,
        share_of_revenue as top_segment_share_of_revenue
    from (
        select
            *,
            row_number() over (order by revenue desc, sort_order asc, segment asc) as revenue_rank
        from segments
        where patients > 0
    ) as ranked_segments
    where revenue_rank = 1

),

potential_totals as (

    select
        sum(potential_revenue) as potential_revenue,
        sum(expected_returns) as expected_returns
    from potential

),

final as (

    select
        as_of.as_of_date,
        cast(card_counts.patient_cards as {{ dbt.type_int() }}) as patient_cards,
        cast(coalesce(card_counts.cards_with_valid_phone, 0) as {{ dbt.type_int() }}) as cards_with_valid_phone,
        cast(base.persons_with_visits as {{ dbt.type_int() }}) as persons_with_visits,
        cast(coalesce(base.active_patients, 0) as {{ dbt.type_int() }}) as active_patients,
        cast(coalesce(base.sleeping_patients, 0) as {{ dbt.type_int() }}) as sleeping_patients,
        cast(coalesce(base.lost_patients, 0) as {{ dbt.type_int() }}) as lost_patients,
        {{ patient_base.ratio_or_null('base.sleeping_patients', 'base.persons_with_visits') }} as sleeping_share,
        {{ patient_base.ratio_or_null('base.lost_patients', 'base.persons_with_visits') }} as lost_share,
        cast(visit_counts.completed_visits_all_time as {{ dbt.type_int() }}) as completed_visits_all_time,
        visit_counts.first_visit_date,
        visit_counts.last_visit_date,
        {{ patient_base.cast_money('money_all_time.net_revenue_all_time') }} as net_revenue_all_time,
        {{ patient_base.cast_money('money_all_time.refunds_all_time') }} as refunds_all_time,
        -- shares of net revenue are null when it is not positive (a share of nothing, or of a net
        -- refund, means nothing; `check` flags a negative net revenue)
        case
            when pareto.revenue > 0
                then {{ patient_base.ratio_or_null('pareto.top15_revenue', 'pareto.revenue') }}
        end as top15_revenue_share_all_time,
        last_year.period_start,
        last_year.period_end,
        cast(coalesce(last_year.months_in_period, 0) as {{ dbt.type_int() }}) as months_in_period,
        {{ patient_base.cast_money('coalesce(last_year.revenue_12m, 0)') }} as revenue_12m,
        {{ patient_base.cast_money('coalesce(last_year.repeat_revenue_12m, 0)') }} as repeat_revenue_12m,
        case
            when last_year.revenue_12m > 0
                then {{ patient_base.ratio_or_null('last_year.repeat_revenue_12m', 'last_year.revenue_12m') }}
        end as repeat_revenue_share_12m,
        cast(coalesce(last_year.completed_visits_12m, 0) as {{ dbt.type_int() }}) as completed_visits_12m,
        {{ patient_base.cast_money(patient_base.ratio_or_null('last_year.revenue_12m', 'last_year.completed_visits_12m', 2)) }}
            as avg_check_12m,
        {{ patient_base.cast_money(patient_base.ratio_or_null('ltv.ltv_revenue_12m', 'ltv.ltv_patients_12m', 2)) }}
            as ltv_12m,
        cast(coalesce(ltv.ltv_patients_12m, 0) as {{ dbt.type_int() }}) as ltv_patients_12m,
        last_month.churn_month,
        last_month.churn_rate,
        cast(last_month.churned_patients as {{ dbt.type_int() }}) as churned_patients,
        cast(last_month.churn_base_patients as {{ dbt.type_int() }}) as churn_base_patients,
        top_segment.top_segment,
        top_segment.top_segment_label_en,
        top_segment.top_segment_label_ru,
        top_segment.top_segment_share_of_patients,
        top_segment.top_segment_share_of_revenue,
        {{ patient_base.cast_money('potential_totals.potential_revenue') }} as potential_revenue,
        potential_totals.expected_returns
    from as_of
    cross join card_counts
    cross join visit_counts
    cross join money_all_time
    cross join base
    cross join pareto
    cross join last_year
    cross join ltv
    cross join potential_totals
    left join last_month
        on 1 = 1
    left join top_segment
        on 1 = 1

)

select * from final
