"""`patientbase outcomes FILE`: load a filled-in call list back into `raw.calls`.

Each list row names one phone and the person(s) and action(s) behind it; a row with a result becomes
one call per person. The call id is derived from the list row and the person, so loading the same file
again (or a corrected copy) replaces those calls instead of adding them: nothing is counted twice.
Rows without a result were not called yet and are skipped; a row with a bad value goes to
`raw.load_rejects` (file, line, column, reason) and the other rows still load.

Outcomes are also kept in `raw.call_list_outcomes`, and `patientbase load` puts them back into
`raw.calls` after replacing it with a newer MIS call export, so a reload never loses them.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import PatientbaseError
from .export import CALL_LIST_COLUMNS
from .load import ensure_raw_schema, file_sha256, merge_outcomes_into_calls, q_str
from .mapping import xlsx_to_csv

RESULTS = {
    "booked": "booked", "записан": "booked", "записался": "booked", "запись": "booked",
    "callback": "callback", "перезвонить": "callback",
    "no_answer": "no_answer", "не дозвонились": "no_answer", "нет ответа": "no_answer", "не берет": "no_answer",
    "refused": "refused", "отказ": "refused",
    "wrong_number": "wrong_number", "неверный номер": "wrong_number", "не тот номер": "wrong_number",
}
OUTCOME_COLUMNS = ("list_row_id", "person_ids", "action_codes", "admin", "list_date", "called_at", "operator",
                   "result", "comment")


@dataclass
class OutcomesResult:
    file: str
    rows: int
    not_called: int
    calls_loaded: int
    rejected: int
    already_loaded: bool


def _header_map() -> dict[str, str]:
    """Header text (English or Russian, lower-cased) -> column key."""
    out = {}
    for key, en, ru in CALL_LIST_COLUMNS:
        out[en.lower()] = key
        out[ru.lower()] = key
        out[key] = key
    return out


def load_outcomes(con, path: Path, delimiter: str = ";") -> OutcomesResult:
    path = Path(path)
    if not path.is_file():
        raise PatientbaseError(f"{path}: no such file.")
    sha = file_sha256(path)
    con.execute("begin transaction")
    try:
        ensure_raw_schema(con)
        con.execute(
            """
            create table if not exists raw.call_list_outcomes (
                call_id VARCHAR, patient_id VARCHAR, operator_id VARCHAR, called_at TIMESTAMP,
                duration_s BIGINT, result VARCHAR, action_code VARCHAR, comment VARCHAR,
                list_row_id VARCHAR, list_file VARCHAR, file_sha256 VARCHAR, loaded_at TIMESTAMP)
            """
        )
        if con.execute("select count(*) from raw.call_list_outcomes where file_sha256 = ?", [sha]).fetchone()[0]:
            con.execute("rollback")
            return OutcomesResult(path.name, 0, 0, 0, 0, already_loaded=True)
        with tempfile.TemporaryDirectory(prefix="patientbase-outcomes-") as tmp:
            source = path
            sep = delimiter
            if path.suffix.lower() in (".xlsx", ".xlsm"):
                source = Path(tmp) / "list.csv"
                xlsx_to_csv(path, None, source)
                sep = ","
            result = _load(con, path.name, source, sep, sha)
        con.execute("commit")
        return result
    except BaseException:
        con.execute("rollback")
        raise


def _load(con, name: str, source: Path, sep: str, sha: str) -> OutcomesResult:
    import csv

    with source.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh, delimiter=sep), None) or []
    keys = _header_map()
    columns = {}
    for header_name in header:
        key = keys.get(header_name.strip().lower())
        if key:
            columns[key] = header_name
    missing = [k for k in ("list_row_id", "person_ids", "action_codes", "result") if k not in columns]
    if missing:
        raise PatientbaseError(
            f"{name}, line 1: this is not a call list exported by patientbase: column(s) "
            f"{', '.join(missing)} are missing. Fill in the list file `patientbase export call-list` wrote."
        )
    spec = "{" + ", ".join(f"{q_str(h)}: 'VARCHAR'" for h in header) + "}"

    def col(key: str) -> str:
        return f'"{columns[key]}"' if key in columns else "null"

    results_sql = " ".join(f"when {q_str(k)} then {q_str(v)}" for k, v in RESULTS.items())
    con.execute(
        f"""
        create or replace temp table _list as
        select row_number() over () + 1 as line, *
        from read_csv({q_str(str(source))}, auto_detect = false, header = true, columns = {spec},
                      delim = {q_str(sep)}, quote = '"', escape = '"')
        """
    )
    con.execute(
        f"""
        create or replace temp table _rows as
        select
            line,
            trim({col('list_row_id')}) as list_row_id,
            {col('person_ids')} as person_ids,
            {col('action_codes')} as action_codes,
            coalesce(nullif(trim({col('operator')}), ''), nullif(trim({col('admin')}), '')) as operator_id,
            nullif(trim({col('result')}), '') as result_text,
            case lower(trim({col('result')})) {results_sql} end as result,
            nullif(trim({col('called_at')}), '') as called_at_text,
            coalesce(
                try_strptime(trim({col('called_at')}), ['%d.%m.%Y %H:%M', '%d.%m.%Y %H:%M:%S', '%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M']),
                cast(try_strptime(trim({col('list_date')}), ['%Y-%m-%d', '%d.%m.%Y']) as date)
                    + cast(try_strptime(trim({col('called_at')}), ['%H:%M', '%H:%M:%S']) as time),
                cast(try_strptime(trim({col('list_date')}), ['%Y-%m-%d', '%d.%m.%Y']) as date) + interval 12 hour
            ) as called_at,
            nullif(trim({col('comment')}), '') as comment
        from _list
        """
    )
    rows = con.execute("select count(*) from _rows").fetchone()[0]
    not_called = con.execute("select count(*) from _rows where result_text is null").fetchone()[0]
    con.execute(
        """
        create or replace temp table _problems as
        select line, 'result' as column_name, result_text as raw_value,
               'unknown result; use one of: booked/записан, callback/перезвонить, no_answer/не дозвонились, refused/отказ, wrong_number/неверный номер' as reason
        from _rows where result_text is not null and result is null
        union all
        select line, 'called_at', called_at_text, 'not a date-time like 22.11.2026 14:35 (or 14:35 on the list date)'
        from _rows where result_text is not null and called_at is null
        union all
        select line, 'list_row_id', list_row_id, 'missing row id, person ids or action codes: the row is not from a patientbase call list'
        from _rows where result_text is not null and (list_row_id is null or person_ids is null or action_codes is null)
        """
    )
    load_id = uuid.uuid4().hex[:12]
    now = dt.datetime.now().replace(microsecond=0)
    con.execute(
        """
        insert into raw.load_rejects
        select ?, ?, 'calls', ?, line, column_name, raw_value, reason, 'row_rejected', null from _problems
        """,
        [load_id, now, name],
    )
    con.execute(
        f"""
        create or replace temp table _calls as
        select
            'CL-' || list_row_id || '-' || person_id as call_id,
            person_id as patient_id,
            operator_id,
            called_at,
            cast(null as BIGINT) as duration_s,
            result,
            action_code,
            comment,
            list_row_id,
            {q_str(name)} as list_file,
            {q_str(sha)} as file_sha256,
            cast({q_str(now.isoformat(sep=' '))} as timestamp) as loaded_at
        from (
            select *, unnest(string_split(person_ids, ',')) as person_id,
                   unnest(string_split(action_codes, ',')) as action_code
            from _rows
            where result is not null and line not in (select line from _problems)
        )
        """
    )
    calls = con.execute("select count(*) from _calls").fetchone()[0]
    con.execute("delete from raw.call_list_outcomes where call_id in (select call_id from _calls)")
    con.execute("insert into raw.call_list_outcomes select * from _calls")
    merge_outcomes_into_calls(con)
    rejected = con.execute("select count(*) from _problems").fetchone()[0]
    return OutcomesResult(name, rows, not_called, calls, rejected, already_loaded=False)
