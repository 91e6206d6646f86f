{#
  Engine differences the models need, each behind adapter.dispatch('…', 'patient_base') with a
  default and the engine variants. See docs/decisions.md, "Engines".
#}


{#
  round_to(expression, digits=0)
  round(expression, digits) on any numeric expression. PostgreSQL rounds to a number of digits only a
  numeric (round(double precision, integer) does not exist), so the value is cast to numeric there;
  half away from zero on DuckDB, PostgreSQL and Spark.
  Arguments:
    expression: column or SQL expression (integer, decimal or double).
    digits: decimal places kept (an integer literal).
#}
{% macro round_to(expression, digits=0) -%}
    {{ return(adapter.dispatch('round_to', 'patient_base')(expression, digits)) }}
{%- endmacro %}

{% macro default__round_to(expression, digits=0) -%}
    round({{ expression }}, {{ digits }})
{%- endmacro %}

{% macro postgres__round_to(expression, digits=0) -%}
    round(cast({{ expression }} as numeric), {{ digits }})
{%- endmacro %}


{#
  exact_quotient(numerator, denominator)
  numerator / denominator as an exact decimal with at least 10 decimal places, so that casting it to
  money (2 places) or a rate (4 places) rounds a half-cent tie the same way on every engine.
  PostgreSQL and Spark divide decimals exactly; DuckDB returns a DOUBLE for DECIMAL / DECIMAL
  (12.345 becomes 12.34499…), so there the double is first rounded to 10 places, which removes the
  binary noise before the final cast. The denominator is not guarded: wrap it in nullif(…, 0).
  Arguments:
    numerator: column or SQL expression (decimal or integer).
    denominator: column or SQL expression (decimal or integer).
#}
{% macro exact_quotient(numerator, denominator) -%}
    {{ return(adapter.dispatch('exact_quotient', 'patient_base')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__exact_quotient(numerator, denominator) -%}
    (cast({{ numerator }} as {{ api.Column.numeric_type('numeric', 28, 10) }}) / ({{ denominator }}))
{%- endmacro %}

{% macro duckdb__exact_quotient(numerator, denominator) -%}
    cast(
        cast({{ numerator }} as {{ api.Column.numeric_type('numeric', 28, 10) }}) / ({{ denominator }})
        as {{ api.Column.numeric_type('numeric', 38, 10) }}
    )
{%- endmacro %}


{#
  exact_product(left, right)
  left * right as an exact decimal with 10 decimal places: a rate (double or decimal) times money,
  rounded the same way on every engine once cast to money. DuckDB and PostgreSQL multiply a double as
  a double, so both factors are cast to decimals first.
  Arguments:
    left: column or SQL expression.
    right: column or SQL expression.
#}
{% macro exact_product(left, right) -%}
    cast(
        cast({{ left }} as {{ api.Column.numeric_type('numeric', 28, 10) }})
        * cast({{ right }} as {{ api.Column.numeric_type('numeric', 28, 10) }})
        as {{ api.Column.numeric_type('numeric', 38, 10) }}
    )
{%- endmacro %}


{#
  ordered_list(expression, order_by, separator=',')
  String aggregate: the values of `expression` joined by `separator` in the order of `order_by`
  (a column or expression, ascending). dbt.listagg on DuckDB and PostgreSQL; on Spark dbt.listagg
  ignores its order by (collect_list gathers in any order), so the values are collected as
  (order key, value) structs, sorted and joined.
  Arguments:
    expression: column or SQL expression (text).
    order_by: column or SQL expression the values are ordered by.
    separator: literal text put between values.
#}
{% macro ordered_list(expression, order_by, separator=',') -%}
    {{ return(adapter.dispatch('ordered_list', 'patient_base')(expression, order_by, separator)) }}
{%- endmacro %}

{% macro default__ordered_list(expression, order_by, separator=',') -%}
    {{ dbt.listagg(expression, "'" ~ separator ~ "'", 'order by ' ~ order_by) }}
{%- endmacro %}

{% macro spark__ordered_list(expression, order_by, separator=',') -%}
    array_join(
        transform(
            array_sort(collect_list(named_struct('sort_key', {{ order_by }}, 'value', {{ expression }}))),
            item -> item.value
        ),
        '{{ separator }}'
    )
{%- endmacro %}


{#
  spark__load_csv_rows(model, agate_table)
  Overrides dbt-spark's seed loader (dbt dispatches `load_csv_rows` to the root project first). dbt-spark
  binds seed values as parameters, which on the `session` method breaks on an apostrophe (the
  `rfm_segments` label "Can't lose them" left the seed empty) and writes an empty cell as the text
  'None'. Here every value is written as a literal: null for an empty cell, strings quoted with
  backslash escapes (Spark's string syntax), numbers and booleans as they are.
  Arguments:
    model: the seed node.
    agate_table: the seed's rows as dbt read them.
#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {% set column_override = model['config'].get('column_types', {}) %}
    {% set statements = [] %}
    {% for chunk in agate_table.rows | batch(get_batch_size()) %}
        {% set sql %}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for value in row -%}
                    {%- set col_name = agate_table.column_names[loop.index0] -%}
                    {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
                    {%- if value is none -%}
                        cast(null as {{ type }})
                    {%- elif value is sameas true or value is sameas false -%}
                        cast({{ 'true' if value else 'false' }} as {{ type }})
                    {%- elif value is number -%}
                        cast({{ value }} as {{ type }})
                    {%- else -%}
                        cast('{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}' as {{ type }})
                    {%- endif -%}
                    {%- if not loop.last %}, {% endif -%}
                {%- endfor -%})
                {%- if not loop.last %},{% endif %}
            {% endfor %}
        {% endset %}
        {% do adapter.add_query(sql, abridge_sql_log=True) %}
        {% if loop.index0 == 0 %}
            {% do statements.append(sql) %}
        {% endif %}
    {% endfor %}
    {{ return(statements[0]) }}
{% endmacro %}


{#
  hex_to_bigint(digest, start, digits)
  `digits` lower-case hex digits of the string `digest`, from position `start` (1-based), read as a
  BIGINT. The default reads each digit's position in '0123456789abcdef' (portable, but it repeats the
  digest expression per digit, and an engine that does not share the repeated md5 computes it
  `digits` times); the engines read them in one cast. Measured on DuckDB, 9.9M rows: the training
  sample's 8 digits 18 s -> under 1 s of int_persons_features_at_cutoff (docs/decisions.md).
  Arguments:
    digest: SQL expression of a lower-case hex string (dbt.hash).
    start: position of the first digit read (an integer literal, 1-based).
    digits: digits read (an integer literal, at most 15).
#}
{% macro hex_to_bigint(digest, start, digits) -%}
    {{ return(adapter.dispatch('hex_to_bigint', 'patient_base')(digest, start, digits)) }}
{%- endmacro %}

{% macro default__hex_to_bigint(digest, start, digits) -%}
    (
        {%- for i in range(digits) %}
        cast({{ dbt.position("substring(" ~ digest ~ ", " ~ (start + i) ~ ", 1)", "'0123456789abcdef'") }} - 1 as {{ dbt.type_bigint() }})
            * {{ 16 ** (digits - 1 - i) }}{% if not loop.last %} +{% endif %}
        {%- endfor %}
    )
{%- endmacro %}

{% macro duckdb__hex_to_bigint(digest, start, digits) -%}
    cast('0x' || substring({{ digest }}, {{ start }}, {{ digits }}) as bigint)
{%- endmacro %}

{% macro postgres__hex_to_bigint(digest, start, digits) -%}
    cast(cast('x' || lpad(substring({{ digest }}, {{ start }}, {{ digits }}), 16, '0') as bit(64)) as bigint)
{%- endmacro %}

{% macro spark__hex_to_bigint(digest, start, digits) -%}
    cast(conv(substring({{ digest }}, {{ start }}, {{ digits }}), 16, 10) as bigint)
{%- endmacro %}
