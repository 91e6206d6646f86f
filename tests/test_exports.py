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
| H      | 5        | 1        | +79120000008 | beyond capacity                                    |

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
    ("H", "Хохлов Хасан", "+79120000008", "reactivation", 5, 1, None, None, None),
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
                action_code varchar, action_label varchar, action_label_ru varchar, reason varchar,
                reason_ru varchar, offer varchar, priority integer, expected_value decimal(18,2),
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
                insert into marts.call_list_candidates values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, date '2025-07-01',
                    date '2025-01-10', 'D01', 'dentistry', null, ?, null, 0, ?, false, ?,
                    case when ? = 'called_recently' then null else ? end,
                    cast(? as timestamp)::date + 14, null, date '2025-07-01', null, null)
                """,
                [person, person, name, phone, action, action, "задача " + action, f"why {person}",
                 f"почему {person}", f"offer {person}", priority, value, last_call, operator, exclusion,
                 exclusion, exclusion, last_call],
            )


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
    assert f"Call list for 2025-07-01: 4 calls (5 patients) of 4 slots" in result.output
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    rows = read_list(path)
    assert [(r["Администратор"], r["№"], r["ID персон"]) for r in rows] == [
        ("OP1", "1", "B"), ("OP1", "2", "G"), ("OP2", "1", "A"), ("OP2", "2", "C,D"),
    ]
    family = rows[3]
    assert family["Телефон"] == "8 (912) 000-00-03"
    assert family["Пациент(ы)"] == "Царёва Ольга; Царёв Миша"
    assert family["Почему"] == "Царёва Ольга: почему C; Царёв Миша: почему D"
    assert family["Коды задач"] == "recall_due,welcome_second_visit"
    assert family["Окно звонка"] == "14:00–18:00"
    assert [family[k] for k in ("Время звонка", "Оператор", "Результат", "Комментарий")] == ["", "", "", ""]
    # "=HYPERLINK(...)" is written with a leading apostrophe, so a spreadsheet shows it as text
    assert rows[1]["Пациент(ы)"] == "'=HYPERLINK(\"http://evil\",\"x\")"


def test_call_list_for_a_later_date_reapplies_the_recent_call_window(exports):
    ws = exports
    ws.invoke("export", "call-list", "--date", "2025-07-20", "--admins", "3", "--calls-per-admin", "3")
    rows = read_list(ws.root / "exports" / "call_list_2025-07-20.csv")
    # F (called 2025-06-25) is back after 14 days; E (visit booked) never is; nine slots take all six phones
    assert sorted(r["ID персон"] for r in rows) == ["A", "B", "C,D", "F", "G", "H"]
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
        "A": ("15:00", "OP2", "занято", ""),  # not a result we know: rejected, the others still load
    })
    result = ws.invoke("outcomes", str(path))
    assert "3 calls loaded from 3 called rows; 1 rows not called yet; 1 rows rejected" in result.output
    calls = ws.query("select call_id, patient_id, operator_id, strftime(called_at, '%Y-%m-%d %H:%M'), result, action_code, comment from raw.calls order by 1")
    assert calls == [
        ("CL-20250701-00001-B", "B", "OP1", "2025-07-01 14:35", "booked", "plan_follow_up", "на 10.07"),
        ("CL-20250701-00003-C", "C", "OP2", "2025-07-01 15:10", "callback", "recall_due", None),
        ("CL-20250701-00003-D", "D", "OP2", "2025-07-01 15:10", "callback", "welcome_second_visit", None),
    ]
    assert ws.query("select file_name, line, column_name, raw_value from raw.load_rejects") == [
        ("call_list_2025-07-01.csv", 4, "result", "занято")
    ]
    again = ws.invoke("outcomes", str(path))
    assert "already loaded, nothing changed" in again.output
    assert ws.scalar("select count(*) from raw.calls") == 3
    # a corrected copy replaces the same calls instead of adding new ones
    fixed = fill(path, {"A": ("15:00", "OP2", "отказ", "не интересно")})
    ws.invoke("outcomes", str(fixed))
    assert ws.scalar("select count(*) from raw.calls") == 4
    assert ws.scalar("select result from raw.calls where patient_id = 'A'") == "refused"


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
    assert (champion["person_id"], champion["phone"], champion["segment_label_ru"]) == ("P01", "79121112233", "Чемпионы")
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


# ---------------------------------------------------------------------------------------------------
# The control group and the recorded arms (issue #13)
#
# Arm draws = first 4 hex digits of md5('person|action|') / 65536 (trigger dates are empty here),
# worked out with Python's hashlib: A 0.9553, B 0.2035, C 0.2973, D 0.4529, F 0.3445, G 0.9058,
# H 0.6795. With a control share of 0.3, B and C are controls. On 2025-07-01 the eligible rank
# B1 A2 C3 D4 G5 H6; the call arm's phones A, C+D (D alone: C is held out), G, H fill the 4 rows, so
# the list is full at rank 6 and both controls would have been listed.


def assignments(ws):
    return ws.query(
        "select patient_id, arm, list_date::varchar, operator_id from raw.call_assignments order by patient_id"
    )


def test_control_group_is_held_out_recorded_and_stable(exports):
    ws = exports
    ws.config("admins: [OP1, OP2]\ncalls_per_admin: 2\nvars: {call_control_share: 0.3}\n")
    result = ws.invoke("export", "call-list")
    assert "Call list for 2025-07-01: 4 calls (4 patients) of 4 slots" in result.output
    assert "Call assignments recorded: 6 new" in result.output
    rows = read_list(ws.root / "exports" / "call_list_2025-07-01.csv")
    assert sorted(r["ID персон"] for r in rows) == ["A", "D", "G", "H"]  # controls B and C are never listed
    assert ws.query("select person_id, arm from marts.call_list_control order by 1") == [("B", "control"), ("C", "control")]
    assert assignments(ws) == [
        ("A", "call", "2025-07-01", "OP2"), ("B", "control", "2025-07-01", None),
        ("C", "control", "2025-07-01", None), ("D", "call", "2025-07-01", "OP1"),
        ("G", "call", "2025-07-01", "OP2"), ("H", "call", "2025-07-01", "OP1"),
    ]
    # a re-export of the same day records nothing new
    assert "Call assignments recorded: 0 new" in ws.invoke("export", "call-list").output
    # a later day: F is back (a new occurrence, call arm); the others keep their arm and first list date
    result = ws.invoke("export", "call-list", "--date", "2025-07-20", "--admins", "3", "--calls-per-admin", "3")
    assert "Call assignments recorded: 1 new" in result.output
    assert ("F", "call", "2025-07-20", "OP1") in assignments(ws)
    assert ws.query("select person_id, arm from intermediate.int_call_list_ranked where arm = 'control' order by 1") == [
        ("B", "control"), ("C", "control")]
    # a replay of an earlier day never rewrites history
    result = ws.invoke("export", "call-list", "--date", "2025-06-30")
    assert "not recorded: the list of 2025-06-30 is before the latest recorded list (2025-07-20)" in result.output
    assert len(assignments(ws)) == 7


def test_control_share_zero_keeps_the_previous_list(exports):
    ws = exports
    ws.config("admins: [OP1, OP2]\ncalls_per_admin: 2\nvars: {call_control_share: 0}\n")
    ws.invoke("export", "call-list")
    rows = read_list(ws.root / "exports" / "call_list_2025-07-01.csv")
    assert [r["ID персон"] for r in rows] == ["B", "G", "A", "C,D"]
    assert ws.scalar("select count(*) from marts.call_list_control") == 0
    assert ws.query("select distinct arm from raw.call_assignments") == [("call",)]
