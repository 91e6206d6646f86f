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
  (Postgres) and the result type is the same on every engine; the quotient is exact (exact_quotient),
  so a half-cent tie rounds the same way on DuckDB, PostgreSQL and Spark.
  Arguments:
    numerator: column or SQL expression.
    denominator: column or SQL expression.
    scale: decimal places of the result (2 for money per unit, 4 for shares and rates).
#}
{% macro ratio_or_null(numerator, denominator, scale=4) -%}
    cast(
        {{ patient_base.exact_quotient(numerator, 'nullif(' ~ denominator ~ ', 0)') }}
        as {{ api.Column.numeric_type('numeric', 18, scale) }}
    )
{%- endmacro %}
