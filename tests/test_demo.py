"""Tests of the synthetic clinic (patientbase.demo): format, determinism, integrity and realism.

The realism checks use bands around the shares documented in docs/demo.md, wide enough for a
3,000-patient clinic and narrow enough to catch a broken stream (a share off by a factor of two).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import time
from pathlib import Path

import duckdb
import pytest
from patientbase.demo import DEMO_TODAY, TABLE_COLUMNS, generate

TODAY = DEMO_TODAY
START = TODAY.replace(year=TODAY.year - 3)
SEED_CHANNEL_MAP = Path(__file__).resolve().parents[1] / "seeds" / "channel_map.csv"
SPECIALTIES = {"dentistry", "gynecology", "cardiology", "therapy", "pediatrics", "ophthalmology",
               "dermatology", "endocrinology"}
CATEGORIES = {"consultation", "diagnostics", "hygiene", "treatment", "checkup", "vaccination", "surgery",
              "chronic_care"}


# -- helpers ------------------------------------------------------------------------------------------


def connect(out: Path) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with one all-text view per CSV (what the files say, not what a parser guesses)."""
    con = duckdb.connect()
    for table in TABLE_COLUMNS:
        path = str(out / f"{table}.csv").replace("'", "''")
        con.execute(f"create view {table} as select * from read_csv('{path}', header = true, delim = ',', "
                    f"quote = '\"', escape = '\"', all_varchar = true)")
    con.execute(f"create table channel_map as select * from read_csv('{SEED_CHANNEL_MAP}', header = true, "
                f"all_varchar = true)")
    # Phone digits as the loader's libphonenumber would read them, for the formats the demo writes.
    con.execute("""
        create view cards as
        select *,
               case
                   when length(d) = 10 and d[1] in ('9', '4') then d
                   when length(d) = 11 and d[1] in ('7', '8') and d[2] in ('9', '4') then d[2:]
               end as phone10
        from (select *, regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g') as d from patients)
    """)
    return con


def one(con, sql: str):
    return con.execute(sql).fetchall()[0][0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    messages: list[str] = []
    counts = generate(out, patients=3000, seed=42, progress=messages.append)
    return out, counts, messages


@pytest.fixture(scope="module")
def con(demo):
    return connect(demo[0])


# -- files and format ------------------------------------------------------------------------------------


def test_returned_counts_are_the_row_counts(demo, con):
    out, counts, _ = demo
    # + the past call lists' arms (patientbase's own table, issue #13)
    assert list(counts) == list(TABLE_COLUMNS) + ["call_assignments"]
    for table, n in counts.items():
        source = table if table in TABLE_COLUMNS else f"read_csv('{out / (table + '.csv')}', header = true)"
        assert one(con, f"select count(*) from {source}") == n, table
    assert counts["patients"] == 3000
    assert all(n > 0 for n in counts.values())


def test_headers_are_exactly_the_contract_columns(demo):
    out, _, _ = demo
    for table, columns in TABLE_COLUMNS.items():
        header = (out / f"{table}.csv").read_text(encoding="utf-8").split("\n", 1)[0]
        assert header == ",".join(columns), table


def test_contract_columns_match_the_loaders_schema():
    schema = pytest.importorskip("patientbase.schema")
    for table, columns in TABLE_COLUMNS.items():
        # service_line_id is optional in an export: the loader makes it when the export has none
        loaded = [c for c in schema.TABLES[table].column_names if c != "service_line_id"]
        assert loaded == columns, table
    assert schema.TABLES["visit_services"].key == ("service_line_id",)


def test_only_final_files_are_left(demo):
    out, _, _ = demo
    # + the past call lists' arms (patientbase's own table, issue #13)
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{t}.csv" for t in TABLE_COLUMNS] + ["call_assignments.csv"])


def test_progress_is_reported_per_stage(demo):
    _, _, messages = demo
    assert len(messages) >= 5
    assert all(isinstance(m, str) and m for m in messages)


def test_value_formats(demo, con):
    out, _, _ = demo
    ts = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
    date = r"\d{4}-\d{2}-\d{2}"
    money = r"-?\d+\.\d{2}"
    boolean = r"true|false"
    checks = {
        "patients": {"patient_id": r"1\d{5,}", "birth_date": date, "sex": "F|M", "created_at": ts,
                     "do_not_call": boolean, "do_not_message": boolean, "is_deceased": boolean,
                     "loyalty_member_since": date, "referred_by_patient_id": r"\d+", "branch_id": r"B\d"},
        "visits": {"visit_id": r"V\d{8}", "patient_id": r"\d+", "scheduled_at": ts, "booked_at": ts,
                   "doctor_id": r"D\d{3}", "branch_id": r"B\d"},
        "visit_services": {"visit_id": r"V\d{8}", "service_code": r"S\d{4}", "quantity": r"[1-9]\d*",
                           "amount": money},
        "payments": {"payment_id": r"PAY\d{8}", "visit_id": r"V\d{8}", "paid_at": ts, "amount": money},
        "treatment_plans": {"plan_id": r"TP\d{6}", "created_at": ts, "status_changed_at": ts,
                            "total_amount": money, "doctor_id": r"D\d{3}"},
        "calls": {"call_id": r"C\d{7}", "called_at": ts, "duration_s": r"\d+", "operator_id": "OP[1-3]"},
        "marketing_spend": {"month": r"\d{4}-\d{2}-01", "amount": money},
    }
    for table, columns in checks.items():
        for column, pattern in columns.items():
            bad = one(con, f"select count(*) from {table} where {column} is not null "
                           f"and not regexp_full_match({column}, '{pattern}')")
            assert bad == 0, f"{table}.{column} has values not matching {pattern}"
    # Empty field = null: the writer never emits a quoted empty string.
    for table in TABLE_COLUMNS:
        text = (out / f"{table}.csv").read_text(encoding="utf-8")
        assert ',""' not in text and '"",' not in text, table
    # Booleans are written out in full (empty would also mean false, but the demo is explicit).
    assert one(con, "select count(*) from patients where do_not_call is null or is_deceased is null") == 0


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert generate(a, patients=800, seed=7) == generate(b, patients=800, seed=7)
    generate(c, patients=800, seed=8)
    for table in TABLE_COLUMNS:
        assert sha256(a / f"{table}.csv") == sha256(b / f"{table}.csv"), table
    changed = [t for t in TABLE_COLUMNS if sha256(a / f"{t}.csv") != sha256(c / f"{t}.csv")]
    assert {"patients", "visits", "visit_services", "payments", "calls"} <= set(changed)


def test_files_are_written_atomically(tmp_path):
    out = tmp_path / "out"
    (out / "visits.csv").mkdir(parents=True)          # the rename of visits.csv.tmp must fail
    with pytest.raises(OSError):
        generate(out, patients=200, seed=1)
    names = {p.name for p in out.iterdir()}
    assert not any(n.endswith(".tmp") for n in names), names
    # patients.csv was finished before the failure and is complete
    con = duckdb.connect()
    assert one(con, f"select count(*) from read_csv('{out / 'patients.csv'}', header = true, all_varchar = true)") == 200


# -- integrity -------------------------------------------------------------------------------------------


def test_keys_are_unique(con):
    for table, key in [("patients", "patient_id"), ("visits", "visit_id"), ("payments", "payment_id"),
                       ("treatment_plans", "plan_id"), ("calls", "call_id")]:
        assert one(con, f"select count(*) - count(distinct {key}) from {table}") == 0, table
    assert one(con, "select count(*) - count(distinct (month, channel)) from marketing_spend") == 0


def test_every_foreign_key_resolves(con):
    for table in ["visits", "payments", "treatment_plans", "calls"]:
        orphans = one(con, f"select count(*) from {table} where patient_id not in (select patient_id from patients)")
        assert orphans == 0, table
    for table in ["payments", "visit_services"]:
        orphans = one(con, f"select count(*) from {table} where visit_id is not null "
                           f"and visit_id not in (select visit_id from visits)")
        assert orphans == 0, table
    assert one(con, "select count(*) from patients where referred_by_patient_id is not null "
                    "and referred_by_patient_id not in (select patient_id from patients)") == 0
    # a payment linked to a visit is paid by that visit's card
    assert one(con, "select count(*) from payments p join visits v using (visit_id) where p.patient_id <> v.patient_id") == 0


def test_files_are_sorted_by_their_ids(demo):
    out, _, _ = demo
    for table in ["patients", "visits", "payments", "treatment_plans", "calls"]:
        with open(out / f"{table}.csv", encoding="utf-8", newline="") as f:
            ids = [row[0] for row in csv.reader(f)][1:]
        assert ids == sorted(ids), table
    with open(out / "visit_services.csv", encoding="utf-8", newline="") as f:
        ids = [row[0] for row in csv.reader(f)][1:]
    assert ids == sorted(ids)


# -- visits ----------------------------------------------------------------------------------------------


def test_visit_statuses_dates_and_shares(con):
    statuses = {r[0] for r in con.execute("select distinct status from visits").fetchall()}
    assert statuses == {"completed", "no_show", "cancelled", "scheduled"}
    bad_future = one(con, f"""select count(*) from visits where status = 'scheduled' and
        (cast(scheduled_at as timestamp) < date '{TODAY}' or cast(scheduled_at as timestamp) >= date '{TODAY}' + 60)""")
    assert bad_future == 0
    bad_past = one(con, f"""select count(*) from visits where status <> 'scheduled' and
        (cast(scheduled_at as timestamp) >= date '{TODAY}' or cast(scheduled_at as timestamp) < date '{START}')""")
    assert bad_past == 0
    no_show, cancelled = con.execute("""select avg(case when status = 'no_show' then 1 else 0 end),
                                               avg(case when status = 'cancelled' then 1 else 0 end)
                                        from visits where status <> 'scheduled'""").fetchall()[0]
    assert 0.04 <= no_show <= 0.08
    assert 0.06 <= cancelled <= 0.10
    assert one(con, "select count(*) from visits where cast(booked_at as timestamp) > cast(scheduled_at as timestamp)") == 0
    assert one(con, f"select count(*) from visits where cast(booked_at as timestamp) >= date '{TODAY}'") == 0
    # some recent no-shows were never rebooked
    assert one(con, f"""select count(*) from visits v where status = 'no_show'
        and cast(scheduled_at as timestamp) >= date '{TODAY}' - 90
        and not exists (select 1 from visits w where w.patient_id = v.patient_id and w.scheduled_at > v.scheduled_at)""") >= 5


def test_about_five_percent_of_active_patients_have_a_scheduled_visit(con):
    share = one(con, f"""
        with per_card as (
            select patient_id,
                   max(case when status = 'completed' then cast(scheduled_at as timestamp) end) as last_done,
                   count(*) filter (where status = 'scheduled') as scheduled
            from visits group by patient_id)
        select count(*) filter (where scheduled > 0) / count(*) filter (where last_done >= date '{TODAY}' - 365)
        from per_card""")
    assert 0.025 <= share <= 0.07


def test_clinic_hours_weekdays_and_seasons(con):
    assert one(con, """select count(*) from visits where minute(cast(scheduled_at as timestamp)) % 15 <> 0
                       or second(cast(scheduled_at as timestamp)) <> 0
                       or hour(cast(scheduled_at as timestamp)) not between 8 and 19""") == 0
    sunday, weekday = con.execute("""
        with d as (select dayofweek(cast(scheduled_at as timestamp)) as dow, count(*) as n from visits group by 1)
        select max(n) filter (where dow = 0), avg(n) filter (where dow between 1 and 5) from d""").fetchall()[0]
    assert sunday < 0.75 * weekday
    summer, autumn = con.execute("""
        select count(*) filter (where month(t) in (7, 8)) / 62.0, count(*) filter (where month(t) in (10, 11)) / 61.0
        from (select cast(scheduled_at as timestamp) as t from visits where status = 'completed')""").fetchall()[0]
    assert summer < 0.9 * autumn
    # more new patients in the last year than in the first (mild growth)
    first, last = con.execute(f"""
        select count(*) filter (where c < date '{START}' + 365), count(*) filter (where c >= date '{TODAY}' - 365)
        from (select cast(created_at as timestamp) as c from patients)""").fetchall()[0]
    assert last > 1.1 * first


def test_doctors_branches_and_specialties(con):
    rows = con.execute("select doctor_id, count(distinct specialty), count(distinct branch_id) from visits group by 1").fetchall()
    assert 20 <= len(rows) <= 40
    assert all(n_spec == 1 and n_branch == 1 for _, n_spec, n_branch in rows)
    assert {r[0] for r in con.execute("select distinct branch_id from visits").fetchall()} == {"B1", "B2", "B3"}
    assert {r[0] for r in con.execute("select distinct specialty from visits").fetchall()} == SPECIALTIES


def test_children_see_the_pediatrician_and_adults_do_not(con):
    ages = con.execute("""
        select date_diff('year', cast(p.birth_date as date), cast(v.scheduled_at as date)) as age
        from visits v join patients p using (patient_id) where v.specialty = 'pediatrics' and p.birth_date is not null
    """).fetchall()
    assert len(ages) > 50
    assert sum(age <= 18 for (age,) in ages) / len(ages) >= 0.97
    assert one(con, """select count(*) from visits v join patients p using (patient_id)
                       where v.specialty = 'gynecology' and p.sex = 'M'""") == 0


# -- services and money ----------------------------------------------------------------------------------


def test_services_belong_to_completed_visits_only(con):
    assert one(con, """select count(*) from visit_services s join visits v using (visit_id)
                       where v.status <> 'completed'""") == 0
    n_min, n_max, missing = con.execute("""
        with n as (select v.visit_id, count(s.visit_id) as n from visits v left join visit_services s using (visit_id)
                   where v.status = 'completed' group by 1)
        select min(n), max(n), count(*) filter (where n = 0) from n""").fetchall()[0]
    assert (n_min, n_max, missing) == (1, 3, 0)
    categories = {r[0] for r in con.execute("select distinct service_category from visit_services").fetchall()}
    assert categories == CATEGORIES
    assert 35 <= one(con, "select count(distinct service_code) from visit_services") <= 70
    assert one(con, "select count(distinct service_code) - count(distinct (service_code, service_name)) from visit_services") == 0
    assert one(con, "select avg(case when quantity = '1' then 1 else 0 end) from visit_services") >= 0.85
    assert one(con, "select count(*) from visit_services where cast(amount as decimal(18,2)) <= 0") == 0
    names = [r[0] for r in con.execute("select distinct service_name from visit_services").fetchall()]
    assert "Профессиональная гигиена полости рта" in names and "Эхокардиография" in names


def test_payments_match_bills_with_splits_advances_and_refunds(con):
    net, refunds, advances = con.execute("""
        select sum(cast(amount as decimal(18,2))), count(*) filter (where cast(amount as decimal(18,2)) < 0),
               count(*) filter (where visit_id is null) from payments""").fetchall()[0]
    assert net > 0
    assert refunds >= 10 and advances >= 10
    assert {r[0] for r in con.execute("select distinct method from payments").fetchall()} == {"card", "cash", "transfer", "insurance"}
    assert one(con, f"select count(*) from payments where cast(paid_at as timestamp) >= date '{TODAY}'") == 0
    # a refund returns (part of) an earlier payment of the same card for the same visit
    bad_refunds = one(con, """
        select count(*) from payments r where cast(r.amount as decimal(18,2)) < 0 and not exists (
            select 1 from payments p where p.visit_id = r.visit_id and p.patient_id = r.patient_id
              and p.paid_at < r.paid_at and cast(p.amount as decimal(18,2)) >= -cast(r.amount as decimal(18,2)))""")
    assert bad_refunds == 0
    # nobody pays more for a visit than its bill; most completed visits are paid in full
    over, full_share = con.execute("""
        with bill as (select visit_id, sum(cast(amount as decimal(18,2))) as billed from visit_services group by 1),
             paid as (select visit_id, sum(cast(amount as decimal(18,2))) filter (where cast(amount as decimal(18,2)) > 0) as paid
                      from payments where visit_id is not null group by 1)
        select count(*) filter (where paid > billed), avg(case when paid = billed then 1 else 0 end)
        from bill left join paid using (visit_id)""").fetchall()[0]
    assert over == 0
    assert 0.8 <= full_share <= 0.99
    # advances are made by treatment-plan patients
    assert one(con, """select count(*) from payments where visit_id is null
                       and patient_id not in (select patient_id from treatment_plans)""") == 0


def test_treatment_plans(con):
    statuses = {r[0] for r in con.execute("select distinct status from treatment_plans").fetchall()}
    assert statuses == {"proposed", "accepted", "in_progress", "completed", "declined", "cancelled"}
    assert one(con, """select count(*) from treatment_plans
                       where (status = 'proposed') <> (status_changed_at is null)""") == 0
    assert one(con, "select count(*) from treatment_plans where status_changed_at <= created_at") == 0
    in_range = one(con, """select avg(case when cast(total_amount as decimal(18,2)) between 20000 and 450000 then 1 else 0 end)
                           from treatment_plans""")
    assert in_range >= 0.9
    # a plan is drawn up at a completed visit of the same card, same doctor
    assert one(con, """select count(*) from treatment_plans t where not exists (
        select 1 from visits v where v.patient_id = t.patient_id and v.doctor_id = t.doctor_id
          and v.status = 'completed' and v.scheduled_at <= t.created_at)""") == 0
    # some proposals are recent (the last 30 days): the call centre follows them up
    assert one(con, f"""select count(*) from treatment_plans where status in ('proposed', 'declined')
                        and cast(created_at as timestamp) >= date '{TODAY}' - 30""") >= 5


def test_calls(con, demo):
    _, counts, _ = demo
    assert 0.15 <= counts["calls"] / counts["patients"] <= 0.25
    shares = dict(con.execute("select result, count(*) / sum(count(*)) over () from calls group by 1").fetchall())
    targets = {"booked": 0.25, "callback": 0.15, "no_answer": 0.35, "refused": 0.15, "wrong_number": 0.10}
    for result, target in targets.items():
        assert abs(shares[result] - target) <= 0.07, result
    assert one(con, """select count(*) from calls where (result in ('no_answer', 'wrong_number')) <> (duration_s = '0')
                       or cast(duration_s as int) > 300
                       or (cast(duration_s as int) > 0 and cast(duration_s as int) < 20)""") == 0
    actions = {r[0] for r in con.execute("select distinct action_code from calls").fetchall()}
    assert actions == {"recall_due", "reactivation", "plan_follow_up", "no_show_recovery", "welcome_second_visit"}
    assert one(con, f"""select count(*) from calls where cast(called_at as timestamp) >= date '{TODAY}'
                        or cast(called_at as timestamp) < date '{TODAY}' - 380""") == 0
    assert one(con, """select count(*) from calls c join patients p using (patient_id)
                       where p.do_not_call = 'true' or p.is_deceased = 'true'""") == 0
    followed = one(con, """
        select avg(case when exists (
            select 1 from visits v join patients p using (patient_id)
            join patients q on q.patient_id = c.patient_id
            where (v.patient_id = c.patient_id or (p.last_name = q.last_name and p.first_name = q.first_name
                                                   and p.birth_date = q.birth_date))
              and cast(v.scheduled_at as timestamp) > cast(c.called_at as timestamp)
              and cast(v.scheduled_at as timestamp) <= cast(c.called_at as timestamp) + interval 31 day)
            then 1 else 0 end)
        from calls c where result = 'booked'""")
    assert followed >= 0.7
    assert one(con, "select count(*) from calls where comment is not null") > 0


def test_marketing_spend_is_consistent_with_new_patients(con):
    months = one(con, "select count(distinct month) from marketing_spend")
    assert months == 36
    assert one(con, "select count(*) from marketing_spend where channel not in (select source_channel from patients where source_channel is not null)") == 0
    # cost per new patient of each paid channel (variants of the same canonical channel count towards it)
    cac = con.execute("""
        with spend as (select channel, sum(cast(amount as decimal(18,2))) as spend from marketing_spend group by 1),
             canon as (select s.channel, m.channel as canonical from spend s join channel_map m on m.source_channel = s.channel),
             newp as (select canon.channel, count(*) as n from patients p
                      join channel_map m on lower(m.source_channel) = lower(p.source_channel)
                      join canon on canon.canonical = m.channel
                      where canon.channel = p.source_channel or canon.canonical = 'context_ads'
                      group by 1)
        select channel, spend / n from spend join newp using (channel)""").fetchall()
    assert len(cac) == 6
    for channel, value in cac:
        assert 1500 <= value <= 6000, channel


# -- patients: people and the flaws of a real MIS -------------------------------------------------------


def test_personal_data_shares(con):
    row = con.execute("""
        select avg(case when phone is null then 1 else 0 end), avg(case when email is not null then 1 else 0 end),
               avg(case when do_not_call = 'true' then 1 else 0 end), avg(case when do_not_message = 'true' then 1 else 0 end),
               avg(case when is_deceased = 'true' then 1 else 0 end), avg(case when sex is null then 1 else 0 end),
               avg(case when birth_date is null then 1 else 0 end), avg(case when middle_name is not null then 1 else 0 end),
               avg(case when loyalty_member_since is not null then 1 else 0 end),
               count(*) filter (where do_not_call = 'true' and do_not_message = 'true')
        from patients""").fetchall()[0]
    empty, email, dnc, dnm, dead, no_sex, no_birth, middle, loyal, both = row
    assert 0.03 <= empty <= 0.05
    assert 0.35 <= email <= 0.45
    assert 0.035 <= dnc <= 0.065 and 0.055 <= dnm <= 0.085 and both > 20
    assert 0.002 <= dead <= 0.01
    assert 0.01 <= no_sex <= 0.03 and 0.015 <= no_birth <= 0.045
    assert middle >= 0.9
    assert 0.05 <= loyal <= 0.15
    emails = [r[0] for r in con.execute("select email from patients where email is not null").fetchall()]
    assert any(e != e.lower() for e in emails) and all("@" in e for e in emails)


def test_phones_come_in_many_formats_with_junk(con):
    phones = [r[0] for r in con.execute("select phone from patients where phone is not null").fetchall()]
    shapes = {re.sub(r"\d", "9", p) for p in phones}
    # '+7 (912) 345-67-89', '89123456789', '8-912-345-67-89', '9123456789', '+79123456789', ...
    for shape in ["+9 (999) 999-99-99", "99999999999", "9-999-999-99-99", "9999999999", "+99999999999",
                  "9 999 999 99 99", "9 (999) 999 99 99"]:
        assert shape in shapes, shape
    assert any(p.startswith("8 (495)") or p.startswith("8 (499)") for p in phones)  # landlines
    invalid = one(con, "select avg(case when phone is not null and phone10 is null then 1 else 0 end) from cards")
    assert 0.02 <= invalid <= 0.045


def test_phones_are_mostly_valid_for_libphonenumber(con):
    phones_mod = pytest.importorskip("patientbase.phones")
    phones = [r[0] for r in con.execute("select distinct phone from patients").fetchall()]
    status = [phones_mod.normalise(p)[1] for p in phones]
    assert status.count("valid") / len(status) >= 0.9
    # our simple reading of the demo's formats agrees with libphonenumber
    for phone in phones[:300]:
        e164, st = phones_mod.normalise(phone)
        digits = re.sub(r"\D", "", phone or "")
        ours = digits[-10:] if (len(digits) == 10 and digits[0] in "94") or (
            len(digits) == 11 and digits[0] in "78" and digits[1] in "94") else None
        assert (st == "valid") == (ours is not None), phone
        if ours:
            assert e164 == "+7" + ours


def test_duplicate_cards_and_families(con):
    n = one(con, "select count(*) from patients")
    # same person: same phone and birth date (and name), or same e-mail (any case) and name
    by_phone = con.execute("""
        select count(*) - count(distinct (phone10, birth_date)), count(distinct (phone10, birth_date, last_name, first_name))
               - count(distinct (phone10, birth_date))
        from cards where phone10 is not null and birth_date is not null""").fetchall()[0]
    by_email = one(con, """select count(*) - count(distinct (lower(email), last_name, first_name)) from patients
                           where email is not null""")
    duplicates = by_phone[0] + by_email
    assert by_phone[1] == 0                               # a phone + birth date match is always the same name
    assert 0.01 * n <= duplicates <= 0.03 * n
    assert by_email >= 3
    # a duplicate card is created later than the first card, and both cards are used
    later, used = con.execute("""
        with pairs as (
            select a.patient_id as first_id, b.patient_id as dup_id, a.created_at as a_created, b.created_at as b_created
            from cards a join cards b on a.phone10 = b.phone10 and a.birth_date = b.birth_date and a.patient_id < b.patient_id)
        select avg(case when b_created > a_created then 1 else 0 end),
               avg(case when exists (select 1 from visits v where v.patient_id = dup_id) then 1 else 0 end)
        from pairs""").fetchall()[0]
    assert later == 1 and used >= 0.6
    # families: a phone shared by 2-4 cards with different birth dates (never merged)
    family_cards = one(con, """
        with g as (select phone10, count(*) as cards, count(distinct birth_date) as births from cards
                   where phone10 is not null group by 1)
        select sum(cards) from g where cards between 2 and 4 and births = cards""")
    assert 0.03 * n <= family_cards <= 0.08 * n
    namesakes = one(con, """
        with g as (select phone10, count(*) as cards, count(distinct birth_date) as births,
                          count(distinct first_name) as names
                   from cards where phone10 is not null group by 1)
        select count(*) from g where cards between 2 and 4 and births = cards and names < cards""")
    assert namesakes == 0


def test_cards_are_created_at_the_first_booking(con):
    late = one(con, """
        select count(*) from patients p join (
            select patient_id, min(cast(booked_at as timestamp)) as first_booked from visits group by 1) b using (patient_id)
        where cast(p.created_at as timestamp) > b.first_booked""")
    assert late == 0
    # ... shortly before it: minutes, not days (the card is opened when the first appointment is made)
    gap_hours = one(con, """
        select quantile_cont(date_diff('minute', cast(p.created_at as timestamp), b.first_booked), 0.9) / 60.0
        from patients p join (select patient_id, min(cast(booked_at as timestamp)) as first_booked
                              from visits group by 1) b using (patient_id)""")
    assert gap_hours < 1


def test_the_deceased_stopped_coming(con):
    recent = one(con, f"""select count(*) from visits v join patients p using (patient_id)
                          where p.is_deceased = 'true' and cast(v.scheduled_at as timestamp) >= date '{TODAY}' - 60""")
    assert recent == 0
    ages = [r[0] for r in con.execute(f"""select date_diff('year', cast(birth_date as date), date '{TODAY}')
                                          from patients where is_deceased = 'true' and birth_date is not null""").fetchall()]
    assert ages and min(ages) >= 60


def test_names_agree_with_sex(con):
    rows = con.execute("select sex, last_name, middle_name from patients where sex is not null").fetchall()
    male_surname = re.compile(r"(ов|ев|ёв|ин|ский)$")
    for sex, last, middle in rows:
        if sex == "F":
            assert not male_surname.search(last), last
            assert middle is None or middle.endswith("на"), middle
        else:
            assert not last.endswith(("ова", "ева", "ёва", "ина", "ская")), last
            assert middle is None or middle.endswith("ич"), middle


def test_referrals_point_to_earlier_patients(con):
    later = one(con, """select count(*) from patients p join patients r on r.patient_id = p.referred_by_patient_id
                        where r.created_at >= p.created_at""")
    assert later == 0
    share = one(con, """
        select avg(case when referred_by_patient_id is not null then 1 else 0 end)
        from patients p join channel_map m on lower(m.source_channel) = lower(p.source_channel)
        where m.channel = 'referral'""")
    assert 0.15 <= share <= 0.35
    assert one(con, """select count(*) from patients p join channel_map m on lower(m.source_channel) = lower(p.source_channel)
                       where p.referred_by_patient_id is not null and m.channel <> 'referral'""") == 0


def test_every_demo_channel_is_in_the_seed(con):
    unmapped = con.execute("""select distinct source_channel from patients where source_channel is not null
                              and lower(source_channel) not in (select lower(source_channel) from channel_map)""").fetchall()
    assert unmapped == []
    # the seed maps each name once (the marts join on lower(name))
    assert one(con, "select count(*) - count(distinct lower(trim(source_channel))) from channel_map") == 0


def test_referral_patients_are_worth_more_than_context_ads_patients(tmp_path):
    """Mean net payments in the first 12 months after the card was created, cards old enough to have them."""
    generate(tmp_path, patients=20000, seed=3)
    con = connect(tmp_path)
    ltv = dict(con.execute(f"""
        with cards as (
            select p.patient_id, m.channel, cast(p.created_at as timestamp) as created
            from patients p join channel_map m on lower(m.source_channel) = lower(p.source_channel)
            where cast(p.created_at as timestamp) < date '{TODAY}' - 365),
        value as (
            select c.patient_id, c.channel,
                   coalesce(sum(cast(y.amount as decimal(18,2))) filter (
                       where cast(y.paid_at as timestamp) < c.created + interval 365 day), 0) as ltv_12m
            from cards c left join payments y using (patient_id) group by 1, 2)
        select channel, avg(ltv_12m) from value group by 1""").fetchall())
    assert ltv["referral"] >= 1.3 * ltv["context_ads"]
    assert ltv["referral"] <= 2.2 * ltv["context_ads"]        # "about 50% more", not an order of magnitude


# -- options and scale -------------------------------------------------------------------------------------


def test_small_clinics_other_windows_and_branches(tmp_path):
    counts = generate(tmp_path / "tiny", patients=10, seed=5)
    assert counts["patients"] == 10
    counts = generate(tmp_path / "two", patients=600, seed=5, branches=2, years=1, today=dt.date(2025, 3, 1))
    con = connect(tmp_path / "two")
    assert {r[0] for r in con.execute("select distinct branch_id from visits").fetchall()} <= {"B1", "B2"}
    first, last = con.execute("select min(scheduled_at), max(scheduled_at) from visits where status <> 'scheduled'").fetchall()[0]
    assert first >= "2024-03-01" and last < "2025-03-01"
    assert one(con, "select count(distinct month) from marketing_spend") == 12
    assert counts["visits"] > 600


def test_scale_50k_patients(tmp_path):
    started = time.perf_counter()
    counts = generate(tmp_path, patients=50_000, seed=11)
    elapsed = time.perf_counter() - started
    assert counts["patients"] == 50_000
    assert counts["visits"] / counts["patients"] >= 6
    assert elapsed < 60, f"50k patients took {elapsed:.1f} s"


def test_past_call_lists_hold_a_control_group_and_the_truth(demo, con):
    """About 30% of each day's candidates were held out; the zero-effect action never brought anyone."""
    from patientbase.demo import DEMO_CONTROL_SHARE, DEMO_ZERO_EFFECT_ACTION

    out, _, _ = demo
    rows = f"read_csv('{out / 'call_assignments.csv'}', header = true)"
    share = one(con, f"select avg(case when arm = 'control' then 1.0 else 0.0 end) from {rows}")
    assert abs(share - DEMO_CONTROL_SHARE) < 0.06
    # the truth is known for the called only, and is never true for the zero-effect action
    assert one(con, f"select count(*) from {rows} where (arm = 'call') <> (demo_came_because_called is not null)") == 0
    assert one(con, f"select count(*) from {rows} where action_code = '{DEMO_ZERO_EFFECT_ACTION}' "
                    "and demo_came_because_called") == 0
    assert one(con, f"select count(*) from {rows} where demo_came_because_called") > 0
    # the called were called that day (the list names the person's first card; a person with a
    # duplicate card, ~2%, may have been called on the other one)
    missing = one(con, f"""select avg(case when exists (
        select 1 from calls as c where c.patient_id = cast(a.patient_id as varchar)
            and cast(c.called_at as date) = a.list_date) then 0.0 else 1.0 end)
        from {rows} as a where arm = 'call'""")
    assert missing < 0.05
