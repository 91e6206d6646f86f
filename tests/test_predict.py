"""Return prediction: features at a cutoff worked out by hand on clinic15, nothing after the cutoff
leaks into them, the BG/NBD fit recovers the parameters purchases were simulated with, the small-clinic
fallback says which model scored each person, and the marts build before predict has run.

clinic15 (fixtures/clinic15/README.md) is built as of 2025-07-01; with the default horizon (180 days)
the backtest cutoff is 2025-01-02 and the training cutoffs are 30, 60, … 360 days before the as-of date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal as D

import numpy as np
import pytest
from conftest import workspace_at
from patientbase.bgnbd import BGNBD, GammaGamma
from patientbase.predict import deciles

FEATURES = "intermediate.int_persons_features_at_cutoff"
LABELS = "intermediate.int_persons_returns_after_cutoff"

# every feature column; the flags and age (within a year, from the as-of date) are not facts at the cutoff
FACTS = [
    "person_id", "first_visit_date", "last_visit_date", "recency_days", "tenure_days", "frequency", "episodes",
    "visits_365d", "specialties_used", "repeat_episodes", "last_episode_day", "mean_return_gap_days",
    "days_overdue", "revenue_total", "revenue_365d", "avg_check", "no_shows", "days_to_booked_visit",
    "plans_365d", "plan_amount_365d", "calls_90d", "reached_calls_90d", "last_specialty", "acquisition_channel",
]


def row(ws, table, person, cutoff, columns):
    return ws.query(f"select {', '.join(columns)} from {table} where person_id = ? and cutoff_date = ?",
                    [person, cutoff])


def test_cutoffs_are_the_as_of_date_every_30_days_back_and_the_backtest(clinic15):
    cutoffs = clinic15.query("select cast(cutoff_date as varchar), days_before_as_of, is_scoring_cutoff, "
                             "is_backtest_cutoff from intermediate.int_prediction_cutoffs order by cutoff_date desc")
    assert len(cutoffs) == 13
    assert cutoffs[0] == ("2025-07-01", 0, True, False)
    assert cutoffs[6] == ("2025-01-02", 180, False, True)
    assert cutoffs[-1] == ("2024-07-06", 360, False, False)


def test_features_of_anna_at_the_backtest_cutoff_by_hand(clinic15):
    """Anna (P01 + P02) before 2025-01-02: dentistry 2024-07-10 and 2024-10-10, 10,000 each. Her visits of
    2025-01-10 (8 days later), 03-01 (on the second card), 04-10, 06-20 and their payments come after."""
    got = row(clinic15, FEATURES, "P01", "2025-01-02", [
        "frequency", "episodes", "visits_365d", "recency_days", "tenure_days", "repeat_episodes",
        "last_episode_day", "mean_return_gap_days", "days_overdue", "revenue_total", "revenue_365d",
        "avg_check", "no_shows", "days_to_booked_visit", "plans_365d", "last_specialty", "specialties_used"])
    # recency: 2024-10-10 -> 2025-01-02 = 21 + 30 + 31 + 2 = 84 days; tenure from 2024-07-10: 176;
    # one repeat episode 92 days after the first visit, so the rhythm is 92 days and she is 8 days early
    assert got == [(2, 2, 2, 84, 176, 1, 92, 92, -8, 20000, 20000, 10000, 0, None, 0, "dentistry", 1)]


def test_features_of_a_lapsed_regular_and_of_booked_patients_by_hand(clinic15):
    # P05: cardiology 2023-09-01, 12-01, 2024-03-01, 06-01 (8,000 each). At 2025-01-02: last visit 215 days
    # back; 2024-03-01 (307 days) and 06-01 are within 365 days, 2023-12-01 (398) is not; the last episode
    # starts 274 days after the first (2024 is a leap year), so the rhythm is 274 / 3 = 91.33 days and she
    # is 215 - 91.33 = 123.67 days overdue
    assert row(clinic15, FEATURES, "P05", "2025-01-02", [
        "frequency", "visits_365d", "recency_days", "last_episode_day", "mean_return_gap_days", "days_overdue",
        "revenue_total", "revenue_365d"]) == [(4, 2, 215, 274, D("91.33"), D("123.67"), 32000, 16000)]
    # P08 on the as-of date: visit of 2025-07-10 booked on 2025-05-01 (9 days ahead); plan of 80,000 made
    # 2025-04-01; payments 5,000 + an advance of 30,000 + 20,000
    assert row(clinic15, FEATURES, "P08", "2025-07-01", [
        "days_to_booked_visit", "plans_365d", "plan_amount_365d", "revenue_total", "avg_check"]) == [
        (9, 1, 80000, 55000, 27500)]
    # P10: the 07-05 visit was booked on 06-20 (4 days ahead); the 07-20 one was booked after the as-of date;
    # net 10,000 - 4,000 refund + 2,000 advance
    assert row(clinic15, FEATURES, "P10", "2025-07-01", ["days_to_booked_visit", "revenue_total"]) == [(4, 8000)]
    # P06 never came (one no-show): no completed visit, no features
    assert row(clinic15, FEATURES, "P06", "2025-07-01", ["frequency"]) == []


def test_labels_of_anna_after_the_backtest_cutoff_by_hand(clinic15):
    """After 2025-01-02 Anna came on 01-10 (8 days), 03-01, 04-10 and 06-20 (day 169 < 180): 4 visits,
    10,000 + 5,000 + 10,000 + 10,000."""
    assert row(clinic15, LABELS, "P01", "2025-01-02", [
        "days_to_return", "returned_in_step", "returned_in_horizon", "visits_in_horizon", "revenue_in_horizon",
        "is_step_observed", "is_horizon_observed"]) == [(8, True, True, 4, 35000, True, True)]
    # on the as-of date nothing is observed yet
    assert row(clinic15, LABELS, "P01", "2025-07-01", [
        "returned_in_step", "is_step_observed", "is_horizon_observed"]) == [(False, False, False)]


@pytest.fixture(scope="module")
def clinic15_at_backtest_cutoff(tmp_path_factory):
    """clinic15 built as of the backtest cutoff 2025-01-02: what the warehouse knew on that day."""
    with workspace_at(tmp_path_factory.mktemp("clinic15_early")) as w:
        w.invoke("load", str(w.copy_fixture("clinic15")))
        w.invoke("build", "--as-of", "2025-01-02")
        yield w


def test_nothing_after_the_cutoff_leaks_into_its_features(clinic15, clinic15_at_backtest_cutoff):
    """The features at the past cutoff 2025-01-02 of the 2025-07-01 build equal today's features of a
    build as of 2025-01-02, which cannot see anything later: every person, every fact column."""
    columns = ", ".join(FACTS)
    later = clinic15.query(f"select {columns} from {FEATURES} where cutoff_date = '2025-01-02' order by person_id")
    then = clinic15_at_backtest_cutoff.query(
        f"select {columns} from {FEATURES} where is_scoring_cutoff order by person_id")
    assert [r[0] for r in then] == ["P01", "P04", "P05", "P11", "P12", "P14", "P15"]  # a visit before 01-02
    assert later == then


@pytest.fixture(scope="module")
def clinic15_sampled(tmp_path_factory):
    """clinic15 as of 2025-07-01 with at most 20 training rows: the build samples them."""
    with workspace_at(tmp_path_factory.mktemp("clinic15_sampled")) as w:
        w.config("vars:\n  prediction_max_training_rows: 20\n")
        w.invoke("load", str(w.copy_fixture("clinic15")))
        w.invoke("build", "--as-of", "2025-07-01")
        yield w


def test_the_training_sample_is_the_stable_hash_sample_and_changes_no_feature(clinic15, clinic15_sampled):
    """Beyond prediction_max_training_rows the build keeps the training rows whose first 8 md5 hex digits
    of 'person|days_before_as_of', as a number, times the training rows are below 16^8 x the maximum;
    the scoring and backtest cutoffs keep every person; no kept row's features change."""
    import hashlib

    columns = "cutoff_date, days_before_as_of, is_scoring_cutoff, is_backtest_cutoff, " + ", ".join(FACTS)
    full = {(r[0], r[3 + 1]): r for r in clinic15.query(f"select {columns} from {FEATURES}")}
    training = [key for key, r in full.items() if r[1] >= 30]
    assert len(training) > 20  # the full build is under the default maximum: every past row trains
    assert clinic15.scalar(f"select count(*) from {FEATURES} where is_training_row <> (days_before_as_of >= 30)") == 0

    def bucket(person, days):
        return int(hashlib.md5(f"{person}|{days}".encode()).hexdigest()[:8], 16)

    expected = {key for key in training if bucket(key[1], full[key][1]) * len(training) < 16**8 * 20}
    kept = {(r[0], r[4]): r for r in clinic15_sampled.query(f"select {columns} from {FEATURES}")}
    sampled = {(r[0], r[1]) for r in clinic15_sampled.query(
        f"select cutoff_date, person_id from {FEATURES} where is_training_row")}
    assert sampled == expected and 0 < len(sampled) < len(training)
    everyone = {key for key, r in full.items() if r[2] or r[3]}  # the scoring and backtest cutoffs
    assert set(kept) == everyone | expected
    assert all(kept[key] == full[key] for key in kept)


def test_marts_build_empty_before_predict_has_run(clinic15):
    assert clinic15.scalar("select count(*) from marts.patient_predictions") == 0
    assert clinic15.scalar("select count(*) from marts.prediction_backtest") == 0


def test_a_small_clinic_falls_back_the_mart_says_which_model_scored_and_the_backtest_runs_weekly(tmp_path_factory):
    """13 persons (< prediction_min_persons = 300): no gradient boosting; BG/NBD or RFM rules score every
    person with a completed visit (12 of 13: P06 never came) and the mart names the model."""
    with workspace_at(tmp_path_factory.mktemp("clinic15_predict")) as w:
        # a sample of the training rows, so the backtest cutoff's persons are not all training rows too
        w.config("vars:\n  prediction_max_training_rows: 20\n")
        w.invoke("load", str(w.copy_fixture("clinic15")))
        w.invoke("build", "--as-of", "2025-07-01")
        out = w.invoke("predict").output
        models = w.query("select model_name, count(*) from marts.patient_predictions group by 1")
        assert len(models) == 1 and models[0][0] in ("bg_nbd", "rfm_rules") and models[0][1] == 12
        assert f"scored by {models[0][0]}" in out
        assert w.scalar("select count(*) from marts.patient_predictions where p_return < 0 or p_return > 1") == 0
        assert w.scalar("select count(distinct person_id) from marts.patient_predictions") == 12
        backtest = w.query("select model_name from marts.prediction_backtest where decile is null order by 1")
        assert "return_hazard_gbm" not in [m for (m,) in backtest]
        assert w.scalar("select count(*) from marts.prediction_backtest where decile is null and is_chosen_model") == 1
        # the action marts read the scores: a person's conversion is their p_return unless observed
        sources = {s for (s,) in w.query("select distinct conversion_rate_source from marts.patient_next_action "
                                         "where action_code <> 'none'")}
        assert sources <= {"predicted", "observed", "assumed"}

        # the backtest reruns weekly (var prediction_backtest_every_days, 7): two days later it is kept,
        # as of the day it ran; a replay of an earlier day, or a daily setting, runs it again
        first = w.query("select * exclude (as_of_date) from marts.prediction_backtest order by model_name, decile")

        # persons with a completed visit before the backtest cutoff and, of them, those that are not
        # training rows too: the build computes these only when the backtest runs
        at_cutoff = ("select count(*), count(case when not is_training_row then 1 end) "
                     "from intermediate.int_persons_features_at_cutoff where is_backtest_cutoff")
        assert w.query(at_cutoff)[0][1] > 0

        def backtest_after(as_of: str) -> tuple[set, str]:
            w.invoke("build", "--as-of", as_of, "--select",
                     "+int_persons_features_at_cutoff +int_persons_returns_after_cutoff")
            out = w.invoke("predict").output
            return {d for (d,) in w.query("select distinct backtest_as_of_date from marts.prediction_backtest")}, out

        fit, training, model_file = the_fit_is_kept_on_a_rerun_of_the_day(w, models[0][0], backtest_after)

        dates, out = backtest_after("2025-07-03")
        assert dates == {dt.date(2025, 7, 1)} and "backtest as of 2025-07-01 kept" in out
        assert "models fitted as of 2025-07-01 kept" in out and w.query(fit)[0][0] == dt.date(2025, 7, 1)
        kept = "select * exclude (as_of_date) from marts.prediction_backtest order by model_name, decile"
        assert w.query(kept) == first
        assert w.query(at_cutoff)[0][1] == 0  # kept: only the training rows at its cutoff were built
        assert w.query(training)[0][0] == 0

        # a model file whose bytes no longer match its name is never loaded: the build computes the
        # training rows again and predict refits (the backtest stays kept)
        model_file.write_bytes(b"not the fitted models")
        dates, out = backtest_after("2025-07-03")
        assert dates == {dt.date(2025, 7, 1)} and "models fitted as of" not in out
        assert w.query(training)[0][0] > 0
        assert w.query(fit)[0][0] == dt.date(2025, 7, 3)
        assert backtest_after("2025-06-30")[0] == {dt.date(2025, 6, 30)}
        assert w.query(at_cutoff)[0][1] > 0
        w.config("vars:\n  prediction_max_training_rows: 20\n  prediction_backtest_every_days: 1\n")
        assert backtest_after("2025-07-02")[0] == {dt.date(2025, 7, 2)}
        assert w.query(at_cutoff)[0][1] > 0


def the_fit_is_kept_on_a_rerun_of_the_day(w, chosen: str, backtest_after):
    """The fitted models are kept with the backtest: a file named by its SHA-256 in the workspace, named
    in predictions.model_fit; a rerun of the same day keeps them and gives the same scores, and the
    build leaves out the training rows. Returns the queries of the fit and of the training rows, and the
    model file."""
    fit = "select fitted_as_of_date, models_digest, chosen_model from predictions.model_fit"
    (fitted, digest, chosen_model), = w.query(fit)
    assert fitted == dt.date(2025, 7, 1) and chosen_model == chosen
    model_file = w.root / ".patientbase" / "models" / f"{digest}.pkl"
    assert hashlib.sha256(model_file.read_bytes()).hexdigest() == digest
    scores = ("select person_id, p_return, expected_visits_12m, predicted_revenue_12m, decile "
              "from marts.patient_predictions order by person_id")
    first_scores = w.query(scores)
    training = "select count(*) from intermediate.int_persons_features_at_cutoff where not is_scoring_cutoff"
    assert w.query(training)[0][0] > 0
    _, out = backtest_after("2025-07-01")
    assert "models fitted as of 2025-07-01 kept" in out and "the fit of 2025-07-01 kept" in out
    assert w.query(training)[0][0] == 0
    assert w.query(scores) == first_scores
    assert w.query(fit) == [(fitted, digest, chosen_model)]
    return fit, training, model_file


def simulate_bgnbd(n, r, alpha, a, b, seed=1):
    """Purchases of n persons from the BG/NBD story: Poisson rate ~ Gamma(r, alpha), after each repeat
    purchase gone with probability p ~ Beta(a, b); observed for T weeks since the first purchase."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(26, 104, n)
    gaps = rng.exponential(1 / lam[:, None], (n, 200))
    times = np.cumsum(gaps, axis=1)
    alive_for = rng.geometric(p)  # repeat purchases made before dropping out, the last one included
    in_window = (times <= T[:, None]).sum(axis=1)
    x = np.minimum(in_window, alive_for)
    t_x = np.where(x > 0, times[np.arange(n), np.maximum(x - 1, 0)], 0.0)
    return x, t_x, T


def test_bgnbd_fit_recovers_the_parameters_purchases_were_simulated_with():
    r, alpha, a, b = 0.6, 5.0, 0.8, 2.5
    x, t_x, T = simulate_bgnbd(20_000, r, alpha, a, b)
    fit = BGNBD.fit(x, t_x, T)
    assert fit.r == pytest.approx(r, rel=0.15)
    assert fit.alpha == pytest.approx(alpha, rel=0.2)
    assert fit.a == pytest.approx(a, rel=0.25)
    assert fit.b == pytest.approx(b, rel=0.3)
    # and its expectation of returns matches a fresh simulation of the next 26 weeks
    expected = fit.p_return(x, t_x, T, 26).mean()
    assert 0 < expected < 1


def test_gamma_gamma_recovers_its_parameters():
    rng = np.random.default_rng(2)
    p, q, v = 6.0, 4.0, 15.0
    n = 20_000
    nu = rng.gamma(q, 1 / v, n)
    x = rng.integers(1, 10, n)
    spend = rng.gamma(p * x, 1 / nu) / x  # mean of x gamma(p, nu) spends
    fit = GammaGamma.fit(x, spend)
    assert fit.p == pytest.approx(p, rel=0.15)
    assert fit.q == pytest.approx(q, rel=0.15)
    assert fit.v == pytest.approx(v, rel=0.2)


def test_deciles_split_the_ranking_in_equal_tenths_highest_first():
    assert deciles(np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.2, 0.8, 0.6, 0.4, 0.0])).tolist() == [1, 9, 5, 3, 7, 8, 2, 4, 6, 10]
    assert deciles(np.array([0.5, 0.5])).tolist() == [1, 6]
