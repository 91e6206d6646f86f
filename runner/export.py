"""Exports people work with: the day's call list and one contact file per RFM segment.

Ranking, capacity, family grouping and the assignment to administrators are the dbt model
`marts.call_list`; Python only writes it. Every file is written to a
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


def call_list(con) -> tuple[dt.date | None, list[dict], int]:
    """The day's list as built by the dbt model marts.call_list: (list date, rows in order, eligible)."""
    if not table_exists(con, "marts", "call_list"):
        raise PatientbaseError("The warehouse has no marts.call_list yet: run `patientbase build` first.")
    cursor = con.execute("select * from marts.call_list order by administrator, slot")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    day = rows[0]["list_date"] if rows else con.execute(
        "select as_of_date from intermediate.int_as_of_date").fetchone()[0]
    eligible = con.execute(
        "select count(*) from marts.call_list_candidates where exclusion_reason is null"
    ).fetchone()[0]
    return day, rows, eligible


def export_call_list(con, out_dir: Path, admins: list[str], per_admin: int, fmt: str = "csv",
                     delimiter: str = ";", language: str = "ru") -> CallListResult:
    """Write marts.call_list as the administrators' file; the list itself is the dbt model's."""
    day, rows, eligible = call_list(con)
    header = [ru if language == "ru" else en for _, en, ru in CALL_LIST_COLUMNS]
    suffix = "_ru" if language == "ru" else ""
    values = []
    for row in rows:
        row = dict(
            row, admin=row["administrator"], position=row["slot"], names=row["patient_names"],
            action=row["action_label" + suffix], reason=row["reason" + suffix], last_visit=row["last_visit_date"],
            doctor=row["doctors"], specialty=row["specialties"], call_window=CALL_WINDOW,
            list_date=row["list_date"].isoformat(),
        )
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
    by_admin: dict[str, int] = {}
    for row in rows:
        for code in row["action_codes"].split(","):
            by_action[code] = by_action.get(code, 0) + 1
        by_admin[row["administrator"]] = by_admin.get(row["administrator"], 0) + 1
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
