"""Issue 11: real exports broken the ways real exports are. One test (or a few) per numbered item;
expected values are worked out in each test from its hand-written files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb

PATIENTS = "patient_id,last_name,do_not_call,do_not_message,is_deceased\n1,А,,,\n2,Б,,,\n"
PAYMENTS = "payment_id,patient_id,paid_at,amount\nP1,1,2025-01-10 10:00:00,100.00\n"
VISITS_HEADER = "visit_id,patient_id,scheduled_at,status,doctor_id,specialty,branch_id,booked_at\n"


def visit(i: int, comment: str = "D1") -> str:
    return f"V{i},1,2025-01-{i % 28 + 1:02d} 10:00:00,completed,{comment},dentistry,B1,\n"


def write(folder: Path, name: str, content: str | bytes) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def exports(ws, visits: str | bytes, patients: str = PATIENTS, name: str = "exports") -> Path:
    folder = ws.root / name
    write(folder, "patients.csv", patients)
    write(folder, "visits.csv", visits)
    write(folder, "payments.csv", PAYMENTS)
    return folder


def rejects(ws, table: str = "visits"):
    return ws.query("select line, reason, action, raw_record from raw.load_rejects where table_name = ? "
                    "order by line, column_name", [table])


# -- 1. the CSV reader never swallows rows -------------------------------------------------------------


def test_1_a_stray_quote_rejects_its_line_only_and_every_other_line_loads(ws):
    # 30 visits; line 5 (V4) has a quote typed into the doctor field: before, it swallowed lines 5-31
    lines = [visit(i) for i in range(1, 31)]
    lines[3] = 'V4,1,2025-01-05 10:00:00,completed,"D1 said "ok,dentistry,B1,\n'
    result = ws.invoke("load", str(exports(ws, VISITS_HEADER + "".join(lines))))
    assert ws.scalar("select count(*) from raw.visits") == 29
    assert ws.query("select visit_id from raw.visits where _source_line = 6") == [("V5",)]
    assert rejects(ws) == [(5, "broken quoting (',' expected after '\"')", "row_rejected",
                            'V4,1,2025-01-05 10:00:00,completed,"D1 said "ok,dentistry,B1,')]
    assert "30 data lines = 29 loaded + 1 rejected + 0 duplicates" in result.output


def test_1_lone_cr_mixed_line_endings_and_nul_bytes_reject_only_their_lines(ws):
    body = (VISITS_HEADER.encode() + visit(1).encode()
            + visit(2).replace("\n", "\r\n").encode()          # CRLF among LF lines: fine
            + b"V3,1,2025-01-04 10:00:00,completed,D\r1,dentistry,B1,\n"  # lone CR inside
            + b"V4,1,2025-01-05 10:00:00,completed,D\x001,dentistry,B1,\n"  # NUL byte
            + visit(5).encode())
    result = ws.invoke("load", str(exports(ws, body)), expect=1)  # 2 of 5 lines rejected is over 5%
    assert "visits.csv: 2 of 5 lines (40.0%) were rejected" in result.output
    ws.config("max_reject_share: 0.5\n")
    result = ws.invoke("load", str(exports(ws, body)))
    assert ws.query("select visit_id from raw.visits order by 1") == [("V1",), ("V2",), ("V5",)]
    assert rejects(ws) == [
        (4, "stray carriage return (CR) inside the line", "row_rejected", "V3,1,2025-01-04 10:00:00,completed,D\r1,dentistry,B1,"),
        (5, "NUL byte in the line", "row_rejected", "V4,1,2025-01-05 10:00:00,completed,D\\x001,dentistry,B1,"),
    ]
    assert "5 data lines = 3 loaded + 2 rejected + 0 duplicates" in result.output


def test_1_a_value_spanning_lines_loads_and_an_over_long_value_is_rejected(ws):
    body = (VISITS_HEADER + visit(1)
            + 'V2,1,2025-01-03 10:00:00,completed,"first line\nsecond line",dentistry,B1,\n'
            + visit(3, "x" * 30_000) + visit(4))
    ws.config("max_reject_share: 0.5\n")
    result = ws.invoke("load", str(exports(ws, body)))
    assert ws.query("select visit_id, doctor_id, _source_line from raw.visits order by 1") == [
        ("V1", "D1", 2), ("V2", "first line\nsecond line", 3), ("V4", "D1", 6)]
    [(line, reason, _, raw)] = rejects(ws)
    assert (line, len(raw)) == (5, len(visit(3, "x" * 30_000)) - 1)  # kept whole, not cut
    assert reason == "a value of 30,000 characters, more than max_record_chars 20,000 (mapping key max_field_chars)"
    assert "5 data lines = 3 loaded + 1 rejected + 0 duplicates + 1 continuation lines" in result.output


# -- 2. encodings per line -----------------------------------------------------------------------------


def test_2_a_cp1251_row_in_utf8_and_a_utf8_row_in_cp1251_are_decoded_not_mojibake(ws):
    utf8_file = (VISITS_HEADER + visit(1, "Иванов")).encode("utf-8") + visit(2, "Петров").encode("cp1251")
    ws.invoke("load", str(exports(ws, utf8_file)))
    assert ws.query("select visit_id, doctor_id from raw.visits order by 1") == [("V1", "Иванов"), ("V2", "Петров")]
    ws.config("mapping: mixed.yml\n")
    (ws.root / "mixed.yml").write_text("defaults:\n  encoding: cp1251\n", encoding="utf-8")
    cp_file = (VISITS_HEADER + visit(1, "Сидоров")).encode("cp1251") + visit(2, "Ёжиков").encode("utf-8")
    ws.invoke("load", str(exports(ws, cp_file, name="cp")))
    assert ws.query("select visit_id, doctor_id from raw.visits order by 1") == [("V1", "Сидоров"), ("V2", "Ёжиков")]


def test_2_a_line_in_no_known_encoding_is_rejected_with_its_reason(ws):
    # 0x98 is undefined in Windows-1251 and a stray continuation byte in UTF-8
    body = (VISITS_HEADER + visit(1)).encode() + visit(2, "D").encode().replace(b",D,", b",D\x98,") + visit(3).encode()
    ws.config("max_reject_share: 0.5\n")
    ws.invoke("load", str(exports(ws, body)))
    assert ws.query("select visit_id from raw.visits order by 1") == [("V1",), ("V3",)]
    assert rejects(ws) == [(3, "bytes that are neither UTF-8 nor Windows-1251", "row_rejected",
                            "V2,1,2025-01-03 10:00:00,completed,D\\x98,dentistry,B1,")]


def test_1_a_value_may_span_at_most_max_record_lines(ws):
    body = VISITS_HEADER + 'V1,1,2025-01-02 10:00:00,completed,"a\nb\nc",dentistry,B1,\n' + visit(2) + visit(3)
    (ws.root / "two.yml").write_text("tables:\n  visits:\n    max_record_lines: 2\n", encoding="utf-8")
    ws.config("max_reject_share: 0.9\n")
    ws.invoke("load", str(exports(ws, body)), "--mapping", "two.yml")
    # the value spans 3 lines: line 2 is rejected; lines 3 and 4 ('b', 'c",dentistry,B1,') cannot be
    # records either; reading resumes at line 5
    assert ws.query("select visit_id, _source_line from raw.visits order by 1") == [("V2", 5), ("V3", 6)]
    assert [(r[0], r[1]) for r in rejects(ws)] == [
        (2, "a quoted value is not closed on this line (stray quote?)"), (3, "expected 8 fields, found 1"),
        (4, "expected 8 fields, found 4")]
    ws.invoke("load", str(ws.root / "exports"))  # the default (20 lines) reads it as one value
    assert ws.query("select doctor_id from raw.visits where visit_id = 'V1'") == [("a\nb\nc",)]


def test_2_a_header_that_reads_as_garbage_names_the_encoding_key(ws):
    body = "visit_id,patient_id,scheduled_at,status,Врач\n".encode()
    (ws.root / "cp.yml").write_text("defaults:\n  encoding: cp1251\n", encoding="utf-8")
    result = ws.invoke("load", str(exports(ws, body)), "--mapping", "cp.yml", expect=1)
    assert "visits.csv, line 1: the header reads as garbage in cp1251" in result.output
    assert "set `encoding` in the mapping" in result.output


# -- 3. opt-outs and death fail closed -----------------------------------------------------------------


def test_3_unknown_opt_out_spellings_count_as_true_and_a_date_of_death_means_deceased(ws):
    patients = ("patient_id,last_name,do_not_call,do_not_message,date_of_death\n"
                "1,А,+,no,\n2,Б,x,,2024-05-01\n3,В,on,1,\n4,Г,Y!,0,\n5,Д,нет,,\n6,Е,,,\n")
    (ws.root / "m.yml").write_text(
        "tables:\n  patients:\n    columns:\n      is_deceased: {nonempty: date_of_death}\n", encoding="utf-8")
    ws.config("max_reject_share: 0.5\n")
    result = ws.invoke("load", str(exports(ws, VISITS_HEADER + visit(1), patients=patients)), "--mapping", "m.yml")
    assert ws.query("select patient_id, do_not_call, do_not_message, is_deceased from raw.patients order by 1") == [
        ("1", True, False, False), ("2", True, None, True), ("3", True, True, False),
        ("4", True, False, False), ("5", False, None, False), ("6", None, None, False)]
    assert ws.query("select line, raw_value, action from raw.load_rejects where table_name = 'patients' order by 1") == [
        (2, "+", "value_assumed_true"), (3, "x", "value_assumed_true"), (4, "on", "value_assumed_true"),
        (5, "Y!", "value_assumed_true")]
    assert "4 unknown opt-out/death flags read as TRUE" in result.output


# -- 4. keys that are keys -----------------------------------------------------------------------------


SERVICES_HEADER = "visit_id,service_code,service_name,quantity,amount\n"


def test_4_padded_ids_are_one_card_and_service_lines_have_a_key(ws):
    patients = "patient_id,last_name\n1001,А\n 1001 ,А\n1002,Б\n"
    folder = exports(ws, VISITS_HEADER + visit(1).replace(",1,", ", 1001 ,", 1), patients=patients)
    # V1 has S1 twice with different amounts (two real lines) and an exact repeat of the first
    write(folder, "visit_services.csv", SERVICES_HEADER + "V1,S1,a,1,100.00\nV1,S1,a,1,50.00\nV1,S1,a,1,100.00\n")
    ws.config("max_reject_share: 0.5\n")
    ws.invoke("load", str(folder))
    assert ws.query("select patient_id from raw.patients order by 1") == [("1001",), ("1002",)]
    assert ws.query("select patient_id from raw.visits") == [("1001",)]
    assert ws.query("select service_line_id, amount from raw.visit_services order by 1") == [
        ("V1|S1|1", 100), ("V1|S1|2", 50)]
    assert ws.query("select line, action from raw.load_rejects where table_name = 'visit_services'") == [
        (4, "duplicate_dropped")]
    # two overlapping exports of service lines: the shared line is not counted twice
    write(folder, "visit_services_2.csv", SERVICES_HEADER + "V1,S1,a,1,100.00\nV1,S2,b,1,30.00\n")
    (ws.root / "two.yml").write_text('tables:\n  visit_services:\n    file: "visit_services*.csv"\n', encoding="utf-8")
    ws.invoke("load", str(folder), "--mapping", "two.yml")
    assert ws.scalar("select sum(amount) from raw.visit_services") == 180


def test_4_incremental_service_lines_upsert_and_duplicate_key_rejects_keep_the_record(ws):
    folder = exports(ws, VISITS_HEADER + visit(1) + visit(2))
    write(folder, "visit_services.csv", "service_line_id,visit_id,service_code,amount\nL1,V1,S1,100\nL2,V1,S2,50\n")
    (ws.root / "inc.yml").write_text('tables:\n  visit_services:\n    file: "visit_services*.csv"\n    mode: incremental\n',
                                     encoding="utf-8")
    ws.invoke("load", str(folder), "--mapping", "inc.yml")
    (folder / "visit_services.csv").unlink()
    write(folder, "visit_services_2.csv", "service_line_id,visit_id,service_code,amount\nL2,V1,S2,60\nL3,V2,S1,10\n")
    ws.invoke("load", str(folder), "--mapping", "inc.yml")
    assert ws.query("select service_line_id, amount from raw.visit_services order by 1") == [
        ("L1", 100), ("L2", 60), ("L3", 10)]
    ws.config("max_reject_share: 0.5\n")
    ws.invoke("load", str(exports(ws, VISITS_HEADER + visit(1) + visit(1, "D2"), name="dup")), "--accept-shrink")
    [(line, reason, action, raw)] = rejects(ws)
    assert (line, action) == (3, "row_rejected")
    assert json.loads(raw)["doctor_id"] == "D2"


# -- 5. a shrinking export is refused ------------------------------------------------------------------


def test_5_a_shrinking_or_empty_export_is_refused_unless_accepted(ws):
    ten = "patient_id,last_name\n" + "".join(f"{i},X\n" for i in range(1, 11))
    ws.invoke("load", str(exports(ws, VISITS_HEADER + visit(1), patients=ten)))
    eight = "patient_id,last_name\n" + "".join(f"{i},X\n" for i in range(1, 9))
    result = ws.invoke("load", str(exports(ws, VISITS_HEADER + visit(1, "D9"), patients=eight, name="b")), expect=1)
    assert ("patients.csv: table 'patients' would shrink from 10 to 8 rows (80%, less than min_keep_share 90%). "
            "Nothing was loaded.") in result.output
    assert "--accept-shrink" in result.output
    assert ws.scalar("select count(*) from raw.patients") == 10
    assert ws.query("select doctor_id from raw.visits") == [("D1",)]  # nothing of that load was written
    result = ws.invoke("load", str(exports(ws, VISITS_HEADER + visit(1), patients="patient_id\n", name="c")), expect=1)
    assert "table 'patients' would have no rows (it has 10 now)" in result.output
    ws.invoke("load", str(ws.root / "b"), "--accept-shrink")
    assert ws.scalar("select count(*) from raw.patients") == 8


# -- 6. a changed mapping reloads ----------------------------------------------------------------------


def test_6_a_fixed_mapping_reloads_and_force_rereads(ws):
    folder = exports(ws, VISITS_HEADER.replace("doctor_id", "doctor") + visit(1))
    ws.invoke("load", str(folder))
    assert ws.query("select doctor_id from raw.visits") == [(None,)]
    (ws.root / "fix.yml").write_text("tables:\n  visits:\n    columns:\n      doctor_id: doctor\n", encoding="utf-8")
    result = ws.invoke("load", str(folder), "--mapping", "fix.yml")
    assert ws.query("select doctor_id from raw.visits") == [("D1",)]
    assert "patients.csv           unchanged since the last load, skipped" in result.output
    result = ws.invoke("load", str(folder), "--mapping", "fix.yml", "--force")
    assert "unchanged" not in result.output


# -- 7. replays never see the future -------------------------------------------------------------------

CUT_AT = {"payments.csv": "paid_at", "treatment_plans.csv": "created_at", "calls.csv": "called_at",
          "marketing_spend.csv": "month", "patients.csv": "created_at"}


def test_7_build_as_of_on_full_history_equals_build_on_exports_cut_at_that_day(ws, monkeypatch):
    src = Path(__file__).parent / "fixtures" / "clinic15"
    day = "2025-07-01"
    full = ws.root / "full"
    full.mkdir()
    for f in src.glob("*.csv"):
        (full / f.name).write_bytes(f.read_bytes())
    # a visit after the as-of date with no booked_at: nothing says it was known on 2025-07-01
    with (full / "visits.csv").open("a", encoding="utf-8") as fh:
        fh.write("V9901,P01,2025-07-25 10:00:00,scheduled,D01,dentistry,B1,\n")
    cut = ws.root / "cut"
    cut.mkdir()
    for f in full.glob("*.csv"):
        rows = list(csv.DictReader(f.open(encoding="utf-8")))
        keep = []
        for r in rows:
            if f.name == "visits.csv":
                if r["scheduled_at"][:10] >= day:
                    if not r["booked_at"] or r["booked_at"][:10] >= day:
                        continue
                    r["status"] = "cancelled" if r["status"] == "cancelled" else "scheduled"
            elif f.name in CUT_AT and (r.get(CUT_AT[f.name]) or "")[:10] >= day:
                continue
            keep.append(r)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()) if rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(keep)
        (cut / f.name).write_text(out.getvalue(), encoding="utf-8")
    results = {}
    for name, folder in (("full", full), ("cut", cut)):
        ws.warehouse = ws.root / f"{name}.duckdb"
        monkeypatch.setenv("PATIENTBASE_WAREHOUSE", str(ws.warehouse))
        ws.invoke("load", str(folder))
        ws.invoke("build", "--as-of", day)
        marts = [r[0] for r in ws.query("select table_name from information_schema.tables "
                                        "where table_schema = 'marts' order by 1")]
        results[name] = {m: sorted(map(repr, ws.query(f"select * from marts.{m}"))) for m in marts}
    assert len(results["full"]) >= 15 and results["full"]["fct_visits"]
    assert results["full"]["fct_visits"] == results["cut"]["fct_visits"]
    differ = [m for m in results["full"] if results["full"][m] != results["cut"].get(m)]
    assert differ == []


# -- 8. a clinic without money data --------------------------------------------------------------------


def test_8_payments_are_optional_and_every_model_builds_with_none(ws):
    folder = ws.root / "nomoney"
    folder.mkdir()
    src = Path(__file__).parent / "fixtures" / "clinic15"
    for f in src.glob("*.csv"):
        if f.name != "payments.csv":
            (folder / f.name).write_bytes(f.read_bytes())
    result = ws.invoke("load", str(folder))
    assert "payments (no file)     created empty" in result.output
    ws.invoke("build", "--as-of", "2025-07-01")
    assert ws.scalar("select count(*) from marts.fct_visits") > 0
    # the headline figures exist with zero money, shares of nothing are empty (not 0% or a crash)
    assert ws.query("select net_revenue_all_time, revenue_12m, repeat_revenue_share_12m, "
                    "top15_revenue_share_all_time from marts.kpi_headline") == [(0, 0, None, None)]
    # the whole daily job runs: checks, summary, call list, segment files and the report
    result = ws.invoke("run", "--as-of", "2025-07-01", str(folder))
    assert "repeat revenue               — of net revenue" in result.output
    assert "net revenue" in result.output and "Report (" in result.output
    assert (ws.root / "exports" / "report.html").is_file()
    assert list((ws.root / "exports").glob("call_list_*.csv"))


# -- 9. mappings say what real exports need ------------------------------------------------------------


def test_9_parquet_headerless_whitespace_filters_computed_columns_pattern_maps_one_file_two_tables(ws):
    folder = ws.root / "mis"
    folder.mkdir()
    # patients: Parquet
    con = duckdb.connect()
    con.execute(f"copy (select * from (values ('1', 'А', null), ('2', 'Б', '2024-01-01')) "
                f"as t(\"Card\", \"Name\", \"Died\")) to '{folder / 'people.parquet'}' (format parquet)")
    con.close()
    # visits: headerless, semicolon; statuses by prefix and pattern; test visits filtered out
    write(folder, "visits.txt", "V1;1;2025-01-02 10:00:00;Completed OK\nV2;1;2025-01-03 10:00:00;C-cancel\n"
                                "T9;1;2025-01-04 10:00:00;Completed OK\nV3;2;2025-01-05 10:00:00;no show!\n")
    # services: whitespace-aligned with quantity * unit price; the same file also feeds payments
    write(folder, "lines.txt", "visit  code  qty  price\nV1     S1    2    150.50\nV3     S2    1    99\n")
    (ws.root / "mis.yml").write_text(
        """
tables:
  patients:
    file: "people.parquet"
    columns:
      patient_id: card
      last_name: name
      is_deceased: {nonempty: died}
  visits:
    file: "visits.txt"
    delimiter: ";"
    header: false
    names: [id, card, at, state]
    filter: "not starts_with(id, 'T')"
    columns: {visit_id: id, patient_id: card, scheduled_at: at, status: state}
    values:
      status: {"prefix:completed": completed, "prefix:c-": cancelled, "pattern:^no.?show": no_show}
  visit_services:
    file: "lines.txt"
    delimiter: whitespace
    columns:
      visit_id: visit
      service_code: code
      quantity: qty
      amount: {expr: "num(qty) * num(price)"}
  payments:
    file: "lines.txt"
    delimiter: whitespace
    columns:
      payment_id: {expr: "'PAY-' || visit"}
      visit_id: visit
      patient_id: {expr: "case when visit = 'V1' then '1' else '2' end"}
      paid_at: {expr: "'2025-01-10 12:00:00'"}
      amount: {expr: "num(qty) * num(price)"}
""", encoding="utf-8")
    result = ws.invoke("load", str(folder), "--mapping", "mis.yml")
    assert ws.query("select patient_id, last_name, is_deceased from raw.patients order by 1") == [
        ("1", "А", False), ("2", "Б", True)]
    assert ws.query("select visit_id, status, _source_line from raw.visits order by 1") == [
        ("V1", "completed", 1), ("V2", "cancelled", 2), ("V3", "no_show", 4)]
    assert "4 data lines = 3 loaded + 0 rejected + 0 duplicates + 1 skipped by the mapping's filter" in result.output
    assert ws.query("select visit_id, service_code, quantity, amount from raw.visit_services order by 1") == [
        ("V1", "S1", 2, 301), ("V3", "S2", 1, 99)]
    assert ws.query("select payment_id, patient_id, amount from raw.payments order by 1") == [
        ("PAY-V1", "1", 301), ("PAY-V3", "2", 99)]


# -- 10. messages that lead to the fix -----------------------------------------------------------------


def test_10_a_timestamp_that_does_not_parse_names_the_formats_and_the_mapping_key(ws):
    result = ws.invoke(
        "load", str(exports(ws, VISITS_HEADER + visit(1).replace("2025-01-02 10:00:00", "02/01/2025 10:00"))), expect=1)
    assert ("line 2, column scheduled_at ('02/01/2025 10:00'): not a date-time like 2024-03-31 14:30:00 or "
            "2024-03-31 14:30 or 2024-03-31T14:30:00 (formats: mapping key timestamp_formats)") in result.output


def test_10_files_of_a_shipped_mapping_suggest_it(ws):
    folder = ws.root / "mis"
    folder.mkdir()
    write(folder, "Пациенты.csv", "x\n")
    write(folder, "Приемы.csv", "x\n")
    result = ws.invoke("load", str(folder), expect=1)
    assert ("These files match the shipped mapping 'typical_mis': load them with --mapping typical_mis "
            "(or set mapping: typical_mis in patientbase.yml).") in result.output


def test_10_build_without_a_warehouse_says_to_load_first(ws):
    result = ws.invoke("build", expect=1)
    assert "No warehouse at" in result.output and "load the exports first (`patientbase load EXPORT_FOLDER`)" in result.output


def test_10_a_stale_building_copy_is_removed_and_mentioned(ws):
    ws.invoke("load", str(exports(ws, VISITS_HEADER + visit(1))))
    stale = ws.root / "patientbase.duckdb.building"
    stale.write_bytes(b"half a file")
    result = ws.invoke("load", str(ws.root / "exports"))
    assert "Removed patientbase.duckdb.building, the unfinished copy of an interrupted command." in result.output
    assert not stale.exists()


def test_5_call_assignments_files_merge_into_what_patientbase_recorded_never_replace_it(ws):
    """raw.call_assignments is patientbase's own table (each exported list appends its arms); a file of
    past assignments (the demo's, a migration's) merges into it by key and never erases recorded rows."""
    header = "list_date,patient_id,action_code,trigger_date,arm,list_rank,operator_id,expected_value,recorded_at\n"
    day1 = header + "2025-01-10,1,reactivate,2024-07-10,call,1,OP1,1200.00,2025-01-10 08:00:00\n" \
                    "2025-01-10,2,reactivate,2024-07-11,control,,,,2025-01-10 08:00:00\n"
    folder = exports(ws, VISITS_HEADER + visit(1))
    write(folder, "call_assignments.csv", day1)
    ws.invoke("load", str(folder))
    # what `export call-list` records: three more arms of a later list
    with duckdb.connect(str(ws.warehouse)) as con:
        con.execute("insert into raw.call_assignments (list_date, patient_id, action_code, arm) values "
                    "('2025-02-01', '1', 'plan', 'call'), ('2025-02-01', '2', 'plan', 'control'), "
                    "('2025-02-01', '3', 'plan', 'call')")
    # the next file: one row corrected (its arm), one new, and an exact repeat of a line
    day2 = header + "2025-01-10,1,reactivate,2024-07-10,call,1,OP1,1200.00,2025-01-10 08:00:00\n" \
                    "2025-01-10,2,reactivate,2024-07-11,call,,,,2025-01-10 08:00:00\n" \
                    "2025-01-11,1,birthday,,call,2,OP2,300.00,2025-01-11 08:00:00\n" \
                    "2025-01-11,1,birthday,,call,2,OP2,300.00,2025-01-11 08:00:00\n"
    write(folder, "call_assignments.csv", day2)
    result = ws.invoke("load", str(folder))
    assert "shrink" not in result.output
    assert ws.query("select cast(list_date as varchar), patient_id, action_code, arm from raw.call_assignments "
                    "order by 1, 2, 3") == [
        ("2025-01-10", "1", "reactivate", "call"),
        ("2025-01-10", "2", "reactivate", "call"),  # the file's correction
        ("2025-01-11", "1", "birthday", "call"),
        ("2025-02-01", "1", "plan", "call"),  # recorded by patientbase: kept
        ("2025-02-01", "2", "plan", "control"),
        ("2025-02-01", "3", "plan", "call"),
    ]
    assert ws.query("select line, action from raw.load_rejects where table_name = 'call_assignments'") == [
        (5, "duplicate_dropped")]
