{#
  RFM: the one place where recency / frequency / monetary values become scores, codes and segments.
  Used by int_persons_scored_rfm (as of `as_of_date`) and int_persons_rfm_monthly (as of each month
  end), so both marts score with exactly the same rules. See docs/decisions.md, section RFM.
#}


{#
  rfm_settings()
  The RFM vars, validated, as a dict: scale (3 or 5), method ('quantile' or 'thresholds'),
  window_months (none = all history, else a positive integer) and migration_months (>= 0).
  Raises a compiler error with a readable message on a bad value, so a typo in patientbase.yml
  fails the build instead of producing odd scores.
  Arguments: none.
#}
{% macro rfm_settings() %}
    {%- set scale = var('rfm_scale', 3) | string | trim -%}
    {%- if scale not in ['3', '5'] -%}
        {{ exceptions.raise_compiler_error("var rfm_scale must be 3 or 5, got '" ~ scale ~ "'") }}
    {%- endif -%}
    {%- set method = var('rfm_method', 'quantile') | string | trim | lower -%}
    {%- if method not in ['quantile', 'thresholds'] -%}
        {{ exceptions.raise_compiler_error("var rfm_method must be 'quantile' or 'thresholds', got '" ~ method ~ "'") }}
    {%- endif -%}
    {%- set window = var('rfm_window_months', none) -%}
    {%- if window is not none and (window | string | trim | lower) in ['', 'none', 'null'] -%}
        {%- set window = none -%}
    {%- endif -%}
    {%- if window is not none -%}
        {%- if not (window | string | trim).isdigit() or (window | int) < 1 -%}
            {{ exceptions.raise_compiler_error("var rfm_window_months must be null (all history) or a whole number of months >= 1, got '" ~ window ~ "'") }}
        {%- endif -%}
        {%- set window = window | int -%}
    {%- endif -%}
    {%- set migration = var('migration_months', 24) | string | trim -%}
    {%- if not migration.isdigit() -%}
        {{ exceptions.raise_compiler_error("var migration_months must be a whole number >= 0, got '" ~ migration ~ "'") }}
    {%- endif -%}
    {{ return({
        'scale': scale | int,
        'method': method,
        'window_months': window,
        'migration_months': migration | int,
    }) }}
{% endmacro %}


{#
  rfm_segment_map()
  A select of the segment map of the configured scale (columns rfm_code, segment): seed
  rfm_segment_map_3 or rfm_segment_map_5. Both seeds are always referenced (the one not in use is
  filtered out by a constant condition), so the DAG does not change with `rfm_scale` and a unit test
  may override the var.
  Arguments: none.
#}
{% macro rfm_segment_map() -%}
    {%- set scale = patient_base.rfm_settings().scale -%}
    select rfm_code, segment from {{ ref('rfm_segment_map_3') }} where {{ scale }} = 3
    union all
    select rfm_code, segment from {{ ref('rfm_segment_map_5') }} where {{ scale }} = 5
{%- endmacro %}


{#
  rfm_window_start(as_of_date)
  SQL expression for the first day counted by frequency and monetary: `as_of_date` minus
  `rfm_window_months` months, as a date. Returns none when the window is all history (the caller then
  counts everything before the as-of date).
  Arguments:
    as_of_date: column or expression holding the (exclusive) as-of date.
#}
{% macro rfm_window_start(as_of_date) %}
    {%- set window = patient_base.rfm_settings().window_months -%}
    {%- if window is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return('cast(' ~ dbt.dateadd('month', -window, as_of_date) ~ ' as date)') }}
{% endmacro %}


{#
  rfm_worst_first(metric)
  The column and sort direction that put a metric's worst value first: recency_days descending (long
  ago is worse), frequency and monetary ascending. Ranking in this order makes rank 1 the worst value,
  so higher scores are better; this is where "higher is better" is decided.
  Arguments:
    metric: 'recency', 'frequency' or 'monetary'.
#}
{% macro rfm_worst_first(metric) -%}
    {%- set order = {
        'recency': 'recency_days desc',
        'frequency': 'frequency asc',
        'monetary': 'monetary asc',
    } -%}
    {%- if metric not in order -%}
        {{ exceptions.raise_compiler_error("rfm_worst_first: unknown metric '" ~ metric ~ "'") }}
    {%- endif -%}
    {{ order[metric] }}
{%- endmacro %}


{#
  rfm_quantile_score(rank_column, population_column)
  The quantile score least(N, floor(percent_rank() * N) + 1), computed exactly in integers:
  with percent_rank = (rank - 1) / (n - 1), floor(percent_rank * N) is the number of k in 1..N-1 with
  (rank - 1) * N >= k * (n - 1); the best value (percent_rank = 1) gets N. A population of one person
  has percent_rank 0, so score 1. No floating point, so a value on a boundary never drifts to the
  lower score, and equal values (equal ranks) always get equal scores.
  Arguments:
    rank_column: the column holding the metric's rank, worst first (rfm_worst_first()), ties sharing
      the lowest rank.
    population_column: the column holding the number of persons scored together (in the same
      partition).
#}
{% macro rfm_quantile_score(rank_column, population_column) -%}
    {%- set scale = patient_base.rfm_settings().scale -%}
    case
        when {{ population_column }} <= 1 then 1
        else 1
            {%- for k in range(1, scale) %}
            + case when ({{ rank_column }} - 1) * {{ scale }} >= {{ k }} * ({{ population_column }} - 1) then 1 else 0 end
            {%- endfor %}
    end
{%- endmacro %}


{#
  rfm_threshold_join(metrics, thresholds, metric, value_column, alias)
  A left join to the bins of seed rfm_thresholds for one metric of the configured scale: the bin whose
  lower_bound (inclusive, null = open) and upper_bound (exclusive, null = open) contain the value.
  A value that falls in no bin gets a null score, which the not_null tests on the scores catch.
  Arguments:
    metrics: the relation (CTE) holding the value.
    thresholds: the relation (CTE) holding seed rfm_thresholds.
    metric: 'recency', 'frequency' or 'monetary'.
    value_column: the metric's column in `metrics`.
    alias: alias for the joined bins.
#}
{% macro rfm_threshold_join(metrics, thresholds, metric, value_column, alias) -%}
    left join {{ thresholds }} as {{ alias }}
        on {{ alias }}.metric = '{{ metric }}'
        and {{ alias }}.rfm_scale = {{ patient_base.rfm_settings().scale }}
        and ({{ alias }}.lower_bound is null or {{ metrics }}.{{ value_column }} >= {{ alias }}.lower_bound)
        and ({{ alias }}.upper_bound is null or {{ metrics }}.{{ value_column }} < {{ alias }}.upper_bound)
{%- endmacro %}


{#
  rfm_scoring_ctes(metrics, thresholds, segment_map, partition_by=none)
  Emits the CTEs that turn metrics into scores and segments (to be placed inside a model's `with`,
  followed by a comma). The last one, `rfm_segmented`, holds every column of `metrics` plus
  r_score, f_score, m_score (integers 1..N), rfm_cell ('R3F2'), rfm_code ('R3F2M3') and segment.
  Method `quantile` (var rfm_method): per metric, rank() worst first (rfm_worst_first()) among the
  persons of the same partition, computed from the counts of distinct values, then
  rfm_quantile_score(). Method `thresholds`: the bins of seed rfm_thresholds (rfm_threshold_join()).
  Arguments:
    metrics: CTE with one row per person (per partition) and columns recency_days, frequency, monetary.
    thresholds: CTE selecting seed rfm_thresholds (unused by the quantile method).
    segment_map: CTE selecting the segment map of the scale (see rfm_segment_map()).
    partition_by: column splitting the population (the month of monthly states), or none.
#}
{% macro rfm_scoring_ctes(metrics, thresholds, segment_map, partition_by=none) -%}
{%- set settings = patient_base.rfm_settings() -%}
{%- if settings.method == 'quantile' %}
{#- rank() per metric, computed from the distinct values (a few thousand per month) instead of sorting
    every person: rank = 1 + the persons with a strictly worse value, so ties share the lowest rank -#}
{%- for metric, column in [('recency', 'recency_days'), ('frequency', 'frequency'), ('monetary', 'monetary')] %}
rfm_{{ metric }}_values as (

    select
        {% if partition_by %}{{ partition_by }}, {% endif %}{{ column }},
        count(*) as persons_with_value
    from {{ metrics }}
    group by {% if partition_by %}{{ partition_by }}, {% endif %}{{ column }}

),

rfm_{{ metric }}_ranks as (

    select
        {% if partition_by %}{{ partition_by }}, {% endif %}{{ column }},
        sum(persons_with_value) over (
            {% if partition_by %}partition by {{ partition_by }} {% endif %}order by {{ patient_base.rfm_worst_first(metric) }}
            rows between unbounded preceding and current row
        ) - persons_with_value + 1 as {{ metric[0] }}_rank
    from rfm_{{ metric }}_values

),
{% endfor %}
rfm_population as (

    select
        {% if partition_by %}{{ partition_by }}, {% endif %}count(*) as scored_persons
    from {{ metrics }}
    {% if partition_by %}group by {{ partition_by }}{% endif %}

),

rfm_ranked as (

    select
        {{ metrics }}.*,
        rfm_recency_ranks.r_rank,
        rfm_frequency_ranks.f_rank,
        rfm_monetary_ranks.m_rank,
        rfm_population.scored_persons
    from {{ metrics }}
    {%- for metric, column in [('recency', 'recency_days'), ('frequency', 'frequency'), ('monetary', 'monetary')] %}
    inner join rfm_{{ metric }}_ranks
        on {{ metrics }}.{{ column }} = rfm_{{ metric }}_ranks.{{ column }}
        {%- if partition_by %}
        and {{ metrics }}.{{ partition_by }} = rfm_{{ metric }}_ranks.{{ partition_by }}
        {%- endif %}
    {%- endfor %}
    {% if partition_by -%}
    inner join rfm_population
        on {{ metrics }}.{{ partition_by }} = rfm_population.{{ partition_by }}
    {%- else -%}
    cross join rfm_population
    {%- endif %}

),

rfm_scored as (

    select
        rfm_ranked.*,
        cast({{ patient_base.rfm_quantile_score('r_rank', 'scored_persons') }} as {{ dbt.type_int() }}) as r_score,
        cast({{ patient_base.rfm_quantile_score('f_rank', 'scored_persons') }} as {{ dbt.type_int() }}) as f_score,
        cast({{ patient_base.rfm_quantile_score('m_rank', 'scored_persons') }} as {{ dbt.type_int() }}) as m_score
    from rfm_ranked

),
{%- else %}
rfm_scored as (

    select
        {{ metrics }}.*,
        cast(recency_bins.score as {{ dbt.type_int() }}) as r_score,
        cast(frequency_bins.score as {{ dbt.type_int() }}) as f_score,
        cast(monetary_bins.score as {{ dbt.type_int() }}) as m_score
    from {{ metrics }}
    {{ patient_base.rfm_threshold_join(metrics, thresholds, 'recency', 'recency_days', 'recency_bins') }}
    {{ patient_base.rfm_threshold_join(metrics, thresholds, 'frequency', 'frequency', 'frequency_bins') }}
    {{ patient_base.rfm_threshold_join(metrics, thresholds, 'monetary', 'monetary', 'monetary_bins') }}

),
{%- endif %}

rfm_coded as (

    select
        rfm_scored.*,
        {{ dbt.concat([
            "'R'", 'cast(r_score as ' ~ dbt.type_string() ~ ')',
            "'F'", 'cast(f_score as ' ~ dbt.type_string() ~ ')',
        ]) }} as rfm_cell,
        {{ dbt.concat([
            "'R'", 'cast(r_score as ' ~ dbt.type_string() ~ ')',
            "'F'", 'cast(f_score as ' ~ dbt.type_string() ~ ')',
            "'M'", 'cast(m_score as ' ~ dbt.type_string() ~ ')',
        ]) }} as rfm_code
    from rfm_scored

),

rfm_segmented as (

    select
        rfm_coded.*,
        {{ segment_map }}.segment
    from rfm_coded
    left join {{ segment_map }}
        on rfm_coded.rfm_code = {{ segment_map }}.rfm_code

)
{%- endmacro %}


{# ---------------------------------------------------------------------------------------------- #}
{# Generic data tests for the RFM seeds and marts.                                                 #}
{# ---------------------------------------------------------------------------------------------- #}

{#
  test rfm_map_covers_every_code(model, column_name, scale)
  Fails with one row per RFM code of the scale (R1F1M1 .. R{N}F{N}M{N}) that the segment map lacks or
  holds more than once, and per value in the map that is not a valid code. With unique + not_null on
  the column this proves the map covers every code exactly once.
  Arguments:
    column_name: the column holding the code.
    scale: 3 or 5.
#}
{% test rfm_map_covers_every_code(model, column_name, scale) %}

with

expected_codes as (

    {%- set codes = [] -%}
    {%- for r in range(1, scale + 1) -%}
        {%- for f in range(1, scale + 1) -%}
            {%- for m in range(1, scale + 1) -%}
                {%- do codes.append('R' ~ r ~ 'F' ~ f ~ 'M' ~ m) -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endfor %}
    {% for code in codes -%}
    select '{{ code }}' as rfm_code{% if not loop.last %} union all{% endif %}
    {% endfor %}
),

mapped_codes as (

    select {{ column_name }} as rfm_code, count(*) as times_mapped
    from {{ model }}
    group by {{ column_name }}

),

problems as (

    select expected_codes.rfm_code, coalesce(mapped_codes.times_mapped, 0) as times_mapped
    from expected_codes
    left join mapped_codes
        on expected_codes.rfm_code = mapped_codes.rfm_code
    where coalesce(mapped_codes.times_mapped, 0) <> 1

    union all

    select mapped_codes.rfm_code, mapped_codes.times_mapped
    from mapped_codes
    left join expected_codes
        on mapped_codes.rfm_code = expected_codes.rfm_code
    where expected_codes.rfm_code is null

)

select * from problems

{% endtest %}


{#
  test rfm_segment_is_defined(model, column_name, scale, segments)
  Fails with one row per segment in the map that has no row of the same scale in the segments seed
  (so it would have no label or default action).
  Arguments:
    column_name: the column holding the segment.
    scale: 3 or 5.
    segments: the segments relation, e.g. ref('rfm_segments').
#}
{% test rfm_segment_is_defined(model, column_name, scale, segments) %}

select distinct mapped.{{ column_name }} as segment
from {{ model }} as mapped
left join {{ segments }} as defined
    on mapped.{{ column_name }} = defined.segment
    and defined.rfm_scale = {{ scale }}
where defined.segment is null

{% endtest %}


{#
  test rfm_thresholds_are_complete(model)
  Checks seed rfm_thresholds for scales 3 and 5 and each metric: scores 1..N each exactly once; the
  bins, ordered by lower bound, touch without gaps or overlaps (each lower_bound equals the previous
  upper_bound), the last is open upwards, the first starts at 0 or below (recency, frequency) or is
  open downwards (monetary, which refunds can make negative); and better values get higher scores
  (recency: score falls as the bounds rise; frequency, monetary: score rises). One row per problem.
#}
{% test rfm_thresholds_are_complete(model) %}

with

bins as (

    select
        rfm_scale,
        metric,
        score,
        lower_bound,
        upper_bound,
        row_number() over (
            partition by rfm_scale, metric
            order by case when lower_bound is null then 0 else 1 end, lower_bound
        ) as bin_number,
        count(*) over (partition by rfm_scale, metric) as bins_in_metric,
        lag(upper_bound) over (
            partition by rfm_scale, metric
            order by case when lower_bound is null then 0 else 1 end, lower_bound
        ) as previous_upper_bound
    from {{ model }}

),

expected as (

    {% for scale in [3, 5] -%}
    {%- set outer = loop -%}
    {%- for metric in ['recency', 'frequency', 'monetary'] -%}
    select {{ scale }} as rfm_scale, '{{ metric }}' as metric{% if not (outer.last and loop.last) %} union all{% endif %}
    {% endfor -%}
    {%- endfor %}
),

problems as (

    select rfm_scale, metric, score, 'bin count differs from the scale' as problem
    from bins
    where bins_in_metric <> rfm_scale

    union all

    select rfm_scale, metric, score, 'score outside 1..scale' as problem
    from bins
    where score < 1 or score > rfm_scale or score is null

    union all

    select rfm_scale, metric, score, 'scores not in order (better must score higher)' as problem
    from bins
    where score <> case when metric = 'recency' then rfm_scale + 1 - bin_number else bin_number end

    union all

    select rfm_scale, metric, score, 'gap or overlap with the previous bin' as problem
    from bins
    where bin_number > 1
        and (lower_bound is null or previous_upper_bound is null or lower_bound <> previous_upper_bound)

    union all

    select rfm_scale, metric, score, 'the last bin must have no upper bound' as problem
    from bins
    where bin_number = bins_in_metric and upper_bound is not null

    union all

    select rfm_scale, metric, score, 'the first bin must cover the lowest values' as problem
    from bins
    where bin_number = 1
        and not (lower_bound is null or (metric <> 'monetary' and lower_bound <= 0))

    union all

    select rfm_scale, metric, score, 'unknown metric' as problem
    from bins
    where metric not in ('recency', 'frequency', 'monetary')

    union all

    select expected.rfm_scale, expected.metric, null as score, 'no bins for this scale and metric' as problem
    from expected
    left join bins
        on expected.rfm_scale = bins.rfm_scale
        and expected.metric = bins.metric
    where bins.metric is null

)

select * from problems

{% endtest %}
{#
  test rfm_shares_sum_to_one(model, column_name, tolerance=0.000001)
  A share column sums to 1 (within `tolerance`) whenever the model has rows with a non-null share.
  Returns one row when it does not.
  Arguments:
    column_name: the share column.
    tolerance: allowed absolute difference from 1.
#}
{% test rfm_shares_sum_to_one(model, column_name, tolerance=0.000001) %}

select sum({{ column_name }}) as total_share
from {{ model }}
having count({{ column_name }}) > 0
    and abs(sum({{ column_name }}) - 1) > {{ tolerance }}

{% endtest %}


{#
  test rfm_migration_reconciles(model, persons)
  For every month in the migration mart: the patients counted equal the persons whose first completed
  visit is in that month or earlier (everyone who has an RFM state at that month end), and the
  'new_entry' rows equal the persons whose first completed visit is in that month. One row per month
  that disagrees.
  Arguments:
    persons: relation with one row per person and its first completed visit, e.g. ref('dim_patients')
      (column first_visit_at).
#}
{% test rfm_migration_reconciles(model, persons) %}

with

migration_totals as (

    select
        month,
        sum(patients) as patients,
        sum(case when from_segment = 'new_entry' then patients else 0 end) as new_entries
    from {{ model }}
    group by month

),

first_visits as (

    select cast({{ dbt.date_trunc('month', 'cast(first_visit_at as date)') }} as date) as first_visit_month
    from {{ persons }}
    where first_visit_at is not null

),

expected as (

    select
        migration_totals.month,
        sum(case when first_visits.first_visit_month <= migration_totals.month then 1 else 0 end) as patients,
        sum(case when first_visits.first_visit_month = migration_totals.month then 1 else 0 end) as new_entries
    from migration_totals
    cross join first_visits
    group by migration_totals.month

)

select
    migration_totals.month,
    migration_totals.patients,
    coalesce(expected.patients, 0) as expected_patients,
    migration_totals.new_entries,
    coalesce(expected.new_entries, 0) as expected_new_entries
from migration_totals
left join expected
    on migration_totals.month = expected.month
where migration_totals.patients <> coalesce(expected.patients, 0)
    or migration_totals.new_entries <> coalesce(expected.new_entries, 0)

{% endtest %}


{#
  test rfm_migration_matches_scores(model, scores)
  When the as-of date is the first day of a month, the state at the end of the previous month is the
  as-of state, so the last month's `to_segment` counts must equal the segment counts of rfm_scores:
  proof that the monthly recomputation and rfm_scores score alike. Does nothing for other as-of dates
  or when the migration mart is empty. One row per segment that disagrees.
  Arguments:
    scores: the rfm_scores relation.
#}
{% test rfm_migration_matches_scores(model, scores) %}

with

as_of as (

    select max(as_of_date) as as_of_date
    from {{ scores }}

),

last_month as (

    select max(month) as month
    from {{ model }}

),

applies as (

    select last_month.month
    from last_month
    cross join as_of
    where as_of.as_of_date = cast({{ dbt.date_trunc('month', 'as_of.as_of_date') }} as date)
        and last_month.month = cast({{ dbt.dateadd('month', -1, 'as_of.as_of_date') }} as date)

),

migration_counts as (

    select migration.to_segment as segment, sum(migration.patients) as patients
    from {{ model }} as migration
    inner join applies
        on migration.month = applies.month
    group by migration.to_segment

),

score_counts as (

    select scores.segment, count(*) as patients
    from {{ scores }} as scores
    cross join applies
    group by scores.segment

),

compared as (

    select
        coalesce(migration_counts.segment, score_counts.segment) as segment,
        coalesce(migration_counts.patients, 0) as migration_patients,
        coalesce(score_counts.patients, 0) as score_patients
    from migration_counts
    full outer join score_counts
        on migration_counts.segment = score_counts.segment

)

select * from compared
where migration_patients <> score_patients

{% endtest %}
