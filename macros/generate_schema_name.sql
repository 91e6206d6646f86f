{#
  generate_schema_name(custom_schema_name, node)
  Use the folder's schema (`raw`, `staging`, `intermediate`, `marts`) as is, not prefixed with the
  target schema, so BI tools always find `marts.rfm_scores` whatever the profile's schema is.
  Nodes without a custom schema fall back to the target schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
