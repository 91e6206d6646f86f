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
  rfm_quantile_cuts(metric, metrics, partition_by=none)
  The cut points of one metric's quantile score, one row per partition (or one row): cut_1 .. cut_{N-1},
  where a value scores 1 + the number of cuts it reaches. The score is defined on ranks: with rank()
  worst first (rfm_worst_first(), ties sharing the lowest rank) among n persons and
  percent_rank = (rank - 1) / (n - 1), the score is least(N, floor(percent_rank * N) + 1), which is
  1 + the number of k in 1..N-1 with (rank - 1) * N >= k * (n - 1), all in integers (no floating
  point, so a value on a boundary never drifts to the lower score). Since the rank grows with the value
  (in worst-first order), each of those conditions holds exactly from some value on: cut_k is the
  worst value that meets it. Equal values share a rank, so they always get equal scores; a population
  of one person scores 1 (no cuts). Ranks are counted over the distinct values of the partition (a few
  thousand), never by sorting every person, and the persons then join one row of cuts instead of a
  rank per value, which keeps 15M person-month states one cheap pass.
  Emits two CTEs (followed by a comma): rfm_<metric>_values and rfm_<metric>_cuts.
  Arguments:
    metric: 'recency', 'frequency' or 'monetary'.
    metrics: the relation (CTE) holding the values.
    partition_by: column splitting the population (the month of monthly states), or none.
#}
{% macro rfm_quantile_cuts(metric, metrics, partition_by=none) -%}
{%- set scale = patient_base.rfm_settings().scale -%}
{%- set column = {'recency': 'recency_days', 'frequency': 'frequency', 'monetary': 'monetary'}[metric] -%}
{#- recency is worst first in descending order: its "worst value reaching the cut" is the largest -#}
{%- set pick = 'max' if metric == 'recency' else 'min' -%}
rfm_{{ metric }}_values as (

    select
        {% if partition_by %}{{ partition_by }}, {% endif %}{{ column }} as metric_value,
        count(*) as persons_with_value,
        sum(count(*)) over ({% if partition_by %}partition by {{ partition_by }}{% endif %}) as scored_persons,
        sum(count(*)) over (
            {% if partition_by %}partition by {{ partition_by }} {% endif %}order by {{ patient_base.rfm_worst_first(metric) }}
            rows between unbounded preceding and current row
        ) - count(*) + 1 as value_rank
    from {{ metrics }}
    group by {% if partition_by %}{{ partition_by }}, {% endif %}{{ column }}

),

rfm_{{ metric }}_cuts as (

    select
        {% if partition_by %}{{ partition_by }}{% else %}1 as cuts_key{% endif %}
        {%- for k in range(1, scale) %},
        {{ pick }}(case
            when scored_persons > 1 and (value_rank - 1) * {{ scale }} >= {{ k }} * (scored_persons - 1)
                then metric_value
        end) as cut_{{ k }}
        {%- endfor %}
    from rfm_{{ metric }}_values
    {% if partition_by %}group by {{ partition_by }}{% endif %}

),
{%- endmacro %}


{#
  rfm_quantile_score(metric, column, cuts)
  The score of `column` from the cuts of rfm_quantile_cuts(): 1 + the number of cuts reached (a null
  cut is never reached), as an integer.
  Arguments:
    metric: 'recency', 'frequency' or 'monetary'.
    column: the metric's column (qualified as needed).
    cuts: the alias of the joined rfm_<metric>_cuts row.
#}
{% macro rfm_quantile_score(metric, column, cuts) -%}
    {%- set scale = patient_base.rfm_settings().scale -%}
    {%- set reaches = '<=' if metric == 'recency' else '>=' -%}
    cast(1
        {%- for k in range(1, scale) %}
        + case when {{ column }} {{ reaches }} {{ cuts }}.cut_{{ k }} then 1 else 0 end
        {%- endfor %}
    as {{ dbt.type_int() }})
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
{%- for metric in ['recency', 'frequency', 'monetary'] %}
{{ patient_base.rfm_quantile_cuts(metric, metrics, partition_by) }}
{% endfor %}
rfm_scored as (

    select
        {{ metrics }}.*,
        {{ patient_base.rfm_quantile_score('recency', metrics ~ '.recency_days', 'recency_cuts') }} as r_score,
        {{ patient_base.rfm_quantile_score('frequency', metrics ~ '.frequency', 'frequency_cuts') }} as f_score,
        {{ patient_base.rfm_quantile_score('monetary', metrics ~ '.monetary', 'monetary_cuts') }} as m_score
    from {{ metrics }}
    {%- for metric in ['recency', 'frequency', 'monetary'] %}
    {% if partition_by -%}
    inner join rfm_{{ metric }}_cuts as {{ metric }}_cuts
        on {{ metrics }}.{{ partition_by }} = {{ metric }}_cuts.{{ partition_by }}
    {%- else -%}
    cross join rfm_{{ metric }}_cuts as {{ metric }}_cuts
    {%- endif %}
    {%- endfor %}

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

rfm_segment_codes as (

    {#- the map's codes with their scores as integers ('R3F2M1' -> 3, 2, 1; N <= 5, one digit each),
        so 15M person-month states join on three integers instead of building a string each -#}
    select
        rfm_code,
        substring(rfm_code, 1, 4) as rfm_cell,
        cast(substring(rfm_code, 2, 1) as {{ dbt.type_int() }}) as r_score,
        cast(substring(rfm_code, 4, 1) as {{ dbt.type_int() }}) as f_score,
        cast(substring(rfm_code, 6, 1) as {{ dbt.type_int() }}) as m_score,
        segment
    from {{ segment_map }}

),

rfm_segmented as (

    select
        rfm_scored.*,
        rfm_segment_codes.rfm_cell,
        rfm_segment_codes.rfm_code,
        rfm_segment_codes.segment
    from rfm_scored
    left join rfm_segment_codes
        on rfm_scored.r_score = rfm_segment_codes.r_score
        and rfm_scored.f_score = rfm_segment_codes.f_score
        and rfm_scored.m_score = rfm_segment_codes.m_score

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
