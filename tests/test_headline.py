"""The headline figures (marts.kpi_headline) on the hand-made clinic15 as of 2025-07-01, worked out by hand.

See fixtures/clinic15/README.md and tests/test_cohorts_kpi.py's docstring for every person's payments.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D


def test_kpi_headline_figures_worked_out_by_hand(clinic15):
    """The report's and the summary's headline figures, each defined once in marts.kpi_headline.

    12 months = 2024-07 … 2025-06: all net payments but P05's four (32,000) and P14's 2024-06 one
    (4,500): 188,500 - 36,500 = 152,000. First-visit payments in the period: P01 10,000, P04 2,500,
    P15 2,500, P12 6,000, P11 4,000, P10 10,000 - 4,000 refund, P08 5,000, P03 3,000, P07 2,000,
    P09 3,500 = 44,500, so repeat = 107,500 (share 0.7072). Completed visits in the period: P01 6, P08
    2, P12 2, and one each for P14, P04, P15, P11, P10, P03, P07, P09 = 18 -> check 8,444.44. Top 15% of
    the 12 persons with a visit = 2 persons: P01 and P08, 55,000 each = 110,000 / 188,500 = 0.5836.
    LTV 12m: P05 32,000 and P14 9,000 are a year old -> 20,500. Lifecycle: sleeping P04, P14, P15; lost
    P05; deceased P11 -> active 12 - 1 - 1 = 10.
    """
    row = clinic15.query(
        """
        select as_of_date, patient_cards, persons_with_visits, active_patients, sleeping_patients, lost_patients,
               net_revenue_all_time, refunds_all_time, top15_revenue_share_all_time, period_start, period_end,
               revenue_12m, repeat_revenue_12m, repeat_revenue_share_12m, completed_visits_12m, avg_check_12m,
               ltv_12m, ltv_patients_12m, completed_visits_all_time
        from marts.kpi_headline
        """
    )
    assert row == [(
        dt.date(2025, 7, 1), 15, 12, 10, 3, 1,
        D("188500.00"), D("4000.00"), D("0.5836"), dt.date(2024, 7, 1), dt.date(2025, 6, 1),
        D("152000.00"), D("107500.00"), D("0.7072"), 18, D("8444.44"),
        D("20500.00"), 2, 23,
    )]
    # the same figures as the marts they summarise
    assert clinic15.scalar(
        "select sum(revenue) from marts.kpi_monthly where is_complete_month and month >= date '2024-07-01'"
    ) == D("152000.00")
