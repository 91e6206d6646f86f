"""`patientbase predict`: fit the return models on the clinic's own history, score today, backtest.

Reads the features and labels the build computed (int_persons_features_at_cutoff,
int_persons_returns_after_cutoff), writes two tables into schema `predictions` (patient_scores,
backtest) that the marts patient_predictions and prediction_backtest read after a rebuild of the models
downstream of them. Definitions and why: docs/decisions.md, "Return prediction".

Models, best first:
  return_hazard_gbm  scikit-learn HistGradientBoostingClassifier on person × cutoff rows: the chance of
                     a completed visit within one step (30 days) after a cutoff. p_return chains the
                     steps to the horizon, advancing the features a person would have without a visit
                     (recency, tenure, overdue days grow; bookings pass; windowed counts empty). It needs
                     one step of future after a cutoff, not a whole horizon, so a year of history is
                     enough.
  bg_nbd             BG/NBD + Gamma-Gamma (runner/bgnbd.py) on episodes of care; the fallback for a
                     clinic with fewer than `prediction_min_persons` persons.
  rfm_rules          the observed return rate of each sum of 5-point R, F and M scores; the fallback when
                     even BG/NBD cannot be fitted.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .config import Config

# scikit-learn's OpenMP threads spin while they wait; on cores shared with other jobs (a small clinic
# server, CI) that made a 27k-row fit 15x slower. Passive waiting costs nothing when the cores are free.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

NUMERIC_FEATURES = [
    "recency_days", "tenure_days", "frequency", "episodes", "visits_365d", "specialties_used",
    "mean_return_gap_days", "days_overdue", "revenue_total", "revenue_365d", "avg_check", "no_shows",
    "days_to_booked_visit", "plans_365d", "plan_amount_365d", "calls_90d", "reached_calls_90d", "age_years",
]
CATEGORICAL_FEATURES = ["last_specialty", "acquisition_channel"]
LABELS = ["returned_in_step", "returned_in_horizon", "revenue_in_horizon", "is_step_observed", "is_horizon_observed"]
MODELS = ("return_hazard_gbm", "bg_nbd", "rfm_rules")
LARGE_TRAINING_ROWS = 200_000
#: the models that read the prediction tables: rebuilt after predict writes them (`run` builds them only then)
DOWNSTREAM = ("stg_predictions__patient_scores+", "stg_predictions__backtest+")
#: model files kept in the workspace (`.patientbase/models`), newest first: the published warehouse's
#: fit is the newest or, after a run that failed after predict, the one before it
MODEL_FILES_KEPT = 3


@dataclass
class PredictResult:
    as_of_date: object
    horizon_days: int
    persons: int
    chosen_model: str
    backtest: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    models_fitted_as_of_date: object = None  # an earlier day's fit kept (set only then)


def project_vars(cfg: Config) -> dict:
    from .build import project_dir

    defaults = yaml.safe_load((project_dir() / "dbt_project.yml").read_text(encoding="utf-8")).get("vars", {})
    return {**defaults, **(cfg.vars or {})}


# -- reading ----------------------------------------------------------------------------------------


def _read(wh, where: str) -> pd.DataFrame:
    """Features and labels of the person x cutoff rows matching `where`, in (cutoff, person) order -
    the same rows in the same order on every engine, so the same fit."""
    columns = ", ".join(["features.cutoff_date", "features.person_id", "features.days_before_as_of",
                         "features.repeat_episodes", "features.last_episode_day", "features.as_of_date"]
                        + [f"features.{c}" for c in NUMERIC_FEATURES + CATEGORICAL_FEATURES]
                        + [f"labels.{c}" for c in LABELS])
    sql = f"""
        select {columns}
        from intermediate.int_persons_features_at_cutoff as features
        inner join intermediate.int_persons_returns_after_cutoff as labels
            on features.cutoff_date = labels.cutoff_date and features.person_id = labels.person_id
        where {where}
    """
    frame = wh.frame(sql)
    # the order is set here, not by an ORDER BY: the engines collate text differently (PostgreSQL by
    # locale), and (cutoff, person) is the grain, so this sort alone defines it, by code point
    frame = frame.sort_values(["cutoff_date", "person_id"], kind="stable", ignore_index=True)
    for c in NUMERIC_FEATURES + ["repeat_episodes", "last_episode_day", "revenue_in_horizon", "days_before_as_of"]:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("float64")
    frame["cutoff_date"] = pd.to_datetime(frame["cutoff_date"])
    for c in ["returned_in_step", "returned_in_horizon", "is_step_observed", "is_horizon_observed",
              "is_scoring_cutoff", "is_backtest_cutoff"]:
        if c in frame:
            frame[c] = frame[c].astype(bool)
    for c in CATEGORICAL_FEATURES + ["person_id"]:
        frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    return frame


def _categorical(frames: list[pd.DataFrame], also: list[pd.DataFrame] = ()) -> None:
    """The same categories, those `frames` take, in every frame and in `also`'s (HistGradientBoosting
    reads them from the dtype)."""
    for c in CATEGORICAL_FEATURES:
        values = sorted(set().union(*(set(f[c].dropna().unique()) for f in frames)))
        for f in [*frames, *also]:
            f[c] = pd.Categorical(f[c], categories=values)


# -- the models -------------------------------------------------------------------------------------


def advance(X: pd.DataFrame, days: float) -> pd.DataFrame:
    """The features a person has `days` after the cutoff without a visit in between."""
    if days == 0:
        return X
    out = X.copy()
    for c in ("recency_days", "tenure_days", "days_overdue"):
        out[c] = out[c] + days
    booked = out["days_to_booked_visit"] - days
    out["days_to_booked_visit"] = booked.where(booked >= 0)
    out.loc[out["recency_days"] > 365, ["visits_365d", "revenue_365d"]] = 0.0
    if days >= 90:
        out[["calls_90d", "reached_calls_90d"]] = 0.0
    return out


class HazardModel:
    name = "return_hazard_gbm"

    def __init__(self, step: int):
        self.step = step

    def fit(self, train: pd.DataFrame) -> HazardModel:
        from sklearn.ensemble import HistGradientBoostingClassifier

        y = train["returned_in_step"].astype(bool).to_numpy()
        if y.all() or not y.any():
            raise ValueError("every training row has the same label")
        # Scoring costs persons x trees x chain steps, so a large clinic gets half the trees at twice the
        # rate: at 100k persons (400k training rows) the backtest AUC went 0.9365 -> 0.9357 and scoring
        # 2.4x faster; a small clinic (the demo) keeps the slower rate, which calibrates it better
        # (docs/decisions.md, "Issue #16, second session")
        large = len(train) >= LARGE_TRAINING_ROWS
        self.model = HistGradientBoostingClassifier(
            max_iter=100 if large else 200, learning_rate=0.15 if large else 0.08, max_leaf_nodes=31, min_samples_leaf=40, l2_regularization=1.0,
            early_stopping=len(train) >= 2000, validation_fraction=0.15, n_iter_no_change=15,
            categorical_features="from_dtype", random_state=0,
        )
        self.model.fit(train[NUMERIC_FEATURES + CATEGORICAL_FEATURES], y)
        return self

    def survival(self, X: pd.DataFrame, days: list[int], fine_until: int | None = None) -> dict[int, np.ndarray]:
        """P(no completed visit within d days) for each d in `days`, chaining one-step hazards. Beyond
        `fine_until` days (the horizon) a step's hazard stands for three steps: the 12-month figure
        needs less precision than p_return, and each step is a pass over every person."""
        X = X[NUMERIC_FEATURES + CATEGORICAL_FEATURES]
        survive = np.ones(len(X))
        out: dict[int, np.ndarray] = {}
        elapsed = 0
        for target in sorted(days):
            while elapsed < target:
                stride = self.step if fine_until is None or elapsed < fine_until else 3 * self.step
                width = min(stride, target - elapsed)
                if target - elapsed - width < self.step:  # no sliver of a step left over
                    width = target - elapsed
                middle = elapsed + max(0, width - self.step) / 2  # a long stride: its middle step's hazard
                hazard = self.model.predict_proba(advance(X, middle))[:, 1]
                survive = survive * (1.0 - hazard) ** (width / self.step)
                elapsed += width
            out[target] = survive.copy()
        return out

    def score(self, X: pd.DataFrame, horizon: int, with_12m: bool = True) -> dict[str, np.ndarray]:
        s = self.survival(X, [horizon, 365] if with_12m else [horizon], fine_until=horizon)
        p_12m = 1.0 - s.get(365, s[horizon])
        return {"p_return": 1.0 - s[horizon], "p_12m": p_12m, "p_alive": np.full(len(X), np.nan),
                "visits_12m": p_12m * _visits_if_return(X, 365)}


class BGNBDModel:
    name = "bg_nbd"

    def fit(self, at_cutoff: pd.DataFrame) -> BGNBDModel:
        from .bgnbd import BGNBD, GammaGamma

        if len(at_cutoff) > 50_000:  # the parameters of a few fitted numbers: a fixed sample is plenty
            at_cutoff = at_cutoff.sample(50_000, random_state=0)
        x, t_x, T = _bgnbd_inputs(at_cutoff)
        self.bgnbd = BGNBD.fit(x, t_x, T)
        # a handful of persons can drive the parameters to a degenerate corner (seen: 13 persons giving
        # 1e40 expected visits); a fit that expects the impossible is no model
        year = self.bgnbd.expected_transactions(x, t_x, T, 52.0)
        if not np.all(np.isfinite(year)) or np.max(year, initial=0.0) > 365:
            raise ValueError("the BG/NBD fit is degenerate (more than a visit a day expected)")
        try:
            self.gamma_gamma = GammaGamma.fit(at_cutoff["frequency"], at_cutoff["avg_check"])
        except ValueError:
            self.gamma_gamma = None
        return self

    def score(self, X: pd.DataFrame, horizon: int, with_12m: bool = True) -> dict[str, np.ndarray]:
        x, t_x, T = _bgnbd_inputs(X)
        visits_per_episode = (X["frequency"] / X["episodes"].clip(lower=1)).to_numpy()
        episodes_12m = self.bgnbd.expected_transactions(x, t_x, T, 365 / 7)
        return {
            "p_return": self.bgnbd.p_return(x, t_x, T, horizon / 7),
            "p_12m": self.bgnbd.p_return(x, t_x, T, 365 / 7),
            "p_alive": self.bgnbd.p_alive(x, t_x, T),
            "visits_12m": episodes_12m * visits_per_episode,
            "visits_horizon": self.bgnbd.expected_transactions(x, t_x, T, horizon / 7) * visits_per_episode,
        }

    def check(self, X: pd.DataFrame) -> np.ndarray | None:
        if self.gamma_gamma is None:
            return None
        return self.gamma_gamma.expected_value(X["frequency"], X["avg_check"])


class RFMRules:
    """Plain RFM: the sum of 5-point quantile scores (higher = more recent, frequent, paying); p_return
    = the return rate observed for that sum at the training cutoffs (over the horizon when the history
    has full horizons, else chained from the one-step rate)."""

    name = "rfm_rules"

    def __init__(self, step: int, horizon: int):
        self.step, self.horizon = step, horizon

    @staticmethod
    def scores(X: pd.DataFrame) -> pd.Series:
        def quintile(values: pd.Series) -> pd.Series:
            pct = values.groupby(X["cutoff_date"]).rank(method="average", pct=True)
            return np.ceil(pct * 5).clip(1, 5)

        return quintile(-X["recency_days"]) + quintile(X["frequency"]) + quintile(X["revenue_total"])

    def fit(self, train: pd.DataFrame) -> RFMRules:
        s = self.scores(train)
        full = train["is_horizon_observed"].astype(bool)
        if full.sum() >= 200:
            rate = train.loc[full, "returned_in_horizon"].astype(float).groupby(s[full]).agg(["sum", "count"])
            self.chained = False
        else:
            rate = train["returned_in_step"].astype(float).groupby(s).agg(["sum", "count"])
            self.chained = True
        prior = rate["sum"].sum() / max(rate["count"].sum(), 1)
        self.rate = (rate["sum"] + 5 * prior) / (rate["count"] + 5)  # shrunk towards the overall rate
        self.prior = prior
        return self

    def _p(self, s: pd.Series, days: int) -> np.ndarray:
        rate = s.map(self.rate).fillna(self.prior).to_numpy(dtype=float)
        if self.chained:
            return 1.0 - (1.0 - rate) ** (days / self.step)
        return 1.0 - (1.0 - rate) ** (days / self.horizon)

    def score(self, X: pd.DataFrame, horizon: int, with_12m: bool = True) -> dict[str, np.ndarray]:
        s = self.scores(X)
        p_12m = self._p(s, 365)
        return {"p_return": self._p(s, horizon), "p_12m": p_12m, "p_alive": np.full(len(X), np.nan),
                "visits_12m": p_12m * _visits_if_return(X, 365)}


def _bgnbd_inputs(X: pd.DataFrame):
    weeks = 7.0
    return (X["repeat_episodes"].to_numpy(dtype=float), X["last_episode_day"].to_numpy(dtype=float) / weeks,
            X["tenure_days"].to_numpy(dtype=float) / weeks)


def _visits_if_return(X: pd.DataFrame, days: int) -> np.ndarray:
    """Visits a returning person makes in `days`: their own yearly rhythm over the relationship (a year
    at least), and at least one."""
    per_year = X["frequency"] * 365 / X["tenure_days"].clip(lower=365)
    return np.maximum(1.0, (per_year * days / 365).to_numpy(dtype=float))


def _checks(X: pd.DataFrame, model=None) -> np.ndarray:
    clinic = X.loc[X["avg_check"] > 0, "avg_check"].mean()
    own = X["avg_check"].where(X["avg_check"] > 0, clinic).fillna(0).to_numpy(dtype=float)
    if isinstance(model, BGNBDModel):
        shrunk = model.check(X)
        if shrunk is not None:
            return np.where(np.isfinite(shrunk) & (shrunk > 0), shrunk, own)
    return own


# -- training, scoring, backtest ------------------------------------------------------------------


def fit_models(train: pd.DataFrame, at_cutoff: pd.DataFrame, step: int, horizon: int, min_persons: int,
               notes: list[str], seconds: dict[str, float] | None = None) -> dict[str, object]:
    """Every model that can be fitted; the hazard model only with at least `min_persons` persons."""
    fitted: dict[str, object] = {}
    seconds = {} if seconds is None else seconds
    t = time.perf_counter()
    if at_cutoff["person_id"].nunique() >= min_persons and len(train):
        try:
            fitted["return_hazard_gbm"] = HazardModel(step).fit(train)
        except ValueError as exc:
            notes.append(f"return_hazard_gbm not fitted: {exc}")
    seconds["fit_return_hazard_gbm"] = time.perf_counter() - t
    t = time.perf_counter()
    try:
        fitted["bg_nbd"] = BGNBDModel().fit(at_cutoff)
    except (ValueError, FloatingPointError) as exc:
        notes.append(f"bg_nbd not fitted: {exc}")
    seconds["fit_bg_nbd"] = time.perf_counter() - t
    if len(train):
        fitted["rfm_rules"] = RFMRules(step, horizon).fit(train)
    return fitted


def chosen(fitted: dict[str, object]) -> str | None:
    return next((name for name in MODELS if name in fitted), None)


def score_frame(model, X: pd.DataFrame, horizon: int, with_12m: bool = True) -> pd.DataFrame:
    scored = model.score(X, horizon, with_12m)
    check = _checks(X, model)
    visits_h = scored.get("visits_horizon")
    if visits_h is None:
        visits_h = scored["p_return"] * _visits_if_return(X, horizon)
    return pd.DataFrame({
        "person_id": X["person_id"].to_numpy(),
        "p_return": np.clip(scored["p_return"], 0, 1),
        "p_alive": scored["p_alive"],
        "expected_visits_12m": scored["visits_12m"],
        "predicted_revenue_12m": scored["visits_12m"] * check,
        "predicted_revenue_horizon": visits_h * check,
    })


def deciles(p: np.ndarray) -> np.ndarray:
    """1 = the tenth with the highest probability … 10 = the lowest; ties broken by row order."""
    if len(p) == 0:
        return np.array([], dtype=int)
    order = np.argsort(-p, kind="stable")
    rank = np.empty(len(p), dtype=int)
    rank[order] = np.arange(len(p))
    return (rank * 10 // len(p) + 1).astype(int)


def backtest_rows(name: str, scored: pd.DataFrame, actual: pd.DataFrame, meta: dict) -> list[dict]:
    from sklearn.metrics import roc_auc_score

    y = actual["returned_in_horizon"].astype(bool).to_numpy()
    revenue = actual["revenue_in_horizon"].to_numpy(dtype=float)
    p = scored["p_return"].to_numpy()
    d = deciles(p)
    base = y.mean() if len(y) else np.nan
    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None
    lift = float(y[d == 1].mean() / base) if len(y) and base > 0 and (d == 1).any() else None
    rows = [{**meta, "model_name": name, "decile": None, "persons": len(y), "returners": int(y.sum()),
             "predicted_returners": float(p.sum()), "auc": auc, "top_decile_lift": lift,
             "actual_revenue": float(revenue.sum()),
             "predicted_revenue": float(scored["predicted_revenue_horizon"].sum())}]
    for k in range(1, 11):
        m = d == k
        if not m.any():
            continue
        rows.append({**meta, "model_name": name, "decile": k, "persons": int(m.sum()), "returners": int(y[m].sum()),
                     "predicted_returners": float(p[m].sum()), "auc": None, "top_decile_lift": None,
                     "actual_revenue": float(revenue[m].sum()),
                     "predicted_revenue": float(scored["predicted_revenue_horizon"][m].sum())})
    return rows


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{distribution}=={version(distribution)}"
    except PackageNotFoundError:
        return f"{distribution} missing"


def backtest_key(dbt_vars: dict) -> str:
    """What a backtest and a fit of the models depend on besides the data: this module and the BG/NBD
    code, the prediction vars, the dbt project (the features' definitions) and the versions of the
    libraries that fit and store the models."""
    import hashlib
    import json
    from pathlib import Path

    from .build import project_fingerprint

    here = Path(__file__).resolve().parent
    settings = {k: v for k, v in sorted(dbt_vars.items())
                if k.startswith("prediction_") and k not in ("prediction_backtest_every_days", "prediction_backtest_key")}
    digest = hashlib.sha256((here / "predict.py").read_bytes() + (here / "bgnbd.py").read_bytes())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode() + project_fingerprint().encode())
    # the fitted models are kept as pickles, which only the library versions that wrote them read back
    digest.update(" ".join(_version(d) for d in ("scikit-learn", "numpy", "pandas")).encode())
    return digest.hexdigest()[:16]


def stored_backtest(wh, as_of) -> pd.DataFrame | None:
    """The backtest an earlier predict wrote into this warehouse, when it stands for today's: the build
    decided it (intermediate.int_prediction_backtest_kept: run weekly, by the same code and settings,
    never a later day's for a replay) and left out the backtest cutoff's features. None: run it."""
    if not wh.table_exists("intermediate", "int_prediction_backtest_kept"):
        return None
    if not wh.scalar("select is_kept from intermediate.int_prediction_backtest_kept"):
        return None
    stored = wh.frame("select * from predictions.backtest")
    stored["as_of_date"] = as_of  # the backtest in force as of today; backtest_as_of_date says when it ran
    return stored.reindex(columns=BACKTEST_COLUMNS)


def models_dir(cfg: Config) -> Path:
    return cfg.state_path / "models"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def available_models(folder: Path) -> list[str]:
    """The digests of the model files in `folder` whose bytes still match their name: the fits the build
    may let predict keep (var prediction_models_available, int_prediction_backtest_kept). The warehouse
    names a fit only by this digest, so it can only ever point at a file this runner wrote."""
    if not folder.is_dir():
        return []
    return sorted(f.stem for f in folder.glob("*.pkl")
                  if re.fullmatch(r"[0-9a-f]{64}", f.stem) and _digest(f.read_bytes()) == f.stem)


def save_models(folder: Path, payload: dict) -> str:
    """Write the fitted models as `<sha256>.pkl` (atomically) and keep the newest MODEL_FILES_KEPT."""
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    digest = _digest(data)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest}.pkl"
    if target.exists():
        target.touch()
    else:
        partial = folder / f".{digest}.partial"
        partial.write_bytes(data)
        os.replace(partial, target)
    files = sorted(folder.glob("*.pkl"), key=lambda f: f.stat().st_mtime_ns, reverse=True)
    for old in files[MODEL_FILES_KEPT:]:
        old.unlink(missing_ok=True)
    return digest


def load_models(folder: Path, digest: str) -> dict:
    from .errors import PatientbaseError

    path = folder / f"{digest}.pkl"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PatientbaseError(f"The fitted models the build kept ({path}) cannot be read ({exc}); run "
                               "`patientbase build` again: it then computes the training rows and predict refits.") from exc
    if _digest(data) != digest:
        raise PatientbaseError(f"{path} no longer matches its digest; delete it and run `patientbase build` again.")
    return pickle.loads(data)  # noqa: S301 - a file this runner wrote, verified by its SHA-256 above


def kept_fit(wh) -> dict | None:
    """The stored fit predict scores with today, when the build decided to keep it (is_models_kept in
    intermediate.int_prediction_backtest_kept, which then left out the training rows). None: refit."""
    if not wh.table_exists("intermediate", "int_prediction_backtest_kept"):
        return None
    row = wh.frame("select * from intermediate.int_prediction_backtest_kept")
    if row.empty or "is_models_kept" not in row or not bool(row["is_models_kept"].iloc[0]):
        return None
    return {"models_digest": str(row["models_digest"].iloc[0]),
            "fitted_as_of_date": pd.Timestamp(row["models_fitted_as_of_date"].iloc[0]).date()}


def run_predictions(wh, horizon: int, step: int, min_persons: int,
                    progress: Callable[[str], None] | None = None, backtest_every_days: int = 1,
                    backtest_key: str = "", models_folder: Path | None = None) -> PredictResult:
    say = progress or (lambda _m: None)
    seconds: dict[str, float] = {}
    notes: list[str] = []
    start = time.perf_counter()
    as_of = wh.scalar("select as_of_date from intermediate.int_as_of_date")
    reused = stored_backtest(wh, as_of)
    say("Reading features")
    today = _read(wh, "features.is_scoring_cutoff")
    kept = kept_fit(wh) if reused is not None and models_folder is not None else None
    if kept is not None:
        return _score_with_kept_fit(wh, kept, load_models(models_folder, kept["models_digest"]), today, reused,
                                    as_of, horizon, backtest_every_days, backtest_key, seconds, notes, start, say)
    # a kept backtest: the build left out the rows at its cutoff (but for the training rows there)
    at_backtest = today.iloc[:0].copy() if reused is not None else _read(wh, "features.is_backtest_cutoff")
    # the build chose the training rows (a stable sample beyond var prediction_max_training_rows)
    train_live = _read(wh, "features.is_training_row")
    # the categories today's and the training rows take, the same whether the backtest runs or is kept
    # (a value seen only at the backtest cutoff is unknown to the models, read as missing)
    _categorical([today, train_live], also=[at_backtest])
    seconds["read"] = time.perf_counter() - start
    seconds["training_rows"] = len(train_live)

    # backtest: models trained only on rows whose one-step label window closed by the backtest cutoff
    backtest: list[dict] = []
    if reused is not None:
        backtest = reused.to_dict("records")
        notes.append(_backtest_kept_note(reused, backtest_every_days))
    elif not at_backtest.empty:
        t = time.perf_counter()
        say("Backtest: training on the history before as-of minus the horizon")
        train_bt = train_live[train_live["days_before_as_of"] >= horizon + step].copy()
        train_bt["is_horizon_observed"] = train_bt["days_before_as_of"] >= 2 * horizon  # within the past only
        fitted_bt = fit_models(train_bt, at_backtest, step, horizon, min_persons, notes)
        best_bt = chosen(fitted_bt)
        meta = {"as_of_date": as_of, "cutoff_date": pd.Timestamp(at_backtest["cutoff_date"].iloc[0]).date(),
                "horizon_days": horizon}
        for name, model in fitted_bt.items():
            rows = backtest_rows(name, score_frame(model, at_backtest, horizon, with_12m=False), at_backtest,
                                 {**meta, "is_chosen_model": name == best_bt, "backtest_key": backtest_key,
                                  "backtest_as_of_date": as_of,
                                  "training_rows": len(train_bt) if name != "bg_nbd" else len(at_backtest)})
            backtest += rows
        seconds["backtest"] = time.perf_counter() - t
    else:
        notes.append("no backtest: no person had a completed visit before as-of minus the horizon")

    t = time.perf_counter()
    say(f"Training on {len(train_live):,} person × cutoff rows")
    fitted = fit_models(train_live, today, step, horizon, min_persons, notes, seconds)
    best = chosen(fitted)
    seconds["train"] = time.perf_counter() - t
    fit = pd.DataFrame(columns=list(FIT_TYPES))
    if best is not None and models_folder is not None:
        # kept for the days the backtest is (int_prediction_backtest_kept): only scoring on those days
        payload = {"fitted": fitted, "chosen": best, "fitted_as_of_date": as_of, "horizon_days": horizon,
                   "backtest_key": backtest_key, "training_rows": len(train_live),
                   "categories": {c: list(today[c].cat.categories) for c in CATEGORICAL_FEATURES}}
        fit = _fit_row(as_of, horizon, backtest_key, save_models(models_folder, payload), best, len(train_live))
    scores = _scores(fitted.get(best), best, today, as_of, horizon, seconds, say)
    _write(wh, scores, pd.DataFrame(backtest), fit)
    seconds["total"] = time.perf_counter() - start
    return PredictResult(as_of, horizon, len(today), best or "none", pd.DataFrame(backtest), seconds, notes)


def _score_with_kept_fit(wh, kept: dict, payload: dict, today: pd.DataFrame, reused: pd.DataFrame, as_of,
                         horizon: int, every: int, backtest_key: str, seconds: dict, notes: list[str],
                         start: float, say) -> PredictResult:
    """Today's scores by the models fitted on an earlier day: today's features in the categories the
    models were fitted with (a value new since then reads as missing), the kept backtest as it is."""
    for c, categories in payload["categories"].items():
        today[c] = pd.Categorical(today[c], categories=categories)
    seconds["read"] = time.perf_counter() - start
    best = payload["chosen"]
    notes.append(_backtest_kept_note(reused, every))
    notes.append(f"models fitted as of {kept['fitted_as_of_date']} kept (on {payload['training_rows']:,} rows): "
                 f"refitted with the backtest")
    scores = _scores(payload["fitted"][best], best, today, as_of, horizon, seconds, say)
    fit = _fit_row(kept["fitted_as_of_date"], horizon, backtest_key, kept["models_digest"], best,
                   payload["training_rows"])
    _write(wh, scores, reused, fit)
    seconds["total"] = time.perf_counter() - start
    result = PredictResult(as_of, horizon, len(today), best, reused, seconds, notes)
    result.models_fitted_as_of_date = kept["fitted_as_of_date"]
    return result


def _scores(model, best: str | None, today: pd.DataFrame, as_of, horizon: int, seconds: dict, say) -> pd.DataFrame:
    t = time.perf_counter()
    say("Scoring")
    if model is None or today.empty:
        scores = pd.DataFrame(columns=["person_id", "p_return", "p_alive", "expected_visits_12m",
                                       "predicted_revenue_12m", "predicted_revenue_horizon"])
    else:
        scores = score_frame(model, today, horizon)
    scores["as_of_date"] = as_of
    scores["horizon_days"] = horizon
    scores["model_name"] = best or "none"
    scores["decile"] = deciles(scores["p_return"].to_numpy(dtype=float))
    seconds["score"] = time.perf_counter() - t
    return scores


def _backtest_kept_note(reused: pd.DataFrame, every: int) -> str:
    return (f"backtest as of {pd.Timestamp(reused['backtest_as_of_date'].iloc[0]).date()} kept: it runs every "
            f"{every} days (var prediction_backtest_every_days)")


def _fit_row(fitted_as_of, horizon: int, backtest_key: str, digest: str, chosen_model: str,
             training_rows: int) -> pd.DataFrame:
    """predictions.model_fit: the one fit the scores were made with."""
    return pd.DataFrame([{"fitted_as_of_date": fitted_as_of, "horizon_days": horizon, "backtest_key": backtest_key,
                          "models_digest": digest, "chosen_model": chosen_model, "training_rows": training_rows}])


SCORE_COLUMNS = ["person_id", "as_of_date", "horizon_days", "p_return", "expected_visits_12m",
                 "predicted_revenue_12m", "p_alive", "model_name", "decile"]
BACKTEST_COLUMNS = ["model_name", "is_chosen_model", "as_of_date", "cutoff_date", "horizon_days", "decile",
                    "persons", "returners", "predicted_returners", "auc", "top_decile_lift", "actual_revenue",
                    "predicted_revenue", "training_rows", "backtest_as_of_date", "backtest_key"]


SCORE_TYPES = {"person_id": "varchar", "as_of_date": "date", "horizon_days": "integer", "p_return": "double",
               "expected_visits_12m": "double", "predicted_revenue_12m": "double", "p_alive": "double",
               "model_name": "varchar", "decile": "integer"}
BACKTEST_TYPES = {"model_name": "varchar", "is_chosen_model": "boolean", "as_of_date": "date", "cutoff_date": "date",
                  "horizon_days": "integer", "decile": "integer", "persons": "integer", "returners": "integer",
                  "predicted_returners": "double", "auc": "double", "top_decile_lift": "double",
                  "actual_revenue": "double", "predicted_revenue": "double", "training_rows": "integer",
                  "backtest_as_of_date": "date", "backtest_key": "varchar"}
FIT_TYPES = {"fitted_as_of_date": "date", "horizon_days": "integer", "backtest_key": "varchar",
             "models_digest": "varchar", "chosen_model": "varchar", "training_rows": "integer"}


def _write(wh, scores: pd.DataFrame, backtest: pd.DataFrame, fit: pd.DataFrame) -> None:
    """predictions.patient_scores, predictions.backtest and predictions.model_fit of the version this
    command builds."""
    wh.write_frame(scores[SCORE_COLUMNS], "predictions", "patient_scores", SCORE_TYPES)
    wh.write_frame(backtest.reindex(columns=BACKTEST_COLUMNS), "predictions", "backtest", BACKTEST_TYPES)
    wh.write_frame(fit.reindex(columns=list(FIT_TYPES)), "predictions", "model_fit", FIT_TYPES)


def predict(cfg: Config, progress: Callable[[str], None] | None = None) -> PredictResult:
    """Train, score and backtest on the built warehouse, write the prediction tables, then rebuild the
    models that read them (the prediction marts and the actions)."""
    from .build import run_dbt
    from .db import open_warehouse
    from .engine import models_built
    from .errors import PatientbaseError

    dbt_vars = project_vars(cfg)
    horizon = int(dbt_vars.get("prediction_horizon_days") or 180)
    step = int(dbt_vars.get("prediction_step_days") or 30)
    min_persons = int(dbt_vars.get("prediction_min_persons") or 300)
    every = dbt_vars.get("prediction_backtest_every_days")
    every = 1 if every is None else int(every)
    # before anything is written: does this command's version already hold every model (DuckDB's copy,
    # or `run` after its build), or does it start empty (PostgreSQL/Spark, `predict` alone)?
    complete = models_built(cfg)
    with open_warehouse(cfg, read_only=False) as wh:
        if not wh.table_exists("intermediate", "int_persons_features_at_cutoff"):
            raise PatientbaseError("No features to predict from: run `patientbase build` first.")
        result = run_predictions(wh, horizon, step, min_persons, progress, every, backtest_key(dbt_vars),
                                 models_dir(cfg))
    t = time.perf_counter()
    as_of = str(result.as_of_date) if result.as_of_date is not None else None
    downstream = list(DOWNSTREAM)
    if not complete:
        # PostgreSQL/Spark publish whole schemas: the new version needs every model, not only those
        # reading the predictions. The others are built without their tests (the same SQL on the same
        # raw rows passed them when the published version was built); as-of as the features had.
        rest = run_dbt(cfg, "build", as_of=as_of, progress=progress,
                       extra=["--exclude", *downstream, "resource_type:test", "resource_type:unit_test"])
        if not rest.success:
            details = "\n".join(f"  - {f}" for f in rest.failures[:10])
            raise PatientbaseError(f"Building the new version of the models failed:\n{details}")
    # eager: every test touching a model that reads the predictions, those that also read an upstream
    # model included (`run` builds these models only here). None of them reads var `as_of_date` (only
    # int_as_of_date does, and it is not rebuilt here). So when the version already holds every model
    # the date is left out: the vars then stay the same from day to day (after a build without --as-of
    # they are the build's), and dbt reuses its parse of the project (build._parse_kept_per_vars)
    rebuilt = run_dbt(cfg, "build", as_of=None if complete else as_of, progress=progress,
                      extra=["--select", *downstream, "--indirect-selection", "eager"])
    if not rebuilt.success:
        details = "\n".join(f"  - {f}" for f in rebuilt.failures[:10])
        raise PatientbaseError(f"Rebuilding the models that read the predictions failed:\n{details}")
    result.seconds["rebuild"] = time.perf_counter() - t
    return result


def summary_lines(result: PredictResult) -> list[str]:
    if result.models_fitted_as_of_date is not None:
        how = f"the fit of {result.models_fitted_as_of_date} kept, scoring {result.seconds.get('score', 0):.1f} s"
    else:
        how = (f"training {result.seconds.get('train', 0):.1f} s, of which gradient boosting "
               f"{result.seconds.get('fit_return_hazard_gbm', 0):.1f} s on {result.seconds.get('training_rows', 0):,.0f} rows")
    lines = [f"Predictions as of {result.as_of_date}: {result.persons:,} persons scored by {result.chosen_model}, "
             f"horizon {result.horizon_days} days ({result.seconds.get('total', 0):.1f} s; {how})."]
    bt = result.backtest
    if not bt.empty:
        total = bt[bt["decile"].isna()]
        lines.append(f"Backtest at {pd.Timestamp(total['cutoff_date'].iloc[0]).date()} (trained only on what came before it):")
        for row in total.itertuples():
            auc = f"{row.auc:.3f}" if row.auc is not None and not pd.isna(row.auc) else "n/a"
            lift = f"{row.top_decile_lift:.2f}" if row.top_decile_lift is not None and not pd.isna(row.top_decile_lift) else "n/a"
            lines.append(f"  {row.model_name:<18} AUC {auc}, top-decile lift {lift}, predicted returners "
                         f"{row.predicted_returners:,.0f} vs actual {row.returners:,} of {row.persons:,}")
    for note in result.notes:
        lines.append(f"  note: {note}")
    return lines
