"""Safe publishing: BI tools never see a half-built warehouse, failed or killed runs change nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from patientbase.warehouse import RunLock


def marts_snapshot(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select person_id, total_revenue, lifecycle_status from marts.dim_patients order by person_id"
        ).fetchall()


@pytest.fixture
def published(ws):
    """clinic15 loaded and built as of 2025-07-01 into the published warehouse."""
    ws.invoke("load", str(ws.copy_fixture("clinic15")))
    ws.invoke("build", "--as-of", "2025-07-01")
    return ws


def test_a_failed_build_leaves_the_published_warehouse_as_it_was(published):
    ws = published
    before = marts_snapshot(ws.warehouse)
    # break a model's input so dbt build fails: a visit whose status passes the loader but not dbt
    with duckdb.connect(str(ws.warehouse)) as con:
        con.execute("update raw.visits set visit_id = null where visit_id = 'V0101'")
    mtime = ws.warehouse.stat().st_mtime_ns
    result = ws.invoke("build", "--as-of", "2025-07-01", expect=1)
    assert "dbt build failed" in result.output
    assert f"The published warehouse {ws.warehouse} was left as it was." in result.output
    assert ws.warehouse.stat().st_mtime_ns == mtime
    assert marts_snapshot(ws.warehouse) == before
    assert not Path(f"{ws.warehouse}.building").exists()


def test_a_second_writer_is_refused_with_a_clear_message(published):
    ws = published
    with RunLock(ws.warehouse):
        result = ws.invoke("build", "--as-of", "2025-07-01", expect=1)
    assert "Another patientbase command is already writing the warehouse" in result.output
    assert f"pid {os.getpid()}" in result.output
    ws.invoke("build", "--as-of", "2025-07-01")  # the lock is gone with its holder


def test_a_killed_build_leaves_the_previous_warehouse_opening_with_the_same_marts(published):
    ws = published
    before = marts_snapshot(ws.warehouse)
    env = dict(os.environ, PATIENTBASE_WAREHOUSE=str(ws.warehouse))
    proc = subprocess.Popen(
        [sys.executable, "-m", "patientbase.cli", "build", "--as-of", "2025-06-01"],
        cwd=ws.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    log = ws.root / ".patientbase" / "logs" / "dbt.log"
    start_size = log.stat().st_size if log.exists() else 0
    deadline = time.monotonic() + 120
    # wait until dbt is building models in the staged copy, then kill the run without warning
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and "model intermediate." in log.read_text(errors="replace")[start_size:]:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert Path(f"{ws.warehouse}.building").exists()  # the half-built copy, never published
    assert marts_snapshot(ws.warehouse) == before
    # the next run discards the leftover copy and publishes normally (the OS released the lock)
    ws.invoke("build", "--as-of", "2025-06-01")
    assert not Path(f"{ws.warehouse}.building").exists()
    assert marts_snapshot(ws.warehouse) != before  # as of June the lifecycle differs


def test_readers_keep_a_complete_warehouse_while_a_build_publishes(published):
    ws = published
    reader = duckdb.connect(str(ws.warehouse), read_only=True)  # a BI tool holding the file open
    try:
        ws.invoke("build", "--as-of", "2025-06-01")
        # the reader still sees the complete old file; new readers see the new one
        assert reader.execute("select max(as_of_date) from marts.dim_patients").fetchone()[0].isoformat() == "2025-07-01"
    finally:
        reader.close()
    assert str(marts_snapshot_as_of(ws.warehouse)) == "2025-06-01"


def marts_snapshot_as_of(path: Path):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select max(as_of_date) from marts.dim_patients").fetchone()[0]


def test_run_demo_never_rewrites_the_files_another_run_is_loading(ws):
    """`run --demo` writes its exports to a private folder: a second demo run started while the first holds
    the lock fails on the lock and leaves the first run's files (here a stand-in) as they were."""
    from patientbase.warehouse import RunLock

    demo = ws.root / ".patientbase" / "demo"
    demo.mkdir(parents=True)
    (demo / "patients.csv").write_text("the first run's file\n", encoding="utf-8")
    with RunLock(ws.warehouse):
        result = ws.invoke("run", "--demo", "--patients", "50", expect=1)
    assert "Another patientbase command is already writing" in result.output
    assert (demo / "patients.csv").read_text(encoding="utf-8") == "the first run's file\n"
    assert not list((ws.root / ".patientbase").glob(".demo-*"))  # the private copy is gone
