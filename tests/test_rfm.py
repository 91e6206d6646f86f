"""RFM marts (rfm_scores, rfm_segment_summary, rfm_segment_migration) on the hand-made clinic15.

clinic15 is built as of 2025-07-01 (see tests/fixtures/clinic15/README.md). Twelve persons have a
completed visit before that date; P06 only has a no-show, and cards P02 and P13 belong to persons P01
and P12. Worked out by hand:

    person  last visit   recency  frequency  monetary  notes
    P01     2025-06-20        11          6    55 000  5 visits on P01 + 1 on duplicate card P02
    P03     2025-05-15        47          1     3 000
    P04     2024-08-05       330          1     2 500  identical R, F, M to P15
    P05     2024-06-01       395          4    32 000
    P07     2025-05-20        42          1     2 000
    P08     2025-05-01        61          2    55 000  incl. the 30 000 advance without a visit
    P09     2025-06-15        16          1     3 500
    P10     2025-02-10       141          1     8 000  10 000 - 4 000 refund + 2 000 advance; the
                                                       9 000 paid on 2025-07-05 is after the as-of date
    P11     2024-11-01       242          1     4 000  deceased: still scored (RFM is behaviour)
    P12     2025-01-15       167          2    12 000  cards P12 + P13
    P14     2024-12-20       193          2     9 000
    P15     2024-08-05       330          1     2 500
    total                                      188 500  = net revenue as of 2025-07-01

Default build (rfm_scale 3, rfm_method quantile): score = least(3, floor(percent_rank * 3) + 1) over
the n = 12 persons, percent_rank = (rank - 1) / 11 ordered worst to best, ties share the lowest rank.
So rank 1-4 -> 1 (percent_rank < 1/3), rank 5-8 -> 2, rank 9-12 -> 3 (3 * (rank - 1) >= 22).

    recency, descending: P05 r1; P04 = P15 r2; P11 r4 -> 1;  P14 r5, P12 r6, P10 r7, P08 r8 -> 2;
                         P03 r9, P07 r10, P09 r11, P01 r12 -> 3
    frequency, ascending: seven persons with F = 1 share r1 -> 1 (the one-visit majority);
                         P08 = P12 = P14 (F = 2) r8 -> 2; P05 (4) r11 and P01 (6) r12 -> 3
    monetary, ascending: P07 r1, P04 = P15 r2, P03 r4 -> 1; P09 r5, P11 r6, P10 r7, P14 r8 -> 2;
                         P12 r9, P05 r10, P01 = P08 r11 -> 3

    P01 R3F3M3 champions    P03 R3F1M1 new       P04 R1F1M1 lost        P05 R1F3M3 former_best
    P07 R3F1M1 new          P08 R2F2M3 at_risk   P09 R3F1M2 new         P10 R2F1M2 one_off
    P11 R1F1M2 lost         P12 R2F2M3 at_risk   P14 R2F2M2 potential   P15 R1F1M1 lost

Summary: champions 1 / 55 000; potential 1 / 9 000; new 3 / 8 500; at_risk 2 / 67 000; one_off
1 / 8 000; former_best 1 / 32 000; lost 3 / 9 000; loyal and sleeping 0 / 0.

Migration (states recomputed at each month end, i.e. as of the 1st of the next month):
- June 2024 (as of 2024-07-01): P05 (4 visits, 32 000, 30 days) and P14 (first visit 2024-06-20,
  11 days, 1 visit, 4 500). With two persons the ranks give 1 and 3: P05 R1F3M3 former_best, P14
  R3F1M1 new. At the end of May P05 was alone (a population of one scores R1F1M1, lost). So:
  lost -> former_best 1, new_entry -> new 1.
- July 2024 (as of 2024-08-01): P05 61 days, P14 42, P01 (first visit 2024-07-10) 22; M 32 000 / 4 500
  / 10 000. Recency ranks 1, 2, 3 -> 1, 2, 3 (percent_rank 0, 0.5, 1); F: P14 = P01 = 1 -> 1, P05 -> 3;
  M: P14 1, P01 2, P05 3. P05 R1F3M3 former_best, P14 R2F1M1 one_off, P01 R3F1M2 new:
  former_best -> former_best 1, new -> one_off 1, new_entry -> new 1.
- June 2025: the "from" state as of 2025-06-01 has 11 persons (P09 not yet); ranks 1-4 -> 1,
  5-7 -> 2, 8-11 -> 3. P08 (31 days, 2 visits, 55 000) was R3F2M3 loyal and is now R2F2M3 at_risk;
  P09 enters as new; everyone else keeps their segment.

Second build (patientbase.yml vars rfm_scale 5, rfm_method thresholds, the shipped rfm_thresholds):
recency bins <=45 / 46-90 / 91-180 / 181-365 / >365 -> 5..1; frequency 1 / 2 / 3-4 / 5-7 / 8+ ->
1..5; monetary <5 000 / <15 000 / <40 000 / <100 000 / more -> 1..5; segments by the classic R x F grid:

    P01 11 d, 6, 55 000  -> R5F4M4 champions       P03 47 d, 1, 3 000    -> R4F1M1 promising
    P04 330 d, 1, 2 500  -> R2F1M1 hibernating     P05 395 d, 4, 32 000  -> R1F3M3 at_risk
    P07 42 d, 1, 2 000   -> R5F1M1 new             P08 61 d, 2, 55 000   -> R4F2M4 potential_loyalist
    P09 16 d, 1, 3 500   -> R5F1M1 new             P10 141 d, 1, 8 000   -> R3F1M2 about_to_sleep
    P11 242 d, 1, 4 000  -> R2F1M1 hibernating     P12 167 d, 2, 12 000  -> R3F2M2 about_to_sleep
    P14 193 d, 2, 9 000  -> R2F2M2 hibernating     P15 330 d, 1, 2 500   -> R2F1M1 hibernating
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from conftest import Workspace

AS_OF = "2025-07-01"


def _build(tmp_path_factory, name: str, config: str | None = None) -> Workspace:
    """Load clinic15 and build it once in a fresh working directory (one build per configuration)."""
    root = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("PATIENTBASE_WAREHOUSE", str(root / "patientbase.duckdb"))
        ws = Workspace(root)
        if config:
            ws.config(config)
        fixture = ws.copy_fixture("clinic15")
        ws.invoke("load", str(fixture))
        ws.invoke("build", "--as-of", AS_OF)
    return ws


@pytest.fixture(scope="module")
def default_ws(tmp_path_factory) -> Workspace:
    return _build(tmp_path_factory, "rfm_default")


@pytest.fixture(scope="module")
def thresholds5_ws(tmp_path_factory) -> Workspace:
    return _build(
        tmp_path_factory, "rfm_thresholds5", "vars:\n  rfm_scale: 5\n  rfm_method: thresholds\n"
    )


def scores(ws: Workspace) -> dict[str, tuple]:
    rows = ws.query(
        """
        select person_id, recency_days, frequency, monetary, r_score, f_score, m_score, rfm_code,
               segment
        from marts.rfm_scores
        order by person_id
        """
    )
    return {row[0]: row[1:] for row in rows}


D = Decimal

# person: recency_days, frequency, monetary, r, f, m, rfm_code, segment
EXPECTED_QUANTILE_3 = {
    "P01": (11, 6, D("55000.00"), 3, 3, 3, "R3F3M3", "champions"),
    "P03": (47, 1, D("3000.00"), 3, 1, 1, "R3F1M1", "new"),
    "P04": (330, 1, D("2500.00"), 1, 1, 1, "R1F1M1", "lost"),
    "P05": (395, 4, D("32000.00"), 1, 3, 3, "R1F3M3", "former_best"),
    "P07": (42, 1, D("2000.00"), 3, 1, 1, "R3F1M1", "new"),
    "P08": (61, 2, D("55000.00"), 2, 2, 3, "R2F2M3", "at_risk"),
    "P09": (16, 1, D("3500.00"), 3, 1, 2, "R3F1M2", "new"),
    "P10": (141, 1, D("8000.00"), 2, 1, 2, "R2F1M2", "one_off"),
    "P11": (242, 1, D("4000.00"), 1, 1, 2, "R1F1M2", "lost"),
    "P12": (167, 2, D("12000.00"), 2, 2, 3, "R2F2M3", "at_risk"),
    "P14": (193, 2, D("9000.00"), 2, 2, 2, "R2F2M2", "potential"),
    "P15": (330, 1, D("2500.00"), 1, 1, 1, "R1F1M1", "lost"),
}

EXPECTED_THRESHOLDS_5 = {
    "P01": (11, 6, D("55000.00"), 5, 4, 4, "R5F4M4", "champions"),
    "P03": (47, 1, D("3000.00"), 4, 1, 1, "R4F1M1", "promising"),
    "P04": (330, 1, D("2500.00"), 2, 1, 1, "R2F1M1", "hibernating"),
    "P05": (395, 4, D("32000.00"), 1, 3, 3, "R1F3M3", "at_risk"),
    "P07": (42, 1, D("2000.00"), 5, 1, 1, "R5F1M1", "new"),
    "P08": (61, 2, D("55000.00"), 4, 2, 4, "R4F2M4", "potential_loyalist"),
    "P09": (16, 1, D("3500.00"), 5, 1, 1, "R5F1M1", "new"),
    "P10": (141, 1, D("8000.00"), 3, 1, 2, "R3F1M2", "about_to_sleep"),
    "P11": (242, 1, D("4000.00"), 2, 1, 1, "R2F1M1", "hibernating"),
    "P12": (167, 2, D("12000.00"), 3, 2, 2, "R3F2M2", "about_to_sleep"),
    "P14": (193, 2, D("9000.00"), 2, 2, 2, "R2F2M2", "hibernating"),
    "P15": (330, 1, D("2500.00"), 2, 1, 1, "R2F1M1", "hibernating"),
}


# -- default build: 3 points, quantile ------------------------------------------------------------


def test_scores_match_the_hand_computed_table(default_ws):
    assert scores(default_ws) == EXPECTED_QUANTILE_3


def test_identical_rfm_values_get_identical_scores(default_ws):
    got = scores(default_ws)
    assert got["P04"] == got["P15"]
    # ties inside one metric too: P08 and P12 share F = 2, P01 and P08 share M = 55 000
    assert got["P08"][4] == got["P12"][4] == 2
    assert got["P01"][5] == got["P08"][5] == 3


def test_the_one_visit_majority_gets_f_score_1(default_ws):
    one_visit = [person for person, row in scores(default_ws).items() if row[1] == 1]
    assert len(one_visit) == 7
    assert {scores(default_ws)[person][4] for person in one_visit} == {1}


def test_only_persons_with_a_completed_visit_are_scored(default_ws):
    ids = {row[0] for row in default_ws.query("select person_id from marts.rfm_scores")}
    assert "P06" not in ids  # a no-show only
    assert not ids & {"P02", "P13"}  # duplicate cards, merged into P01 and P12


def test_scores_carry_as_of_date_labels_and_settings(default_ws):
    rows = default_ws.query(
        """
        select distinct as_of_date, rfm_scale, rfm_method, rfm_window_months
        from marts.rfm_scores
        """
    )
    assert rows == [(dt.date(2025, 7, 1), 3, "quantile", None)]
    assert default_ws.query(
        """
        select rfm_cell, segment_label_ru, segment_label_en, default_action
        from marts.rfm_scores where person_id = 'P05'
        """
    ) == [("R1F3", "Бывшие лучшие", "Former best", "win_back_call")]


def test_monetary_reconciles_with_net_revenue(default_ws):
    assert default_ws.scalar("select sum(monetary) from marts.rfm_scores") == D("188500.00")
    assert default_ws.scalar(
        "select sum(total_revenue) from marts.dim_patients where completed_visits > 0"
    ) == D("188500.00")


def test_segment_summary_is_the_pareto_picture(default_ws):
    rows = default_ws.query(
        """
        select segment, sort_order, patients, revenue, avg_revenue_per_patient
        from marts.rfm_segment_summary
        order by sort_order
        """
    )
    assert rows == [
        ("champions", 1, 1, D("55000.00"), D("55000.00")),
        ("loyal", 2, 0, D("0.00"), None),
        ("potential", 3, 1, D("9000.00"), D("9000.00")),
        ("new", 4, 3, D("8500.00"), D("2833.33")),
        ("at_risk", 5, 2, D("67000.00"), D("33500.00")),
        ("one_off", 6, 1, D("8000.00"), D("8000.00")),
        ("former_best", 7, 1, D("32000.00"), D("32000.00")),
        ("sleeping", 8, 0, D("0.00"), None),
        ("lost", 9, 3, D("9000.00"), D("3000.00")),
    ]
    shares = {
        segment: (float(patients_share), float(revenue_share))
        for segment, patients_share, revenue_share in default_ws.query(
            "select segment, share_of_patients, share_of_revenue from marts.rfm_segment_summary"
        )
    }
    assert shares["at_risk"] == pytest.approx((2 / 12, 67000 / 188500), abs=1e-9)
    assert shares["loyal"] == (0, 0)
    assert sum(share[0] for share in shares.values()) == pytest.approx(1, abs=1e-8)
    assert sum(share[1] for share in shares.values()) == pytest.approx(1, abs=1e-8)


def migration(ws: Workspace, month: str) -> set[tuple]:
    return set(
        ws.query(
            """
            select from_segment, to_segment, patients
            from marts.rfm_segment_migration
            where month = cast(? as date)
            """,
            [month],
        )
    )


def test_migration_recomputes_past_month_ends(default_ws):
    assert migration(default_ws, "2024-06-01") == {("lost", "former_best", 1), ("new_entry", "new", 1)}
    assert migration(default_ws, "2024-07-01") == {
        ("former_best", "former_best", 1),
        ("new", "one_off", 1),
        ("new_entry", "new", 1),
    }
    assert migration(default_ws, "2025-06-01") == {
        ("champions", "champions", 1),
        ("new", "new", 2),
        ("lost", "lost", 3),
        ("former_best", "former_best", 1),
        ("loyal", "at_risk", 1),
        ("one_off", "one_off", 1),
        ("at_risk", "at_risk", 1),
        ("potential", "potential", 1),
        ("new_entry", "new", 1),
    }


def test_migration_covers_migration_months_and_counts_everyone(default_ws):
    months = default_ws.query(
        """
        select month, sum(patients), sum(case when from_segment = 'new_entry' then patients end)
        from marts.rfm_segment_migration
        group by month
        order by month
        """
    )
    # 24 month ends back from June 2025 reach July 2023; P05's first visit (2023-09-01) is the first
    assert months[0] == (dt.date(2023, 9, 1), 1, 1)
    assert months[-1][:2] == (dt.date(2025, 6, 1), 12)
    assert all(dt.date(2023, 7, 1) <= month <= dt.date(2025, 6, 1) for month, _, _ in months)
    # a person, once scored, is counted in every later month: totals never fall
    totals = [total for _, total, _ in months]
    assert totals == sorted(totals)
    # the last month's "to" state is exactly rfm_scores (as of 2025-07-01 = the end of June)
    assert default_ws.query(
        """
        select to_segment, sum(patients) from marts.rfm_segment_migration
        where month = date '2025-06-01' group by to_segment order by to_segment
        """
    ) == default_ws.query(
        "select segment, count(*) from marts.rfm_scores group by segment order by segment"
    )


# -- second build: 5 points, thresholds from the seed ---------------------------------------------


def test_thresholds_on_five_points(thresholds5_ws):
    assert scores(thresholds5_ws) == EXPECTED_THRESHOLDS_5
    got = scores(thresholds5_ws)
    assert got["P04"] == got["P15"]
    assert thresholds5_ws.query(
        "select distinct rfm_scale, rfm_method from marts.rfm_scores"
    ) == [(5, "thresholds")]


def test_five_point_summary(thresholds5_ws):
    rows = thresholds5_ws.query(
        """
        select segment, patients, revenue, share_of_patients, share_of_revenue
        from marts.rfm_segment_summary
        order by sort_order
        """
    )
    assert [row[:3] for row in rows] == [
        ("champions", 1, D("55000.00")),
        ("loyal", 0, D("0.00")),
        ("potential_loyalist", 1, D("55000.00")),
        ("new", 2, D("5500.00")),
        ("promising", 1, D("3000.00")),
        ("need_attention", 0, D("0.00")),
        ("about_to_sleep", 2, D("20000.00")),
        ("at_risk", 1, D("32000.00")),
        ("cant_lose", 0, D("0.00")),
        ("hibernating", 4, D("18000.00")),
        ("lost", 0, D("0.00")),
    ]
    assert sum(float(row[3]) for row in rows) == pytest.approx(1, abs=1e-8)
    assert sum(float(row[4]) for row in rows) == pytest.approx(1, abs=1e-8)
    assert float(dict((row[0], row[4]) for row in rows)["hibernating"]) == pytest.approx(18000 / 188500, abs=1e-9)


def test_five_point_migration_ends_in_the_scores(thresholds5_ws):
    assert thresholds5_ws.query(
        """
        select to_segment, sum(patients) from marts.rfm_segment_migration
        where month = date '2025-06-01' group by to_segment order by to_segment
        """
    ) == thresholds5_ws.query(
        "select segment, count(*) from marts.rfm_scores group by segment order by segment"
    )
