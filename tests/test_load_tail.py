"""Reading only what an export appended: the result must be the whole file's, row for row.

A full-snapshot export that is yesterday's file with lines added at the end is read from its new lines
(the ledger keeps each file's size, hash and line feeds). These tests load clinic15, then a next-day
version of its exports, once that way and once into an empty warehouse (a whole read), and compare
every raw table with its source lines, the rejects and the ledger; then the cases that must fall back
to a whole read: a new line repeating an old key, a new service line of an old visit and service, a
line changed in the middle, and an export whose earlier read had a line it could not make a record of.
"""

from __future__ import annotations

import shutil

import pytest
from conftest import workspace_at

# A reject share the whole patients.csv stays under (2 of 20 lines) while its 5 new lines (2 rejected)
# do not: the share is the export's, however it is read.
CONFIG = "max_reject_share: 0.2\n"

NEXT_DAY = {
    "patients.csv": [
        "P90,Петров,Иван,,1990-13-01,M,+7 912 999-00-01,,B1,Яндекс Директ,,2025-06-01 09:00:00,нет,false,false,",
        ",Без,Номера,,1990-01-01,F,,,B1,,,2025-06-01 09:00:00,false,false,false,",
        'P91,"Стр"ай,Кавычка,,1985-02-02,F,,,B1,,,2025-06-01 09:00:00,false,false,false,',
        "P92,Одинокий\rВозврат,Каретки,,1985-02-02,F,,,B1,,,2025-06-01 09:00:00,false,false,false,",
        "P93,Новая,Пациентка,,1970-01-01,F,+7 912 999-00-03,,B1,,P90,2025-06-01 09:00:00,false,false,false,",
    ],
    "visits.csv": [
        "V9001,P90,2025-06-10 10:00:00,completed,D01,dentistry,B1,2025-06-01 09:10:00",
        "V9001,P90,2025-06-10 10:00:00,completed,D01,dentistry,B1,2025-06-01 09:10:00",
        "V9002,P93,2025-06-11 10:00:00,done?,D01,dentistry,B1,",
    ],
    "visit_services.csv": [
        "V9001,S0101,Приём стоматолога первичный,consultation,1,2000.00",
        "V9001,S0101,Приём стоматолога первичный,consultation,2,4000.00",
    ],
    "payments.csv": [
        "PY9001,P90,V9001,2025-06-10 10:40:00,2000.00,card",
        "PY9002,P90,V9001,2025-06-10 10:41:00,abc,card",
    ],
}


def append(folder, lines_by_file):
    for name, lines in lines_by_file.items():
        with (folder / name).open("ab") as fh:
            fh.write(("\n".join(lines) + "\n").encode("utf-8"))


def snapshot(ws) -> dict:
    """Every raw table's rows (source file and line included), the rejects and the current ledger."""
    tables = [r[0] for r in ws.query(
        "select table_name from information_schema.tables where table_schema = 'raw' "
        "and table_name not in ('load_rejects', 'load_ledger') order by 1")]
    shot = {t: sorted(ws.query(f"select * from raw.{t}"), key=repr) for t in tables}
    shot["load_rejects"] = sorted(ws.query(
        "select table_name, file_name, line, column_name, raw_value, reason, action, raw_record from raw.load_rejects"),
        key=repr)
    shot["load_ledger"] = sorted(ws.query(
        "select table_name, file_name, sha256, size_bytes, rows_loaded, rows_rejected, mapping_key, newlines, "
        "appendable from raw.load_ledger where is_current"), key=repr)
    return shot


def read_from(ws) -> dict:
    return dict(ws.query("select file_name, read_from_line from raw.load_ledger where is_current"))


@pytest.fixture
def day_two(tmp_path):
    """(the workspace that loaded day one then day two, the whole read of day two's files)."""
    def run(next_day: dict, prepare=None):
        (tmp_path / "a").mkdir()
        with workspace_at(tmp_path / "a") as ws:
            ws.config(CONFIG)
            exports = ws.copy_fixture("clinic15")
            if prepare:
                prepare(exports)
            ws.invoke("load", str(exports))
            append(exports, next_day)
            output = ws.invoke("load", str(exports)).output
            tailed, sources = snapshot(ws), read_from(ws)
        (tmp_path / "b").mkdir()
        with workspace_at(tmp_path / "b") as whole:
            whole.config(CONFIG)
            shutil.copytree(exports, tmp_path / "b" / "exports")
            whole.invoke("load", str(tmp_path / "b" / "exports"))
            assert set(read_from(whole).values()) == {None}
            return output, tailed, sources, snapshot(whole)
    return run


def test_appended_lines_read_alone_equal_the_whole_read(day_two):
    output, tailed, sources, whole = day_two(NEXT_DAY)
    # the appended exports were read from their first new line; the others were not read at all
    assert sources == {"patients.csv": 17, "visits.csv": 30, "visit_services.csv": 6, "payments.csv": 29,
                       "treatment_plans.csv": None, "marketing_spend.csv": None}
    assert "read from line 17: the lines before are the export loaded before, unchanged" in output
    for table in whole:
        assert tailed[table] == whole[table], table
    # the new lines' verdicts, at the export's line numbers
    rejects = {(f, line, a) for t, f, line, c, v, r, a, rec in tailed["load_rejects"] if line and line >= 17
               and f == "patients.csv"}
    assert ("patients.csv", 18, "row_rejected") in rejects  # no patient_id
    assert ("patients.csv", 19, "row_rejected") in rejects  # the stray quote, kept whole
    assert ("patients.csv", 17, "value_nulled") in rejects  # the impossible birth date
    visits = {r[0]: r for r in tailed["visits"]}
    assert "V9001" in visits and visits["V9001"][-1] == 30  # _source_line; the repeat on line 31 dropped
    assert sum(1 for r in tailed["load_rejects"] if r[1] == "visits.csv" and r[2] == 31) == 1
    lines = {(r[0], r[-1]) for r in tailed["visit_services"]}
    assert {("V9001|S0101|1", 6), ("V9001|S0101|2", 7)} <= lines  # numbered as in the whole file


def test_ledger_counts_the_whole_export(day_two):
    _, tailed, _, _ = day_two(NEXT_DAY)
    ledger = {r[1]: r for r in tailed["load_ledger"]}
    for table, file_name in (("patients", "patients.csv"), ("visits", "visits.csv"), ("payments", "payments.csv")):
        rows = tailed[table]
        assert ledger[file_name][4] == len(rows), file_name  # rows_loaded: the file's rows in the table
        rejected = {r[2] for r in tailed["load_rejects"] if r[1] == file_name and r[6] == "row_rejected"}
        assert ledger[file_name][5] == len(rejected), file_name


@pytest.mark.parametrize("case, extra", [
    ("an old payment key with another amount", {"payments.csv": ["PY0101,P01,V0101,2024-07-10 10:40:00,9999.00,card"]}),
    ("a new line of an old visit and service", {"visit_services.csv": ["V1401,S0301,Гигиена,hygiene,1,5000.00"]}),
])
def test_a_new_line_that_depends_on_old_lines_reads_the_whole_export(day_two, case, extra):
    next_day = {**NEXT_DAY, **{k: NEXT_DAY.get(k, []) + v for k, v in extra.items()}}
    output, tailed, sources, whole = day_two(next_day)
    name = next(iter(extra))
    assert sources[name] is None, case
    assert "the whole export was read" in output
    assert sources["patients.csv"] == 17  # the other tables still read their tails
    for table in whole:
        assert tailed[table] == whole[table], (case, table)


def test_a_changed_line_or_an_unreadable_earlier_line_reads_the_whole_export(day_two, tmp_path):
    def prepare(exports):
        # visits.csv gets a broken line on day one, so its tail cannot be trusted to read alone
        with (exports / "visits.csv").open("ab") as fh:
            fh.write(b'V8000,P01,"2025-01-01 10:00:00,completed,D01,dentistry,B1,\n')
    output, tailed, sources, whole = day_two(NEXT_DAY, prepare)
    assert sources["visits.csv"] is None and sources["payments.csv"] == 29
    for table in whole:
        assert tailed[table] == whole[table], table

    # a line changed in the middle of the export: the hash of its first bytes differs
    (tmp_path / "c").mkdir()
    with workspace_at(tmp_path / "c") as ws:
        ws.config(CONFIG)
        exports = ws.copy_fixture("clinic15")
        ws.invoke("load", str(exports))
        path = exports / "payments.csv"
        path.write_bytes(path.read_bytes().replace(b"10000.00", b"10001.00", 1) + b"PY9001,P01,V0101,2025-06-10 10:40:00,1.00,card\n")
        ws.invoke("load", str(exports))
        assert read_from(ws)["payments.csv"] is None
        assert ws.scalar("select count(*) from raw.payments where amount = 10001.00") == 1


def test_force_reads_the_whole_export(tmp_path):
    with workspace_at(tmp_path) as ws:
        ws.config(CONFIG)
        exports = ws.copy_fixture("clinic15")
        ws.invoke("load", str(exports))
        append(exports, NEXT_DAY)
        ws.invoke("load", "--force", str(exports))
        assert set(read_from(ws).values()) == {None}
