"""The runner keeps dbt's parse of the project for each set of vars it runs dbt with (issue #16).

dbt keeps only its last parse and parses the whole project again (~7 s on two cores, whatever the data
size) whenever the vars differ from the last command's; the runner's commands alternate between a few
sets of vars, so it kept one parse per set (build._parse_kept_per_vars). On a copy of clinic15: builds
of int_as_of_date as of two dates, alternately.
"""

from __future__ import annotations

import datetime as dt

from patientbase import build as build_module


def last_dbt_run(w) -> str:
    """The dbt log of the last dbt invocation in the workspace."""
    return (w.root / ".patientbase" / "logs" / "dbt.log").read_text(encoding="utf-8").split("Running with dbt=")[-1]


def as_of_built(w, day: str):
    w.invoke("build", "--as-of", day, "--select", "int_as_of_date")
    return w.scalar("select as_of_date from intermediate.int_as_of_date")


def test_a_set_of_vars_seen_before_reuses_its_parse_and_its_own_values(clinic15, monkeypatch):
    parses = clinic15.root / ".patientbase" / "target" / "parses"
    assert as_of_built(clinic15, "2025-07-01") == dt.date(2025, 7, 1)
    # the parse copied with the workspace names the other workspace's warehouse: dbt rejects it itself
    assert "Unable to do partial parsing" in last_dbt_run(clinic15)
    assert as_of_built(clinic15, "2025-06-01") == dt.date(2025, 6, 1)
    assert "Unable to do partial parsing because saved manifest not found" in last_dbt_run(clinic15)  # a new set
    kept = sorted(p.name for p in parses.glob("*.msgpack"))
    # back to the first date: its parse is reused, and the date is this command's, not the last one's
    assert as_of_built(clinic15, "2025-07-01") == dt.date(2025, 7, 1)
    log = last_dbt_run(clinic15)
    assert "Partial parsing enabled, no changes found, skipping parsing" in log
    assert "Unable to do partial parsing" not in log
    assert sorted(p.name for p in parses.glob("*.msgpack")) == kept and len(kept) >= 2
    assert not (clinic15.root / ".patientbase" / "target" / "partial_parse.msgpack").exists()
    # at most PARSES_KEPT parses, the most recently used ones
    monkeypatch.setattr(build_module, "PARSES_KEPT", 1)
    assert as_of_built(clinic15, "2025-05-01") == dt.date(2025, 5, 1)
    assert len(list(parses.glob("*.msgpack"))) == 1
    assert as_of_built(clinic15, "2025-05-01") == dt.date(2025, 5, 1)
    assert "skipping parsing" in last_dbt_run(clinic15)
