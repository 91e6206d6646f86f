"""Core marts on clinic15 as of 2025-07-01: every figure below is worked out in fixtures/clinic15/README.md."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

D = Decimal


def test_persons_merge_duplicate_cards_but_not_a_shared_family_phone(clinic15):
    rows = clinic15.query("select person_id, patient_ids, cards from marts.dim_patients order by person_id")
    assert [r[0] for r in rows] == ["P01", "P03", "P04", "P05", "P06", "P07", "P08", "P09", "P10", "P11", "P12", "P14", "P15"]
    cards = {r[0]: (r[1], r[2]) for r in rows}
    assert cards["P01"] == ("P01,P02", 2)  # same phone typed differently + same birth date
    assert cards["P12"] == ("P12,P13", 2)  # same e-mail (other case) + same name, P13 has no phone
    assert cards["P03"] == ("P03", 1)  # Anna's son: her phone, his own birth date


def test_dim_patients_facts(clinic15):
    rows = {r[0]: r[1:] for r in clinic15.query(
        """select person_id, completed_visits, total_revenue, lifecycle_status, days_since_last_visit,
                  tenure_days, avg_check, acquisition_channel, can_call, open_plan_amount, next_scheduled_at
           from marts.dim_patients"""
    )}
    # Anna: 5 visits on P01 + 1 on P02, 50,000 + 5,000; 2024-07-10 .. 2025-06-20 = 345 days; 55,000 / 6
    assert rows["P01"] == (6, D("55000.00"), "active", 11, 345, D("9166.67"), "referral", True, D("0.00"), None)
    assert rows["P03"][2] == "new"  # first visit 47 days before the as-of date
    assert rows["P04"][:4] == (1, D("2500.00"), "sleeping", 330)
    assert rows["P05"][:5] == (4, D("32000.00"), "lost", 395, 274)
    assert rows["P06"][:3] == (0, D("0.00"), "no_show_first")
    assert rows["P07"][2] == "declined_plan"
    # P08: 5,000 + 30,000 advance + 20,000; plan in progress; visit booked 2025-07-10
    assert rows["P08"][1:3] == (D("55000.00"), "in_treatment")
    assert rows["P08"][8:] == (D("80000.00"), dt.datetime(2025, 7, 10, 14, 0))
    assert rows["P09"][2] == "new"
    # P10: 10,000 - 4,000 refund + 2,000 advance; the 9,000 of 2025-07-05 is after the as-of date.
    # The 2025-07-05 visit counts as booked; the 2025-07-20 one was booked after the as-of date.
    assert rows["P10"][:4] == (1, D("8000.00"), "in_treatment", 141)
    assert rows["P10"][9] == dt.datetime(2025, 7, 5, 10, 30)
    assert rows["P11"][2:3] == ("deceased",) and rows["P11"][7] is False
    assert rows["P12"][:4] == (2, D("12000.00"), "active", 167)
    assert rows["P14"][2:4] == ("sleeping", 193) and rows["P14"][7] is False  # do_not_call
    assert rows["P15"][:4] == (1, D("2500.00"), "sleeping", 330)


def test_fct_visits_sequence_and_revenue(clinic15):
    rows = clinic15.query(
        """select visit_id, visit_number, is_primary, is_primary_in_specialty, days_since_prev_visit, revenue
           from marts.fct_visits where person_id = 'P01' order by visit_at"""
    )
    assert rows == [
        ("V0101", 1, True, True, None, D("10000.00")),
        ("V0102", 2, False, False, 92, D("10000.00")),
        ("V0103", 3, False, True, 92, D("10000.00")),   # first gynecology visit: cross-sell
        ("V0201", 4, False, False, 50, D("5000.00")),    # on the duplicate card P02
        ("V0104", 5, False, True, 40, D("10000.00")),
        ("V0106", None, False, False, None, D("0.00")),  # cancelled
        ("V0105", 6, False, False, 71, D("10000.00")),
    ]
    assert clinic15.query("select status, is_future from marts.fct_visits where visit_id = 'V1002'") == [("scheduled", True)]
    assert clinic15.query("select count(*) from marts.fct_visits where visit_id = 'V1003'") == [(0,)]
    # P10's visit: 10,000 paid, 4,000 refunded
    assert clinic15.scalar("select revenue from marts.fct_visits where visit_id = 'V1001'") == D("6000.00")


def test_net_revenue_reconciles_from_raw_to_marts(clinic15):
    raw = clinic15.scalar("select sum(amount) from raw.payments where paid_at < '2025-07-01'")
    assert raw == D("188500.00")
    assert clinic15.scalar("select sum(amount) from marts.fct_payments") == raw
    assert clinic15.scalar("select sum(total_revenue) from marts.dim_patients") == raw
    # 12 persons with a paid first visit; P10's first visit has two payments (10,000 and the -4,000 refund)
    assert clinic15.scalar("select count(*) from marts.fct_payments where is_primary_visit_payment") == 13


def test_one_row_per_grain(clinic15):
    for table, key in [("fct_visits", "visit_id"), ("fct_payments", "payment_id"), ("dim_patients", "person_id")]:
        assert clinic15.scalar(f"select count(*) - count(distinct {key}) from marts.{table}") == 0


def test_the_dbt_unit_tests_ran_and_passed(clinic15):
    import re

    passed = re.search(r"(\d+) unit_test pass", clinic15.build_output)
    assert passed and int(passed.group(1)) >= 2, clinic15.build_output
    assert "unit_test fail" not in clinic15.build_output and "unit_test error" not in clinic15.build_output


def test_daily_build_leaves_out_only_unit_tests_and_deep_tests(clinic15):
    import json

    from patientbase.build import dbt_args
    from patientbase.config import load_config

    manifest = json.loads((clinic15.root / ".patientbase" / "target" / "manifest.json").read_text())
    tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    staging = [t for t in tests if t["original_file_path"].startswith("models/staging/")]
    marts = [t for t in tests if t["original_file_path"].startswith("models/marts/")]
    deep = [t for t in tests if "deep" in t["tags"]]
    # every staging test re-checks the loader's guarantees; no mart test is skipped by the daily build
    assert len(staging) >= 30 and all("deep" in t["tags"] for t in staging)
    assert len(marts) >= 100 and not any("deep" in t["tags"] for t in marts)
    outside_staging = {t["attached_node"] for t in deep if t not in staging}
    assert outside_staging == {"model.patient_base.int_persons_rfm_monthly"}
    cfg = load_config(warehouse=str(clinic15.root / "patientbase.duckdb"))
    daily, full = dbt_args(cfg, "build"), dbt_args(cfg, "build", all_tests=True)
    assert daily[-4:] == ["--exclude-resource-type", "unit_test", "--exclude", "tag:deep"]
    assert "--exclude" not in full and "--exclude-resource-type" not in full
    # the fixture's build ran with --all-tests: the deep tests ran and passed there
    import re

    passed = int(re.search(r"(\d+) test pass", clinic15.build_output).group(1))
    assert passed >= len(tests) - 5, clinic15.build_output  # a few warn-severity tests may warn instead
