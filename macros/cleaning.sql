{#
  clean_text(column)
  Text as a human typed it, tidied: the value cast to a string, surrounding spaces trimmed, and null
  when nothing is left (empty or whitespace-only). Use for ids, names, free comments.
  Arguments:
    column: a column name or SQL expression.
#}
{% macro clean_text(column) -%}
    nullif(trim(cast({{ column }} as {{ dbt.type_string() }})), '')
{%- endmacro %}


{#
  clean_code(column)
  A machine code (specialty, payment method, action code): clean_text, then lower-cased.
  Arguments:
    column: a column name or SQL expression.
#}
{% macro clean_code(column) -%}
    lower({{ patient_base.clean_text(column) }})
{%- endmacro %}


{#
  clean_status(column)
  A value from a fixed vocabulary (visit status, plan status, call result): clean_code, with inner
  spaces and hyphens turned into underscores, so 'No Show', 'no-show' and ' no_show ' all read 'no_show'.
  Arguments:
    column: a column name or SQL expression.
#}
{% macro clean_status(column) -%}
    replace(replace({{ patient_base.clean_code(column) }}, ' ', '_'), '-', '_')
{%- endmacro %}


{#
  clean_flag(column)
  A yes/no flag where empty means "no": the value cast to boolean, null coalesced to false.
  Arguments:
    column: a column name or SQL expression holding a boolean (or a value the engine casts to one).
#}
{% macro clean_flag(column) -%}
    coalesce(cast({{ column }} as {{ dbt.type_boolean() }}), false)
{%- endmacro %}


{#
  cast_money(column)
  A money amount as a decimal with two places (see type_money).
  Arguments:
    column: a column name or SQL expression.
#}
{% macro cast_money(column) -%}
    cast({{ column }} as {{ patient_base.type_money() }})
{%- endmacro %}


{#
  type_money()
  The SQL type of money columns: a decimal with 18 digits, 2 after the point (the contract's "money is
  two decimals"), spelled the way the adapter spells decimals. Dispatched, so an engine that needs
  another spelling can add `<adapter>__type_money`.
  Arguments: none.
#}
{% macro type_money() -%}
    {{ return(adapter.dispatch('type_money', 'patient_base')()) }}
{%- endmacro %}

{% macro default__type_money() -%}
    {{ return(api.Column.numeric_type('numeric', 18, 2)) }}
{%- endmacro %}


{#
  join_words(columns, separator=' ')
  Joins the non-null values of several text expressions with a separator, skipping nulls (no double or
  dangling separators); null when all are null. Portable: built from coalesce/case and dbt.concat, not
  concat_ws (whose null handling differs between engines). Give it already-cleaned values (see
  clean_text) so empty strings count as missing.
  Arguments:
    columns: list of column names or SQL expressions, in output order.
    separator: string put between two present values (default one space).
#}
{% macro join_words(columns, separator=' ') -%}
    {%- set sep = "'" ~ (separator | replace("'", "''")) ~ "'" -%}
    {%- set parts = [] -%}
    {%- for col in columns -%}
        {%- if loop.first -%}
            {%- do parts.append("coalesce(" ~ col ~ ", '')") -%}
        {%- else -%}
            {%- set previous = columns[:loop.index0] -%}
            {%- set any_previous = previous[0] if previous | length == 1 else "coalesce(" ~ previous | join(", ") ~ ")" -%}
            {%- do parts.append(
                "case when " ~ col ~ " is null then ''"
                ~ " when " ~ any_previous ~ " is not null then " ~ dbt.concat([sep, col])
                ~ " else " ~ col ~ " end"
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    nullif({{ dbt.concat(parts) }}, '')
{%- endmacro %}
