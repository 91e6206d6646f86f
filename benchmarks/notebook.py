"""The analyst's notebook, for comparison: RFM and revenue cohorts from the exports with pandas.

What a clinic's analyst typically writes before a warehouse exists, done plainly: read the exports,
keep completed visits, score recency / frequency / monetary in quintiles per patient card, name the
segments, and tabulate revenue by first-visit month and months since. No person matching, no as-of
replay, no checks, no call list: it computes less than the daily job, and benchmarks/run.py times it
on the same demo files as the "pandas notebook" line.

    python benchmarks/notebook.py <exports folder>
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

SEGMENTS = {  # (R score, F score) -> segment, the usual RFM grid
    (5, 5): "champions", (5, 4): "champions", (4, 5): "loyal", (4, 4): "loyal",
    (5, 1): "new", (5, 2): "promising", (4, 1): "promising", (3, 3): "need attention",
    (2, 5): "at risk", (2, 4): "at risk", (1, 5): "can't lose", (1, 4): "can't lose",
    (2, 1): "hibernating", (1, 1): "lost", (1, 2): "lost",
}


def main(folder: Path) -> None:
    start = time.perf_counter()
    visits = pd.read_csv(folder / "visits.csv", usecols=["visit_id", "patient_id", "scheduled_at", "status"],
                         parse_dates=["scheduled_at"], dtype={"visit_id": str, "patient_id": str})
    payments = pd.read_csv(folder / "payments.csv", usecols=["patient_id", "paid_at", "amount"],
                           parse_dates=["paid_at"], dtype={"patient_id": str})
    visits = visits[visits["status"].str.strip().str.lower() == "completed"]
    as_of = visits["scheduled_at"].max().normalize() + pd.Timedelta(days=1)

    # RFM per card
    per_patient = visits.groupby("patient_id").agg(last_visit=("scheduled_at", "max"), frequency=("visit_id", "count"))
    per_patient["monetary"] = payments.groupby("patient_id")["amount"].sum()
    per_patient["monetary"] = per_patient["monetary"].fillna(0)
    per_patient["recency_days"] = (as_of - per_patient["last_visit"]).dt.days
    per_patient["r"] = pd.qcut(per_patient["recency_days"].rank(method="first", ascending=False), 5, labels=False) + 1
    per_patient["f"] = pd.qcut(per_patient["frequency"].rank(method="first"), 5, labels=False) + 1
    per_patient["m"] = pd.qcut(per_patient["monetary"].rank(method="first"), 5, labels=False) + 1
    per_patient["segment"] = [SEGMENTS.get((r, f), "others") for r, f in zip(per_patient["r"], per_patient["f"])]
    segments = per_patient.groupby("segment").agg(patients=("r", "size"), revenue=("monetary", "sum"))

    # revenue cohorts: first-visit month x months since
    first = visits.groupby("patient_id")["scheduled_at"].min().rename("first_visit")
    paid = payments.join(first, on="patient_id", how="inner")
    paid["cohort"] = paid["first_visit"].dt.to_period("M")
    paid["months_since"] = ((paid["paid_at"].dt.year - paid["first_visit"].dt.year) * 12
                            + paid["paid_at"].dt.month - paid["first_visit"].dt.month)
    cohorts = paid.pivot_table(index="cohort", columns="months_since", values="amount", aggfunc="sum", fill_value=0)
    sizes = first.dt.to_period("M").value_counts().sort_index()
    ltv = cohorts.cumsum(axis=1).div(sizes, axis=0)

    print(f"{len(per_patient):,} patients in {len(segments)} segments; {ltv.shape[0]} cohorts x {ltv.shape[1]} months; "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
