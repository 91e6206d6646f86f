"""The call list, segment files and call outcomes, on a hand-made marts.call_list_candidates.

Candidates (as of 2025-07-01), ranked by priority, then expected value (desc), then person id:

| person | priority | expected | phone        | notes                                              |
|--------|----------|----------|--------------|----------------------------------------------------|
| B      | 1        | 9000     | +79120000002 | rank 1                                             |
| A      | 1        | 5000     | +79120000001 | rank 2; called last by OP2                         |
| C, D   | 2 / 3    | 100/100  | +79120000003 | one family phone -> one row, ranked as C (rank 3)  |
| E      | 2        | 50       | +79120000005 | excluded: visit_booked                             |
| F      | 2        | 80       | +79120000006 | called 2025-06-25, recent until 07-09: out on 07-01, back on 07-20 |
| G      | 4        | 1        | +79120000007 | surname "=HYPERLINK(...)": must stay text          |
| @H8    | 5        | 1        | +79120000008 | beyond capacity; an id a spreadsheet would run     |

With admins OP1, OP2 and 2 calls each (4 rows): B, A, C+D, G. A stays with OP2 (its last caller);
the rest fill free slots in rank order, administrators in turn: OP1 gets B then G, OP2 gets A then C+D.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook
from patientbase.load import TABLES, create_empty, ensure_raw_schema

CANDIDATES = [
    # person, name, phone, action, priority, expected, last_call_at, last_operator, exclusion
    ("A", "Андреева Анна", "+79120000001", "recall_due", 1, 5000, "2025-05-01 10:00", "OP2", None),
    ("B", "Борисов Борис", "+79120000002", "plan_follow_up", 1, 9000, None, None, None),
    ("C", "Царёва Ольга", "+79120000003", "recall_due", 2, 100, None, None, None),
    ("D", "Царёв Миша", "+79120000003", "welcome_second_visit", 3, 100, None, None, None),
    ("E", "Егоров Егор", "+79120000005", "recall_due", 2, 50, None, None, "visit_booked"),
    ("F", "Фомина Фаина", "+79120000006", "reactivation", 2, 80, "2025-06-25 11:00", "OP1", "called_recently"),
    ("G", '=HYPERLINK("http://evil","x")', "+79120000007", "reactivation", 4, 1, None, None, None),
    ("@H8", "Хохлов Хасан", "+79120000008", "reactivation", 5, 1, None, None, None),
]


def make_warehouse(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        ensure_raw_schema(con)
        for table in TABLES.values():
            create_empty(con, table)
        con.execute("create schema intermediate; create schema marts")
        con.execute("create table intermediate.int_as_of_date as select date '2025-07-01' as as_of_date")
        # no call list has been measured yet (int_call_list_ranked reads the learned uplift)
        con.execute("create table intermediate.int_action_uplift (action_code varchar, uplift decimal(18,4), "
                    "uplift_high decimal(18,4), is_learned boolean, is_uplift_about_zero boolean)")
        con.execute(
            """
            create table marts.call_list_candidates (
                person_id varchar, patient_ids varchar, display_name varchar, phone_e164 varchar,
                action_code varchar, action_label varchar, action_label_en varchar, action_label_ru varchar,
                reason_template_en varchar, reason_template_ru varchar, reason_counted_from date,
                offer_en varchar, offer_ru varchar, priority integer, expected_value decimal(18,2),
                due_date date, last_visit_date date, last_doctor_id varchar, last_specialty varchar,
                next_scheduled_at timestamp, last_call_at timestamp, last_refusal_at timestamp,
                attempts_on_action integer, last_operator_id varchar, is_action_about_booking boolean,
                exclusion_reason varchar, base_exclusion_reason varchar, called_recently_until date,
                refused_recently_until date, as_of_date date, trigger_date date, expected_revenue decimal(18,2))
            """
        )
        for person, name, phone, action, priority, value, last_call, operator, exclusion in CANDIDATES:
            con.execute(
                """
                insert into marts.call_list_candidates values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?, ?, ?, ?,
                    date '2025-07-01',
                    date '2025-01-10', 'D01', 'dentistry', null, ?, null, 0, ?, false, ?,
                    case when ? = 'called_recently' then null else ? end,
                    cast(? as timestamp)::date + 14, null, date '2025-07-01', null, null)
                """,
                [person, person, name, phone, action, action, action, "задача " + action, f"why {person}",
                 f"почему {person}", f"offer {person}", f"предложение {person}", priority, value, last_call,
                 operator, exclusion,
                 exclusion, exclusion, last_call],
            )
        # the person's likelihood to come, the call list's tie-break after the expected value (as built)
        con.execute("alter table marts.call_list_candidates add column conversion_rate decimal(18,4)")


@pytest.fixture
def exports(ws):
    make_warehouse(ws.warehouse)
    ws.config("admins: [OP1, OP2]\ncalls_per_admin: 2\n")
    return ws


def read_list(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def test_call_list_ranks_caps_groups_families_and_keeps_the_last_caller(exports):
    ws = exports
    result = ws.invoke("export", "call-list")
    path = ws.root / "exports" / "call_list_2025-07-01.csv"
    assert "Call list for 2025-07-01: 4 calls (5 patients) of 4 slots" in result.output
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    rows = read_list(path)
    assert [(r["Администратор"], r["№"], r["ID персон"]) for r in rows] == [
        ("OP1", "1", "B"), ("OP1", "2", "G"), ("OP2", "1", "A"), ("OP2", "2", "C,D"),
    ]
    family = rows[3]
    assert family["Телефон"] == "8 (912) 000-00-03"
    assert family["Пациент(ы)"] == "Царёва Ольга; Царёв Миша"
    assert family["Почему"] == "Царёва Ольга: почему C; Царёв Миша: почему D"
    # one language per list: the Russian action names and offers (the model's `_ru` texts)
    assert family["Задача"] == "Царёва Ольга: задача recall_due; Царёв Миша: задача welcome_second_visit"
    assert family["Предложение"] == "Царёва Ольга: предложение C; Царёв Миша: предложение D"
    assert family["Коды задач"] == "recall_due,welcome_second_visit"
    assert family["Окно звонка"] == "14:00–18:00"
    assert [family[k] for k in ("Время звонка", "Оператор", "Результат", "Комментарий")] == ["", "", "", ""]
    # "=HYPERLINK(...)" is written with a leading apostrophe, so a spreadsheet shows it as text
    assert rows[1]["Пациент(ы)"] == "'=HYPERLINK(\"http://evil\",\"x\")"


def test_call_list_for_a_later_date_reapplies_the_recent_call_window(exports):
    ws = exports
    # by default a list is for the as-of date (2025-07-01) up to 3 days after it
    late = ws.invoke("export", "call-list", "--date", "2025-07-20", expect=2)
    assert "--date 2025-07-20 is more than 3 days after the warehouse's as-of date 2025-07-01" in late.output
    early = ws.invoke("export", "call-list", "--date", "2025-06-30", expect=2)
    assert "--date 2025-06-30 is before the warehouse's as-of date 2025-07-01" in early.output
    assert not (ws.root / "exports").exists()
    ws.config("admins: [OP1, OP2]\ncalls_per_admin: 2\ncall_list_days_ahead: 19\n")
    ws.invoke("export", "call-list", "--date", "2025-07-20", "--admins", "3", "--calls-per-admin", "3")
    rows = read_list(ws.root / "exports" / "call_list_2025-07-20.csv")
    # F (called 2025-06-25) is back after 14 days; E (visit booked) never is; nine slots take all six phones
    assert sorted(r["ID персон"] for r in rows) == ["'@H8", "A", "B", "C,D", "F", "G"]
    assert {r["Администратор"] for r in rows} == {"OP1", "OP2", "admin3"}


def test_xlsx_keeps_phones_and_names_as_text(exports):
    ws = exports
    ws.invoke("export", "call-list", "--format", "xlsx")
    sheet = load_workbook(ws.root / "exports" / "call_list_2025-07-01.xlsx").active
    cells = {cell.value: cell.data_type for row in sheet.iter_rows(min_row=2) for cell in row if cell.value is not None}
    assert cells["8 (912) 000-00-02"] == "s"
    assert cells['=HYPERLINK("http://evil","x")'] == "s"  # a string cell, never a formula
    assert "f" not in set(cells.values())


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed; CI installs it")
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_list_opens_cleanly_in_libreoffice_with_no_formula(exports, fmt, tmp_path):
    ws = exports
    ws.invoke("export", "call-list", "--format", fmt)
    source = ws.root / "exports" / f"call_list_2025-07-01.{fmt}"
    # CSV import with ';', UTF-8 and "evaluate formulas" ON: neutralised cells must still not be formulas
    infilter = ["--infilter=CSV:59,34,76,1,,0,false,true,false,false,false,-1,true"] if fmt == "csv" else []
    out = tmp_path / "lo"
    subprocess.run(
        ["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo-profile", *infilter,
         "--convert-to", "ods" if fmt == "xlsx" else "xlsx", "--outdir", str(out), str(source)],
        check=True, capture_output=True, timeout=120,
    )
    converted = out / ("call_list_2025-07-01.xlsx" if fmt == "csv" else "call_list_2025-07-01.ods")
    assert converted.exists()
    if fmt == "csv":
        sheet = load_workbook(converted).active
        types = [cell.data_type for row in sheet.iter_rows() for cell in row if cell.value is not None]
        assert types and "f" not in types
        names = [row[3].value for row in sheet.iter_rows(min_row=2)]
        assert names[1] == "'=HYPERLINK(\"http://evil\",\"x\")"
    else:
        content = subprocess.run(["unzip", "-p", str(converted), "content.xml"], capture_output=True, check=True).stdout
        assert b"table:formula" not in content
        assert "Царёва Ольга; Царёв Миша".encode() in content


def fill(path: Path, outcomes: dict[str, tuple[str, str, str, str]]) -> Path:
    """Fill the result columns of the rows whose person ids are given, as an administrator would."""
    rows = read_list(path)
    header = list(rows[0].keys())
    for row in rows:
        if row["ID персон"] in outcomes:
            row["Время звонка"], row["Оператор"], row["Результат"], row["Комментарий"] = outcomes[row["ID персон"]]
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_outcomes_load_once_per_person_and_loading_twice_changes_nothing(exports):
    ws = exports
    ws.invoke("export", "call-list")
    path = fill(ws.root / "exports" / "call_list_2025-07-01.csv", {
        "B": ("14:35", "", "Записан", "на 10.07"),
        "C,D": ("01.07.2025 15:10", "OP2", "перезвонить", ""),
    })
    result = ws.invoke("outcomes", str(path))
    assert "3 calls loaded from 2 called rows; 2 rows not called yet" in result.output
    calls = ws.query("select call_id, patient_id, operator_id, strftime(called_at, '%Y-%m-%d %H:%M'), result, action_code, comment from raw.calls order by 1")
    assert calls == [
        ("CL-20250701-00001-B", "B", "OP1", "2025-07-01 14:35", "booked", "plan_follow_up", "на 10.07"),
        ("CL-20250701-00003-C", "C", "OP2", "2025-07-01 15:10", "callback", "recall_due", None),
        ("CL-20250701-00003-D", "D", "OP2", "2025-07-01 15:10", "callback", "welcome_second_visit", None),
    ]
    again = ws.invoke("outcomes", str(path))
    assert "already loaded, nothing changed" in again.output
    assert ws.scalar("select count(*) from raw.calls") == 3
    # a corrected copy replaces the same calls instead of adding new ones
    fixed = fill(path, {"A": ("15:00", "OP2", "отказ", "не интересно")})
    ws.invoke("outcomes", str(fixed))
    assert ws.scalar("select count(*) from raw.calls") == 4
    assert ws.scalar("select result from raw.calls where patient_id = 'A'") == "refused"


def test_outcomes_read_an_administrators_words_and_times(exports):
    ws = exports
    ws.invoke("export", "call-list")
    path = fill(ws.root / "exports" / "call_list_2025-07-01.csv", {
        "B": ("2:35 PM", "", "Записана!", ""),
        "A": ("15.10", "OP2", "НЕ ДОЗВОНИЛСЯ", ""),
        "C,D": ("", "", "перезвонить завтра", "после обеда"),
        "G": ("2025-07-01 09:05:00", "", "Отказалась.", ""),
    })
    ws.invoke("outcomes", str(path))
    calls = ws.query("select patient_id, operator_id, strftime(called_at, '%Y-%m-%d %H:%M'), result, comment "
                     "from raw.calls order by 1")
    # an empty time is noon of the list date; "завтра" is the day after the list date
    assert calls == [
        ("A", "OP2", "2025-07-01 15:10", "no_answer", None),
        ("B", "OP1", "2025-07-01 14:35", "booked", None),
        ("C", "OP2", "2025-07-01 12:00", "callback", "callback 2025-07-02; после обеда"),
        ("D", "OP2", "2025-07-01 12:00", "callback", "callback 2025-07-02; после обеда"),
        ("G", "OP1", "2025-07-01 09:05", "refused", None),
    ]
    assert ws.scalar("select count(*) from raw.call_list_outcomes where callback_on = date '2025-07-02'") == 2


@pytest.mark.parametrize("text, expected", [
    ("Записана", ("booked", None)), ("записались на 10.07", ("booked", None)), ("Booked.", ("booked", None)),
    ("Отказался", ("refused", None)), ("not interested", ("refused", None)),
    ("не дозвонилась", ("no_answer", None)), ("No answer", ("no_answer", None)), ("no_answer", ("no_answer", None)),
    ("Перезвонить завтра!", ("callback", "2025-07-02")), ("перезвонить послезавтра", ("callback", "2025-07-03")),
    ("callback 05.07", ("callback", "2025-07-05")), ("call back tomorrow", ("callback", "2025-07-02")),
    ("Неверный номер", ("wrong_number", None)), ("wrong number", ("wrong_number", None)),
    ("занят?", (None, None)), ("не", (None, None)),
])
def test_result_vocabulary(text, expected):
    import datetime as dt

    from patientbase.outcomes import read_result

    result, day = read_result(text, dt.date(2025, 7, 1))
    assert (result, day.isoformat() if day else None) == expected


@pytest.mark.parametrize("text, expected", [
    ("14:35", "2025-07-01 14:35"), ("15.10", "2025-07-01 15:10"), ("2:35 PM", "2025-07-01 14:35"),
    ("12:05 am", "2025-07-01 00:05"), ("9:05:30", "2025-07-01 09:05"), ("02.07.2025 08:00", "2025-07-02 08:00"),
    ("2025-07-02T08:00", "2025-07-02 08:00"), ("25:99", None), ("вчера", None), ("13:00 PM", None), ("", None),
])
def test_call_times(text, expected):
    import datetime as dt

    from patientbase.outcomes import read_called_at

    at = read_called_at(text, dt.date(2025, 7, 1))
    assert (at.strftime("%Y-%m-%d %H:%M") if at else None) == expected


def test_an_unreadable_file_is_listed_and_nothing_is_loaded(exports):
    ws = exports
    ws.invoke("export", "call-list")
    path = fill(ws.root / "exports" / "call_list_2025-07-01.csv", {
        "B": ("14:35", "", "записан", ""),
        "A": ("25:99", "OP2", "отказ", ""),
        "C,D": ("вчера", "", "хз", ""),
    })
    result = ws.invoke("outcomes", str(path), expect=1)
    assert "call_list_2025-07-01.csv: nothing loaded, 3 cell(s) to correct first:" in result.output
    assert "line 4, called_at '25:99': not a time" in result.output
    assert "line 5, result 'хз': not a result we know; write one of: booked: записан" in result.output
    assert "line 5, called_at 'вчера': not a time" in result.output
    assert ws.scalar("select count(*) from raw.calls") == 0


def test_edited_ids_or_phones_are_refused(exports):
    ws = exports
    ws.invoke("export", "call-list")
    path = ws.root / "exports" / "call_list_2025-07-01.csv"
    rows = read_list(path)
    rows[0]["ID персон"] = "A"            # B's row now names A
    rows[2]["Телефон"] = "8 (912) 999-99-99"  # A's row, another phone
    rows[3]["ID персон"] = ""             # the family's ids deleted
    for row in rows:
        row["Результат"] = "записан"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
    result = ws.invoke("outcomes", str(path), expect=1)
    assert "nothing loaded, 3 cell(s)" in result.output
    assert "line 2, person_ids 'A': row 20250701-00001: A do(es) not have the phone 8 (912) 000-00-02 (ids or phone edited?)" in result.output
    assert "line 4, phone '8 (912) 999-99-99': row 20250701-00002 of the 2025-07-01 list is for another phone" in result.output
    assert "line 5, person_ids ' / recall_due,welcome_second_visit': person ids and action codes" in result.output
    assert ws.scalar("select count(*) from raw.calls") == 0


def test_a_windows_1251_list_with_commas_and_neutralised_ids_loads(exports):
    ws = exports
    ws.invoke("export", "call-list", "--date", "2025-07-02", "--admins", "3", "--calls-per-admin", "3")
    path = ws.root / "exports" / "call_list_2025-07-02.csv"
    rows = read_list(path)
    assert [r["ID персон"] for r in rows if r["ID персон"].startswith("'")] == ["'@H8"]
    for row in rows:
        if row["ID персон"] in ("'@H8", "B"):
            row["Результат"], row["Время звонка"] = "не дозвонились", "10:00"
    # Russian Excel saves the list as Windows-1251, here with ',' between cells
    resaved = ws.root / "resaved.csv"
    with resaved.open("w", encoding="cp1251", newline="", errors="strict") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=",")
        writer.writeheader()
        writer.writerows(rows)
    # the warehouse's list is rebuilt for another day meanwhile: the rows are checked against the persons' phones
    ws.invoke("export", "call-list")
    result = ws.invoke("outcomes", str(resaved))
    assert "2 calls loaded from 2 called rows" in result.output
    assert ws.query("select call_id, result from raw.calls order by 1") == [
        ("CL-20250702-00001-B", "no_answer"), ("CL-20250702-00005-@H8", "no_answer"),
    ]


def test_outcomes_survive_a_reload_of_the_mis_call_export(exports):
    ws = exports
    ws.invoke("export", "call-list")
    path = fill(ws.root / "exports" / "call_list_2025-07-01.csv", {"B": ("14:35", "", "записан", "")})
    ws.invoke("outcomes", str(path))
    mis = ws.root / "mis"
    mis.mkdir()
    (mis / "calls.csv").write_text(
        "call_id,patient_id,operator_id,called_at,duration_s,result,action_code,comment\n"
        "C1,A,OP2,2025-06-30 10:00:00,45,callback,recall_due,\n", encoding="utf-8")
    ws.invoke("load", str(mis / "calls.csv"))
    assert ws.query("select call_id from raw.calls order by 1") == [("C1",), ("CL-20250701-00001-B",)]


def test_segment_files_hold_only_people_who_may_be_messaged(ws):
    ws.invoke("load", str(ws.copy_fixture("clinic15")))
    ws.invoke("build", "--as-of", "2025-07-01", "--select", "+rfm_scores +dim_patients")
    result = ws.invoke("export", "segments")
    folder = ws.root / "exports" / "segments"
    files = sorted(p.name for p in folder.iterdir())
    assert "segment_champions.csv" in files
    everyone = [row for f in folder.iterdir() for row in read_list(f)]
    # P11 is deceased: in no file; everyone else with a completed visit may be messaged in clinic15
    assert sorted(r["person_id"] for r in everyone) == ["P01", "P03", "P04", "P05", "P07", "P08", "P09", "P10", "P12", "P14", "P15"]
    champion = read_list(folder / "segment_champions.csv")[0]
    assert (champion["person_id"], champion["phone"], champion["segment_label"]) == ("P01", "79121112233", "Чемпионы")
    assert "champions 1" in result.output


def test_segment_files_are_formula_safe_and_excel_readable(ws):
    folder = ws.copy_fixture("clinic15")
    patients = folder / "patients.csv"
    text = patients.read_text(encoding="utf-8")
    # P01's cards with a surname that would run as a formula in Excel, and an e-mail starting with '@'
    text = text.replace(",Орлова,Анна,", ",=HYPERLINK(\"http://x\"),Анна,").replace("anna@example.ru", "@anna@example.ru")
    patients.write_text(text, encoding="utf-8")
    ws.invoke("load", str(folder))
    ws.invoke("build", "--as-of", "2025-07-01", "--select", "+rfm_scores +dim_patients")
    ws.invoke("export", "segments")
    path = ws.root / "exports" / "segments" / "segment_champions.csv"
    assert path.read_bytes().startswith("\ufeff".encode("utf-8"))  # BOM: Excel reads UTF-8
    champion = read_list(path)[0]
    assert champion["person_id"] == "P01"
    assert champion["display_name"].startswith("'=HYPERLINK")
    assert champion["email"] is not None and not champion["email"].startswith("@")
    assert (champion["total_revenue"], champion["last_visit_date"], champion["can_call"]) == (
        ws.query("select cast(total_revenue as varchar), cast(cast(last_visit_at as date) as varchar), "
                 "cast(can_call as varchar) from marts.dim_patients where person_id = 'P01'")[0])
    # no file is left half-written or as a temporary
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_cells_are_cleaned_before_the_formula_guard():
    """A control character in front of '=' must not hide the formula from the guard: it is removed
    first, then the cell is neutralised. Numbers and dates are written as str() gives them."""
    import datetime as dt
    from decimal import Decimal

    import pandas as pd
    from patientbase.export import prepare_cells

    frame = pd.DataFrame({"name": ["\x07=HYPERLINK(1)", "Anna\x0bBell", None, "-1"],
                          "amount": [Decimal("12.50"), None, Decimal("0.00"), Decimal("-3.10")],
                          "day": [dt.date(2025, 7, 1), None, None, None]}, dtype=object)
    prepare_cells(frame, {"name"})
    assert frame.values.tolist() == [
        ["'=HYPERLINK(1)", "12.50", "2025-07-01"],
        ["AnnaBell", None, None],
        [None, "0.00", None],
        ["'-1", "-3.10", None],
    ]


def test_segment_files_written_by_duckdb_equal_those_written_by_python_byte_for_byte(ws, monkeypatch):
    """DuckDB writes the segment files itself (cells made in SQL, `COPY`); PostgreSQL and Spark read the
    rows and write them with Python's csv module. Both ways give the same bytes, for cells a real base
    holds: formula starts, control characters, the delimiter, quotes, line breaks, '#', empty strings,
    NULLs, Cyrillic, negative and zero amounts, a '+' phone."""
    from decimal import Decimal

    from patientbase.config import load_config
    from patientbase.db import DuckDBWarehouse, open_warehouse
    from patientbase.export import export_segments

    names = ["=HYPERLINK(\"x\")", "\x07=1+1", "Анна;Орлова", 'Ann "Bell"', "line\nbreak", "cr\rhere", "#tag",
             "", None, "-minus", "@at", "\tTab", " lead", "Ёлка\x0b"]
    with duckdb.connect(str(ws.warehouse)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.rfm_scores (person_id varchar, segment varchar, segment_label varchar, "
                    "rfm_code varchar)")
        con.execute("create table marts.dim_patients (person_id varchar, display_name varchar, phone_e164 varchar, "
                    "email varchar, lifecycle_status varchar, last_visit_at timestamp, total_revenue decimal(38, 2), "
                    "can_call boolean, can_message boolean, is_deceased boolean)")
        for i, name in enumerate(names):
            person = f"P{i:02d}"
            segment, label = [("champions", "Чемпионы"), ("lost", "=Потерянные"), ("new", "")][i % 3]
            con.execute("insert into marts.rfm_scores values (?, ?, ?, ?)", [person, segment, label, f"{i % 5 + 1}15"])
            con.execute("insert into marts.dim_patients values (?, ?, ?, ?, ?, ?, ?, ?, true, ?)", [
                person, name, ["+79121112233", None, "", "+1+2"][i % 4], [None, "@a@b.ru", "a;b@c.ru", "x@y.z"][i % 4],
                ["active", "lost"][i % 2], None if i == 3 else f"2025-0{i % 9 + 1}-1{i % 10} 10:30:00",
                Decimal("99.00") if i == 12 else [Decimal("1234.50"), Decimal("-3.10"), Decimal("0.00"), None][i % 4],
                i % 2 == 0, i == 13])
        con.execute("insert into marts.rfm_scores values ('P99', 'sleeping', 'Спящие', '111')")  # nobody to message
    cfg = load_config(None)
    with open_warehouse(cfg) as wh:
        assert isinstance(wh, DuckDBWarehouse)
        by_duckdb = export_segments(wh, ws.root / "duckdb")
        monkeypatch.setattr(DuckDBWarehouse, "copy_csv", lambda self, sql, path, delimiter=";": False)
        by_python = export_segments(wh, ws.root / "python")
    assert [(s, n) for s, n, _ in by_duckdb] == [(s, n) for s, n, _ in by_python] == [
        ("champions", 5), ("lost", 4), ("new", 4), ("sleeping", 0)]  # P13 is deceased
    for (_, _, a), (_, _, b) in zip(by_duckdb, by_python):
        assert a.read_bytes() == b.read_bytes(), a.name
    # and what the bytes are, worked out by hand: BOM, CRLF, ordered by revenue (NULL last), then person
    champions = (ws.root / "duckdb" / "segment_champions.csv").read_bytes().decode("utf-8")
    assert champions.split("\r\n") == [
        "\ufeffperson_id;display_name;phone;email;segment;segment_label;rfm_code;lifecycle_status;"
        "last_visit_date;total_revenue;can_call",
        # a formula neutralised, then quoted for its quotes
        "P00;\"'=HYPERLINK(\"\"x\"\")\";79121112233;;champions;Чемпионы;115;active;2025-01-10;1234.50;true",
        "P12; lead;79121112233;;champions;Чемпионы;315;active;2025-04-12;99.00;true",  # by amount, not as text
        # '#' as it is; an empty phone is an empty cell (not ""); the delimiter quoted
        "P06;#tag;;\"a;b@c.ru\";champions;Чемпионы;215;active;2025-07-16;0.00;true",
        # a text cell starting with '-' or '@' neutralised, a negative amount not
        "P09;'-minus;;'@a@b.ru;champions;Чемпионы;515;lost;2025-01-19;-3.10;false",
        # only the phone's leading '+' goes; no visit date and no revenue: empty cells
        "P03;\"Ann \"\"Bell\"\"\";1+2;x@y.z;champions;Чемпионы;415;lost;;;false",
        "",
    ]
    lost = (ws.root / "duckdb" / "segment_lost.csv").read_bytes().decode("utf-8-sig")
    assert lost.startswith("person_id;")
    assert "\r\nP04;\"line\nbreak\";79121112233;;lost;'=Потерянные;515;active;2025-05-14;1234.50;true\r\n" in lost
    assert "\r\nP01;'=1+1;;'@a@b.ru;lost;'=Потерянные;215;lost;2025-02-11;-3.10;false\r\n" in lost  # \x07 removed first
    new = (ws.root / "duckdb" / "segment_new.csv").read_bytes().decode("utf-8-sig")
    assert "\r\nP05;\"cr\rhere\";;'@a@b.ru;new;;115;lost;2025-06-15;-3.10;false\r\n" in new
    assert "\r\nP11;'\tTab;1+2;x@y.z;new;;215;lost;2025-03-11;;false\r\n" in new
    assert (ws.root / "duckdb" / "segment_sleeping.csv").read_bytes().decode("utf-8-sig").count("\r\n") == 1  # header
    assert not [p for p in (ws.root / "duckdb").iterdir() if p.name.startswith(".")]  # no temporary left


# ---------------------------------------------------------------------------------------------------
# The control group and the recorded arms (issue #13)
#
# Arm draws = first 4 hex digits of md5('person|action|') / 65536 (trigger dates are empty here),
# worked out with Python's hashlib: A 0.9553, B 0.2035, C 0.2973, D 0.4529, F 0.3445, G 0.9058,
# @H8 0.3994 (the fixture's neutralised id). With a control share of 0.3, B and C are controls. On
# 2025-07-01 the eligible rank B1 A2 C3 D4 G5 @H8 6; the call arm's phones A, C+D (D alone: C is held
# out), G, @H8 fill the 4 rows, so
# the list is full at rank 6 and both controls would have been listed.


def assignments(ws):
    return ws.query(
        "select patient_id, arm, list_date::varchar, operator_id from raw.call_assignments order by patient_id"
    )


def test_control_group_is_held_out_recorded_and_stable(exports):
    ws = exports
    ws.config("admins: [OP1, OP2]\ncalls_per_admin: 2\ncall_list_days_ahead: 30\nvars: {call_control_share: 0.3}\n")
    result = ws.invoke("export", "call-list")
    assert "Call list for 2025-07-01: 4 calls (4 patients) of 4 slots" in result.output
    assert "Call assignments recorded: 6 new" in result.output
    rows = read_list(ws.root / "exports" / "call_list_2025-07-01.csv")
    assert sorted(r["ID персон"] for r in rows) == ["'@H8", "A", "D", "G"]  # controls B and C are never listed
    assert ws.query("select person_id, arm from marts.call_list_control order by 1") == [("B", "control"), ("C", "control")]
    assert assignments(ws) == [  # ordered by id: '@' sorts before letters
        ("@H8", "call", "2025-07-01", "OP1"), ("A", "call", "2025-07-01", "OP2"),
        ("B", "control", "2025-07-01", None), ("C", "control", "2025-07-01", None),
        ("D", "call", "2025-07-01", "OP1"), ("G", "call", "2025-07-01", "OP2"),
    ]
    # a re-export of the same day records nothing new
    assert "Call assignments recorded: 0 new" in ws.invoke("export", "call-list").output
    # a later day: F is back (a new occurrence, call arm); the others keep their arm and first list date
    result = ws.invoke("export", "call-list", "--date", "2025-07-20", "--admins", "3", "--calls-per-admin", "3")
    assert "Call assignments recorded: 1 new" in result.output
    assert ("F", "call", "2025-07-20", "OP1") in assignments(ws)
    assert ws.query("select person_id, arm from intermediate.int_call_list_ranked where arm = 'control' order by 1") == [
        ("B", "control"), ("C", "control")]
    # a list for a day before the warehouse's as-of date is refused, so history is never rewritten
    result = ws.invoke("export", "call-list", "--date", "2025-06-30", expect=2)
    assert "is before the warehouse's as-of date 2025-07-01" in result.output
    assert len(assignments(ws)) == 7


def test_control_share_zero_keeps_the_previous_list(exports):
    ws = exports
    ws.config("admins: [OP1, OP2]\ncalls_per_admin: 2\nvars: {call_control_share: 0}\n")
    ws.invoke("export", "call-list")
    rows = read_list(ws.root / "exports" / "call_list_2025-07-01.csv")
    assert [r["ID персон"] for r in rows] == ["B", "G", "A", "C,D"]
    assert ws.scalar("select count(*) from marts.call_list_control") == 0
    assert ws.query("select distinct arm from raw.call_assignments") == [("call",)]

# The XLSX an administrator works from


def _make_realistic(ws) -> None:
    """Longer texts, as a clinic has them: a family's reasons, a Brazilian phone, a stray control character."""
    import duckdb

    with duckdb.connect(str(ws.warehouse)) as con:
        con.execute("update marts.call_list_candidates set phone_e164 = '+5527990033672', "
                    "display_name = 'Борисов' || chr(7) || ' Борис Борисович' where person_id = 'B'")
        # the reasons as int_persons_action_matched words them: a template counted from the visit
        con.execute(
            "update marts.call_list_candidates set reason_template_ru = 'Приём 2025-01-10 (Стоматология), "
            "{days} дн. назад; нет ни записи, ни звонка после него', reason_template_en = 'Visit on 2025-01-10 "
            "(Dentistry), {days} days ago; nothing booked and no call since', "
            "reason_counted_from = date '2025-01-10' where person_id in ('C', 'D')"
        )


def test_xlsx_is_laid_out_for_work_and_print(exports):
    ws = exports
    _make_realistic(ws)
    ws.invoke("export", "call-list", "--format", "xlsx", "--date", "2025-07-03")
    book = load_workbook(ws.root / "exports" / "call_list_2025-07-03.xlsx")
    sheet = book.active
    header = [c.value for c in sheet[1]]
    col = {name: sheet.cell(row=1, column=i + 1).column_letter for i, name in enumerate(header)}
    rows = {r[header.index("ID персон")]: dict(zip(header, r)) for r in sheet.iter_rows(min_row=2, values_only=True)}
    # phones for every country, as text without an apostrophe; the control character is gone
    assert rows["B"]["Телефон"] == "+55 27 99003-3672"
    assert rows["A"]["Телефон"] == "8 (912) 000-00-01"
    assert rows["B"]["Пациент(ы)"] == "Борисов Борис Борисович"
    # reasons count days to the list date (two days after the as-of date), specialties named by the seed
    assert rows["C,D"]["Почему"] == (
        "Царёва Ольга: Приём 2025-01-10 (Стоматология), 174 дн. назад; нет ни записи, ни звонка после него; "
        "Царёв Миша: Приём 2025-01-10 (Стоматология), 174 дн. назад; нет ни записи, ни звонка после него")
    assert rows["C,D"]["Направление"] == "Стоматология"
    # widths fit the content: phones and names whole, the reason wrapped in a wide column, rows high enough
    width = {name: sheet.column_dimensions[letter].width for name, letter in col.items()}
    assert width["Телефон"] >= len("8 (912) 000-00-01") + 1
    assert width["Пациент(ы)"] >= len("Царёва Ольга; Царёв Миша") or sheet.cell(row=2, column=4).alignment.wrap_text
    assert width["Почему"] == 60
    reason_row = list(rows).index("C,D") + 2
    assert sheet.row_dimensions[reason_row].height >= 15 * 4  # ~200 characters in a 60-wide column
    assert sheet.cell(row=reason_row, column=header.index("Почему") + 1).alignment.wrap_text
    # internal columns hidden, not removed (outcomes reads them back)
    assert {name for name, letter in col.items() if sheet.column_dimensions[letter].hidden} == {
        "ID строки", "ID персон", "Коды задач"}
    # frozen header, filter, a drop-down of result words, landscape A4 one page wide, header on each page
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{col['Комментарий']}5"
    (validation,) = sheet.data_validations.dataValidation
    assert validation.formula1 == '"записан,перезвонить,не дозвонились,отказ,неверный номер"'
    assert str(validation.sqref).startswith(f"{col['Результат']}2:")
    assert (sheet.page_setup.orientation, sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight) == ("landscape", 1, 0)
    assert sheet.page_setup.paperSize == 9  # A4
    assert sheet.print_title_rows == "$1:$1"


def test_an_english_list_is_english_throughout(exports):
    ws = exports
    _make_realistic(ws)
    ws.config("admins: [OP1, OP2]\ncalls_per_admin: 2\nlanguage: en\n")
    ws.invoke("export", "call-list")
    rows = read_list(ws.root / "exports" / "call_list_2025-07-01.csv")
    family = next(r for r in rows if r["Person ids"] == "C,D")
    assert family["Why"].startswith("Царёва Ольга: Visit on 2025-01-10 (Dentistry), 172 days ago;")
    assert (family["Action"], family["Specialty"]) == ("Царёва Ольга: recall_due; Царёв Миша: welcome_second_visit", "Dentistry")
    assert family["Offer"] == "Царёва Ольга: offer C; Царёв Миша: offer D"  # the English offers, not the Russian
    assert ws.query("select distinct list_language from marts.call_list") == [("en",)]
    # in a CSV a '+' phone is kept from running as a formula by an invisible word joiner, not an apostrophe
    assert next(r for r in rows if r["Person ids"] == "B")["Phone"] == "\u2060+55 27 99003-3672"


def test_a_filled_in_list_is_never_overwritten(exports):
    ws = exports
    ws.invoke("export", "call-list", "--format", "xlsx")
    path = ws.root / "exports" / "call_list_2025-07-01.xlsx"
    ws.invoke("export", "call-list", "--format", "xlsx")  # nothing typed in yet: replaced
    assert sorted(p.name for p in path.parent.iterdir()) == ["call_list_2025-07-01.xlsx"]
    book = load_workbook(path)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    sheet.cell(row=2, column=header.index("Результат") + 1, value="Записана")
    sheet.cell(row=2, column=header.index("Время звонка") + 1, value="10:15")
    book.save(path)
    again = ws.invoke("export", "call-list", "--format", "xlsx")
    assert "call_list_2025-07-01.xlsx already has results typed in: kept it as it is and wrote this list to " \
           "call_list_2025-07-01_2.xlsx" in again.output
    assert load_workbook(path).active.cell(row=2, column=header.index("Результат") + 1).value == "Записана"
    # and the filled-in XLSX loads back through its hidden columns
    result = ws.invoke("outcomes", str(path))
    assert "1 calls loaded from 1 called rows; 3 rows not called yet" in result.output
    assert ws.query("select call_id, strftime(called_at, '%H:%M'), result from raw.calls") == [
        ("CL-20250701-00001-B", "10:15", "booked")]


@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdftoppm") is None,
                    reason="LibreOffice (soffice) and poppler (pdftoppm, pdfinfo) are needed to render the list")
def test_the_xlsx_prints_on_one_landscape_page(exports, tmp_path):
    """Rendered as a person sees it: LibreOffice prints it to PDF, poppler says its pages and makes a PNG
    (kept in the test's folder, `call_list_2025-07-01-1.png`, to look at)."""
    ws = exports
    _make_realistic(ws)
    ws.invoke("export", "call-list", "--format", "xlsx")
    source = ws.root / "exports" / "call_list_2025-07-01.xlsx"
    subprocess.run(
        ["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/lo-profile",
         "--convert-to", "pdf", "--outdir", str(tmp_path), str(source)],
        check=True, capture_output=True, timeout=180,
    )
    pdf = tmp_path / "call_list_2025-07-01.pdf"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    assert fields["Pages"].strip() == "1"
    size = fields["Page size"].split()
    assert round(float(size[0])) == 842 and round(float(size[2])) == 595  # A4 landscape, in points
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(pdf), str(tmp_path / "call_list_2025-07-01")], check=True)
    png = tmp_path / "call_list_2025-07-01-1.png"
    assert png.stat().st_size > 10_000
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "+55 27 99003-3672" in text and "8 (912) 000-00-01" in text
    assert "ID строки" not in text  # hidden columns are not printed


def test_todays_outcomes_count_after_a_plain_build(ws):
    """Calls on the as-of day count: the list for 2025-07-01, worked and loaded the same day, shows in
    call_outcomes after `build --as-of 2025-07-01` (before, only a build as of the next day showed it)."""
    ws.invoke("load", str(ws.copy_fixture("clinic15")))
    ws.invoke("build", "--as-of", "2025-07-01")
    ws.invoke("export", "call-list")
    path = ws.root / "exports" / "call_list_2025-07-01.csv"
    first = read_list(path)[0]
    persons = first["ID персон"].split(",")
    rows = read_list(path)
    rows[0]["Результат"], rows[0]["Время звонка"] = "записана", "11:20"
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
    ws.invoke("outcomes", str(path))
    ws.invoke("build", "--as-of", "2025-07-01")
    assert ws.query(
        "select week_start, sum(attempts), sum(booked) from marts.call_outcomes group by week_start"
    ) == [(__import__("datetime").date(2025, 6, 30), len(persons), len(persons))]


def test_build_progress_counts_nodes_of_the_total(exports):
    """The build's progress says how many nodes of how many are done (dbt's own node count)."""
    from patientbase.build import build_call_list
    from patientbase.config import load_config

    seen = []
    build_call_list(load_config(), None, ["OP1"], 2, progress=lambda text, done=None, total=None: seen.append((done, total, text)))
    total = seen[-1][1]
    assert total and [done for done, _, _ in seen] == list(range(1, total + 1))
    assert {t for _, t, _ in seen} == {total}
    assert seen[-1][2].startswith(f"dbt build: {total} of {total} nodes done, last ")


def test_progress_bar_shows_done_of_total(monkeypatch):
    import io

    from patientbase import cli
    from rich.console import Console

    out = io.StringIO()
    monkeypatch.setattr(cli, "err_console", Console(file=out, force_terminal=True, width=100))
    with cli.progress("Building") as say:
        say("dbt build: 3 of 7 nodes done, last call_list", 3, 7)
    assert "3/7" in out.getvalue() and "dbt build: 3 of 7 nodes done" in out.getvalue()
