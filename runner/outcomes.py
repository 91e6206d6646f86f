"""`patientbase outcomes FILE`: load a filled-in call list back into `raw.calls`.

Each list row names one phone and the person(s) and action(s) behind it; a row with a result becomes
one call per person. The call id is derived from the list row and the person, so loading the same file
again (or a corrected copy) replaces those calls instead of adding them: nothing is counted twice.
Rows without a result were not called yet and are skipped.

The file is loaded whole or not at all: a result word, a time or a row whose ids or phone no longer
match the list stops the load, and the terminal lists each such cell (line, column, value, what is
accepted), so an administrator can correct the file and load it again.

Results are read in people's words (`RESULT_WORDS`, README "Call outcomes"): case, punctuation, `ё`
and the words following a known phrase do not matter (`Записана на 10.07` is `booked`);
`перезвонить завтра` / `callback 05.07` is a callback with its date. The list may come back as the
UTF-8 CSV the export wrote, as a CSV re-saved by Russian Excel (Windows-1251, `;` or `,`), or as XLSX.
Cells the export neutralised against formulas (`'@ID`, `'+7…`) are restored.

The list is checked against the warehouse's marts on its engine (DuckDB, PostgreSQL or Spark); the calls
are written into the raw tables of the loading area (the local DuckDB file, runner/engine.py), which
the command then pushes into the engine in the same publishing.

Outcomes are also kept in `raw.call_list_outcomes`, and `patientbase load` puts them back into
`raw.calls` after replacing it with a newer MIS call export, so a reload never loses them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import phonenumbers

from .errors import PatientbaseError
from .export import CALL_LIST_COLUMNS, FORMULA_START
from .load import ensure_raw_schema, file_sha256, merge_outcomes_into_calls
from .mapping import xlsx_to_csv

#: What an administrator may type in the result column, per stored result. Matching ignores case,
#: punctuation and `ё`/`е`, and a known phrase may be followed by more words ("записана на 10.07").
#: The first word of each list is the one the XLSX drop-down offers (Russian and English lists).
RESULT_WORDS: dict[str, list[str]] = {
    "booked": [
        "записан", "записана", "записаны", "записался", "записалась", "записались", "записали", "записал",
        "записала", "запись", "запишется", "запишутся", "придет", "придут",
        "booked", "book", "appointment", "appointment made", "made an appointment", "scheduled",
        "will come", "coming",
    ],
    "callback": [
        "перезвонить", "перезвоните", "перезвоним", "перезвонит", "перезвонит сам", "перезвонит сама",
        "просил перезвонить", "просила перезвонить", "попросил перезвонить", "попросила перезвонить",
        "позвонить позже", "позвонить", "подумает", "думает", "callback", "call back", "call back later",
        "call again", "call later", "will call back", "asked to call back", "thinking",
    ],
    "no_answer": [
        "не дозвонились", "не дозвонился", "не дозвонилась", "не дозвонилось", "недозвон", "нет ответа",
        "не отвечает", "не ответил", "не ответила", "не берет", "не берут", "не взял", "не взяла", "занято",
        "недоступен", "недоступна", "абонент недоступен", "сбросил", "сбросила", "автоответчик",
        "no answer", "no_answer", "not reached", "no reply", "did not answer", "didn t answer",
        "not answering", "busy", "voicemail", "unreachable",
    ],
    "refused": [
        "отказ", "отказался", "отказалась", "отказались", "отказывается", "не интересно", "не интересует",
        "не хочет", "не нужно", "не надо", "refused", "refuses", "declined", "not interested",
        "no thanks", "no thank you",
    ],
    "wrong_number": [
        "неверный номер", "не тот номер", "чужой номер", "ошиблись номером", "номер не существует",
        "номер не обслуживается", "не существует", "wrong number", "wrong_number", "invalid number",
        "not in service",
    ],
}
#: Drop-down words per language: one per result, in this order.
RESULT_CHOICES = {
    "ru": ["записан", "перезвонить", "не дозвонились", "отказ", "неверный номер"],
    "en": ["booked", "callback", "no answer", "refused", "wrong number"],
}
#: Words after "перезвонить"/"callback" that give the callback's date, days after the list date (longest first).
_DAY_WORDS = {"day after tomorrow": 2, "послезавтра": 2, "tomorrow": 1, "завтра": 1, "сегодня": 0, "today": 0}

REQUIRED = ("list_row_id", "person_ids", "action_codes", "result")
LIST_ROW_ID = re.compile(r"^(\d{8})-\d{5}$")
# times alone (14:35, 15.10, 9:05:00, 2:35 PM) and full date-times (01.07.2025 14:35, 2025-07-01 14:35:00)
_TIME = r"(?P<h>\d{1,2})[:.](?P<m>\d{2})(?:[:.](?P<s>\d{2}))?\s*(?P<ampm>am|pm|a\.m\.|p\.m\.)?"
_TIME_ONLY = re.compile(rf"^{_TIME}$", re.IGNORECASE)
_DATE_TIME = re.compile(
    rf"^(?:(?P<d>\d{{1,2}})\.(?P<mo>\d{{1,2}})\.(?P<y>\d{{4}})|(?P<iy>\d{{4}})-(?P<imo>\d{{2}})-(?P<id>\d{{2}}))"
    rf"(?:[ T]+{_TIME})?$",
    re.IGNORECASE,
)
_CALLBACK_DATE = re.compile(r"\b(\d{1,2})\.(\d{1,2})(?:\.(\d{4}))?\b|\b(\d{4})-(\d{2})-(\d{2})\b")


@dataclass
class OutcomesResult:
    file: str
    rows: int
    not_called: int
    calls_loaded: int
    rejected: int
    already_loaded: bool


@dataclass
class Problem:
    line: int
    column: str
    value: str
    reason: str


def normalise_words(text: str) -> str:
    """Lower case, `ё` as `е`, punctuation as spaces, single spaces: 'Не дозвонилась!' -> 'не дозвонилась'."""
    text = text.lower().replace("ё", "е").replace("_", " ")
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


_PHRASES = sorted(
    ((normalise_words(word), result) for result, words in RESULT_WORDS.items() for word in words),
    key=lambda pair: -len(pair[0]),
)


def read_result(text: str, list_date: dt.date | None) -> tuple[str | None, dt.date | None]:
    """(result, callback date) for what an administrator typed; (None, None) when it is not understood.

    The longest known phrase the text starts with decides ('не дозвонилась' is not 'не …' anything
    else); the rest may say when to call back: завтра/tomorrow, послезавтра, 05.07, 2025-07-05.
    """
    words = normalise_words(text)
    for phrase, result in _PHRASES:  # noqa: B007 - the matching phrase's result is used after the loop
        if words == phrase or words.startswith(phrase + " "):
            break
    else:
        return None, None
    if result != "callback":
        return result, None
    rest = words[len(phrase):].strip()
    for word, days in _DAY_WORDS.items():
        if rest == word or rest.startswith(word + " ") or f" {word}" in f" {rest}":
            return result, (list_date + dt.timedelta(days=days)) if list_date else None
    found = _CALLBACK_DATE.search(text)
    if found:
        d, mo, y, iy, imo, iday = found.groups()
        try:
            if iy:
                return result, dt.date(int(iy), int(imo), int(iday))
            year = int(y) if y else (list_date.year if list_date else dt.date.today().year)
            day = dt.date(year, int(mo), int(d))
            if not y and list_date and day < list_date:  # "05.01" typed in December means next January
                day = dt.date(year + 1, int(mo), int(d))
            return result, day
        except ValueError:
            return None, None
    return result, None


def read_called_at(text: str, list_date: dt.date | None) -> dt.datetime | None:
    """The call's time: a time on the list date (14:35, 15.10, 2:35 PM) or a full date-time.

    None when unreadable (25:99, вчера): never a made-up time.
    """
    text = text.strip()
    match = _TIME_ONLY.match(text)
    day = list_date
    if match is None:
        match = _DATE_TIME.match(text)
        if match is None:
            return None
        try:
            if match.group("iy"):
                day = dt.date(int(match.group("iy")), int(match.group("imo")), int(match.group("id")))
            else:
                day = dt.date(int(match.group("y")), int(match.group("mo")), int(match.group("d")))
        except ValueError:
            return None
        if match.group("h") is None:  # a date cell alone: the time is unknown, noon as for an empty time
            return dt.datetime.combine(day, dt.time(12))
    if day is None:
        return None
    hour, minute, second = int(match.group("h")), int(match.group("m")), int(match.group("s") or 0)
    ampm = (match.group("ampm") or "").lower().replace(".", "")
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return dt.datetime.combine(day, dt.time(hour, minute, second))


def restore(value: str | None) -> str:
    """A cell as the export meant it: trimmed, the formula guard's leading apostrophe taken off."""
    value = (value or "").replace("\u2060", "").strip()
    if value.startswith("'") and value[1:].startswith(FORMULA_START):
        value = value[1:]
    return value


def _header_map() -> dict[str, str]:
    """Header text (English or Russian, lower-cased) -> column key."""
    out = {}
    for key, en, ru in CALL_LIST_COLUMNS:
        out[en.lower()] = key
        out[ru.lower()] = key
        out[key] = key
    return out


def _read_text(path: Path) -> str:
    """The CSV's text: UTF-8 (with or without BOM) as exported, else Windows-1251 as Russian Excel saves it."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1251")


def read_list_file(path: Path, delimiter: str = ";") -> list[tuple[int, dict[str, str]]]:
    """(line, {column key: text}) for every data row of a CSV or XLSX call list."""
    with tempfile.TemporaryDirectory(prefix="patientbase-outcomes-") as tmp:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            source = Path(tmp) / "list.csv"
            xlsx_to_csv(path, None, source)
            text, sep = source.read_text(encoding="utf-8"), ","
        else:
            text = _read_text(path)
            first = text.split("\n", 1)[0]
            sep = max([delimiter, ";", ",", "\t"], key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header = next(reader, None) or []
    keys = _header_map()
    index = {}
    for i, name in enumerate(header):
        key = keys.get(restore(name).lower())
        if key and key not in index:
            index[key] = i
    missing = [k for k in REQUIRED if k not in index]
    if missing:
        raise PatientbaseError(
            f"{path.name}, line 1: this is not a call list exported by patientbase: column(s) "
            f"{', '.join(missing)} are missing. Fill in the list file `patientbase export call-list` wrote."
        )
    out = []
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        out.append((line, {key: restore(record[i]) if i < len(record) else "" for key, i in index.items()}))
    return out


def accepted_words() -> str:
    return "; ".join(f"{result}: {', '.join(words[:6])} …" for result, words in RESULT_WORDS.items())


def _list_rows(wh) -> tuple[dict[str, tuple], set[dt.date]]:
    """The warehouse's call list: list_row_id -> (person_ids, action_codes, phone_e164), and its dates."""
    if not wh.table_exists("marts", "call_list"):
        return {}, set()
    rows = wh.rows("select list_row_id, person_ids, action_codes, phone_e164, list_date from marts.call_list")
    return {r[0]: (r[1], r[2], r[3]) for r in rows}, {r[4] for r in rows}


def _person_phones(wh, person_ids: set[str]) -> dict[str, set[str]]:
    """Each person's known phones: the call-list candidates' and the patient card's."""
    tables = [t for t in ("call_list_candidates", "dim_patients") if wh.table_exists("marts", t)]
    if not person_ids or not tables:
        return {}
    union = " union all ".join(f"select person_id, phone_e164 from marts.{t}" for t in tables)
    out: dict[str, set[str]] = {}
    wanted = sorted(person_ids)
    for at in range(0, len(wanted), 500):  # one `?` per id: a list parameter is not portable
        chunk = wanted[at:at + 500]
        rows = wh.rows(f"select person_id, phone_e164 from ({union}) as phones "
                       f"where person_id in ({', '.join('?' for _ in chunk)})", chunk)
        for person, phone in rows:
            out.setdefault(person, set()).add(phone)
    return out


def _e164(phone: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def read_outcomes(wh, name: str, rows, region: str = "RU"):
    """Check every called row against the warehouse's list and patients (`wh`, on its engine); return
    (calls, problems). Calls are tuples in raw.call_list_outcomes order."""
    listed, listed_dates = _list_rows(wh)
    calls, problems = [], []
    called = [(line, row) for line, row in rows if row.get("result")]
    phones = _person_phones(wh, {p.strip() for _, row in called for p in row["person_ids"].split(",") if p.strip()})
    for line, row in called:
        before = len(problems)

        def refuse(column: str, reason: str, value: str | None = None, line=line, row=row) -> None:
            problems.append(Problem(line, column, row.get(column, "") if value is None else value, reason))

        row_id = row["list_row_id"]
        id_match = LIST_ROW_ID.match(row_id)
        list_date = None
        if id_match:
            list_date = dt.datetime.strptime(id_match.group(1), "%Y%m%d").date()
        else:
            refuse("list_row_id", "not a list row id like 20250701-00003: the row was edited or is not from a call list")
        persons = [p.strip() for p in row["person_ids"].split(",")]
        actions = [a.strip() for a in row["action_codes"].split(",")]
        if not all(persons) or not all(actions) or len(persons) != len(actions):
            refuse("person_ids", "person ids and action codes must be the list's (one action per person): "
                                 "the row was edited", f"{row['person_ids']} / {row['action_codes']}")
        result, callback_on = read_result(row["result"], list_date)
        if result is None:
            refuse("result", "not a result we know; write one of: " + accepted_words())
        called_at = read_called_at(row.get("called_at", ""), list_date) if row.get("called_at") else (
            dt.datetime.combine(list_date, dt.time(12)) if list_date else None)
        if called_at is None and list_date is not None:
            refuse("called_at", "not a time: write 14:35, 15.10, 2:35 PM or 01.07.2025 14:35 (or leave it empty)")
        phone = _e164(row["phone"], region) if row.get("phone") else None
        if len(problems) == before:
            # the ids must still be the list's: the same row of the warehouse's list or, when the list
            # was rebuilt since (another day, today's outcomes already loaded), persons who have the
            # row's phone. An edited id or phone fails both.
            expected = listed.get(row_id) if list_date in listed_dates else None
            same_row = expected is not None and (expected[0], expected[1]) == (",".join(persons), ",".join(actions))
            if same_row and row.get("phone") and phone != expected[2]:
                refuse("phone", f"row {row_id} of the {list_date} list is for another phone (phone edited?)")
            elif not same_row:
                unknown = [p for p in persons if p not in phones]
                if unknown:
                    refuse("person_ids", f"no patient {', '.join(unknown)} in the warehouse (ids edited?)")
                elif row.get("phone") and any(phone not in phones[p] for p in persons):
                    refuse("person_ids", f"row {row_id}: {', '.join(persons)} do(es) not have the phone "
                                         f"{row['phone']} (ids or phone edited?)", row["person_ids"])
        if len(problems) > before:
            continue
        comment = row.get("comment") or None
        if callback_on:
            note = f"callback {callback_on.isoformat()}"
            comment = f"{note}; {comment}" if comment else note
        operator = row.get("operator") or row.get("admin") or None
        for person, action in zip(persons, actions):
            calls.append((f"CL-{row_id}-{person}", person, operator, called_at, None, result, action, comment,
                          row_id, callback_on, name))
    return calls, problems


def load_outcomes(wh, con, path: Path, delimiter: str = ";", region: str = "RU") -> OutcomesResult:
    """Check the filled-in list against the warehouse (`wh`, on its engine) and write its calls into the
    loading area `con` (the local DuckDB file that holds the raw tables; the caller pushes raw into
    PostgreSQL or Spark afterwards, in the same publishing)."""
    path = Path(path)
    if not path.is_file():
        raise PatientbaseError(f"{path}: no such file.")
    sha = file_sha256(path)
    rows = read_list_file(path, delimiter)
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
        con.execute("alter table raw.call_list_outcomes add column if not exists callback_on DATE")
        if con.execute("select count(*) from raw.call_list_outcomes where file_sha256 = ?", [sha]).fetchone()[0]:
            con.execute("rollback")
            return OutcomesResult(path.name, 0, 0, 0, 0, already_loaded=True)
        calls, problems = read_outcomes(wh, path.name, rows, region)
        if problems:
            raise PatientbaseError(problem_message(path.name, problems))
        now = dt.datetime.now().replace(microsecond=0)
        con.execute("create or replace temp table _calls as select * from raw.call_list_outcomes limit 0")
        con.executemany(
            "insert into _calls (call_id, patient_id, operator_id, called_at, duration_s, result, action_code, "
            "comment, list_row_id, callback_on, list_file, file_sha256, loaded_at) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*call, sha, now) for call in calls],
        )
        con.execute("delete from raw.call_list_outcomes where call_id in (select call_id from _calls)")
        con.execute("insert into raw.call_list_outcomes by name select * from _calls")
        con.execute("drop table _calls")
        merge_outcomes_into_calls(con)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    not_called = sum(1 for _, row in rows if not row.get("result"))
    return OutcomesResult(path.name, len(rows), not_called, len(calls), 0, already_loaded=False)


def problem_message(name: str, problems: list[Problem], limit: int = 20) -> str:
    lines = [f"{name}: nothing loaded, {len(problems)} cell(s) to correct first:"]
    for p in problems[:limit]:
        lines.append(f"  line {p.line}, {p.column} {p.value!r}: {p.reason}")
    if len(problems) > limit:
        lines.append(f"  … and {len(problems) - limit} more")
    lines.append("Correct the file and run `patientbase outcomes` again (README, \"Call outcomes\").")
    return "\n".join(lines)
