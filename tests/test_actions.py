"""Next best action, call-list candidates, service transitions, call outcomes and base potential on the
hand-made `actions` clinic as of 2025-07-01: every expected value is worked out in
fixtures/actions/README.md. Built once for the module.

The invariants (one row per person, a call only where the person may be called, deceased never get an
action, eligible candidates are all calls) are dbt data tests of marts/actions (severity error), so
every build checks them, the demo clinic's included; the dbt unit tests (action precedence, recall
lead days, transition probability) run in the clinic15 build of conftest.py.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from conftest import workspace_at

D = Decimal
day = dt.date.fromisoformat

CONFIG = "vars:\n  rfm_method: thresholds\n  transition_min_from_visits: 3\n"


@pytest.fixture(scope="module")
def actions(tmp_path_factory):
    with workspace_at(tmp_path_factory.mktemp("actions")) as w:
        w.config(CONFIG)
        w.invoke("load", str(w.copy_fixture("actions")))
        w.invoke("build", "--as-of", "2025-07-01")
        yield w


# person -> (action_code, channel, due_date, expected_value)
EXPECTED_ACTIONS = {
    "A01": ("plan_follow_up", "call", "2025-06-15", "30000.00"),
    "A02": ("no_show_recovery", "call", "2025-06-20", "875.00"),
    "A03": ("recall_due", "call", "2025-06-18", "1350.00"),
    "A04": ("recall_due", "call", "2025-07-04", "2400.00"),
    "A05": ("no_next_step", "call", "2025-06-28", "2000.00"),
    "A06": ("welcome_second_visit", "call", "2025-06-01", "875.00"),
    "A07": ("churn_prevention", "call", "2025-05-30", "4500.00"),
    "A08": ("vip_curator", "call", "2025-06-21", "4000.00"),
    "A09": ("reactivation", "call", "2025-02-01", "300.00"),
    "A10": ("none", "none", None, "0.00"),
    "A11": ("cross_sell", "call", "2025-04-10", "450.00"),
    "F01": ("reactivation", "call", "2024-11-06", "840.00"),
    "F02": ("recall_due", "call", "2025-06-25", "450.00"),
    "E01": ("no_show_recovery", "message", "2025-06-10", "2766.13"),
    "E02": ("reactivation", "message", "2025-04-13", "600.00"),
    "E03": ("none", "none", None, "0.00"),
    "E04": ("plan_follow_up", "call", "2025-05-19", "12500.00"),
    "E05": ("reactivation", "call", "2025-04-18", "360.00"),
    "E06": ("reactivation", "call", "2025-03-19", "360.00"),
    "E07": ("reactivation", "call", "2025-05-09", "360.00"),
}

REASONS = {
    "A01": ("Treatment plan TPA01 for 120 000 (Dentistry), made on 2025-06-01: not accepted yet; not started 30 days later",
            "План лечения TPA01 на 120 000 (Стоматология) от 2025-06-01: ещё не принят, не начат за 30 дн."),
    "A02": ("Missed the appointment on 2025-06-20 (General medicine), 11 days ago; not rebooked",
            "Не пришёл на приём 2025-06-20 (Терапия), 11 дн. назад; не перезаписан"),
    "A03": ("Hygiene on 2024-12-20, 193 days ago; due every 180 days",
            "Гигиена 2024-12-20, 193 дн. назад; повтор каждые 180 дн."),
    "A04": ("Chronic care on 2025-04-05, 87 days ago; due every 90 days",
            "Диспансерное наблюдение 2025-04-05, 87 дн. назад; повтор каждые 90 дн."),
    "A05": ("Visit on 2025-06-28 (Dermatology), 3 days ago; nothing booked and no call since",
            "Приём 2025-06-28 (Дерматология), 3 дн. назад; нет ни записи, ни звонка после него"),
    "A06": ("First visit on 2025-06-01 (General medicine), 30 days ago; no second visit yet",
            "Первый приём 2025-06-01 (Терапия), 30 дн. назад; второго визита пока нет"),
    "A07": ("Champions: usually comes back every 30 days (median); last visit on 2025-04-15, 77 days ago",
            "Чемпионы: обычно приходит раз в 30 дн. (медиана); последний приём 2025-04-15, 77 дн. назад"),
    "A08": ("Champions: no visit or call for 40 days (last contact on 2025-05-22)",
            "Чемпионы: ни визита, ни звонка 40 дн. (последний контакт 2025-05-22)"),
    "A09": ("Sleeping patient: last visit on 2024-08-05, 330 days ago; paid 2 500 in total",
            "Спящий пациент: последний приём 2024-08-05, 330 дн. назад; всего оплачено 2 500"),
    "A10": ("Nothing due as of 2025-07-01", "Нет повода для контакта на 2025-07-01"),
    "A11": ("Active, one specialty only (Dentistry); 67% of patients come for diagnostics within 180 days after consultation",
            "Активен, одно направление (Стоматология); после «Консультация» 67% приходят на «Диагностика» в течение 180 дн."),
    "F01": ("Lost patient: last visit on 2024-05-10, 417 days ago; paid 7 000 in total",
            "Потерянный пациент: последний приём 2024-05-10, 417 дн. назад; всего оплачено 7 000"),
    "F02": ("Vaccination on 2024-06-25, 371 days ago; due every 365 days",
            "Вакцинация 2024-06-25, 371 дн. назад; повтор каждые 365 дн."),
    "E03": ("Deceased: do not contact", "Пациент умер: не связываться"),
    "E04": ("Treatment plan TPE04 for 50 000 (Dentistry), made on 2025-05-05: declined by the patient; not started 57 days later",
            "План лечения TPE04 на 50 000 (Стоматология) от 2025-05-05: пациент отказался, не начат за 57 дн."),
}

# eligible (None) or the first exclusion reason; A10 (none) is no candidate
EXPECTED_EXCLUSIONS = {
    "A01": None, "A02": None, "A03": None, "A04": None, "A05": None, "A06": None, "A07": None,
    "A08": None, "A09": None, "A11": None, "F01": None, "F02": None,
    "E01": "no_valid_phone", "E02": "calls_not_allowed", "E03": "deceased", "E04": "visit_booked",
    "E05": "called_recently", "E06": "refused_recently", "E07": "too_many_attempts",
}


def test_every_person_gets_exactly_the_action_built_for_them(actions):
    rows = actions.query(
        "select person_id, action_code, channel, due_date, expected_value from marts.patient_next_action"
    )
    got = {r[0]: r[1:] for r in rows}
    assert len(rows) == len(got) == actions.scalar("select count(*) from marts.dim_patients") == 20
    expected = {
        person: (action, channel, day(due) if due else None, D(value))
        for person, (action, channel, due, value) in EXPECTED_ACTIONS.items()
    }
    assert got == expected


def test_reasons_say_the_facts_in_english_and_russian(actions):
    """Both languages in `_en`/`_ru`; the plain `reason` is the warehouse's language (ru by default);
    specialties named by seed specialty_labels."""
    got = {r[0]: r[1:] for r in actions.query(
        "select person_id, reason_en, reason_ru, reason from marts.patient_next_action")}
    for person, reasons in REASONS.items():
        assert got[person] == (*reasons, reasons[1]), person


def test_labels_priority_offer_and_context(actions):
    rows = {r[0]: r[1:] for r in actions.query(
        """select person_id, action_label_en, action_label_ru, priority, offer, offer_category, segment,
                  lifecycle_status, last_visit_date, last_specialty, last_doctor_id, conversion_rate_source
           from marts.patient_next_action"""
    )}
    assert rows["A01"][:3] == ("Plan follow-up", "Вернуть к плану лечения", 1)
    assert rows["A10"][:3] == ("No action", "Без действия", 99)
    assert rows["E03"][:3] == ("No action", "Без действия", 99)  # deceased: never an action
    # the recalled service, the next best offer, the default text when every likely offer was had recently
    assert rows["A03"][3:5] == ("Профессиональная гигиена полости рта", "hygiene")
    assert rows["F02"][3:5] == ("Плановая вакцинация", "vaccination")
    for person in ("A05", "A06", "A11"):
        assert rows[person][3:5] == ("Диагностика: анализы, УЗИ, ЭКГ", "diagnostics"), person
    assert rows["A07"][3:5] == ("Записаться к своему врачу в удобное время без очереди", None)
    assert rows["A10"][3:5] == (None, None)
    assert {p: rows[p][5] for p in ("A07", "A08", "A03", "A09")} == {
        "A07": "champions", "A08": "champions", "A03": "sleeping", "A09": "lost"}
    assert rows["E01"][5] is None  # never came: no RFM segment
    assert rows["A08"][6:10] == ("active", day("2025-05-22"), "gynecology", "DR6")
    # far fewer than 100 patients called per action: assumed rates; a deceased person has none
    assert {p: r[10] for p, r in rows.items() if r[10] != "assumed"} == {"E03": None}


def test_priority_ranks_actions_one_first(actions):
    priorities = dict(actions.query(
        "select distinct action_code, priority from marts.patient_next_action"))
    order = ["plan_follow_up", "no_show_recovery", "recall_due", "no_next_step", "welcome_second_visit",
             "churn_prevention", "vip_curator", "reactivation", "cross_sell"]
    assert [priorities[a] for a in order] == list(range(1, 10))
    assert priorities["none"] == 99


def test_channels_respect_permissions(actions):
    rows = actions.query(
        """select actions.person_id, actions.channel, patients.can_call, patients.can_message, patients.is_deceased
           from marts.patient_next_action as actions
           join marts.dim_patients as patients using (person_id)"""
    )
    assert all(can_call for _, channel, can_call, _, _ in rows if channel == "call")
    assert all(channel == "none" for _, channel, _, _, dead in rows if dead)
    by_person = {r[0]: r[1:] for r in rows}
    assert by_person["E02"][:3] == ("message", False, True)  # do-not-call: a message instead
    assert by_person["E01"][:3] == ("message", False, True)  # no valid phone, an e-mail


def test_call_list_candidates_and_exclusions(actions):
    rows = actions.query(
        """select person_id, action_code, channel, exclusion_reason, base_exclusion_reason
           from marts.call_list_candidates"""
    )
    assert {r[0]: r[3] for r in rows} == EXPECTED_EXCLUSIONS
    # eligible rows are exactly the calls; the three "cannot be called" reasons are exactly the non-calls
    for person, _action, channel, exclusion, _base in rows:
        assert (exclusion is None) <= (channel == "call"), person
        assert (channel != "call") == (exclusion in ("no_valid_phone", "calls_not_allowed", "deceased")), person
    by_person = {r[0]: r[1:] for r in rows}
    assert by_person["E03"][:2] == ("reactivation", "none")  # the matched action, excluded as deceased
    # the time-based reasons expire with the list date; the others do not
    assert {p: by_person[p][3] for p in ("E04", "E05", "E06", "E07")} == {
        "E04": "visit_booked", "E05": None, "E06": None, "E07": "too_many_attempts"}


def test_call_history_columns_for_the_export(actions):
    rows = {r[0]: r[1:] for r in actions.query(
        """select person_id, last_call_at, last_refusal_at, attempts_on_action, attempts_window_start,
                  last_operator_id, called_recently_until, refused_recently_until, next_scheduled_at,
                  is_action_about_booking, trigger_date
           from marts.call_list_candidates"""
    )}
    ts = dt.datetime.fromisoformat
    # E07: four reactivation calls since the action fell due on 2025-05-09; the one of 2025-04-01 is older
    assert rows["E07"][:5] == (ts("2025-06-10 10:00"), None, 4, day("2025-05-09"), "OP1")
    assert rows["E05"][0] == ts("2025-06-25 10:00") and rows["E05"][5] == day("2025-07-09")
    assert rows["E06"][1] == ts("2025-05-01 12:00") and rows["E06"][6] == day("2025-07-30")
    # A04: OP2's call of 2025-03-25 was about recall_due too, but before this recall opened (2025-06-20)
    assert rows["A04"][:5] == (ts("2025-03-25 11:00"), None, 0, day("2025-06-20"), "OP2")
    assert rows["A04"][9] == day("2025-06-20")
    # A09: due since 2025-02-01, attempts counted over the last 90 days only
    assert rows["A09"][3] == day("2025-04-02")
    assert rows["E04"][7] == ts("2025-07-10 10:00")
    assert {r[8] for r in rows.values()} == {False}
    # A02's call of 2025-07-02 is after the as-of date: not a call yet
    assert actions.scalar("select count(*) from marts.call_list_candidates where person_id = 'A02' and last_call_at is not null") == 0
    windows = actions.query("select distinct recent_call_days, refusal_days, max_attempts_on_action from marts.call_list_candidates")
    assert windows == [(14, 90, 3)]


def test_family_sharing_a_phone_are_two_candidates_on_one_number(actions):
    rows = actions.query(
        """select person_id, display_name, phone_e164, action_code, exclusion_reason
           from marts.call_list_candidates where phone_e164 = '+79123000050' order by person_id"""
    )
    assert rows == [
        ("F01", "Морозова Мария", "+79123000050", "reactivation", None),
        ("F02", "Морозов Максим", "+79123000050", "recall_due", None),
    ]


def test_service_transitions(actions):
    rows = {(r[0], r[1]): r[2:] for r in actions.query(
        "select from_category, to_category, from_visits, followed_visits, probability from marts.service_transitions"
    )}
    assert rows[("consultation", "diagnostics")] == (3, 2, D("0.6667"))
    assert rows[("consultation", "consultation")] == (3, 2, D("0.6667"))
    assert rows[("hygiene", "hygiene")] == (3, 0, D("0.0000"))  # 183 and 181 days apart
    assert rows[("vaccination", "vaccination")] == (1, 0, D("0.0000"))
    # chronic care's only counted-worthy visit (2025-01-05) has an open window; diagnostics never starts one
    assert {from_ for from_, _ in rows} == {"consultation", "hygiene", "vaccination"}
    assert {to for _, to in rows} == {"consultation", "diagnostics", "hygiene", "chronic_care", "vaccination"}


def test_call_outcomes_per_operator_action_and_week(actions):
    rows = actions.query(
        """select operator_id, action_code, week_start, attempts, reached, booked, came, revenue, operator_bonus,
                  is_outcome_window_complete
           from marts.call_outcomes order by operator_id, action_code, week_start"""
    )
    zero = D("0.00")
    assert rows == [
        ("OP1", "cross_sell", day("2025-06-09"), 1, 1, 1, 1, D("5000.00"), D("300.00"), False),
        ("OP1", "reactivation", day("2025-05-19"), 1, 0, 0, 0, zero, zero, True),
        ("OP1", "reactivation", day("2025-05-26"), 1, 0, 0, 0, zero, zero, True),
        ("OP1", "reactivation", day("2025-06-02"), 1, 0, 0, 0, zero, zero, False),
        ("OP1", "reactivation", day("2025-06-09"), 1, 0, 0, 0, zero, zero, False),
        ("OP1", "reactivation", day("2025-06-23"), 1, 0, 0, 0, zero, zero, False),
        ("OP2", "reactivation", day("2025-03-31"), 1, 0, 0, 0, zero, zero, True),
        ("OP2", "reactivation", day("2025-04-28"), 1, 1, 0, 0, zero, zero, True),
        ("OP2", "recall_due", day("2025-03-24"), 1, 1, 1, 1, D("8000.00"), D("300.00"), True),
    ]
    assert all(week.weekday() == 0 for _, _, week, *_ in rows)  # Mondays


def test_base_potential(actions):
    rows = {r[0]: r[1:] for r in actions.query(
        """select segment, patients, reactivation_rate, expected_returns, transactions, avg_check,
                  potential_revenue, callable_patients, working_days_to_reach
           from marts.base_potential"""
    )}
    assert rows["champions"] == (2, D("0.5000"), D("1.00"), D("4.50"), D("17222.22"), D("77499.99"), 2, D("0.04"))
    assert rows["lost"] == (7, D("0.0500"), D("0.35"), D("1.00"), D("3571.43"), D("1250.00"), 6, D("0.12"))
    assert rows["loyal"][:2] == (0, D("0.4000")) and rows["loyal"][5] == D("0.00")
    # every segment of the 3-point scale; the living persons with a visit (all but E01 and deceased E03)
    assert len(rows) == 9 and sum(r[0] for r in rows.values()) == 18


def test_an_english_warehouse_speaks_english_in_the_plain_columns(actions):
    """`language: en` in patientbase.yml: the plain text columns a BI tool and the files read are the
    English ones (the Russian ones stay beside them). Runs last: it rebuilds the text models in English."""
    actions.config(CONFIG + "language: en\n")
    actions.invoke("build", "--as-of", "2025-07-01", "--select", "int_persons_action_matched", "--select",
                   "patient_next_action", "--select", "call_list_candidates", "--select", "rfm_scores")
    rows = {r[0]: r[1:] for r in actions.query(
        "select person_id, action_label, reason, offer, offer_ru from marts.patient_next_action")}
    assert rows["A03"] == ("Recall due", REASONS["A03"][0], "A professional teeth cleaning",
                           "Профессиональная гигиена полости рта")
    assert rows["A07"][0] == "Churn prevention" and rows["A07"][2].startswith("An appointment with your own doctor")
    assert rows["E03"][:3] == ("No action", "Deceased: do not contact", None)
    assert actions.query("select reason from marts.call_list_candidates where person_id = 'A02'") == [
        (REASONS["A02"][0],)]
    assert actions.query("select segment_label, segment_label_ru from marts.rfm_scores where person_id = 'A07'") == [
        ("Champions", "Чемпионы")]
    # a Russian text left in an English column would show here
    texts = actions.query("select action_label || ' ' || reason || ' ' || coalesce(offer, '') "
                          "from marts.patient_next_action")
    assert not [t for (t,) in texts if any("а" <= ch.lower() <= "я" for ch in t)]
