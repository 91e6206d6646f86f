"""Property-based tests: random malformed rows, cells and encodings never crash the loader, every good
row loads, every bad row is kept in raw.load_rejects with its line, and the counts add up."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from patientbase.load import load
from patientbase.mapping import load_mapping

# Text the loader must carry through untouched: Cyrillic, Latin, digits, quotes, the delimiter itself,
# formula starters — everything Windows-1251 can encode, so every encoding below can hold it.
TEXT = st.text(
    alphabet=st.sampled_from(list("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗabcXYZ0123456789 ,;\"'=+-@()№")),
    max_size=12,
)
DEFECTS = ["good", "empty_key", "bad_time", "bad_status", "extra_field", "missing_field", "same_key_other_content",
           "exact_repeat"]


@st.composite
def visit_rows(draw):
    """A list of (defect, fields) rows for visits.csv; ids are unique per row so the oracle is exact."""
    n = draw(st.integers(min_value=1, max_value=25))
    rows = []
    for i in range(n):
        defect = draw(st.sampled_from(DEFECTS))
        fields = [
            f"V{i:04d}", draw(st.sampled_from(["1", "2"])),
            f"2025-0{draw(st.integers(1, 9))}-1{draw(st.integers(0, 9))} 1{draw(st.integers(0, 9))}:30:00",
            draw(st.sampled_from(["completed", " Completed ", "no_show", "cancelled", "scheduled"])),
            draw(TEXT), draw(TEXT), draw(TEXT), "",
        ]
        if defect == "empty_key":
            fields[0] = draw(st.sampled_from(["", "  "]))
        elif defect == "bad_time":
            fields[2] = draw(st.sampled_from(["31.02.2025 10:00", "вчера", "2025-13-01 10:00:00", "25:99"]))
        elif defect == "bad_status":
            fields[3] = draw(st.sampled_from(["visited", "пришёл", "done!", "?"]))
        elif defect == "extra_field":
            extra = draw(TEXT)
            fields = fields + [extra]
            if extra == "":
                defect = "good"  # a trailing delimiter: an empty extra field loses nothing and loads
        elif defect == "missing_field":
            fields = fields[:-1]
        elif defect in ("same_key_other_content", "exact_repeat") and rows:
            target = next((r for d, r in reversed(rows) if d == "good"), None)
            if target is None:
                defect = "good"
            else:
                fields = list(target)
                if defect == "same_key_other_content":
                    fields[4] = fields[4] + "x"
        else:
            defect = "good"
        rows.append((defect, fields))
    return rows


def write_exports(folder: Path, rows, encoding: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["visit_id", "patient_id", "scheduled_at", "status", "doctor_id", "specialty", "branch_id", "booked_at"])
    for _, fields in rows:
        writer.writerow(fields)
    (folder / "visits.csv").write_bytes(buffer.getvalue().encode(encoding))
    (folder / "patients.csv").write_text("patient_id,last_name\n1,А\n2,Б\n", encoding="utf-8")
    (folder / "payments.csv").write_text("payment_id,patient_id,paid_at,amount\n", encoding="utf-8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=visit_rows(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1251"]))
def test_loader_never_crashes_loses_nothing_and_counts_add_up(rows, encoding):
    mapping = load_mapping("canonical")
    if encoding == "cp1251":  # the canonical mapping says UTF-8; a clinic's own mapping says auto
        for tm in mapping.tables.values():
            tm.fmt = type(tm.fmt)(**{**tm.fmt.__dict__, "encoding": "auto"})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_exports(folder, rows, encoding)
        con = duckdb.connect()
        result = load(con, [folder], mapping=mapping, max_reject_share=1.0)

        visits = next(f for f in result.files if f.table == "visits")
        # every record written is accounted for exactly once
        assert visits.rows_loaded + visits.rows_rejected + visits.duplicates_dropped == len(rows)

        lines = {defect_line: defect for defect_line, (defect, _) in enumerate(rows, start=2)}
        loaded = {r[0] for r in con.execute("select _source_line from raw.visits").fetchall()}
        rejected = {r[0] for r in con.execute(
            "select distinct line from raw.load_rejects where table_name = 'visits' and action = 'row_rejected'").fetchall()}
        dropped = {r[0] for r in con.execute(
            "select distinct line from raw.load_rejects where table_name = 'visits' and action = 'duplicate_dropped'").fetchall()}
        assert loaded == {line for line, defect in lines.items() if defect == "good"}
        assert dropped == {line for line, defect in lines.items() if defect == "exact_repeat"}
        assert rejected == {line for line, defect in lines.items() if defect not in ("good", "exact_repeat")}
        # text cells arrive exactly as written, whatever the encoding
        for line, (defect, fields) in enumerate(rows, start=2):
            if defect == "good":
                assert con.execute(
                    "select doctor_id, specialty, branch_id from raw.visits where _source_line = ?", [line]
                ).fetchone() == (fields[4].strip() or None, fields[5] if fields[5] != "" else None,
                                 fields[6].strip() or None)  # ids arrive trimmed (item 4)
        con.close()
