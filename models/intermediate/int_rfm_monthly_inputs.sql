{#-
  One row per month int_persons_rfm_monthly holds (the last `migration_months` complete months before
  the as-of date): a fingerprint of everything that month's RFM state is computed from. The state at a
  month's end reads every completed visit and payment of that month and before, the RFM settings, the
  threshold and segment seeds and the model's own SQL, so the fingerprint is the md5 of all of these:
  the per-month fingerprints (macro fingerprint_sum) of the visits and payments of every month up to it,
  in month order, with the settings.

  int_persons_rfm_monthly is incremental: a build recomputes a month, and every month after it, only
  when this fingerprint differs from the one stored with the month's rows at the last build (new
  visits dated in a closed month, a corrected old payment, a merged duplicate card that moves visits to
  another person, another var or seed, another version of the models). Everything else is kept.
  See docs/decisions.md, "Incremental models".
-#}
{%- set settings = patient_base.rfm_settings() -%}
{%- set monthly_node = graph.nodes.get('model.patient_base.int_persons_rfm_monthly', {}) if execute else {} -%}
{%- set definition = local_md5((monthly_node.get('raw_code') or '') ~ '|' ~ (settings | tojson)
                               ~ '|' ~ var('project_fingerprint', '')) -%}

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

thresholds as (

    select * from {{ ref('rfm_thresholds') }}

),

segment_map as (

    {{ patient_base.rfm_segment_map() }}

),

bounds as (

    select cast({{ dbt.date_trunc('month', 'as_of_date') }} as date) as history_end_month
    from as_of

),

month_numbers as (

    {{ dbt.generate_series(settings.migration_months + 1) }}

),

-- the months the model outputs: 1 .. migration_months months before the as-of month
months as (

    select
        cast({{ dbt.dateadd(
            'month',
            '(0 - cast(month_numbers.generated_number as ' ~ dbt.type_int() ~ '))',
            'bounds.history_end_month',
        ) }} as date) as month
    from month_numbers
    cross join bounds
    where month_numbers.generated_number <= {{ settings.migration_months }}

),

-- what the model reads, month by month (the rows it filters out are left out here too)
history as (

    select
        'visits' as source_name,
        visit_month as month,
        count(*) as visits,
        {{ patient_base.fingerprint_sum(['person_id', 'visit_date']) }} as fingerprint
    from visits
    where is_completed and person_id is not null
    group by visit_month

    union all

    select
        'payments' as source_name,
        paid_month as month,
        0 as visits,
        {{ patient_base.fingerprint_sum(['person_id', 'paid_date', 'amount']) }} as fingerprint
    from payments
    where person_id is not null
    group by paid_month

),

rules as (

    select {{ patient_base.fingerprint_sum(['rfm_scale', 'metric', 'score', 'lower_bound', 'upper_bound']) }} as fingerprint
    from thresholds

    union all

    select {{ patient_base.fingerprint_sum(['rfm_code', 'segment']) }} as fingerprint
    from segment_map

),

settings_fingerprint as (

    select
        {{ dbt.concat(["'" ~ definition ~ "'", "'/'", patient_base.ordered_list('fingerprint', 'fingerprint', '/')]) }}
            as fingerprint
    from rules

),

cumulative as (

    select
        months.month,
        {{ patient_base.ordered_list(
            dbt.concat(['history.source_name', "':'", 'cast(history.month as ' ~ dbt.type_string() ~ ')', "':'", 'history.fingerprint']),
            dbt.concat(['history.source_name', 'cast(history.month as ' ~ dbt.type_string() ~ ')']),
            '/',
        ) }} as history_fingerprint,
        coalesce(sum(history.visits), 0) as visits_to_date
    from months
    left join history
        on history.month <= months.month
    group by months.month

),

final as (

    select
        cumulative.month,
        -- a month with no completed visit yet holds no person: nothing is stored for it
        cumulative.visits_to_date > 0 as has_states,
        {{ dbt.hash(dbt.concat([
            'settings_fingerprint.fingerprint', "'/'", "coalesce(cumulative.history_fingerprint, '')",
        ])) }} as input_fingerprint
    from cumulative
    cross join settings_fingerprint

)

select * from final
