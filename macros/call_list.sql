{#
  call_list_admins()
  The administrators who call on the list's day, in order, from var `call_list_admins`: a list of
  names (as in the MIS call log, so a family stays with the administrator who called it last), or a
  number N for admin1 … adminN. The runner passes the config's `admins`. Always at least one name.
  Arguments: none.
#}
{% macro call_list_admins() -%}
    {%- set admins = var('call_list_admins', ['admin1']) -%}
    {%- if admins is number or (admins is string and admins.isdigit()) -%}
        {%- set names = [] -%}
        {%- for n in range(1, (admins | int) + 1) -%}
            {%- do names.append('admin' ~ n) -%}
        {%- endfor -%}
        {%- set admins = names -%}
    {%- elif admins is string -%}
        {%- set admins = [admins] -%}
    {%- endif -%}
    {%- if admins | length == 0 -%}
        {{ exceptions.raise_compiler_error("var call_list_admins must name at least one administrator") }}
    {%- endif -%}
    {{ return(admins | map('string') | list) }}
{%- endmacro %}


{#
  daily_call_capacity()
  How many calls the day's list holds: the number of administrators (call_list_admins) x var
  `calls_per_admin`. The call list is capped at it and base_potential counts working days with it.
  Arguments: none.
#}
{% macro daily_call_capacity() -%}
    {{ return((patient_base.call_list_admins() | length) * (var('calls_per_admin', 50) | int)) }}
{%- endmacro %}


{#
  sql_string(value)
  A Jinja value as a SQL string literal, quotes doubled: O'Neil -> 'O''Neil'.
  Arguments:
    value: any value; it is converted to text.
#}
{% macro sql_string(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}


{#
  national_phone(column)
  A Russian E.164 number as administrators dial it: '+79123456789' -> '8 (912) 345-67-89'. Other
  countries' numbers stay E.164 (the export may format them for display).
  Arguments:
    column: column or SQL expression holding an E.164 phone.
#}
{% macro national_phone(column) -%}
    case
        when {{ column }} like '+7__________' and {{ dbt.length(column) }} = 12
            then '8 (' || substring({{ column }}, 3, 3) || ') ' || substring({{ column }}, 6, 3)
                || '-' || substring({{ column }}, 9, 2) || '-' || substring({{ column }}, 11, 2)
        else {{ column }}
    end
{%- endmacro %}


{#
  list_row_id(list_date, list_rank)
  The id a call-list row keeps in the file and when its outcomes come back: YYYYMMDD-NNNNN, e.g.
  20250701-00003 for the third phone of the 2025-07-01 list.
  Arguments:
    list_date: column or SQL expression holding the list's date.
    list_rank: column or SQL expression holding the row's rank on the list.
#}
{% macro list_row_id(list_date, list_rank) -%}
    replace(cast({{ list_date }} as {{ dbt.type_string() }}), '-', '')
        || '-' || lpad(cast({{ list_rank }} as {{ dbt.type_string() }}), 5, '0')
{%- endmacro %}
