"""The daily job end to end on the demo clinic, driven as a user would: `patientbase run --demo`."""

from __future__ import annotations

import duckdb

# demo_run (conftest.py): a private copy of `patientbase run --demo --patients 1500`, run once per session


def test_run_demo_prints_a_summary_and_publishes_the_warehouse(demo_run):
    ws, result = demo_run
    out = result.output
    assert "Demo clinic: 1,500 patients" in out
    assert "dbt build passed" in out
    assert f"Published to {ws.warehouse}" in out
    assert f"Warehouse: {ws.warehouse}" in out
    patients = ws.scalar("select count(*) from staging.stg_mis__patients")
    assert f"patients (cards)   {patients:>14,}" in out
    revenue = ws.scalar("select sum(amount) from staging.stg_mis__payments")
    assert f"{revenue:>14,.2f} RUB" in out
    assert not (ws.root / "patientbase.duckdb.building").exists()


def test_run_demo_writes_the_days_call_list_segment_files_and_report(demo_run):
    ws, result = demo_run
    as_of = ws.scalar("select as_of_date from intermediate.int_as_of_date")
    call_list = ws.root / "exports" / f"call_list_{as_of}.csv"
    assert call_list.exists()
    rows = call_list.read_text(encoding="utf-8-sig").splitlines()[1:]
    assert 0 < len(rows) <= 50  # one administrator, 50 calls by default
    assert f"Call list for {as_of}: {len(rows)} calls" in result.output
    # how many calls by action, printed and adding up to the list (a family row may hold two actions)
    eligible_actions = {r[0] for r in ws.query(
        "select distinct action_code from marts.call_list_candidates where exclusion_reason is null")}
    printed = [line.split() for line in result.output.splitlines() if line.startswith("  ") and line.split()[0] in eligible_actions]
    assert printed and sum(int(n) for _, n in printed) >= len(rows)
    segments = sorted(p.name for p in (ws.root / "exports" / "segments").iterdir())
    assert "segment_champions.csv" in segments
    assert (ws.root / "exports" / "report.html").stat().st_size > 1_000_000  # plotly.js inline


def test_run_demo_reconciles_revenue_from_raw_to_marts(demo_run):
    ws, _ = demo_run
    as_of = ws.scalar("select as_of_date from intermediate.int_as_of_date")
    raw = ws.scalar("select sum(amount) from raw.payments where cast(paid_at as date) < ?", [as_of])
    assert raw > 0
    assert ws.scalar("select sum(amount) from marts.fct_payments") == raw
    orphans = ws.scalar("select coalesce(sum(amount), 0) from marts.fct_payments where person_id is null")
    assert ws.scalar("select sum(total_revenue) from marts.dim_patients") + orphans == raw


def test_run_demo_merges_duplicate_cards_and_keeps_every_card(demo_run):
    ws, _ = demo_run
    cards = ws.scalar("select count(*) from raw.patients")
    persons = ws.scalar("select count(*) from marts.dim_patients")
    merged = ws.scalar("select sum(cards) from marts.dim_patients")
    assert merged == cards
    assert 0.005 * cards < cards - persons < 0.05 * cards  # the demo has ~2% duplicate cards


def test_dbt_build_by_hand_uses_the_same_warehouse(demo_run, monkeypatch):
    """README: after demo + load, `dbt build --profiles-dir .` from the project root passes."""
    from dbt.cli.main import dbtRunner
    from patientbase.build import _release_warehouse, project_dir

    ws, _ = demo_run
    monkeypatch.setenv("PATIENTBASE_WAREHOUSE", str(ws.warehouse))
    project = project_dir()
    try:
        result = dbtRunner().invoke([
            "build", "--project-dir", str(project), "--profiles-dir", str(project),
            "--target-path", str(ws.root / "by_hand" / "target"), "--log-path", str(ws.root / "by_hand" / "logs"),
            "--quiet",
        ])
    finally:
        _release_warehouse()
    assert result.success, result.exception
    with duckdb.connect(str(ws.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from staging.stg_mis__visits").fetchone()[0] > 0
        assert con.execute("select count(*) from marts.dim_patients").fetchone()[0] > 0


def test_run_demo_predicts_returns_and_the_backtest_beats_plain_rfm(demo_run):
    """`run` predicts after the build: every person with a completed visit gets a p_return from the trained
    model, and on the demo's own history (cutoff = as-of - 180 days, models trained before it) the model
    ranks returners better than the plain sum of RFM scores. The figures are measured, not targets:
    README, "Who will come back"."""
    ws, result = demo_run
    assert "scored by return_hazard_gbm" in result.output
    persons = ws.scalar("select count(*) from marts.dim_patients where completed_visits > 0")
    assert ws.query("select model_name, count(*) from marts.patient_predictions group by 1") == [
        ("return_hazard_gbm", persons)]
    auc = dict(ws.query("select model_name, auc from marts.prediction_backtest where decile is null"))
    assert set(auc) == {"return_hazard_gbm", "bg_nbd", "rfm_rules"}
    assert auc["return_hazard_gbm"] > auc["rfm_rules"]
    # the deciles of each model add up to its total
    assert ws.query("""
        select model_name from marts.prediction_backtest
        group by model_name
        having sum(case when decile is null then persons else -persons end) <> 0
            or sum(case when decile is null then returners else -returners end) <> 0
    """) == []
    # the call list's conversion is the person's p_return where nothing was observed
    assert ws.scalar("""
        select count(*) from marts.patient_next_action as actions
        inner join marts.patient_predictions as predictions on actions.person_id = predictions.person_id
        where actions.conversion_rate_source = 'predicted' and actions.conversion_rate <> round(predictions.p_return, 4)
    """) == 0
    report = (ws.root / "exports" / "report.html").read_text(encoding="utf-8")
    assert "Из 10% пациентов, которых модель" in report


def test_run_demo_records_the_days_arms_with_the_demo_history(demo_run):
    """The demo's past lists (call_assignments.csv) are loaded; the day's list adds its own arms."""
    ws, result = demo_run
    assert "Call assignments recorded:" in result.output
    as_of = ws.scalar("select as_of_date from intermediate.int_as_of_date")
    assert ws.scalar("select count(*) from raw.call_assignments where list_date < ?", [as_of]) > 0
    listed = ws.scalar("select count(*) from intermediate.int_call_list_ranked where is_listed")
    held_out = ws.scalar("select count(*) from marts.call_list_control")
    recorded = ws.query("select arm, count(*) from raw.call_assignments where list_date = ? group by arm order by arm",
                        [as_of])
    # occurrences already on an earlier (demo) list keep their first list date and are not recorded again
    assert sum(n for _, n in recorded) <= listed + held_out
    assert dict(recorded)["call"] > 0


def test_the_next_predict_of_the_same_day_keeps_the_fitted_models_and_scores_the_same(demo_run):
    """The gradient boosting fit is kept for the week the backtest is (int_prediction_backtest_kept):
    rebuilt and predicted again the same day, the build leaves out the training rows, predict only scores,
    and every score equals the one `run` made with the fit it has just made. Runs last in this module: it
    rebuilds the warehouse the tests above read (to the same figures)."""
    ws, _ = demo_run
    scores = ("select person_id, p_return, expected_visits_12m, predicted_revenue_12m, p_alive, decile, model_name "
              "from marts.patient_predictions order by person_id")
    before = ws.query(scores)
    (fitted, digest), = ws.query("select fitted_as_of_date, models_digest from predictions.model_fit")
    assert fitted == ws.scalar("select as_of_date from intermediate.int_as_of_date")
    assert (ws.root / ".patientbase" / "models" / f"{digest}.pkl").is_file()
    ws.invoke("build")
    assert ws.scalar("select is_models_kept from intermediate.int_prediction_backtest_kept")
    assert ws.scalar("select count(*) from intermediate.int_persons_features_at_cutoff where not is_scoring_cutoff") == 0
    out = ws.invoke("predict").output
    assert f"the fit of {fitted} kept" in out and "scored by return_hazard_gbm" in out
    assert ws.query(scores) == before and len(before) > 1000
    assert ws.query("select fitted_as_of_date, models_digest from predictions.model_fit") == [(fitted, digest)]
