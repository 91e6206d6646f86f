"""Loading canonical exports: exact values from the hand-written fixture in fixtures/tiny.

fixtures/tiny/patients.csv (header = line 1) holds 11 records:
  lines 2-6  cards 1001-1005 with ONE mobile number typed five ways -> all +79123456789
  line 7     1006: impossible birth date 1970-13-45 (emptied, row kept), phone '12345' (invalid, kept)
  line 8     1007: sex 'X' and do_not_call 'maybe' (both emptied, row kept), no phone
  line 9     1008: a surname holding a comma, quotes and '=HYPERLINK' (kept as text)
  line 10    no patient_id                        -> rejected
  line 11    exact copy of line 3 (1002)          -> dropped as a duplicate
  line 12    1004 again with another phone        -> rejected (same key, other content)
visits.csv: V5 has a dd.mm date (rejected), V6 status 'visited' (rejected), V7 a missing field
(rejected, structural); V2 is 'Completed ' (kept, normalised in staging); V8's patient is unknown.
payments.csv: P6 is '1 500.00' (thousands space, loads as 1500.00), P7 'abc' (rejected).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from conftest import FIXTURES

LENIENT = "max_reject_share: 0.5\n"


@pytest.fixture
def loaded(ws):
    ws.config(LENIENT)
    exports = ws.copy_fixture("tiny")
    result = ws.invoke("load", str(exports))
    return ws, result


def test_load_counts_and_summary(loaded):
    ws, result = loaded
    assert ("patients.csv                    8 loaded, 2 rejected, 1 exact duplicates dropped, 2 bad values emptied, "
            "1 unknown opt-out/death flags read as TRUE\n      11 data lines = 8 loaded + 2 rejected + 1 duplicates\n") in result.output
    assert "visits.csv                      5 loaded, 3 rejected" in result.output
    assert "payments.csv                    6 loaded, 1 rejected" in result.output
    assert ws.scalar("select count(*) from raw.patients") == 8
    assert ws.scalar("select count(*) from raw.visits") == 5
    assert ws.scalar("select count(*) from raw.payments") == 6
    # absent optional tables exist, empty, with the contract's columns
    for table in ("visit_services", "treatment_plans", "calls", "marketing_spend"):
        assert ws.scalar(f"select count(*) from raw.{table}") == 0
    assert [r[0] for r in ws.query(
        "select column_name from information_schema.columns where table_schema='raw' and table_name='marketing_spend' order by ordinal_position"
    )] == ["month", "channel", "amount", "_source_file", "_source_line"]


def test_every_problem_is_kept_with_file_line_column_and_reason(loaded):
    ws, _ = loaded
    rows = ws.query(
        "select table_name, file_name, line, column_name, raw_value, action from raw.load_rejects order by file_name, line, column_name"
    )
    assert rows == [
        ("patients", "patients.csv", 7, "birth_date", "1970-13-45", "value_nulled"),
        ("patients", "patients.csv", 8, "do_not_call", "maybe", "value_assumed_true"),
        ("patients", "patients.csv", 8, "sex", "X", "value_nulled"),
        ("patients", "patients.csv", 10, "patient_id", None, "row_rejected"),
        ("patients", "patients.csv", 11, None, "patient_id=1002", "duplicate_dropped"),
        ("patients", "patients.csv", 12, None, "patient_id=1004", "row_rejected"),
        ("payments", "payments.csv", 8, "amount", "abc", "row_rejected"),
        ("visits", "visits.csv", 6, "scheduled_at", "31.02.2024 10:00", "row_rejected"),
        ("visits", "visits.csv", 7, "status", "visited", "row_rejected"),
        ("visits", "visits.csv", 8, None, None, "row_rejected"),
    ]
    reasons = dict(((r[0], r[1]), r[2]) for r in ws.query("select file_name, line, reason from raw.load_rejects"))
    assert reasons[("patients.csv", 12)] == "duplicate key (patient_id=1004): differs from patients.csv line 5"
    assert reasons[("visits.csv", 7)] == "unknown value; allowed: completed, no_show, cancelled, scheduled"
    assert reasons[("visits.csv", 8)] == "expected 8 fields, found 7"
    # the whole rejected record is kept so it can be fixed and re-loaded
    assert ws.scalar("select raw_record from raw.load_rejects where file_name='payments.csv'") == (
        '{"payment_id":"P7","patient_id":"1004","visit_id":"V7","paid_at":"2024-04-01 09:05:00","amount":"abc","method":"card"}'
    )
    # good rows keep their provenance
    assert ws.query("select visit_id, _source_line from raw.visits order by _source_line") == [
        ("V1", 2), ("V2", 3), ("V3", 4), ("V4", 5), ("V8", 9)
    ]


def test_phones_normalise_to_one_e164_and_invalid_is_flagged_not_dropped(loaded):
    ws, _ = loaded
    rows = ws.query("select patient_id, phone, phone_e164, phone_status from raw.patients order by patient_id")
    assert {r[2] for r in rows[:5]} == {"+79123456789"}
    assert [r[1] for r in rows[:5]] == ["+7 (912) 345-67-89", "89123456789", "8-912-345-67-89", "9123456789", "7 912 345 67 89"]
    assert rows[5] == ("1006", "12345", None, "invalid")
    assert rows[6] == ("1007", None, None, "empty")
    assert rows[7][2:] == ("+79991234567", "valid")


def test_loading_the_same_files_again_changes_nothing(loaded):
    ws, _ = loaded
    before = ws.query("select * from raw.patients order by patient_id")
    rejects_before = ws.scalar("select count(*) from raw.load_rejects")
    result = ws.invoke("load", str(ws.root / "tiny"))
    assert result.output.count("unchanged since the last load") == 3
    assert ws.query("select * from raw.patients order by patient_id") == before
    assert ws.scalar("select count(*) from raw.load_rejects") == rejects_before
    assert ws.scalar("select count(*) from raw.load_ledger where is_current") == 3


def test_a_changed_file_replaces_its_table(loaded):
    ws, _ = loaded
    payments = ws.root / "tiny" / "payments.csv"
    payments.write_text(payments.read_text(encoding="utf-8").replace("P7,1004,V7,2024-04-01 09:05:00,abc", "P7,1004,V7,2024-04-01 09:05:00,250"), encoding="utf-8")
    result = ws.invoke("load", str(ws.root / "tiny"))
    assert "payments.csv                    7 loaded" in result.output
    assert ws.scalar("select count(*) from raw.load_rejects where table_name = 'payments'") == 0
    # 3500 + 12000.50 - 2000 + 4200 + 10000 + 1500 + 250
    assert ws.scalar("select sum(amount) from raw.payments") == Decimal("29450.50")


def test_too_many_rejects_fail_the_load_and_change_nothing(ws):
    exports = ws.copy_fixture("tiny")
    result = ws.invoke("load", str(exports), expect=1)
    # patients.csv: 2 of 11 records rejected (18%) is over the default 5%
    assert "patients.csv: 2 of 11 lines (18.2%) were rejected, more than the allowed 5%" in result.output
    assert "line 10, column patient_id: missing required value" in result.output
    assert "Nothing was published." in result.output
    assert not ws.warehouse.exists()


def test_missing_required_column_names_file_and_column(ws):
    exports = ws.root / "bad"
    exports.mkdir()
    (exports / "patients.csv").write_text("patient_id,last_name\n1,A\n", encoding="utf-8")
    (exports / "visits.csv").write_text("visit_id,patient_id,status\nV1,1,completed\n", encoding="utf-8")
    (exports / "payments.csv").write_text("payment_id,patient_id,paid_at,amount\n", encoding="utf-8")
    result = ws.invoke("load", str(exports), expect=1)
    assert "visits.csv, line 1: required column(s) 'scheduled_at' of table 'visits' are missing" in result.output
    assert "Traceback" not in result.output


def test_required_table_missing_is_a_clear_error(ws):
    exports = ws.root / "only_patients"
    exports.mkdir()
    (exports / "patients.csv").write_text("patient_id\n1\n", encoding="utf-8")
    result = ws.invoke("load", str(exports), expect=1)
    assert "Required table 'visits' has no file: expected visits.csv" in result.output


def test_staging_cleans_and_casts(loaded):
    ws, _ = loaded
    ws.invoke("build", "--select", "staging")
    patients = {r[0]: r[1:] for r in ws.query(
        "select patient_id, display_name, sex, email, has_valid_phone, do_not_call, is_deceased from staging.stg_mis__patients"
    )}
    assert patients["1001"] == ("Иванова Анна Петровна", "F", "anna.ivanova@mail.ru", True, False, False)
    assert patients["1003"] == ("Сидорова Мария", "F", None, True, True, False)  # ' Сидорова ' trimmed, 'f' -> 'F'
    assert patients["1005"][5] is True  # deceased
    assert patients["1006"][3] is False  # invalid phone flagged, card kept
    # bad sex emptied; do_not_call 'maybe' fails closed: the patient is not callable
    assert patients["1007"][1:6] == (None, None, False, True, False)
    assert ws.query("select visit_id, status, is_completed, visit_date from staging.stg_mis__visits where visit_id = 'V2'") == [
        ("V2", "completed", True, __import__("datetime").date(2024, 7, 20))
    ]
    assert ws.query("select payment_id, amount, is_refund from staging.stg_mis__payments where payment_id in ('P3', 'P6') order by 1") == [
        ("P3", Decimal("-2000.00"), True), ("P6", Decimal("1500.00"), False)
    ]


def test_load_progress_names_each_file_with_its_lines_done_of_total(tmp_path):
    """Issue #15: a long load must not look frozen. The loader reports each file with its data lines
    read of its total: a clean file (fast path) jumps 0 -> all; a file read line by line (one stray
    quote on line 102 sends it there) reports every 10,000 lines; then the checking step says how many
    lines it checks. patients.csv of fixtures/tiny has 11 data lines; visits.csv here 25,001."""
    import shutil

    import duckdb
    from patientbase.load import load

    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copyfile(FIXTURES / "tiny" / "patients.csv", folder / "patients.csv")
    lines = ["visit_id,patient_id,scheduled_at,status,doctor_id,specialty,branch_id,booked_at"]
    lines += [f"V{i},1001,2024-01-15 10:00:00,completed,D01,dentistry,B1," + ('"' if i == 100 else "")
              for i in range(25_001)]
    (folder / "visits.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    seen = []
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        load(con, [folder], max_reject_share=0.5, progress=lambda text, done=None, total=None: seen.append(
            (text, done, total)))
    counted = [(text, done, total) for text, done, total in seen if total is not None]
    assert counted == [
        ("patients: reading patients.csv, 0 of 11 lines", 0, 11),
        ("patients: reading patients.csv, 11 of 11 lines", 11, 11),
        ("visits: reading visits.csv, 0 of 25,001 lines", 0, 25_001),
        ("visits: reading visits.csv, 10,000 of 25,001 lines", 10_000, 25_001),
        ("visits: reading visits.csv, 20,000 of 25,001 lines", 20_000, 25_001),
        ("visits: reading visits.csv, 25,001 of 25,001 lines", 25_001, 25_001),
    ]
    texts = [text for text, _, _ in seen]
    assert "visits: checking and writing 25,001 lines" in texts
    assert texts.index("visits: reading visits.csv, 25,001 of 25,001 lines") < texts.index("visits: 25,000 rows loaded")
