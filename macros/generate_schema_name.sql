{#
  generate_schema_name(custom_schema_name, node)
  Use the folder's schema (`raw`, `staging`, `intermediate`, `marts`) as is, not prefixed with the
  target schema, so BI tools always find `marts.rfm_scores` whatever the profile's schema is.
  Nodes without a custom schema fall back to the target schema. On PostgreSQL and Spark the runner
  builds into a new version of each schema (`marts__next`, `marts__b`) and publishes it at the end:
  it passes the suffix in PATIENTBASE_SCHEMA_SUFFIX (empty on DuckDB, which copies the whole file).
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}{{ env_var('PATIENTBASE_SCHEMA_SUFFIX', '') }}
    {%- endif -%}
{%- endmacro %}
