"""`patientbase check`: the Great Expectations suites on clinic15 as of 2025-07-01, then broken on purpose.

clinic15 (fixtures/clinic15/README.md) loads 15 cards, 28 visits, 27 payments, 4 service lines, 2 plans
and 3 marketing-spend rows, no calls. Every expectation passes on it. Each test below breaks a copy of
the built warehouse in one way and names the suite and expectation that must catch it:

* a visit dated before the patient's birth (P03, born 2010-03-03)  -> raw.visits, error, exit 1
* a payment_id loaded twice (PY0101, 10,000)                       -> raw.payments unique, error;
  and the marts no longer reconcile: net revenue differs by exactly 10,000.00
* an r_score of 4 on a 3-point scale                               -> marts.rfm_scores, error
* a birth date in 1850                                             -> raw.patients, warn, exit 0
* visits.csv reloaded with 15 more rows: 43 vs 28 = x1.54 > x1.5   -> raw.load_history, warn, exit 0
* a do-not-call person (P14) to call in patient_next_action        -> the call-list suite, error
* a deceased person (P11) in call_list_candidates, not excluded    -> the call-list suite, error
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import workspace_at

ALL_PASS = "0 failed with severity error, 0 with warn"


def outcomes(output: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """Summary rows by (suite, expectation): (observed, result, severity[, example])."""
    rows = {}
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 5 and cells[3] in ("pass", "FAIL"):
            rows[(cells[0], cells[1])] = tuple(cells[2:])
    return rows


def docs_index(output: str) -> Path:
    match = re.search(r"^Data Docs: (.+)$", output, re.MULTILINE)
    assert match, output
    return Path(match.group(1))


@pytest.fixture
def copy15(clinic15, tmp_path):
    """A private copy of the built clinic15 warehouse, in its own working directory, to break."""
    shutil.copyfile(clinic15.warehouse, tmp_path / "patientbase.duckdb")
    with workspace_at(tmp_path) as w:
        yield w


def execute(ws, *statements: str) -> None:
    with duckdb.connect(str(ws.warehouse)) as con:
        for sql in statements:
            con.execute(sql)


def test_every_expectation_passes_on_clinic15(clinic15):
    result = clinic15.invoke("check", "--verbose")
    rows = outcomes(result.output)
    assert ALL_PASS in result.output
    assert "FAIL" not in result.output
    assert rows[("raw.patients", "the patients export has rows")] == ("15", "pass", "error")
    assert rows[("raw.visits", "the visits export has rows")] == ("28", "pass", "error")
    assert rows[("raw.payments", "the payments export has rows")] == ("27", "pass", "warn")
    assert rows[("raw.patients", "patient_id is unique")] == ("0", "pass", "error")
    assert rows[("raw.visits", "no visit before the patient's birth")] == ("0", "pass", "error")
    assert rows[("raw.visits", "status in {completed, no_show, cancelled, scheduled}")] == ("0", "pass", "error")
    assert rows[("raw.visits", "at least 99% of visits are of a known patient")] == ("100.00%", "pass", "error")
    assert rows[("raw.payments", "at least 99% of payments are of a known patient")] == ("100.00%", "pass", "error")
    assert rows[("raw.payments", "amounts within ±10,000,000")] == ("0", "pass", "warn")
    assert rows[("marts.fct_payments", "net revenue equals the raw payments before the as-of date")] == (
        "0.00", "pass", "error")
    assert rows[("marts.dim_patients", "nobody who opted out of calls or died is callable")] == ("0", "pass", "error")
    assert rows[("marts.rfm_scores", "r_score between 1 and rfm_scale")] == ("0", "pass", "error")
    # optional calls export missing (created empty); a first load has nothing to compare with
    assert "skipped: raw.calls (empty)" in result.output
    assert "skipped: raw.load_history (no previous load to compare with)" in result.output
    assert all(r[1] == "pass" for r in rows.values()) and len(rows) >= 40


def test_check_is_quiet_unless_verbose(clinic15):
    result = clinic15.invoke("check")
    lines = result.output.splitlines()
    assert lines[0].startswith("Data-quality checks (Great Expectations): ")
    assert ALL_PASS in lines[0]
    assert not outcomes(result.output)  # no row per passing expectation
    assert lines[1] == "  2 suite(s) skipped (not built or empty); `check --verbose` lists every expectation and what was skipped."
    assert lines[2].startswith("Data Docs: ") and len(lines) == 3


def test_implausible_headline_figures_fail_with_a_message_an_owner_understands(copy15):
    # a -25 M refund: net revenue negative and "repeat revenue 122.5% of net revenue"
    execute(copy15, "update marts.kpi_headline set net_revenue_all_time = -25000000, repeat_revenue_share_12m = 1.225")
    result = copy15.invoke("check", expect=1)
    assert "2 failed with severity error, 0 with warn" in result.output
    assert "marts.kpi_headline: net revenue of all time is not negative (if it is, refunds exceed payments: look " \
           "for a refund entered twice or with the wrong sign in the payments export) (observed -25,000,000.00)" \
           in result.output
    assert "repeat revenue is between 0% and 100% of net revenue over 12 months" in result.output
    rows = outcomes(result.output)
    assert {k[1][:30]: v[:2] for k, v in rows.items()} == {
        "net revenue of all time is not": ("-25,000,000.00", "FAIL"),
        "repeat revenue is between 0% a": ("122.50%", "FAIL"),
    }


def test_check_run_from_python_c_validates_instead_of_exiting_early(clinic15):
    """`python -c` gives a `__main__` without a file: pyspark, imported by GX, took that for its own
    doctests and ended the process with exit code 0 before anything was validated."""
    import subprocess
    import sys

    code = "import sys; from patientbase.cli import main; sys.argv = ['patientbase', 'check']; main()"
    done = subprocess.run([sys.executable, "-c", code], cwd=clinic15.root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Skipping doctests" not in done.stderr
    assert ALL_PASS in done.stdout.splitlines()[0]


def test_data_docs_are_written_where_the_summary_says(clinic15):
    result = clinic15.invoke("check", "--verbose")
    index = docs_index(result.output)
    assert index == clinic15.root / "exports" / "data_docs" / "index.html"
    assert index.is_file()
    pages = {p.relative_to(index.parent).parts[:3] for p in index.parent.glob("validations/**/*.html")}
    assert ("validations", "raw", "visits") in pages and ("validations", "marts", "rfm_scores") in pages
    assert "no visit before the patient's birth" in next(index.parent.glob("validations/raw/visits/**/*.html")).read_text()
    assert not list(index.parent.parent.glob("data_docs.*"))  # no half-built or old folder left beside it


def test_data_docs_folder_is_configurable(copy15):
    copy15.config("data_docs_dir: quality/docs\n")
    result = copy15.invoke("check", "--verbose")
    assert docs_index(result.output) == copy15.root / "quality" / "docs" / "index.html"
    assert (copy15.root / "quality" / "docs" / "index.html").is_file()


def test_visit_before_birth_fails_with_error(copy15):
    execute(copy15, "insert into raw.visits (visit_id, patient_id, scheduled_at, status) "
                    "values ('V9999', 'P03', '2009-12-01 10:00', 'cancelled')")
    result = copy15.invoke("check", "--verbose", expect=1)
    rows = outcomes(result.output)
    assert rows[("raw.visits", "no visit before the patient's birth")] == (
        "1", "FAIL", "error", "(e.g. V9999 at 2009-12-01 10:00:00, born 2010-03-03)")
    assert "1 failed with severity error, 0 with warn" in result.output
    assert "Data-quality check failed: 1 expectation(s) of severity error did not pass: " \
           "raw.visits: no visit before the patient's birth (observed 1)" in result.output
    assert docs_index(result.output).is_file()  # the Data Docs are written on failure too


def test_duplicate_payment_fails_key_and_reconciliation(copy15):
    execute(copy15, "insert into raw.payments select * from raw.payments where payment_id = 'PY0101'")
    result = copy15.invoke("check", "--verbose", expect=1)
    rows = outcomes(result.output)
    assert rows[("raw.payments", "payment_id is unique")] == ("1", "FAIL", "error", "(e.g. PY0101)")
    # PY0101 is 10,000.00 paid before the as-of date: raw now holds 10,000.00 more than the marts
    assert rows[("marts.fct_payments", "net revenue equals the raw payments before the as-of date")] == (
        "10,000.00", "FAIL", "error")
    assert rows[("marts.fct_payments", "one row per raw payment before the as-of date")] == ("1", "FAIL", "error")
    assert rows[("marts.dim_patients", "total_revenue adds up to fct_payments")][:2] == ("0.00", "pass")
    assert "3 failed with severity error" in result.output


def test_score_out_of_range_in_a_mart_fails_with_error(copy15):
    execute(copy15, "update marts.rfm_scores set r_score = 4 where person_id = 'P04'")
    result = copy15.invoke("check", "--verbose", expect=1)
    rows = outcomes(result.output)
    assert rows[("marts.rfm_scores", "r_score between 1 and rfm_scale")] == ("1", "FAIL", "error", "(e.g. P04: 4)")
    assert rows[("marts.rfm_scores", "rfm_code spells the three scores")][:3] == ("1", "FAIL", "error")
    assert "marts.rfm_scores: r_score between 1 and rfm_scale (observed 1)" in result.output


def test_warn_failure_is_printed_but_exits_0(copy15):
    execute(copy15, "update raw.patients set birth_date = date '1850-01-01' where patient_id = 'P05'")
    result = copy15.invoke("check", "--verbose")  # exit 0
    rows = outcomes(result.output)
    assert rows[("raw.patients", "birth dates between 1900-01-01 and today")] == ("1", "FAIL", "warn", "(e.g. P05)")
    assert "0 failed with severity error, 1 with warn" in result.output
    assert "Data-quality check failed" not in result.output


def test_thresholds_come_from_the_config(copy15):
    # 11 of the 15 cards were born before 1990 (all but P03, P06, P09 and P13 without a birth date)
    copy15.config("checks:\n  earliest_birth_date: 1990-01-01\n")
    rows = outcomes(copy15.invoke("check", "--verbose").output)
    assert rows[("raw.patients", "birth dates between 1990-01-01 and today")][:3] == ("11", "FAIL", "warn")


def test_unknown_check_setting_is_a_usage_error(copy15):
    copy15.config("checks:\n  max_amout: 5\n")
    result = copy15.invoke("check", "--verbose", expect=2)
    assert "Unknown key(s) under `checks:` in the config: max_amout" in result.output


def test_row_count_jump_since_the_previous_load_warns(copy15):
    exports = copy15.root / "exports_next"
    shutil.copytree(Path(__file__).parent / "fixtures" / "clinic15", exports)
    extra = "".join(f"V98{i:02d},P01,2025-01-{i:02d} 09:00:00,cancelled,D01,dentistry,B1,\n" for i in range(1, 16))
    with (exports / "visits.csv").open("a", encoding="utf-8") as fh:
        fh.write(extra)
    copy15.invoke("load", str(exports))
    result = copy15.invoke("check", "--verbose")  # a warning only: exit 0
    rows = {suite_text: r for suite_text, r in outcomes(result.output).items() if suite_text[0] == "raw.load_history"}
    assert len(rows) == 1  # only visits changed; the other files were unchanged and skipped
    (suite, text), row = next(iter(rows.items()))
    assert text.startswith("visits: 43 rows vs 28 at the load of ") and text.endswith("(×0.8–×1.5)")
    assert row == ("×1.54", "FAIL", "warn")
    assert "0 failed with severity error, 1 with warn" in result.output


@pytest.mark.parametrize("channel, expect", [("call", 1), ("message", 0)])
def test_nobody_on_the_call_list_who_may_not_be_called(copy15, channel, expect):
    # P14 opted out of calls; P11 is deceased but only to be messaged; P01 may be called
    execute(copy15, "create or replace table marts.patient_next_action as select * from (values "
                    f"('P01', 'call'), ('P14', '{channel}'), ('P11', 'message')) as t(person_id, channel)")
    result = copy15.invoke("check", "--verbose", expect=expect)
    row = outcomes(result.output)[("marts.patient_next_action", "nobody to call has opted out, died or lacks a valid phone")]
    if expect:
        assert row == ("1", "FAIL", "error", "(e.g. P14)")
    else:
        assert row == ("0", "pass", "error")


@pytest.mark.parametrize("reason, expect", [("null", 1), ("'recently_called'", 1), ("'deceased'", 0)])
def test_call_list_candidates_keep_the_deceased_off_the_list(copy15, reason, expect):
    # P11 is deceased: only a hard exclusion keeps them off the day's list (a recent call lapses)
    execute(copy15, "create or replace table marts.call_list_candidates as select * from (values "
                    f"('P01', null), ('P11', {reason})) as t(person_id, exclusion_reason)")
    result = copy15.invoke("check", "--verbose", expect=expect)
    row = outcomes(result.output)[("marts.call_list_candidates", "nobody to call has opted out, died or lacks a valid phone")]
    assert row[:2] == ("1", "FAIL") if expect else row[:2] == ("0", "pass")


@pytest.mark.parametrize("listed, expect", [("P01", 0), ("P01,P14", 1)])
def test_nobody_on_the_day_s_list_who_may_not_be_called(copy15, listed, expect):
    # marts.call_list is one row per phone; every person in person_ids is checked (P14 opted out)
    execute(copy15, f"create or replace table marts.call_list as select '{listed}' as person_ids")
    result = copy15.invoke("check", "--verbose", expect=expect)
    row = outcomes(result.output)[("marts.call_list", "nobody to call has opted out, died or lacks a valid phone")]
    assert row[:2] == ("1", "FAIL") if expect else row[:2] == ("0", "pass")


def test_check_before_build_runs_the_raw_suites_only(ws):
    ws.invoke("load", str(ws.copy_fixture("clinic15")))
    result = ws.invoke("check", "--verbose")
    rows = outcomes(result.output)
    assert ALL_PASS in result.output
    assert {suite for suite, _ in rows} == {"raw.patients", "raw.visits", "raw.payments", "raw.visit_services",
                                            "raw.treatment_plans", "raw.marketing_spend"}
    assert "skipped: marts.* (not built: run `patientbase build`)" in result.output


def test_run_checks_after_build_and_does_not_publish_on_an_error(ws):
    exports = ws.copy_fixture("clinic15")
    with (exports / "visits.csv").open("a", encoding="utf-8") as fh:
        fh.write("V9999,P03,2009-12-01 10:00:00,cancelled,D01,pediatrics,B1,\n")
    result = ws.invoke("run", "--as-of", "2025-07-01", str(exports), expect=1)
    assert "dbt build passed" in result.output
    assert outcomes(result.output)[("raw.visits", "no visit before the patient's birth")][:3] == ("1", "FAIL", "error")
    assert docs_index(result.output).is_file()
    assert not ws.warehouse.exists()  # an error-severity expectation blocks publishing, like a failed dbt test
