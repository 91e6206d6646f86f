"""BI access: the Parquet export and dbt docs with the exposures.

All on private copies of the built clinic15 warehouse (fixtures/clinic15, as of 2025-07-01). That a BI
tool holding the warehouse open read-only keeps a whole file while a build publishes, and sees the new
one after reconnecting, is tested in test_publishing.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import workspace_at


@pytest.fixture
def copy15(clinic15, tmp_path):
    shutil.copyfile(clinic15.warehouse, tmp_path / "patientbase.duckdb")
    with workspace_at(tmp_path) as ws:
        yield ws


def marts_tables(ws) -> dict[str, int]:
    """Every table of schema marts with its row count."""
    names = [r[0] for r in ws.query(
        "select table_name from information_schema.tables where table_schema = 'marts' order by 1")]
    return {name: ws.scalar(f"select count(*) from marts.{name}") for name in names}


def parquet(path: Path, sql: str = "select count(*) from data"):
    with duckdb.connect() as con:
        con.execute(f"create view data as select * from read_parquet('{path}')")
        return con.execute(sql).fetchall()


def test_parquet_export_has_one_file_per_mart_and_round_trips_row_counts(copy15):
    result = copy15.invoke("export", "parquet")
    folder = copy15.root / "exports" / "parquet"
    tables = marts_tables(copy15)
    assert {"dim_patients", "fct_visits", "fct_payments", "rfm_scores", "kpi_monthly", "channel_ltv"} <= set(tables)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{t}.parquet" for t in tables)  # nothing else left
    for table, rows in tables.items():
        assert parquet(folder / f"{table}.parquet")[0][0] == rows, table
    assert f"{len(tables)} Parquet files ({sum(tables.values()):,} rows) in {folder}" in result.output


def test_parquet_keeps_columns_types_and_values(copy15):
    copy15.invoke("export", "parquet", "--out", "bi")
    path = copy15.root / "bi" / "dim_patients.parquet"
    with duckdb.connect() as con:
        exported = con.execute(f"describe select * from read_parquet('{path}')").fetchall()
    in_warehouse = copy15.query("describe select * from marts.dim_patients")
    # Parquet has no 128-bit integers: HUGEINT counts (sums of integers) are written as BIGINT, not DOUBLE
    widened = {"HUGEINT": "BIGINT"}
    assert [(c[0], c[1]) for c in exported] == [(c[0], widened.get(c[1], c[1])) for c in in_warehouse]
    assert ("completed_visits", "BIGINT") in [(c[0], c[1]) for c in exported]
    # clinic15: Anna's two cards are one person P01 with 6 visits and 55,000 (README of the fixture)
    assert parquet(path, "select completed_visits, total_revenue from data where person_id = 'P01'") == [(6, 55000)]


def test_parquet_export_replaces_files_whole(copy15):
    folder = copy15.root / "exports" / "parquet"
    folder.mkdir(parents=True)
    (folder / "kpi_monthly.parquet").write_bytes(b"yesterday")
    (folder / "my_notes.txt").write_text("mine", encoding="utf-8")
    copy15.invoke("export", "parquet")
    assert parquet(folder / "kpi_monthly.parquet")[0][0] == copy15.scalar("select count(*) from marts.kpi_monthly")
    assert (folder / "my_notes.txt").read_text(encoding="utf-8") == "mine"  # other files are left alone
    assert not list(folder.glob(".*.tmp"))


def test_parquet_export_works_while_a_bi_tool_reads_the_warehouse(copy15):
    with duckdb.connect(str(copy15.warehouse), read_only=True) as bi:
        copy15.invoke("export", "parquet")
        assert bi.execute("select count(*) from marts.rfm_scores").fetchone()[0] == 12


def test_parquet_export_before_build_says_what_to_do(ws):
    result = ws.invoke("export", "parquet", expect=1)
    assert "No warehouse at" in result.output
    ws.invoke("load", str(ws.copy_fixture("clinic15")))
    result = ws.invoke("export", "parquet", expect=1)
    assert "has no marts yet: run `patientbase build` first" in result.output


def test_dbt_docs_generate_shows_what_feeds_each_exposure(copy15, tmp_path, monkeypatch):
    from dbt.cli.main import dbtRunner
    from patientbase.build import _release_warehouse, project_dir

    monkeypatch.setenv("PATIENTBASE_WAREHOUSE", str(copy15.warehouse))
    project, target = project_dir(), tmp_path / "docs"
    try:
        result = dbtRunner().invoke([
            "docs", "generate", "--project-dir", str(project), "--profiles-dir", str(project),
            "--target-path", str(target), "--log-path", str(tmp_path / "logs"), "--quiet",
        ])
    finally:
        _release_warehouse()
    assert result.success, result.exception
    assert (target / "index.html").is_file()
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    parents = {name: {n.split(".")[-1] for n in e["depends_on"]["nodes"]} for name, e in exposures.items()}
    assert parents["owners_report"] == {"kpi_monthly", "dim_patients", "cohort_revenue", "cohort_retention",
                                        "rfm_scores", "rfm_segment_summary", "rfm_segment_migration", "channel_ltv",
                                        "call_list_candidates", "call_outcomes", "base_potential",
                                        "prediction_backtest"}
    assert parents["segment_exports"] == {"rfm_scores", "dim_patients"}
    assert parents["call_list"] == {"call_list_candidates", "patient_next_action"}
    for exposure in exposures.values():
        assert exposure["description"] and exposure["owner"]["name"]
    catalog = json.loads((target / "catalog.json").read_text(encoding="utf-8"))
    documented = {key.split(".")[-1] for key in catalog["nodes"]}
    assert set().union(*parents.values()) <= documented  # every parent has its columns in the docs
