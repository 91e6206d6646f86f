"""Recording the day's call list: who was called and who was held out as a control.

The uplift of the calls (marts.call_uplift) compares the two arms of every past list, so the arms of
each list written are appended to raw.call_assignments: one row per person x action occurrence, the
first list date kept (a person due for the same action on several days is one occurrence). The arms
themselves are decided by the dbt models (int_call_list_ranked, call_list, call_list_control): they are
read from the warehouse on its engine (one portable query) and appended to the raw table in the loading
area, the local DuckDB file every raw table is kept in (runner/engine.py), with one set-based
`insert … select … where not exists`; on PostgreSQL and Spark the caller then pushes raw into the
engine within the same publishing.

A replay never rewrites history: a list whose date is before the latest recorded list date is not
recorded (`build --as-of` never records at all; `run` and `export call-list` do).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RecordResult:
    recorded: int  # new rows (call and control) appended
    skipped_reason: str | None = None


#: The day's arms as the models decided them, read from the warehouse (whatever its engine).
TODAYS_SQL = """
with

listed as (

    select
        ranked.list_date,
        ranked.person_id,
        ranked.action_code,
        ranked.trigger_date,
        'call' as arm,
        ranked.list_rank,
        call_list.administrator as operator_id,
        ranked.expected_value
    from intermediate.int_call_list_ranked as ranked
    inner join marts.call_list as call_list
        on ranked.list_rank = call_list.list_rank
    where ranked.is_listed

),

controls as (

    select
        list_date,
        person_id,
        action_code,
        trigger_date,
        'control' as arm,
        cast(null as integer) as list_rank,
        cast(null as varchar(255)) as operator_id,
        expected_value
    from marts.call_list_control

)

select * from listed
union all
select * from controls
"""

#: Appends them to the loading area's raw.call_assignments (DuckDB, the raw tables' source of truth).
RECORD_SQL = """
insert into raw.call_assignments (
    list_date, patient_id, action_code, trigger_date, arm, list_rank, operator_id, expected_value,
    recorded_at, _source_file, _source_line
)
with

todays as (

    select
        cast(list_date as date) as list_date,
        cast(person_id as varchar) as person_id,
        cast(action_code as varchar) as action_code,
        cast(trigger_date as date) as trigger_date,
        cast(arm as varchar) as arm,
        cast(list_rank as integer) as list_rank,
        cast(operator_id as varchar) as operator_id,
        cast(expected_value as decimal(18, 2)) as expected_value
    from _todays_arms

),

latest as (

    select max(list_date) as latest_list_date from raw.call_assignments

)

select
    todays.list_date,
    todays.person_id,
    todays.action_code,
    todays.trigger_date,
    todays.arm,
    todays.list_rank,
    todays.operator_id,
    todays.expected_value,
    current_timestamp,
    'patientbase call list',
    cast(null as bigint)
from todays
cross join latest
where (latest.latest_list_date is null or todays.list_date >= latest.latest_list_date)
    and not exists (
        select 1
        from raw.call_assignments as recorded
        where recorded.patient_id = todays.person_id
            and recorded.action_code = todays.action_code
            and recorded.trigger_date is not distinct from todays.trigger_date
    )
"""


def record_call_assignments(wh, con) -> RecordResult:
    """Append the arms of the list in marts.call_list / call_list_control (read through `wh`, the
    warehouse on its engine) to raw.call_assignments of the loading area `con` (the local DuckDB)."""
    import pandas as pd

    from .load import table_exists

    if not table_exists(con, "raw", "call_assignments"):
        return RecordResult(0, "raw.call_assignments does not exist yet")
    for schema, name in (("marts", "call_list"), ("marts", "call_list_control")):
        if not wh.table_exists(schema, name):
            return RecordResult(0, f"{schema}.{name} does not exist yet")
    columns = ["list_date", "person_id", "action_code", "trigger_date", "arm", "list_rank", "operator_id",
               "expected_value"]
    todays = pd.DataFrame.from_records(wh.rows(TODAYS_SQL), columns=columns).astype(object)
    latest = con.execute("select max(list_date) from raw.call_assignments").fetchall()[0][0]
    day = wh.scalar("select max(list_date) from intermediate.int_call_list_ranked")
    before = con.execute("select count(*) from raw.call_assignments").fetchall()[0][0]
    con.register("_todays_arms", todays)
    try:
        con.execute(RECORD_SQL)
    finally:
        con.unregister("_todays_arms")
    after = con.execute("select count(*) from raw.call_assignments").fetchall()[0][0]
    reason = None
    if latest is not None and day is not None and day < latest:
        reason = f"the list of {day} is before the latest recorded list ({latest}): a replay is not recorded"
    return RecordResult(after - before, reason)
