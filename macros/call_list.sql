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


{#
  stable_digest(columns)
  The md5 (dbt.hash: lower-case hex on DuckDB, PostgreSQL and Spark) of the columns' values joined with
  '|', nulls as ''. What stable_uniform and stable_bucket read their hex digits from.
  Arguments:
    columns: list of column names or SQL expressions.
#}
{% macro stable_digest(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- if not loop.first -%}{%- do parts.append("'|'") -%}{%- endif -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '')") -%}
    {%- endfor -%}
    {{ return(dbt.hash(dbt.concat(parts))) }}
{%- endmacro %}


{#
  stable_uniform(columns)
  A number in [0, 1) drawn from the columns' values, the same on every run and every engine: the md5
  of the values joined with '|' (dbt.hash, hex on DuckDB, PostgreSQL and Spark), its first four hex
  digits read as a number (macro hex_to_bigint) and divided by 65536.
  Used for the call list's control group: an action occurrence gets the same arm on every replay.
  Arguments:
    columns: list of column names or SQL expressions; nulls count as ''.
#}
{% macro stable_uniform(columns) -%}
    {{ patient_base.hex_to_bigint(patient_base.stable_digest(columns), 1, 4) }} / 65536.0
{%- endmacro %}


{#
  stable_bucket(columns, digits=8, offset=0)
  An integer in [0, 16^digits) drawn from the columns' values, the same on every run and engine:
  `digits` hex digits of the md5 of the values joined with '|' (as stable_uniform), from hex digit
  `offset` + 1 on (the first by default), summed as
  BIGINT (16^7 x 15 overflows PostgreSQL's integer). The return models' training sample keeps a row
  when bucket x rows < 16^8 x the rows wanted.
  Arguments:
    columns: list of column names or SQL expressions; nulls count as ''.
    digits: hex digits read (at most 15).
    offset: hex digits skipped first (digits + offset at most 32).
#}
{% macro stable_bucket(columns, digits=8, offset=0) -%}
    {{ patient_base.hex_to_bigint(patient_base.stable_digest(columns), offset + 1, digits) }}
{%- endmacro %}


{#
  call_control_share(action_column)
  The share of an action's eligible occurrences kept off the call list as a control group: var
  `call_control_share_by_action` (action_code -> share) where it names the action, else var
  `call_control_share` (default 0.10). 0 turns the control group off.
  Arguments:
    action_column: column or SQL expression holding the action code.
#}
{% macro call_control_share(action_column) -%}
    {%- set default_share = var('call_control_share', 0.10) | float -%}
    {%- set by_action = var('call_control_share_by_action', {}) or {} -%}
    {%- for code, share in by_action.items() -%}
        {%- if (share | float) < 0 or (share | float) >= 1 -%}
            {{ exceptions.raise_compiler_error("call_control_share_by_action." ~ code ~ " must be in [0, 1)") }}
        {%- endif -%}
    {%- endfor -%}
    {%- if default_share < 0 or default_share >= 1 -%}
        {{ exceptions.raise_compiler_error("var call_control_share must be in [0, 1)") }}
    {%- endif -%}
    cast(
        {%- if by_action %}
        case {{ action_column }}
            {%- for code, share in by_action.items() %}
            when {{ patient_base.sql_string(code) }} then {{ share | float }}
            {%- endfor %}
            else {{ default_share }}
        end
        {%- else %} {{ default_share }}
        {%- endif %}
    as {{ dbt.type_numeric() }})
{%- endmacro %}


{#
  call_quota_slots(action_column)
  The most call-list rows an action may take before the rest of its candidates go after every
  within-quota candidate: floor(share x daily_call_capacity()) from var `call_list_quotas`
  (action_code -> max share of the capacity); null (no quota) for actions it does not name.
  Arguments:
    action_column: column or SQL expression holding the action code.
#}
{% macro call_quota_slots(action_column) -%}
    {%- set quotas = var('call_list_quotas', {}) or {} -%}
    {%- set capacity = patient_base.daily_call_capacity() -%}
    {%- if quotas -%}
    case {{ action_column }}
        {%- for code, share in quotas.items() %}
        when {{ patient_base.sql_string(code) }} then {{ (share | float * capacity) | round(0, 'floor') | int }}
        {%- endfor %}
    end
    {%- else -%}
    cast(null as {{ dbt.type_int() }})
    {%- endif -%}
{%- endmacro %}


{#
  uplift_half_width(rate_1, n_1, rate_0, n_0)
  Half the width of the 95% Wald interval of the difference of two independent proportions:
  1.96 x sqrt(p1(1-p1)/n1 + p0(1-p0)/n0); null when an arm is empty.
  Arguments:
    rate_1, n_1: the called arm's rate and size (columns or SQL expressions).
    rate_0, n_0: the control arm's rate and size.
#}
{% macro uplift_half_width(rate_1, n_1, rate_0, n_0) -%}
    1.96 * sqrt(
        {{ rate_1 }} * (1 - {{ rate_1 }}) / nullif({{ n_1 }}, 0)
        + {{ rate_0 }} * (1 - {{ rate_0 }}) / nullif({{ n_0 }}, 0)
    )
{%- endmacro %}
