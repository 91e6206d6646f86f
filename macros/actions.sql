{#
  Next best action and call list: small portable helpers shared by the models in
  models/intermediate/int_*action*, int_*recall*, int_*transition*, int_*call* and models/marts/actions.
  See docs/decisions.md, section "Next best action".
#}


{#
  service_category_codes()
  The closed vocabulary of service categories as stg_mis__visit_services writes it (anything else is
  mapped to 'other' there), as a list. service_transitions pivots on it at compile time (one flag and
  one "next date" column per category), which keeps the transition count linear in visits. The seed
  recall_rules must hold exactly these codes (a dbt test checks it); a new category needs a line here,
  in the staging model and in the seed.
  Arguments: none.
#}
{% macro service_category_codes() -%}
    {{ return([
        'consultation', 'diagnostics', 'hygiene', 'treatment', 'checkup',
        'vaccination', 'surgery', 'chronic_care', 'other',
    ]) }}
{%- endmacro %}


{#
  quoted_list(values)
  A var that holds a list of strings (e.g. churn_prevention_segments) as a SQL list body:
  'champions', 'loyal'. A single string is read as a one-element list, so
  `--vars '{vip_segments: champions}'` works too. Quotes inside values are doubled.
  Arguments:
    values: a list of strings, or one string.
#}
{% macro quoted_list(values) -%}
    {%- if values is string -%}
        {%- set values = [values] -%}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}
        {%- do quoted.append("'" ~ (value | string | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {{ quoted | join(', ') if quoted else "''" }}
{%- endmacro %}


{#
  date_plus_days(date_expression, days)
  A date `days` days after `date_expression` (negative = before), as a date: dbt.dateadd cast back
  to date, because several adapters return a timestamp from date arithmetic.
  Arguments:
    date_expression: column or SQL expression holding a date.
    days: a number or SQL expression (a column, a var) of days.
#}
{% macro date_plus_days(date_expression, days) -%}
    cast({{ dbt.dateadd('day', days, date_expression) }} as date)
{%- endmacro %}


{#
  days_between(start_date, end_date)
  Whole days from start_date to end_date (end - start), as an integer: dbt.datediff with the result
  cast, so comparisons with integer vars behave the same on every engine.
  Arguments:
    start_date: column or SQL expression (date).
    end_date: column or SQL expression (date).
#}
{% macro days_between(start_date, end_date) -%}
    cast({{ dbt.datediff(start_date, end_date, 'day') }} as {{ dbt.type_int() }})
{%- endmacro %}


{#
  as_text(expression)
  An expression cast to a string, for building the readable `reason` sentences. Dates come out as
  YYYY-MM-DD on DuckDB, Postgres and Spark.
  Arguments:
    expression: column or SQL expression.
#}
{% macro as_text(expression) -%}
    cast({{ expression }} as {{ dbt.type_string() }})
{%- endmacro %}


{#
  format_amount(expression)
  A money amount rounded to whole units as text for a sentence a person reads: "120 000" on DuckDB
  (thousands separated by a space, as Russian texts write them), the plain rounded number elsewhere.
  Dispatched: add `<adapter>__format_amount` for thousands separators on another engine.
  Arguments:
    expression: column or SQL expression holding an amount.
#}
{% macro format_amount(expression) -%}
    {{ return(adapter.dispatch('format_amount', 'patient_base')(expression)) }}
{%- endmacro %}

{% macro default__format_amount(expression) -%}
    cast(cast(round({{ expression }}, 0) as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro duckdb__format_amount(expression) -%}
    replace(format('{:,}', cast(round({{ expression }}, 0) as bigint)), ',', ' ')
{%- endmacro %}


{#
  median_of(expression)
  The median (continuous: the mean of the two middle values for an even count) of an expression, as
  an aggregate. Ordered-set aggregate `percentile_cont(0.5) within group (order by …)` on DuckDB and
  Postgres; Spark spells it `percentile(…, 0.5)`.
  Arguments:
    expression: column or SQL expression aggregated.
#}
{% macro median_of(expression) -%}
    {{ return(adapter.dispatch('median_of', 'patient_base')(expression)) }}
{%- endmacro %}

{% macro default__median_of(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{% macro spark__median_of(expression) -%}
    percentile({{ expression }}, 0.5)
{%- endmacro %}


{#
  action_channel(preference, can_call, can_message)
  The channel an action goes out by: for preference 'call', a call when the person may be called
  (valid phone, no opt-out, alive: dim_patients.can_call), else a message when they may be messaged,
  else none; for preference 'message', a message when allowed, else none (an action meant for a
  message is not worth a call); anything else none.
  Arguments:
    preference: column holding action_rules.channel_preference.
    can_call: boolean column.
    can_message: boolean column.
#}
{% macro action_channel(preference, can_call, can_message) -%}
    case
        when {{ preference }} = 'call' and {{ can_call }} then 'call'
        when {{ preference }} in ('call', 'message') and {{ can_message }} then 'message'
        else 'none'
    end
{%- endmacro %}


{#
  test no_rows_where(model, condition)
  Fails with every row of the model where `condition` (a SQL boolean expression over its columns)
  holds: the invariants of the action marts ("a call only where the person may be called",
  "followed visits never exceed from visits"). A null condition does not fail.
  Arguments:
    condition: SQL boolean expression that no row may satisfy.
#}
{% test no_rows_where(model, condition) %}

select *
from {{ model }}
where {{ condition }}

{% endtest %}


{#
  text_language()
  The language of the texts people read in the marts (var `language`: 'ru' or 'en'); the plain text
  columns (action_label, reason, offer, segment_label, specialties) are the `_<language>` ones.
  Fails the compile on any other value, so a typo never yields a list in a language nobody chose.
  Arguments: none.
#}
{% macro text_language() -%}
    {%- set language = (var('language', 'ru') or 'ru') | string | lower -%}
    {%- if language not in ('ru', 'en') -%}
        {{ exceptions.raise_compiler_error("var language must be 'ru' or 'en', got '" ~ language ~ "'") }}
    {%- endif -%}
    {{ return(language) }}
{%- endmacro %}


{#
  reason_on(template, counted_from, on_date)
  A reason sentence for a given day: the template's `{days}` replaced by the whole days from
  `counted_from` to `on_date` ("Visit on 2025-01-10, {days} days ago" on 2025-07-03 -> "…, 174 days
  ago"). A template without a day count (counted_from null) is returned as it is. The next best action
  words its reasons as of the as-of date; the call list words the same templates as of its list date.
  Arguments:
    template: column or SQL expression holding the sentence with `{days}`.
    counted_from: column or SQL expression (date) the count runs from; null = no count.
    on_date: column or SQL expression (date) the sentence is said on.
#}
{% macro reason_on(template, counted_from, on_date) -%}
    case
        when {{ counted_from }} is null then {{ template }}
        else replace(
            {{ template }}, '{days}', {{ patient_base.as_text(patient_base.days_between(counted_from, on_date)) }}
        )
    end
{%- endmacro %}
