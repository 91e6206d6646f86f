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
#: Room to write the outcome in on a printed list.
FILL_IN_WIDTHS = {"called_at": 10, "operator": 11, "result": 16, "comment": 30}


#: Columns for the software, not for the administrator: hidden in the XLSX (`outcomes` reads them back).
INTERNAL = ("list_row_id", "person_ids", "action_codes")
#: Columns whose text is long: wrapped in a wide column, the row as high as its text.
WRAPPED = {"names": 28, "action": 26, "reason": 60, "offer": 34, "specialty": 18, "doctor": 14, "comment": 30}

#: Characters an XLSX cannot hold (openpyxl raises IllegalCharacterError) and a CSV should not carry.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: An invisible word joiner in front of a '+' phone keeps a spreadsheet from reading it as a formula
#: without the visible apostrophe of the formula guard (`outcomes` takes it off again).
WORD_JOINER = "\u2060"


def neutralise(value):
    """A text cell that starts like a formula gets a leading apostrophe, so it stays text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def clean(value):
    """Text without control characters (a name pasted with a stray \\x07 must not break the XLSX)."""
    return CONTROL_CHARS.sub("", value) if isinstance(value, str) else value


def display_phone(e164: str | None, national: str | None) -> str | None:
    """A phone as it is dialled: Russian numbers in the model's national form, others INTERNATIONAL
    (+55 27 99003-3672), never raw E.164 digits."""
    import phonenumbers

    if not e164 or (national and not national.startswith("+")):
        return national or e164
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


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
    kept: Path | None = None  # a file of the same name with results typed in, left as it was


def _atomic_target(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_csv(path: Path, header: list[str], rows, delimiter: str = ";", guard: bool = True,
              prepared: bool = False) -> None:
    """UTF-8 with BOM (Excel detects the encoding), formula-safe, written atomically. `prepared`: the
    caller made every cell text (or None) and cleaned and neutralised it (prepare_cells), so the rows
    are written as they are."""
    tmp = _atomic_target(path)
    protect = neutralise if guard else (lambda v: v)
    try:
        with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
            writer.writerow([neutralise(h) for h in header])
            if prepared:
                writer.writerows(rows)
            else:
                for row in rows:
                    writer.writerow(["" if v is None else protect(clean(v if isinstance(v, str) else str(v)))
                                     for v in row])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def prepare_cells(frame, text_columns) -> None:
    """Every cell of `frame` as text, column by column (vectorised, not a loop over rows): numbers and
    dates as str() gives them, control characters removed, and the `text_columns` cells that start like
    a formula neutralised (after the cleaning, so a stray control character cannot hide a '=')."""
    for name in frame.columns:
        column = frame[name]
        present = column.notna()
        cells = column[present].astype(str).str.replace(CONTROL_CHARS, "", regex=True)
        if name in text_columns:
            cells = cells.where(~cells.str.startswith(FORMULA_START), "'" + cells)
        frame[name] = cells.reindex(column.index).astype(object).where(present, None)


def _text_width(text: str) -> float:
    """Column width (Excel's units, about one digit of Calibri 11) a line of text needs."""
    return sum(1.2 if ch.isupper() or ord(ch) > 0x3ff else 1.0 for ch in text)


def _lines(text: str, width: float) -> int:
    """How many lines `text` wraps to in a column `width` wide (word wrap, as a spreadsheet does)."""
    count = 0
    for paragraph in text.split("\n"):
        line, lines = 0.0, 1
        for word in paragraph.split(" "):
            w = _text_width(word) + 1
            if line and line + w > width - 1:
                lines += 1
                line = 0.0
            line += w
        count += lines
    return count


def write_xlsx(path: Path, header: list[str], rows, sheet: str = "Call list", text_columns: set[int] = frozenset(),  # noqa: PLR0915 (one sheet, cell by cell)
               hidden: set[int] = frozenset(), wrapped: dict[int, int] | None = None,
               choices: dict[int, list[str]] | None = None, title: str | None = None,
               min_widths: dict[int, int] | None = None) -> None:
    """An XLSX a person works from, written atomically.

    Every text cell is stored as a string (never a formula; no apostrophe needed). Columns are as wide
    as their content; `wrapped` columns (index -> maximum width) wrap their text and each row is as
    high as its longest wrapped cell. The header is frozen, filtered and repeated on every printed
    page; the sheet prints landscape A4, one page wide. `hidden` columns are kept but hidden;
    `choices` give a column a drop-down of suggested words (other words may still be typed);
    `min_widths` keep room to write in (the fill-in columns are empty when printed).
    """
    from openpyxl import Workbook
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    wrapped = wrapped or {}
    rows = [[clean(v) for v in row] for row in rows]
    header = [clean(h) for h in header]
    book = Workbook()
    ws = book.active
    ws.title = sheet[:31]
    ws.append(header)
    thin = Side(style="thin", color="BFBFBF")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(vertical="center", wrap_text=True)
        cell.border = border
    ws.row_dimensions[1].height = 32  # two lines: long headings wrap
    widths = []
    for c, name in enumerate(header):
        longest = max([_text_width(str(row[c])) for row in rows if row[c] is not None] or [0])
        heading = max(_text_width(word) for word in str(name).split()) if name else 0
        width = max(longest, heading) + 2
        width = max(width, (min_widths or {}).get(c, 0))
        widths.append(min(width, wrapped[c]) if c in wrapped else width)
    for r, row in enumerate(rows, start=2):
        lines = 1
        for c, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=c)
            cell.border = border
            cell.alignment = Alignment(vertical="top", wrap_text=(c - 1) in wrapped)
            if value is None:
                continue
            if isinstance(value, str) or (c - 1) in text_columns:
                cell.value = str(value)
                cell.data_type = TYPE_STRING  # openpyxl would otherwise store "=…" as a formula
            else:
                cell.value = value
            if (c - 1) in wrapped and (c - 1) not in hidden:
                lines = max(lines, _lines(str(value), widths[c - 1]))
        ws.row_dimensions[r].height = 15 * lines + 2
    for c, width in enumerate(widths, start=1):
        dimension = ws.column_dimensions[get_column_letter(c)]
        dimension.width = round(width, 1)
        dimension.hidden = (c - 1) in hidden
    last = max(len(rows) + 1, 2)
    for c, words in (choices or {}).items():
        letter = get_column_letter(c + 1)
        validation = DataValidation(type="list", formula1='"' + ",".join(words) + '"', allow_blank=True,
                                    showErrorMessage=False)  # other words are still read (README)
        validation.add(f"{letter}2:{letter}{last + 200}")
        ws.add_data_validation(validation)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{last}"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.gridLines = False
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.5
    if title:
        ws.oddHeader.center.text = clean(title)
        ws.oddFooter.right.text = "&P / &N"
    tmp = _atomic_target(path)
    try:
        book.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------
# The call list


def call_list(wh) -> tuple[dt.date | None, list[dict], int]:
    """The day's list as built by the dbt model marts.call_list (read through the warehouse layer `wh`,
    on any engine): (list date, rows in order, eligible)."""
    if not wh.table_exists("marts", "call_list"):
        raise PatientbaseError("The warehouse has no marts.call_list yet: run `patientbase build` first.")
    rows = wh.records("select * from marts.call_list order by administrator, slot")
    day = rows[0]["list_date"] if rows else wh.scalar("select as_of_date from intermediate.int_as_of_date")
    eligible = wh.scalar("select count(*) from marts.call_list_candidates where exclusion_reason is null")
    return day, rows, eligible


def has_results(path: Path) -> bool:
    """Whether a call-list file has anything typed into its fill-in columns (or cannot be read as one)."""
    from .outcomes import read_list_file

    try:
        rows = read_list_file(path)
    except Exception:  # noqa: BLE001 - a file we cannot read as a list is not ours to overwrite
        return True
    return any(row.get(key) for _, row in rows for key in FILL_IN)


def free_name(path: Path) -> Path:
    """`path`, or the first `<stem>_2`, `<stem>_3`, … that does not exist yet."""
    n = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
        n += 1
    return candidate


def export_call_list(wh, out_dir: Path, admins: list[str], per_admin: int, fmt: str = "csv",
                     delimiter: str = ";", language: str = "ru") -> CallListResult:
    """Write marts.call_list as the administrators' file; the list itself is the dbt model's.

    One language per file: the model words actions, reasons (relative to the list date), offers and
    specialty names in var `language` (its `list_language`); the headers follow it. A file of the
    same name that already has results typed in is kept: the list goes to a new name.
    """
    from .outcomes import RESULT_CHOICES

    if fmt not in ("csv", "xlsx"):
        raise ConfigError(f"Unknown call-list format {fmt!r}: use csv or xlsx.")
    language = "en" if language == "en" else "ru"
    day, rows, eligible = call_list(wh)
    if rows and rows[0].get("list_language") in ("ru", "en"):
        language = rows[0]["list_language"]  # the headers speak the texts' language
    header = [ru if language == "ru" else en for _, en, ru in CALL_LIST_COLUMNS]
    values = []
    for row in rows:
        phone = display_phone(row["phone_e164"], row["phone"])
        if fmt == "csv" and phone and phone.startswith("+"):
            phone = WORD_JOINER + phone
        row = dict(
            row, admin=row["administrator"], position=row["slot"], names=row["patient_names"],
            action=row["action_label"], last_visit=row["last_visit_date"],
            doctor=row["doctors"], specialty=row["specialties"], call_window=CALL_WINDOW,
            list_date=row["list_date"].isoformat(), phone=phone,
        )
        values.append([None if key in FILL_IN else row.get(key) for key, _, _ in CALL_LIST_COLUMNS])
    wanted = out_dir / f"call_list_{day:%Y-%m-%d}.{fmt}"
    kept = wanted if wanted.exists() and has_results(wanted) else None
    path = free_name(wanted) if kept else wanted
    keys = [k for k, _, _ in CALL_LIST_COLUMNS]
    if fmt == "csv":
        write_csv(path, header, values, delimiter=delimiter)
    else:
        title = f"{'Звонки' if language == 'ru' else 'Calls'} {day:%d.%m.%Y}"
        write_xlsx(
            path, header, values, sheet=title, text_columns={keys.index("phone")},
            hidden={keys.index(k) for k in INTERNAL},
            wrapped={keys.index(k): width for k, width in WRAPPED.items()},
            choices={keys.index("result"): RESULT_CHOICES[language]}, title=title,
            min_widths={keys.index(k): width for k, width in FILL_IN_WIDTHS.items()},
        )
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
        kept=kept,
    )


# ---------------------------------------------------------------------------------------------------
# Segment files


# phone: E.164 digits without the '+' (what SMS gateways take; a leading '+' would also need a formula guard)
SEGMENT_COLUMNS = ["person_id", "display_name", "phone", "email", "segment", "segment_label",
                   "rfm_code", "lifecycle_status", "last_visit_date", "total_revenue", "can_call"]


#: The text columns of a segment file (a cell starting like a formula is neutralised); the others are
#: a date, an amount and true/false, written as they are.
SEGMENT_TEXT = [name for name in SEGMENT_COLUMNS if name not in ("last_visit_date", "total_revenue", "can_call")]

#: Who goes into the segment files: everyone with an RFM segment who may be messaged and is alive
#: ({phone}: the phone column, as it is or as SQL that cleans it).
SEGMENT_MEMBERS = """
    select
        rfm.segment as file_segment,
        patients.person_id,
        patients.display_name,
        {phone} as phone,
        patients.email,
        rfm.segment,
        rfm.segment_label,
        rfm.rfm_code,
        patients.lifecycle_status,
        cast(patients.last_visit_at as date) as last_visit_date,
        patients.total_revenue,
        case when patients.can_call then 'true' else 'false' end as can_call
    from marts.rfm_scores as rfm
    inner join marts.dim_patients as patients
        on rfm.person_id = patients.person_id
    where patients.can_message and not patients.is_deceased
"""


def _segment_cells_sql(segment: str) -> str:
    """SQL (DuckDB) for one segment file's rows, cell by cell exactly as prepare_cells makes them: as
    text, control characters removed (first, so that one cannot hide a '='), a text cell starting like
    a formula neutralised, an empty one as NULL (an empty cell either way; DuckDB would quote an empty
    string); the phone without its leading '+', as `_segment_frame` has it. Ordered by revenue."""
    pattern = f"'{CONTROL_CHARS.pattern}'"
    cleaned = ", ".join(
        f"case when regexp_matches(cast({c} as varchar), {pattern}) "
        f"then regexp_replace(cast({c} as varchar), {pattern}, '', 'g') else cast({c} as varchar) end as {c}"
        for c in SEGMENT_COLUMNS)
    starts = ", ".join(f"chr({ord(c)})" for c in FORMULA_START)
    cells = ", ".join(
        f"nullif(case when left({c}, 1) in ({starts}) then chr(39) || {c} else {c} end, '') as {c}"
        if c in SEGMENT_TEXT else f"nullif({c}, '') as {c}" for c in SEGMENT_COLUMNS)
    members = SEGMENT_MEMBERS.format(phone="ltrim(patients.phone_e164, '+')")
    quoted = segment.replace("'", "''")
    return (f"select {cells} from (select {cleaned}, m.total_revenue as _revenue, m.person_id as _person "
            f"from ({members}) as m where m.file_segment = '{quoted}') as q order by _revenue desc, _person")


def export_segments(wh, out_dir: Path, delimiter: str = ";") -> list[tuple[str, int, Path]]:
    """One CSV per RFM segment with the people who may be messaged (SMS and e-mail tools).

    Each segment's members are ordered by revenue; each file is UTF-8 with a BOM, written atomically.
    Text cells that start like a formula are neutralised; numbers and dates are written as they are.
    On DuckDB the cells are made in SQL and each file is written by the engine (`wh.copy_csv`): at 1M
    persons ~0.9M rows never pass through Python. Elsewhere the members are read once through the
    warehouse layer `wh` and written by `write_csv`; both ways give the same bytes (tests/test_exports.py).
    """
    if not wh.table_exists("marts", "rfm_scores"):
        raise PatientbaseError("The warehouse has no marts.rfm_scores yet: run `patientbase build` first.")
    counts = {r[0]: 0 for r in wh.rows("select distinct segment from marts.rfm_scores")}
    members = SEGMENT_MEMBERS.format(phone="patients.phone_e164")
    for segment, n in wh.rows(f"select file_segment, count(*) from ({members}) as m group by file_segment"):
        counts[segment] = n
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    frame = None
    for segment in sorted(counts):
        safe = re.sub(r"[^a-z0-9_]+", "_", segment.lower())
        path = out_dir / f"segment_{safe}.csv"
        if not _copy_with_bom(wh, _segment_cells_sql(segment), path, delimiter):
            if frame is None:
                frame = _segment_frame(wh)
            rows = frame[SEGMENT_COLUMNS][(frame["file_segment"] == segment).to_numpy()]
            write_csv(path, SEGMENT_COLUMNS, rows.itertuples(index=False, name=None), delimiter=delimiter,
                      prepared=True)
        written.append((segment, counts[segment], path))
    return written


def _copy_with_bom(wh, select: str, path: Path, delimiter: str) -> bool:
    """`select` written into `path` by the engine (wh.copy_csv), behind a UTF-8 BOM, atomically."""
    raw = _atomic_target(path)
    tmp = _atomic_target(path)
    try:
        if not wh.copy_csv(select, raw, delimiter):
            return False
        with tmp.open("wb") as out, raw.open("rb") as fh:
            out.write(b"\xef\xbb\xbf")
            shutil.copyfileobj(fh, out, 1 << 20)
        os.replace(tmp, path)
        return True
    finally:
        raw.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def _segment_frame(wh):
    """Every segment file's rows, read once and prepared in pandas (engines without wh.copy_csv)."""
    import pandas as pd

    members = wh.rows(f"select * from ({SEGMENT_MEMBERS.format(phone='patients.phone_e164')}) as m "
                      "order by file_segment, total_revenue desc, person_id")
    frame = pd.DataFrame(members, columns=["file_segment", *SEGMENT_COLUMNS], dtype=object)
    frame["phone"] = frame["phone"].str.lstrip("+")  # digits only: a leading '+' reads as a formula
    cells = frame[SEGMENT_COLUMNS].copy()
    prepare_cells(cells, set(SEGMENT_TEXT))
    cells.insert(0, "file_segment", frame["file_segment"])
    return cells
