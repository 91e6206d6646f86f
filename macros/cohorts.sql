{#
  cohort_month_offsets(max_months=1200)
  A one-column relation `month_offset` holding 0, 1, …, max_months - 1: the number spine that the
  cohort grid and the monthly KPIs join to, always with an upper bound taken from the data
  (`month_offset <= last_offset`), so it never multiplies persons by months. Built with
  dbt.generate_series, so it is portable; the default covers 100 years of history.
  Arguments:
    max_months: how many offsets to generate (a number known at compile time).
#}
{% macro cohort_month_offsets(max_months=1200) -%}
    select cast(generated_number - 1 as {{ dbt.type_int() }}) as month_offset
    from ({{ dbt.generate_series(max_months) }}) as month_series
{%- endmacro %}


{#
  last_observed_month(as_of_date)
  First day of the last month with any observed day before the as-of date: the month of
  as_of_date - 1 day. As of 2025-07-01 that is 2025-06-01 (June fully observed); as of 2025-07-15 it
  is 2025-07-01 (July partly observed).
  Arguments:
    as_of_date: column or SQL expression holding the as-of date.
#}
{% macro last_observed_month(as_of_date) -%}
    cast({{ dbt.date_trunc('month', dbt.dateadd('day', -1, as_of_date)) }} as date)
{%- endmacro %}


{#
  cohort_slices()
  The cuts every cohort view is computed for, as a list of {slice_type, slice_value}: slice_value is
  the SQL expression (over int_cohort_person_months) that names the slice a person falls in. The
  'all' slice holds every person; cohort_revenue and cohort_retention are that slice. Add a cut here
  (and a column to int_cohort_person_months) and every sliced cohort model gets it.
  Arguments: none.
#}
{% macro cohort_slices() -%}
    {{ return([
        {'slice_type': 'all', 'slice_value': "'all'"},
        {'slice_type': 'acquisition_channel', 'slice_value': 'acquisition_channel'},
        {'slice_type': 'first_specialty', 'slice_value': 'first_specialty'},
    ]) }}
{%- endmacro %}


{#
  ratio_or_null(numerator, denominator, scale=4)
  numerator / denominator as a decimal with `scale` places, null when the denominator is 0 or null.
  The numerator is cast to a wide decimal first, so integer counts never divide as integers
  (Postgres) and the result type is the same on every engine.
  Arguments:
    numerator: column or SQL expression.
    denominator: column or SQL expression.
    scale: decimal places of the result (2 for money per unit, 4 for shares and rates).
#}
{% macro ratio_or_null(numerator, denominator, scale=4) -%}
    cast(
        cast({{ numerator }} as {{ api.Column.numeric_type('numeric', 28, 10) }})
        / nullif({{ denominator }}, 0)
        as {{ api.Column.numeric_type('numeric', 18, scale) }}
    )
{%- endmacro %}


{#
  test cohort_value_in_range(model, column_name, min_value=none, max_value=none)
  Generic test: fails for every non-null value below min_value or above max_value (both inclusive;
  leave one out for an open range). Meant for plausibility checks at severity warn.
  Arguments:
    min_value: lowest accepted value (a SQL literal), or none.
    max_value: highest accepted value (a SQL literal), or none.
#}
{% test cohort_value_in_range(model, column_name, min_value=none, max_value=none) %}

select {{ column_name }} as out_of_range_value
from {{ model }}
where {{ column_name }} is not null
    and (
        1 = 0
        {% if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
        {% if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
    )

{% endtest %}


{#
  test cohort_sum_matches(model, column_name, compare_model, compare_column, model_filter=none, compare_filter=none)
  Generic reconciliation test: the sum of column_name over model (optionally filtered by
  `model_filter`) equals the sum of compare_column over compare_model (optionally filtered by
  `compare_filter`);
  returns one row with both totals when they differ. Null sums count as 0.
  Arguments:
    compare_model: the relation to reconcile with, e.g. ref('fct_payments').
    compare_column: column or SQL expression summed over compare_model.
    model_filter: SQL condition on model's rows, or none.
    compare_filter: SQL condition on compare_model's rows, or none.
#}
{% test cohort_sum_matches(model, column_name, compare_model, compare_column, model_filter=none, compare_filter=none) %}

with

model_total as (

    select coalesce(sum({{ column_name }}), 0) as total
    from {{ model }}
    {% if model_filter %}where {{ model_filter }}{% endif %}

),

compare_total as (

    select coalesce(sum({{ compare_column }}), 0) as total
    from {{ compare_model }}
    {% if compare_filter %}where {{ compare_filter }}{% endif %}

)

select
    model_total.total as model_total,
    compare_total.total as compare_total
from model_total
cross join compare_total
where model_total.total <> compare_total.total

{% endtest %}


{#
  test cohort_grain_is_unique(model, columns)
  The key test for a composite grain (cohort month x month since first, slice x cohort x month):
  fails with one row per combination of `columns` that occurs more than once or has a null part.
  Portable: a group by, no string concatenation of dates and numbers.
  Arguments:
    columns: list of the column names that make up the grain.
#}
{% test cohort_grain_is_unique(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as rows_with_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
    {%- for column in columns %}
    or {{ column }} is null
    {%- endfor %}

{% endtest %}
