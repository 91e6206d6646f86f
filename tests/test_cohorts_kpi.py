"""Cohorts, channel LTV and monthly KPIs on clinic15 as of 2025-07-01, worked out by hand.

Persons with a completed visit (fixtures/clinic15/README.md), their first visit, channel, net payments
by payment month (fct_payments; nothing after 2025-06-30 counts):

  P05 context_ads  2023-09-01 cardiology  8,000 in 2023-09, 2023-12, 2024-03, 2024-06     = 32,000
  P14 context_ads  2024-06-20 dentistry   4,500 in 2024-06 and 2024-12                     =  9,000
  P01 referral     2024-07-10 dentistry   10,000 in 2024-07, 2024-10, 2025-01, 2025-04, 2025-06,
                                          5,000 in 2025-03 (visit on the duplicate card P02) = 55,000
  P04 context_ads  2024-08-05 therapy     2,500
  P15 website      2024-08-05 therapy     2,500
  P12 referral     2024-09-01 gynecology  6,000 in 2024-09, 6,000 in 2025-01 (card P13)      = 12,000
  P11 website      2024-11-01 cardiology  4,000
  P10 website      2025-02-10 cardiology  10,000 - 4,000 refund in 2025-02, 2,000 advance in 2025-03
                                          (the 9,000 of 2025-07-05 is after the as-of date)    =  8,000
  P08 referral     2025-04-01 dentistry   5,000 + 30,000 advance in 2025-04, 20,000 in 2025-05  = 55,000
  P03 referral     2025-05-15 pediatrics  3,000
  P07 website      2025-05-20 dentistry   2,000
  P09 aggregator   2025-06-15 gynecology  3,500 ('ПроДокторов', mapped by the channel_map seed)
  (P06 never came: no cohort.)                                                   total 188,500

cohort_revenue ('all' slice), the last observed month is 2025-06:
  2023-09 (P05, size 1): months 0..21; revenue 8,000 at months 0, 3, 6, 9; cumulative 24,000 at 6 and
          32,000 from 9 on; months 1, 2, 10..21 are zero rows.
  2024-07 (P01): months 0..11; cumulative 10,000 / 20,000 (3) / 30,000 (6) / 35,000 (8) / 45,000 (9) /
          55,000 (11).
  2024-08 (P04 + P15, size 2): months 0..10, 5,000 in month 0, 2,500 per patient throughout.
  2025-02 (P10): month 0 = 10,000 - 4,000 = 6,000, month 1 = the 2,000 advance -> 8,000.
  2025-04 (P08): month 0 = 35,000 (the advance counts in its payment month), month 1 55,000, month 2 55,000.
  Grid rows: 22 + 13 + 12 + 11 + 10 + 8 + 5 + 3 + 2 + 1 = 87; last cumulative values sum to 188,500.
cohort_retention: 2024-07 (P01) is active in months 0, 3, 6, 8, 9, 11; 2024-08 is 1.0 in month 0 and 0 after.
Sliced: therapy 2024-08 has both P04 and P15 (size 2); by channel the 2024-08 cohort splits into
  context_ads (P04) and website (P15), size 1 each.

channel_ltv (6 months: first visit on or before 2025-01-01; 12 months: on or before 2024-07-01; window
[first visit, first visit + N months), a payment on the anniversary date falls outside):
  context_ads: 3 patients. 6m: P04 2,500; P05 16,000 (2023-09 + 2023-12; 2024-03-01 is the
      anniversary); P14 4,500 (2024-12-20 is the anniversary) -> 23,000 / 3 = 7,666.67.
      12m: P05 32,000, P14 9,000 (P04 is 11 months old) -> 20,500. 24m: nobody -> null.
      spend 10,000 + 5,000 = 15,000; CAC 15,000 / 3 = 5,000; LTV12/CAC 4.1.
  referral: 4 patients. 6m: P01 20,000 (2025-01-10 is the anniversary), P12 12,000 -> 16,000
      (P08 and P03 are too young); 12m: nobody (P01 is 11.7 months old) -> null; no spend -> CAC null.
  website: 4 patients. 6m: P11 4,000, P15 2,500 -> 3,250; P10 (4.7 months) and P07 left out.
  P09's channel (aggregator in the shipped seed): P09 only, too young for any LTV; spend 3,000
      (ПроДокторов) -> CAC 3,000.

kpi_monthly (2023-09 .. 2025-06, 22 months, all complete):
  2025-04: new 1 (P08), returning 1 (P01), 2 visits, revenue 45,000 = primary 5,000 (P08's first
      visit) + repeat 40,000 (P01 10,000 + P08's 30,000 advance); advance 30,000; share 0.8889;
      avg check 22,500.
  2025-02: new 1 (P10), revenue 6,000 all primary (the refund is of the primary visit's payment).
  2025-03: returning 1 (P01 on P02), revenue 7,000 = 5,000 + P10's 2,000 advance, all repeat.
  2025-05: new 2 (P03, P07), returning 1 (P08), revenue 25,000 = primary 5,000 + repeat 20,000,
      avg check 25,000 / 3 = 8,333.33.
  Churn (window 12 months): the only lapse is P05 (last visit 2024-06) in 2025-06. Base at the start
      of 2025-06 = persons with a visit in 2024-06..2025-05: P05, P14, P01, P04, P15, P12, P11, P10,
      P08, P03, P07 = 11 -> churn 1/11 = 0.0909, retention 0.9091. 2025-05: base 9, churn 0.
      2023-09: base 0 -> null rates; 2023-10: base 1 (P05).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from conftest import workspace_at

D = Decimal

# The marts under test and everything upstream of them (with their dbt tests and unit tests), built
# through the CLI once for the module. Selecting them keeps this module independent of other marts.
SELECT = ("+cohort_revenue", "+cohort_retention", "+channel_ltv", "+kpi_monthly", "fct_visits", "fct_payments")


@pytest.fixture(scope="module")
def clinic15(tmp_path_factory):
    """clinic15 loaded and its cohort, channel and KPI marts built as of 2025-07-01, once per module."""
    with workspace_at(tmp_path_factory.mktemp("clinic15_cohorts")) as w:
        w.invoke("load", str(w.copy_fixture("clinic15")))
        result = w.invoke("build", "--as-of", "2025-07-01", *(arg for model in SELECT for arg in ("--select", model)))
        assert "passed" in result.output
        yield w


# --- cohort_revenue -----------------------------------------------------------------------------------

def test_cohort_revenue_cells(clinic15):
    rows = {
        (r[0].isoformat()[:7], r[1]): r[2:]
        for r in clinic15.query(
            """select cohort_month, months_since_first, cohort_size, revenue, cumulative_revenue,
                      cumulative_revenue_per_patient
               from marts.cohort_revenue"""
        )
    }
    assert len(rows) == 87
    assert rows[("2023-09", 0)] == (1, D("8000.00"), D("8000.00"), D("8000.00"))
    assert rows[("2023-09", 1)] == (1, D("0.00"), D("8000.00"), D("8000.00"))  # zero month kept
    assert rows[("2023-09", 6)] == (1, D("8000.00"), D("24000.00"), D("24000.00"))
    assert rows[("2023-09", 21)] == (1, D("0.00"), D("32000.00"), D("32000.00"))
    assert ("2023-09", 22) not in rows  # 2025-07 is not observed as of 2025-07-01
    assert rows[("2024-07", 6)][2] == D("30000.00")
    assert rows[("2024-07", 8)][1:3] == (D("5000.00"), D("35000.00"))  # the visit on card P02
    assert rows[("2024-07", 11)][2] == D("55000.00")
    assert rows[("2024-08", 0)] == (2, D("5000.00"), D("5000.00"), D("2500.00"))
    assert rows[("2024-08", 10)] == (2, D("0.00"), D("5000.00"), D("2500.00"))
    assert rows[("2025-02", 0)][1] == D("6000.00")  # 10,000 paid, 4,000 refunded
    assert rows[("2025-02", 1)][1:3] == (D("2000.00"), D("8000.00"))  # advance without a visit
    assert rows[("2025-04", 0)][1] == D("35000.00")  # first visit 5,000 + advance 30,000
    assert rows[("2025-04", 2)][1:3] == (D("0.00"), D("55000.00"))
    assert rows[("2025-06", 0)] == (1, D("3500.00"), D("3500.00"), D("3500.00"))


def test_cohort_grid_is_complete_up_to_the_last_observed_month(clinic15):
    rows = clinic15.query(
        """select cohort_month, count(*), min(months_since_first), max(months_since_first),
                  max(activity_month), bool_and(is_complete_month)
           from marts.cohort_revenue group by cohort_month order by cohort_month"""
    )
    expected_last = {"2023-09": 21, "2024-06": 12, "2024-07": 11, "2024-08": 10, "2024-09": 9,
                     "2024-11": 7, "2025-02": 4, "2025-04": 2, "2025-05": 1, "2025-06": 0}
    assert {r[0].isoformat()[:7]: r[3] for r in rows} == expected_last
    for _cohort, count, first, last, last_month, complete in rows:
        assert (count, first) == (last + 1, 0)
        assert last_month == dt.date(2025, 6, 1)
        assert complete is True


def test_cohort_retention_cells(clinic15):
    rows = clinic15.query(
        """select months_since_first, cohort_size, active_patients, retention_rate
           from marts.cohort_retention where cohort_month = '2024-07-01' order by months_since_first"""
    )
    assert [r[0] for r in rows if r[2] == 1] == [0, 3, 6, 8, 9, 11]
    assert rows[3] == (3, 1, 1, D("1.0000")) and rows[4] == (4, 1, 0, D("0.0000"))
    assert clinic15.query(
        """select months_since_first, cohort_size, active_patients, retention_rate
           from marts.cohort_retention where cohort_month = '2024-08-01' and months_since_first in (0, 1)
           order by 1"""
    ) == [(0, 2, 2, D("1.0000")), (1, 2, 0, D("0.0000"))]
    # month 0 is 1.0 for every cohort, by definition
    assert clinic15.query(
        "select distinct retention_rate from marts.cohort_retention where months_since_first = 0"
    ) == [(D("1.0000"),)]


def test_cohort_slices(clinic15):
    sizes = {
        (r[0], r[1], r[2].isoformat()[:7]): r[3]
        for r in clinic15.query(
            """select slice_type, slice_value, cohort_month, cohort_size
               from marts.cohort_revenue_sliced where months_since_first = 0"""
        )
    }
    assert sizes[("first_specialty", "therapy", "2024-08")] == 2
    assert sizes[("acquisition_channel", "context_ads", "2024-08")] == 1
    assert sizes[("acquisition_channel", "website", "2024-08")] == 1
    assert sizes[("acquisition_channel", "referral", "2024-07")] == 1
    # every slice type partitions the same persons and the same money
    totals = clinic15.query(
        """select slice_type, sum(case when months_since_first = 0 then cohort_size end), sum(revenue)
           from marts.cohort_revenue_sliced group by slice_type order by slice_type"""
    )
    assert totals == [
        ("acquisition_channel", 12, D("188500.00")),
        ("all", 12, D("188500.00")),
        ("first_specialty", 12, D("188500.00")),
    ]
    # the contract models are the 'all' slice
    assert clinic15.scalar(
        """select count(*) from marts.cohort_revenue r
           join marts.cohort_revenue_sliced s
             on s.slice_type = 'all' and s.cohort_month = r.cohort_month
            and s.months_since_first = r.months_since_first and s.cumulative_revenue = r.cumulative_revenue"""
    ) == 87
    assert clinic15.scalar(
        """select count(*) from marts.cohort_retention_sliced
           where slice_type = 'first_specialty' and slice_value = 'dentistry'
             and cohort_month = '2024-07-01' and active_patients = 1"""
    ) == 6


# --- channel_ltv ----------------------------------------------------------------------------------------

def test_channel_ltv_rows(clinic15):
    rows = {
        r[0]: r[1:]
        for r in clinic15.query(
            """select channel, patients, patients_6m, ltv_6m, patients_12m, ltv_12m,
                      patients_24m, ltv_24m, spend, cac, ltv_12m_to_cac
               from marts.channel_ltv"""
        )
    }
    # P09 came from 'ПроДокторов': whatever channel the seed maps it to carries its spend
    p09_channel = clinic15.scalar("select acquisition_channel from marts.dim_patients where person_id = 'P09'")
    assert set(rows) == {"context_ads", "referral", "website", p09_channel}
    assert rows["context_ads"] == (3, 3, D("7666.67"), 2, D("20500.00"), 0, None, D("15000.00"), D("5000.00"), D("4.1000"))
    assert rows["referral"] == (4, 2, D("16000.00"), 0, None, 0, None, D("0.00"), None, None)
    # P10's first visit is 4.7 months old: not in ltv_6m (right-censoring)
    assert rows["website"] == (4, 2, D("3250.00"), 0, None, 0, None, D("0.00"), None, None)
    assert rows[p09_channel] == (1, 0, None, 0, None, 0, None, D("3000.00"), D("3000.00"), None)
    assert clinic15.scalar(
        "select count(*) from marts.channel_ltv where channel_label_en is null or channel_label_ru is null"
    ) == 0


# --- kpi_monthly ----------------------------------------------------------------------------------------

KPI_COLUMNS = """month, is_complete_month, new_patients, returning_patients, active_patients, completed_visits,
    revenue, primary_revenue, repeat_revenue, advance_revenue, repeat_revenue_share, avg_check,
    active_base_patients, churned_patients, churn_rate, retention_rate"""


def kpi(clinic15) -> dict[str, tuple]:
    return {r[0].isoformat()[:7]: r[1:] for r in clinic15.query(f"select {KPI_COLUMNS} from marts.kpi_monthly")}


def test_kpi_monthly_range(clinic15):
    months = sorted(kpi(clinic15))
    assert months[0] == "2023-09" and months[-1] == "2025-06" and len(months) == 22


def test_kpi_monthly_months(clinic15):
    rows = kpi(clinic15)
    assert rows["2025-04"] == (
        True, 1, 1, 2, 2, D("45000.00"), D("5000.00"), D("40000.00"), D("30000.00"), D("0.8889"),
        D("22500.00"), 8, 0, D("0.0000"), D("1.0000"),
    )
    assert rows["2025-02"][1:11] == (1, 0, 1, 1, D("6000.00"), D("6000.00"), D("0.00"), D("0.00"), D("0.0000"), D("6000.00"))
    assert rows["2025-03"][1:10] == (0, 1, 1, 1, D("7000.00"), D("0.00"), D("7000.00"), D("2000.00"), D("1.0000"))
    assert rows["2025-05"][1:11] == (2, 1, 3, 3, D("25000.00"), D("5000.00"), D("20000.00"), D("0.00"), D("0.8000"), D("8333.33"))
    # churn: P05 lapses in 2025-06, 12 months after the last visit in 2024-06
    assert rows["2025-06"][11:] == (11, 1, D("0.0909"), D("0.9091"))
    assert rows["2025-05"][11:] == (9, 0, D("0.0000"), D("1.0000"))
    assert rows["2023-09"][11:] == (0, 0, None, None)
    assert rows["2023-10"][1:] == (0, 0, 0, 0, D("0.00"), D("0.00"), D("0.00"), D("0.00"), None, None, 1, 0, D("0.0000"), D("1.0000"))
    assert sum(r[12] for r in rows.values()) == 1  # one churn in the whole history


# --- invariants ------------------------------------------------------------------------------------------

def test_one_row_per_grain(clinic15):
    for table, key in [
        ("cohort_revenue", "cohort_month, months_since_first"),
        ("cohort_retention", "cohort_month, months_since_first"),
        ("cohort_revenue_sliced", "slice_type, slice_value, cohort_month, months_since_first"),
        ("cohort_retention_sliced", "slice_type, slice_value, cohort_month, months_since_first"),
        ("channel_ltv", "channel"),
        ("kpi_monthly", "month"),
    ]:
        assert clinic15.scalar(
            f"select count(*) from (select {key} from marts.{table} group by {key} having count(*) > 1) dup"
        ) == 0, table


def test_last_cumulative_revenue_reconciles_with_persons_revenue(clinic15):
    last_cumulative = clinic15.scalar(
        """select sum(cumulative_revenue) from marts.cohort_revenue r
           where months_since_first = (select max(months_since_first) from marts.cohort_revenue x
                                       where x.cohort_month = r.cohort_month)"""
    )
    persons_with_visit = clinic15.scalar(
        """select sum(p.amount) from marts.fct_payments p
           where p.person_id in (select person_id from marts.fct_visits where is_completed)"""
    )
    assert last_cumulative == persons_with_visit == D("188500.00")


def test_revenue_is_primary_plus_repeat_and_reconciles(clinic15):
    assert clinic15.scalar(
        "select count(*) from marts.kpi_monthly where revenue <> primary_revenue + repeat_revenue"
    ) == 0
    assert clinic15.scalar("select sum(revenue) from marts.kpi_monthly") == clinic15.scalar(
        "select sum(amount) from marts.fct_payments"
    ) == D("188500.00")
    assert clinic15.scalar("select sum(new_patients) from marts.kpi_monthly") == 12
    assert clinic15.scalar(
        "select count(*) from marts.kpi_monthly where new_patients + returning_patients <> active_patients"
    ) == 0


def test_cumulative_revenue_falls_only_with_a_refund(clinic15):
    falls = clinic15.query(
        """with steps as (
               select cohort_month, months_since_first, activity_month, cumulative_revenue,
                      lag(cumulative_revenue) over (partition by cohort_month order by months_since_first) as previous
               from marts.cohort_revenue)
           select cohort_month, activity_month from steps
           where cumulative_revenue < previous
             and not exists (
                 select 1 from marts.fct_payments p
                 join marts.dim_patients d on d.person_id = p.person_id
                 where p.is_refund and d.cohort_month = steps.cohort_month
                   and p.paid_month = steps.activity_month)"""
    )
    assert falls == []
    # and a cumulative value never falls where the month's revenue is not negative
    assert clinic15.scalar(
        """select count(*) from (
               select revenue, cumulative_revenue,
                      lag(cumulative_revenue) over (partition by cohort_month order by months_since_first) as previous
               from marts.cohort_revenue) steps
           where cumulative_revenue < previous and revenue >= 0"""
    ) == 0

