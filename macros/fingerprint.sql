{#
  fingerprint_sum(columns)
  An aggregate expression: an order-free fingerprint of the rows of a group, as text. Two groups holding
  the same multiset of rows (same values in `columns`) get the same text; any changed, added or removed
  row changes it (but for a hash collision: 64 bits on DuckDB, two 32-bit md5 slices elsewhere). Used
  by the incremental models to find the months whose history changed since the last build
  (docs/decisions.md, "Incremental models"). Only ever compared on the engine that wrote it.
  Arguments:
    columns: list of column names or SQL expressions; nulls count as ''.
#}
{% macro fingerprint_sum(columns) -%}
    {{ return(adapter.dispatch('fingerprint_sum', 'patient_base')(columns)) }}
{%- endmacro %}

{% macro default__fingerprint_sum(columns) -%}
    {{ dbt.concat([
        "cast(count(*) as " ~ dbt.type_string() ~ ")", "'-'",
        "cast(sum(" ~ patient_base.stable_bucket(columns, 8) ~ ") as " ~ dbt.type_string() ~ ")", "'-'",
        "cast(sum(" ~ patient_base.stable_bucket(columns, 8, offset=8) ~ ") as " ~ dbt.type_string() ~ ")",
    ]) }}
{%- endmacro %}

{#- DuckDB: its native 64-bit hash, ~20x cheaper than md5 over millions of visits (a version of DuckDB
    that hashed differently would only make the next build recompute every month) -#}
{% macro duckdb__fingerprint_sum(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '')") -%}
    {%- endfor -%}
    cast(count(*) as varchar) || '-' || cast(sum(hash({{ parts | join(', ') }})) as varchar)
{%- endmacro %}


{#
  prune_changed_months(inputs)
  Pre-hook of an incremental model stored by month with the input fingerprint of each month (column
  `month`, `input_fingerprint`): deletes the months no longer wanted (not in `inputs`) and every month
  from the first one whose fingerprint in `inputs` differs from the stored one. The model then computes
  the months it does not hold (these, and months a replay or a longer window adds). Nothing on a full
  build.
  Arguments:
    inputs: the relation (a ref) with one row per wanted month: month, input_fingerprint, has_states.
#}
{% macro prune_changed_months(inputs) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where month not in (select month from {{ inputs }})
        or month >= (
            select min(kept.month)
            from (select distinct month, input_fingerprint from {{ this }}) as kept
            inner join {{ inputs }} as inputs
                on inputs.month = kept.month
            where inputs.input_fingerprint <> kept.input_fingerprint
        )
    {%- endif -%}
{%- endmacro %}
