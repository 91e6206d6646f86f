"""Exports people work with: the day's call list and one contact file per RFM segment.

Ranking, capacity, family grouping and the assignment to administrators are one set-based SQL query
over `marts.call_list_candidates`; Python only writes the result. Every file is written to a
temporary name and renamed into place, so a failed export never leaves a half file, and every text
cell that a spreadsheet could run as a formula is neutralised.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, PatientbaseError
from .load import q_str, table_exists

#: Characters that make Excel / LibreOffice read a CSV cell as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CALL_WINDOW = "14:00–18:00"

#: Columns of the call list, in order: (key, English header, Russian header).
CALL_LIST_COLUMNS = [
    ("admin", "Administrator", "Администратор"),
    ("position", "No.", "№"),
    ("phone", "Phone", "Телефон"),
    ("names", "Patient(s)", "Пациент(ы)"),
    ("action", "Action", "Задача"),
    ("reason", "Why", "Почему"),
    ("offer", "Offer", "Предложение"),
    ("last_visit", "Last visit", "Последний визит"),
    ("doctor", "Doctor", "Врач"),
    ("specialty", "Specialty", "Направление"),
    ("call_window", "Call window", "Окно звонка"),
    ("priority", "Priority", "Приоритет"),
    ("expected_value", "Expected value", "Ожидаемая выручка"),
    ("list_date", "List date", "Дата списка"),
    ("list_row_id", "Row id", "ID строки"),
    ("person_ids", "Person ids", "ID персон"),
    ("action_codes", "Action codes", "Коды задач"),
    # filled in by the administrator, read back by `patientbase outcomes`
    ("called_at", "Called at", "Время звонка"),
    ("operator", "Operator", "Оператор"),
    ("result", "Result", "Результат"),
    ("comment", "Comment", "Комментарий"),
]
FILL_IN = ("called_at", "operator", "result", "comment")


def neutralise(value):
    """A text cell that starts like a formula gets a leading apostrophe, so it stays text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


@dataclass
class CallListResult:
    path: Path
    list_date: dt.date
    rows: int
    persons: int
    capacity: int
    eligible: int
    by_action: list[tuple[str, int]]
    by_admin: list[tuple[str, int]]


def _atomic_target(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_csv(path: Path, header: list[str], rows, delimiter: str = ";") -> None:
    """UTF-8 with BOM (Excel detects the encoding), formula-safe, written atomically."""
    tmp = _atomic_target(path)
    try:
        with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
            writer.writerow([neutralise(h) for h in header])
            for row in rows:
                writer.writerow(["" if v is None else neutralise(v if isinstance(v, str) else str(v)) for v in row])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_xlsx(path: Path, header: list[str], rows, sheet: str = "Call list", text_columns: set[int] = frozenset()) -> None:
    """XLSX with every text cell stored as a string (never a formula) and phones as text, atomically."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    ws = book.active
    ws.title = sheet[:31]
    ws.append(header)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=c)
            if value is None:
                continue
            if isinstance(value, str) or (c - 1) in text_columns:
                cell.value = str(value)
                cell.data_type = TYPE_STRING  # openpyxl would otherwise store "=…" as a formula
            else:
                cell.value = value
            cell.alignment = Alignment(vertical="top", wrap_text=isinstance(value, str) and len(value) > 40)
    widths = [max(len(str(h)), 8) for h in header]
    for c, width in enumerate(widths, start=1):
        ws.column_dimensions[ws.cell(row=1, column=c).column_letter].width = min(max(width + 2, 10), 60)
    ws.freeze_panes = "A2"
    tmp = _atomic_target(path)
    try:
        book.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------
# The call list


def _national_phone_sql(column: str) -> str:
    """'+79123456789' -> '8 (912) 345-67-89', the way Russian administrators dial; others stay E.164."""
    return (
        f"case when {column} like '+7__________' and length({column}) = 12 then "
        f"'8 (' || substr({column}, 3, 3) || ') ' || substr({column}, 6, 3) || '-' || "
        f"substr({column}, 9, 2) || '-' || substr({column}, 11, 2) else {column} end"
    )


CALL_LIST_SQL = """
with

settings as (
    select cast(? as date) as list_date, cast(? as integer) as admins, cast(? as integer) as per_admin
),

admins as (
    select admin_no, admin from (select unnest(?) as admin, generate_subscripts(?, 1) as admin_no)
),

candidates as (
    select candidates.*
    from marts.call_list_candidates as candidates
    cross join settings
    -- the exclusions that do not expire come from the mart; the two that do (a recent call, a recent
    -- refusal) are re-applied for the list's date with the mart's own windows (dbt vars)
    where candidates.base_exclusion_reason is null
      and (candidates.called_recently_until is null or settings.list_date > candidates.called_recently_until)
      and (candidates.refused_recently_until is null or settings.list_date > candidates.refused_recently_until)
      and candidates.phone_e164 is not null
),

-- family members sharing a phone become one row; it ranks as its most urgent member
person_ranks as (
    select person_id, phone_e164,
           row_number() over (order by priority, expected_value desc, person_id) as person_rank
    from candidates
),

-- only the phones that make today's list are aggregated (a network has ~10^6 candidates, the list
-- ~10^2 rows): a phone's rank is its best member's rank, so these are the first admins x per_admin
top_phones as (
    select ranked_phones.phone_e164
    from (
        select phone_e164, row_number() over (order by min(person_rank)) as phone_order
        from person_ranks
        group by phone_e164
    ) as ranked_phones
    cross join settings
    where ranked_phones.phone_order <= settings.admins * settings.per_admin
),

ranked_people as (
    select candidates.*, person_ranks.person_rank
    from candidates
    join person_ranks using (person_id)
    where candidates.phone_e164 in (select phone_e164 from top_phones)
),

phones as (
    select
        phone_e164,
        min(person_rank) as phone_rank,
        count(*) as persons,
        string_agg(display_name, '; ' order by person_rank) as names,
        string_agg(case when persons_on_phone > 1 then display_name || ': ' else '' end || action_label_ru, '; ' order by person_rank) as action,
        string_agg(case when persons_on_phone > 1 then display_name || ': ' else '' end || reason_ru, '; ' order by person_rank) as reason,
        string_agg(case when persons_on_phone > 1 then display_name || ': ' else '' end || coalesce(offer, ''), '; ' order by person_rank) as offer,
        max(last_visit_date) as last_visit,
        string_agg(distinct last_doctor_id, ', ' order by last_doctor_id) as doctor,
        string_agg(distinct last_specialty, ', ' order by last_specialty) as specialty,
        min(priority) as priority,
        sum(expected_value) as expected_value,
        string_agg(person_id, ',' order by person_rank) as person_ids,
        string_agg(action_code, ',' order by person_rank) as action_codes,
        -- the administrator who called the family last keeps it
        arg_max(last_operator_id, coalesce(last_call_at, timestamp '1900-01-01')) as last_operator_id
    from (select *, count(*) over (partition by phone_e164) as persons_on_phone from ranked_people)
    group by phone_e164
),

capped as (
    select numbered.*
    from (select phones.*, row_number() over (order by phone_rank) as list_rank from phones) as numbered
    cross join settings
    where numbered.list_rank <= settings.admins * settings.per_admin
),

-- rows whose last caller works today stay with them, up to that administrator's capacity
sticky as (
    select capped.list_rank, admins.admin_no,
           row_number() over (partition by admins.admin_no order by capped.list_rank) as slot
    from capped
    join admins on admins.admin = capped.last_operator_id
),

kept as (
    select sticky.list_rank, sticky.admin_no from sticky cross join settings where sticky.slot <= settings.per_admin
),

-- every other row takes the next free slot, administrators in turn
free_slots as (
    select admins.admin_no, slots.slot
    from admins
    cross join settings
    cross join range(1, 100000) as slots(slot)
    where slots.slot <= settings.per_admin - (select count(*) from kept where kept.admin_no = admins.admin_no)
),

numbered_slots as (
    select admin_no, row_number() over (order by slot, admin_no) as n from free_slots
),

rest as (
    select list_rank, row_number() over (order by list_rank) as n
    from capped where list_rank not in (select list_rank from kept)
),

assigned as (
    select list_rank, admin_no from kept
    union all
    select rest.list_rank, numbered_slots.admin_no from rest join numbered_slots using (n)
),

final as (
    select
        admins.admin,
        row_number() over (partition by assigned.admin_no order by capped.list_rank) as position,
        {phone} as phone,
        capped.names,
        capped.action,
        capped.reason,
        capped.offer,
        capped.last_visit,
        capped.doctor,
        capped.specialty,
        capped.priority,
        round(capped.expected_value, 2) as expected_value,
        capped.persons,
        capped.person_ids,
        capped.action_codes,
        capped.list_rank
    from capped
    join assigned using (list_rank)
    join admins using (admin_no)
)

select * from final order by admin, position
"""


def call_list(con, list_date: dt.date | None, admins: list[str], per_admin: int):
    """The day's call list as (rows, stats): rows are dicts in final order."""
    if not table_exists(con, "marts", "call_list_candidates"):
        raise PatientbaseError("The warehouse has no marts.call_list_candidates yet: run `patientbase build` first.")
    if not admins or per_admin < 1:
        raise ConfigError("The call list needs at least one administrator and one call each.")
    as_of = con.execute("select as_of_date from intermediate.int_as_of_date").fetchone()[0]
    day = list_date or as_of
    sql = CALL_LIST_SQL.replace("{phone}", _national_phone_sql("capped.phone_e164"))
    cursor = con.execute(sql, [day, len(admins), per_admin, admins, admins])
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    eligible = con.execute(
        "select count(*) from marts.call_list_candidates where exclusion_reason is null"
    ).fetchone()[0]
    return day, rows, eligible


def export_call_list(con, out_dir: Path, list_date: dt.date | None, admins: list[str], per_admin: int,
                     fmt: str = "csv", delimiter: str = ";", language: str = "ru") -> CallListResult:
    day, rows, eligible = call_list(con, list_date, admins, per_admin)
    header = [ru if language == "ru" else en for _, en, ru in CALL_LIST_COLUMNS]
    values = []
    for row in rows:
        row = dict(row, call_window=CALL_WINDOW, list_date=day.isoformat(),
                   list_row_id=f"{day:%Y%m%d}-{row['list_rank']:05d}")
        values.append([None if key in FILL_IN else row.get(key) for key, _, _ in CALL_LIST_COLUMNS])
    path = out_dir / f"call_list_{day:%Y-%m-%d}.{fmt}"
    if fmt == "csv":
        write_csv(path, header, values, delimiter=delimiter)
    elif fmt == "xlsx":
        phone_col = [k for k, _, _ in CALL_LIST_COLUMNS].index("phone")
        write_xlsx(path, header, values, sheet=f"Звонки {day:%d.%m.%Y}", text_columns={phone_col})
    else:
        raise ConfigError(f"Unknown call-list format {fmt!r}: use csv or xlsx.")
    by_action: dict[str, int] = {}
    for row in rows:
        for code in row["action_codes"].split(","):
            by_action[code] = by_action.get(code, 0) + 1
    by_admin: dict[str, int] = {}
    for row in rows:
        by_admin[row["admin"]] = by_admin.get(row["admin"], 0) + 1
    return CallListResult(
        path=path, list_date=day, rows=len(rows), persons=sum(r["persons"] for r in rows),
        capacity=len(admins) * per_admin, eligible=eligible,
        by_action=sorted(by_action.items(), key=lambda kv: (-kv[1], kv[0])), by_admin=sorted(by_admin.items()),
    )


# ---------------------------------------------------------------------------------------------------
# Segment files


# phone: E.164 digits without the '+' (what SMS gateways take; a leading '+' would also need a formula guard)
SEGMENT_COLUMNS = ["person_id", "display_name", "phone", "email", "segment", "segment_label_ru",
                   "rfm_code", "lifecycle_status", "last_visit_date", "total_revenue", "can_call"]


def neutralise_sql(expression: str) -> str:
    """SQL for `neutralise`: a text that starts like a formula gets a leading apostrophe."""
    starts = ", ".join(f"chr({ord(c)})" for c in FORMULA_START)
    return f"case when left({expression}, 1) in ({starts}) then chr(39) || {expression} else {expression} end"


def _copy_csv_with_bom(con, select_sql: str, path: Path, delimiter: str) -> None:
    """COPY a query to `path` as UTF-8 CSV with a BOM (Excel then detects the encoding), atomically.

    DuckDB writes the file (no Python loop over rows); the BOM is put in front by a byte copy.
    """
    tmp = _atomic_target(path)
    body = tmp.with_name(tmp.name + ".body")
    try:
        con.execute(
            f"copy ({select_sql}) to {q_str(str(body))} (format csv, header true, delimiter {q_str(delimiter)})"
        )
        with tmp.open("wb") as out, body.open("rb") as src:
            out.write("\ufeff".encode("utf-8"))
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        body.unlink(missing_ok=True)


def export_segments(con, out_dir: Path, delimiter: str = ";") -> list[tuple[str, int, Path]]:
    """One CSV per RFM segment with the people who may be messaged (SMS and e-mail tools).

    The members are selected once into a temporary table (text cells already formula-safe), and each
    segment's file is one DuckDB COPY of it, ordered by revenue.
    """
    if not table_exists(con, "marts", "rfm_scores"):
        raise PatientbaseError("The warehouse has no marts.rfm_scores yet: run `patientbase build` first.")
    text = {
        "person_id": "patients.person_id",
        "display_name": "patients.display_name",
        "phone": "ltrim(patients.phone_e164, '+')",
        "email": "patients.email",
        "segment": "rfm.segment",
        "segment_label_ru": "rfm.segment_label_ru",
        "rfm_code": "rfm.rfm_code",
        "lifecycle_status": "patients.lifecycle_status",
    }
    other = {
        "last_visit_date": "cast(patients.last_visit_at as date)",
        "total_revenue": "patients.total_revenue",
        "can_call": "case when patients.can_call then 'true' else 'false' end",
    }
    columns = {**{k: neutralise_sql(v) for k, v in text.items()}, **other}
    select_list = ", ".join(f"{columns[name]} as {name}" for name in SEGMENT_COLUMNS)
    con.execute(
        f"""
        create or replace temp table _segment_members as
        select rfm.segment as _segment, {select_list}
        from marts.rfm_scores as rfm
        join marts.dim_patients as patients using (person_id)
        where patients.can_message and not patients.is_deceased
        """
    )
    try:
        counts = dict(con.execute(
            "select segments.segment, count(members._segment) "
            "from (select distinct segment from marts.rfm_scores) as segments "
            "left join _segment_members as members on members._segment = segments.segment group by segments.segment"
        ).fetchall())
        written = []
        out_dir.mkdir(parents=True, exist_ok=True)
        for segment in sorted(counts):
            safe = re.sub(r"[^a-z0-9_]+", "_", segment.lower())
            path = out_dir / f"segment_{safe}.csv"
            _copy_csv_with_bom(
                con,
                f"select {', '.join(SEGMENT_COLUMNS)} from _segment_members where _segment = {q_str(segment)} "
                f"order by total_revenue desc, person_id",
                path, delimiter,
            )
            written.append((segment, counts[segment], path))
    finally:
        con.execute("drop table if exists _segment_members")
    return written
