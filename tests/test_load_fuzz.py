"""Issue 11, item 11: fuzzing the loader with more than 10,000 malformed lines of every kind, in every table.

Each table's file interleaves good lines with lines broken one way each (a broken line is always
followed by a good one, as in real exports, so two broken lines cannot happen to form one valid record
together). For every line the expected outcome is known when it is written, so the test checks exactly:
no unexpected error; every good line loads exactly once, on its own line number; every bad line is in
raw.load_rejects (the reader's rejects with their whole raw text); counts reconcile per file; and no
opt-out in an odd spelling ends up callable.
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from pathlib import Path

import duckdb
from patientbase.load import load
from patientbase.mapping import load_mapping
from patientbase.schema import TABLES

MALFORMED_PER_TABLE = 1500  # x 7 tables = 10,500 malformed lines per seed

#: (kind, expected outcome): 'rejected' by the reader (whole line kept), 'rejected_value' (a required
#: value that cannot be parsed: rejected with its record), 'loaded' (loads, a value emptied / decoded /
#: trimmed / read as true).
KINDS = {
    "open_quote": "rejected",      # a quote opening a value that never closes: would swallow the file
    "quote_after_quote": "rejected",  # "ab"c
    "lone_cr": "rejected",
    "nul": "rejected",
    "long_field": "rejected",      # a 100 kB value
    "extra_field": "rejected",
    "missing_field": "rejected",
    "impossible_date": None,       # rejected_value for a required date, loaded (emptied) for an optional one
    "cp1251_line": "loaded",       # a Windows-1251 line in a UTF-8 file: decoded, not mojibake
    "padded_id": "loaded",
    "odd_opt_out": "loaded",       # patients only: read as TRUE
}
DATE_COLUMN = {"patients": "birth_date", "visits": "scheduled_at", "visit_services": None, "payments": "paid_at",
               "treatment_plans": "created_at", "calls": "called_at", "call_assignments": "list_date",
               "marketing_spend": "month"}
ODD_FLAGS = ["+", "x", "on", "Y!", "v", "✓", "да!", "yes please", "1.0", "ja"]


def good_row(table: str, i: int, rnd: random.Random) -> dict[str, str]:
    name = rnd.choice(["Иванов", "Smith", "Петрова-Водкина", "O'Brien", "Ёлкин, мл.", 'Quote "Q"'])
    ts = f"2025-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)} 1{rnd.randint(0, 9)}:30:00"
    return {
        "patients": {"patient_id": f"P{i}", "last_name": name, "birth_date": "1980-05-0" + str(rnd.randint(1, 9)),
                     "do_not_call": rnd.choice(["", "0", "1", "нет", "да", "false"])},
        "visits": {"visit_id": f"V{i}", "patient_id": f"P{i}", "scheduled_at": ts, "status": "completed",
                   "doctor_id": name},
        "visit_services": {"visit_id": f"V{i}", "service_code": "S1", "service_name": name, "amount": "100.50"},
        "payments": {"payment_id": f"Y{i}", "patient_id": f"P{i}", "paid_at": ts, "amount": "10", "method": name},
        "treatment_plans": {"plan_id": f"T{i}", "patient_id": f"P{i}", "created_at": ts, "status": "proposed",
                            "specialty": name},
        "calls": {"call_id": f"C{i}", "patient_id": f"P{i}", "called_at": ts, "result": "booked", "comment": name},
        "call_assignments": {"list_date": "2025-07-01", "patient_id": f"P{i}", "action_code": "recall_due",
                             "arm": rnd.choice(["call", "control"]), "operator_id": name},
        "marketing_spend": {"month": "2025-01-01", "channel": f"ch{i} {name}", "amount": "5"},
    }[table]


def text_column(table: str) -> str:
    return {"patients": "last_name", "visits": "doctor_id", "visit_services": "service_name", "payments": "method",
            "treatment_plans": "specialty", "calls": "comment", "call_assignments": "operator_id",
            "marketing_spend": "channel"}[table]


def csv_line(values: list[str]) -> str:
    out = []
    for v in values:
        if any(c in v for c in ',"\n\r'):
            v = '"' + v.replace('"', '""') + '"'
        out.append(v)
    return ",".join(out)


def build_file(table: str, rnd: random.Random):
    """(file bytes, {line: expected outcome}, {line: raw text kept}, {line: kind})."""
    columns = TABLES[table].column_names
    columns = [c for c in columns if c != "service_line_id"]
    lines: list[bytes] = [",".join(columns).encode()]
    expect: dict[int, str] = {}
    raw_kept: dict[int, str] = {}
    kinds: dict[int, str] = {}
    kind_names = [k for k in KINDS if table == "patients" or k != "odd_opt_out"]
    if DATE_COLUMN[table] is None:
        kind_names.remove("impossible_date")
    i = 0
    malformed = 0
    while malformed < MALFORMED_PER_TABLE:
        for bad in (False, True):
            if bad and rnd.random() < 0.3:
                continue  # sometimes two good lines in a row
            i += 1
            row = good_row(table, i, rnd)
            values = [row.get(c, "") for c in columns]
            line_no = len(lines) + 1
            kind = rnd.choice(kind_names) if bad else "good"
            kinds[line_no] = kind
            text_at = columns.index(text_column(table))
            encoded = None
            outcome = "loaded"
            if kind == "good":
                pass
            elif kind == "open_quote":
                values[text_at] = '"' + values[text_at].replace('"', "")
                encoded = ",".join(values).encode()
                outcome = "rejected"
            elif kind == "quote_after_quote":
                values[text_at] = '"ab"c'
                encoded = ",".join(values).encode()
                outcome = "rejected"
            elif kind == "lone_cr":
                encoded = csv_line(values).encode().replace(b",", b"\r,", 1)
                outcome = "rejected"
            elif kind == "nul":
                encoded = csv_line(values).encode() + b"\x00"
                outcome = "rejected"
            elif kind == "long_field":
                values[text_at] = "x" * 100_000
                outcome = "rejected"
            elif kind == "extra_field":
                values = values + ["extra"]
                outcome = "rejected"
            elif kind == "missing_field":
                values = values[:-1]
                outcome = "rejected"
            elif kind == "impossible_date":
                column = DATE_COLUMN[table]
                values[columns.index(column)] = rnd.choice(["2025-02-30", "2025-13-01 10:00:00", "31.02.2025", "вчера"])
                outcome = "loaded" if not TABLES[table].column(column).required else "rejected_value"
            elif kind == "cp1251_line":
                values[text_at] = f"Щукин Ёж {i}"  # unique: marketing_spend's text column is in its key
                encoded = csv_line(values).encode("cp1251")
            elif kind == "padded_id":  # the table's first id column (marketing_spend has none: its month)
                id_at = next((n for n, c in enumerate(columns) if c.endswith("_id")), 0)
                values[id_at] = f"  {values[id_at]} "
            elif kind == "odd_opt_out":
                values[columns.index("do_not_call")] = rnd.choice(ODD_FLAGS)
            if encoded is None:
                encoded = csv_line(values).encode()
            lines.append(encoded)
            expect[line_no] = outcome
            if outcome == "rejected":
                raw_kept[line_no] = encoded.decode("utf-8", errors="strict").replace("\x00", "\\x00")
            if bad:
                malformed += 1
    return b"\n".join(lines) + b"\n", expect, raw_kept, kinds


def run_fuzz(seed: int) -> Counter:
    rnd = random.Random(seed)
    tried: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        oracle = {}
        for table in TABLES:
            data, expect, raw_kept, kinds = build_file(table, rnd)
            (folder / f"{table}.csv").write_bytes(data)
            oracle[table] = (expect, raw_kept, kinds)
            tried.update(k for k in kinds.values() if k != "good")
        con = duckdb.connect()
        result = load(con, [folder], mapping=load_mapping("canonical"), max_reject_share=1.0)
        for table, (expect, raw_kept, kinds) in oracle.items():
            loaded = Counter(r[0] for r in con.execute(f"select _source_line from raw.{table}").fetchall())
            assert all(n == 1 for n in loaded.values()), f"{table}: a line loaded twice"
            want_loaded = {line for line, outcome in expect.items() if outcome == "loaded"}
            assert set(loaded) == want_loaded, (
                f"{table}: loaded but should not {sorted(set(loaded) - want_loaded)[:5]}, "
                f"lost {[(ln, kinds[ln]) for ln in sorted(want_loaded - set(loaded))[:5]]}")
            rejected = dict(con.execute(
                "select line, any_value(raw_record) from raw.load_rejects where table_name = ? "
                "and action = 'row_rejected' group by line", [table]).fetchall())
            want_rejected = {line for line, outcome in expect.items() if outcome.startswith("rejected")}
            assert set(rejected) == want_rejected, f"{table}: {sorted(set(rejected) ^ want_rejected)[:5]}"
            for line, raw in raw_kept.items():
                assert rejected[line] == raw, f"{table} line {line}: raw text not kept whole"
            assert all(rejected[line] for line in want_rejected)  # every reject keeps its record
            [res] = [f for f in result.files if f.table == table]
            assert res.lines_read == len(expect) == res.rows_loaded + res.rows_rejected + res.duplicates_dropped
            if table == "visits":  # the cp1251 lines arrive decoded
                cp = [ln for ln, k in kinds.items() if k == "cp1251_line"]
                got = {r[0] for r in con.execute(
                    "select doctor_id from raw.visits where _source_line in (select unnest(?))", [cp]).fetchall()}
                assert got and all(g.startswith("Щукин Ёж ") for g in got)
        odd = [ln for ln, k in oracle["patients"][2].items() if k == "odd_opt_out"]
        assert con.execute("select count(*) from raw.patients where _source_line in (select unnest(?)) "
                           "and do_not_call is not true", [odd]).fetchone()[0] == 0
        padded = [ln for ln, k in oracle["patients"][2].items() if k == "padded_id"]
        assert con.execute("select count(*) from raw.patients where _source_line in (select unnest(?)) "
                           "and patient_id <> trim(patient_id)", [padded]).fetchone()[0] == 0
        con.close()
    return tried


def test_11_fuzz_ten_thousand_malformed_lines_in_every_table():
    tried = Counter()
    for seed in (20261201, 7, 11):
        tried += run_fuzz(seed)
    assert sum(tried.values()) == 3 * len(TABLES) * MALFORMED_PER_TABLE  # 36,000 malformed lines over 8 tables
    assert set(tried) == set(KINDS)
    assert min(tried.values()) >= 300  # every kind many times over
    print("fuzz kinds tried:", dict(sorted(tried.items())))
