"""Incremental models (issue #16): a build keeps what its inputs did not change and recomputes the rest,
and the result equals a full rebuild, mart by mart, row by row.

The demo clinic (800 patients) is built once; then a day of changes arrives: new visits (today's and
a late-entered one in a closed month), a corrected old payment and a duplicate card that now matches
another (same phone and birth date), so two persons merge. int_persons_rfm_monthly stores every month
with the fingerprint of its inputs (int_rfm_monthly_inputs) and the dbt invocation that computed it.
"""

from __future__ import annotations

import csv
import datetime as dt

import duckdb
import pytest
from conftest import workspace_at

MONTHLY = "intermediate.int_persons_rfm_monthly"
FIRST_CHANGED = dt.date(2026, 2, 1)  # the corrected payment's month: the earliest month the day changes


def rows_of(path, name):
    with (path / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path, name, rows):
    with (path / f"{name}.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def a_day_of_changes(exports) -> dict:
    """Change the demo's exports as a day of real exports would; returns what was changed."""
    visits, payments, patients = (rows_of(exports, n) for n in ("visits", "payments", "patients"))
    completed = [v for v in visits if v["status"] == "completed"]
    first_visit = {}
    for v in completed:
        first_visit[v["patient_id"]] = min(first_visit.get(v["patient_id"], v["scheduled_at"]), v["scheduled_at"])
    by_id = {p["patient_id"]: p for p in patients}
    # two cards of different persons whose history starts after the corrected payment's month: A takes
    # B's phone and birth date (the clinic found they are one person and fixed the card)
    late = sorted(pid for pid, first in first_visit.items() if first >= "2026-04-01"
                  and by_id[pid]["phone"] and by_id[pid]["birth_date"])
    a, b = late[0], late[-1]
    by_id[a]["phone"], by_id[a]["birth_date"] = by_id[b]["phone"], by_id[b]["birth_date"]
    # a payment of February 2026 corrected (the cashier typed it wrong)
    corrected = next(p for p in payments if p["paid_at"].startswith("2026-02-"))
    corrected["amount"] = f"{float(corrected['amount']) + 1000:.2f}"
    # new visits: today's, and one entered late into June 2026, each with its payment
    template = completed[-1]
    for n, (day, patient) in enumerate([("2026-11-02 10:00:00", completed[-1]["patient_id"]),
                                        ("2026-11-02 12:00:00", completed[-2]["patient_id"]),
                                        ("2026-06-15 11:00:00", completed[-3]["patient_id"])]):
        visit_id = f"VNEW{n}"
        visits.append({**template, "visit_id": visit_id, "patient_id": patient, "scheduled_at": day,
                       "booked_at": day})
        payments.append({**payments[-1], "payment_id": f"PAYNEW{n}", "patient_id": patient,
                         "visit_id": visit_id, "paid_at": day, "amount": "2500.00"})
    write_rows(exports, "visits", visits)
    write_rows(exports, "payments", payments)
    write_rows(exports, "patients", list(by_id.values()))
    return {"merged": (a, b), "corrected": corrected["payment_id"]}


def snapshot(ws) -> dict[str, list[tuple]]:
    """Every mart and the incremental model, rows sorted (the invocation column left out)."""
    with duckdb.connect(str(ws.warehouse), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' order by 1").fetchall()]
        out = {}
        for t in tables:
            out[f"marts.{t}"] = sorted(con.execute(f'select * from marts."{t}"').fetchall(), key=repr)
        out[MONTHLY] = sorted(con.execute(f"select * exclude (computed_by_invocation_id) from {MONTHLY}").fetchall(),
                              key=repr)
    return out


def computed_by(ws) -> dict[dt.date, str]:
    rows = ws.query(f"select month, min(computed_by_invocation_id), max(computed_by_invocation_id) from {MONTHLY} "
                    "group by month")
    assert all(lo == hi for _, lo, hi in rows), "a month computed by two builds"
    return {month: lo for month, lo, _ in rows}


def assert_equal(incremental: dict, full: dict) -> None:
    assert incremental.keys() == full.keys()
    for name in full:
        assert incremental[name] == full[name], f"{name}: the incremental build differs from a full rebuild"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental")
    with workspace_at(root) as ws:
        ws.invoke("demo", "--patients", "800", "--seed", "7", "--out", "exports")
        ws.invoke("load", "exports")
        ws.invoke("build")
        yield ws


def test_a_day_of_changes_recomputes_from_the_first_changed_month_and_equals_a_full_rebuild(built):
    ws = built
    before = computed_by(ws)
    assert len(before) == 24 and len(set(before.values())) == 1  # the first build computed every month
    first_build = next(iter(before.values()))
    changed = a_day_of_changes(ws.root / "exports")
    ws.invoke("load", "exports")
    ws.invoke("build")
    a, b = changed["merged"]
    assert ws.scalar("select count(distinct person_id) from intermediate.int_patients_resolved_to_persons "
                     "where patient_id in (?, ?)", [a, b]) == 1, "the fixed card did not merge"
    after = computed_by(ws)
    assert after.keys() == before.keys()
    kept = sorted(m for m, run in after.items() if run == first_build)
    assert kept == sorted(m for m in after if m < FIRST_CHANGED)
    assert len(kept) == 15  # November 2024 .. January 2026; February .. October 2026 recomputed
    incremental = snapshot(ws)
    ws.invoke("build", "--full-refresh")
    assert len(set(computed_by(ws).values())) == 1
    assert_equal(incremental, snapshot(ws))


def test_an_unchanged_history_keeps_every_month(built, tmp_path):
    ws = built
    before = computed_by(ws)
    ws.invoke("build", "--select", "int_rfm_monthly_inputs int_persons_rfm_monthly rfm_segment_migration")
    assert computed_by(ws) == before


def test_a_changed_var_or_replay_recomputes_and_equals_a_full_rebuild(built, tmp_path):
    ws = built
    models = "int_as_of_date int_rfm_monthly_inputs int_persons_rfm_monthly rfm_segment_migration"
    before = computed_by(ws)
    ws.config("vars:\n  rfm_window_months: 12\n")
    try:
        ws.invoke("build", "--select", models)
        after = computed_by(ws)
        assert not set(after.values()) & set(before.values())  # another var: every month recomputed
        incremental = snapshot(ws)
        ws.invoke("build", "--select", models, "--full-refresh")
        assert_equal(incremental, snapshot(ws))
        # a replay as of an earlier date: months after it leave, earlier ones come in, the rest are kept
        kept_before = computed_by(ws)
        ws.invoke("build", "--select", models, "--as-of", "2026-06-15")
        replay = computed_by(ws)
        assert max(replay) == dt.date(2026, 5, 1) and min(replay) == dt.date(2024, 6, 1)
        assert all(replay[m] == kept_before[m] for m in replay if m in kept_before)
        incremental = snapshot(ws)
        ws.invoke("build", "--select", models, "--as-of", "2026-06-15", "--full-refresh")
        assert_equal(incremental, snapshot(ws))
    finally:
        ws.config("")
