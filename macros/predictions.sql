{#
  optional_source(source_name, table_name, columns)
  Select the listed columns of a source table that may not exist yet (the prediction tables that
  `patientbase predict` writes after the first build): the table cast to the listed types when it
  exists, else no rows with the same columns and types, so every model downstream still builds. A
  listed column the table lacks (written by an older version) reads as null.
  Arguments:
    source_name, table_name: the source, as for source().
    columns: list of [column name, SQL type] pairs.
#}
{% macro optional_source(source_name, table_name, columns) -%}
    {%- set src = source(source_name, table_name) -%}
    {%- set relation = adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier) if execute else none -%}
    {#- a column an older predict did not write yet reads as null until predict runs again -#}
    {%- set present = (adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list)
                      if relation is not none else [] -%}
    select
    {%- for name, type in columns %}
        cast({{ name if name | lower in present else 'null' }} as {{ type }}) as {{ name }}{{ ',' if not loop.last }}
    {%- endfor %}
    {% if relation is not none -%}
    from {{ src }}
    {%- else -%}
    from (select 1 as no_rows) as empty_source
    where 1 = 0
    {%- endif %}
{%- endmacro %}
