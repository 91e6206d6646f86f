"""`patientbase check`: Great Expectations suites on the raw tables and the marts.

dbt tests guard the models' keys and relationships; these checks cover what they do not: is the
export itself plausible (keys present and unique, dates in a plausible range, no visit before the
patient's birth, statuses in their sets, amounts in range, payments and visits that point to a known
patient, a row count that did not jump since the previous load), and do the marts still agree with
the raw data (net revenue reconciles with the raw payments, scores and rates in range, nobody on the
call list who may not be called).

How Great Expectations meets DuckDB
-----------------------------------
GX 1.x has no DuckDB data source, and pulling 10 M visits into pandas to validate them row by row
would take minutes. So the work is split: every suite is a handful of aggregate SQL expressions over
one FROM clause (a :class:`Rule` each, e.g. "count of visits dated before the patient's birth"), and
DuckDB computes them, one scan per suite. The measured values form a one-row pandas frame, one column
per rule (`raw.visits.before_birth`). GX validates that frame through its pandas data source: one
ExpectationSuite per raw table or mart (expect_column_max/min_to_be_between on each measured value,
with the rule's text as the expectation's description and its severity as GX's severity), one
ValidationDefinition per suite on the same batch, and one Checkpoint that runs them all and writes
the Data Docs. The context is ephemeral (nothing written but the Data Docs) with analytics and
progress bars off.

Severities follow the dbt side (STYLE.md): `error` for keys, vocabularies, reconciliations and
the call list; `warn` for plausibility (ranges, row-count jumps). A failed `error` expectation makes
`patientbase check` exit 1; a failed `warn` is printed and the command still exits 0.

Adding a check is adding a Rule to a suite below; a suite whose tables do not exist yet (a mart not
built, the call list) is skipped and named in the summary.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pandas as pd

from .config import Config
from .errors import ConfigError, PatientbaseError
from .schema import TABLES, RawRule, Table, rules

ERROR = "error"
WARN = "warn"
_GX_SEVERITY = {ERROR: "critical", WARN: "warning"}

#: Marts a call list is made from: everyone they ask to call must be callable. Checked once built;
#: a call list mart under another name is one more entry here.
CALL_LIST_MARTS = ("marts.call_list_candidates", "marts.patient_next_action", "marts.call_list")
#: marts.call_list is one row per phone; its persons are listed in person_ids
def listed_persons(wh) -> str:
    """marts.call_list is one row per phone; its persons are listed in person_ids ('P01,P07')."""
    return f"(select trim(item) as person_id from (select {wh.split('person_ids')} as item from marts.call_list) as items)"

#: exclusion_reason values that keep a candidate off every call list (as `patientbase export
#: call-list` applies them); any other reason is time-based and may lapse by the list date.
HARD_EXCLUSIONS = ("no_valid_phone", "calls_not_allowed", "deceased", "visit_booked", "too_many_attempts")

#: Tunable bounds, overridable under `checks:` in patientbase.yml.
DEFAULT_SETTINGS: dict[str, Any] = {
    # share of visits and of payments whose card is in the patients export
    "min_known_patient_share": 0.99,
    # events (visits, payments, cards, plans, calls) before this date are implausible
    "earliest_date": "2000-01-01",
    # birth dates before this date are implausible
    "earliest_birth_date": "1900-01-01",
    # appointments booked further ahead than this many days are implausible
    "max_days_ahead": 730,
    # a payment, a service line or a treatment plan above this amount is implausible
    "max_amount": 10_000_000,
    # a call longer than this is implausible
    "max_call_seconds": 4 * 3600,
    # rows of a raw table now / rows at the previous load of that table
    "min_row_count_ratio": 0.8,
    "max_row_count_ratio": 1.5,
}


# -- what a check is ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One measured value and the bounds it must stay within."""

    metric: str  # short name, unique in its suite; the GX column is "<suite>.<metric>"
    sql: str  # an aggregate over the suite's FROM clause giving one non-null number
    text: str  # what must hold, in words (the expectation's description)
    min_value: float | None = None
    max_value: float | None = None
    severity: str = ERROR
    unit: str = "rows"  # how to print the measured value: rows, share, ratio, money
    example_sql: str | None = None  # a query naming one offending row, run only when the rule fails


@dataclass(frozen=True)
class Suite:
    name: str  # "raw.visits", "marts.rfm_scores"
    from_sql: str
    rules: tuple[Rule, ...]
    requires: tuple[str, ...]  # relations that must exist, else the suite is skipped
    #: an optional export: the suite is skipped when this raw table is empty
    skip_if_empty: str | None = None


def count_where(condition: str) -> str:
    """How many rows match `condition` (portable: no `filter (where …)`); 0 on no rows."""
    return f"coalesce(sum(case when {condition} then 1 else 0 end), 0)"


def no_rows(metric: str, relation: str, key: str, condition: str, text: str, severity: str = ERROR) -> Rule:
    """No row of the suite's FROM matches `condition`; on failure name one offender by `key`."""
    return Rule(
        metric, count_where(condition), text, max_value=0, severity=severity,
        example_sql=f"select {key} from {relation} where {condition} limit 1",
    )


def unique(metric: str, table: str, key: str, text: str) -> Rule:
    """`key` (an expression over `table`) is unique among the rows that have it."""
    return Rule(
        metric, f"count({key}) - count(distinct {key})", text, max_value=0,
        example_sql=f"select {key} from {table} where {key} is not null group by {key} having count(*) > 1 limit 1",
    )


def unique_together(metric: str, table: str, keys: list[str], text: str) -> Rule:
    """The combination of `keys` (expressions over `table`) is unique among the rows that have all of them."""
    present = " and ".join(f"{k} is not null" for k in keys)
    listed = ", ".join(keys)
    shown = "concat(" + ", ' ', ".join(keys) + ")"
    return Rule(
        metric,
        f"{count_where(present)} - (select count(*) from (select distinct {listed} from {table} where {present}) as keys)",
        text, max_value=0,
        example_sql=f"select {shown} from {table} where {present} group by {listed} having count(*) > 1 limit 1",
    )


def share_at_least(metric: str, condition: str, minimum: float, text: str, severity: str = ERROR,
                   among: str = "true") -> Rule:
    """At least `minimum` of the rows (those matching `among`) satisfy `condition`; 100% when none."""
    return Rule(
        metric, f"coalesce(avg(case when {among} then (case when {condition} then 1.0 else 0.0 end) end), 1.0)",
        text, min_value=minimum, severity=severity, unit="share",
    )


def equal(metric: str, left: str, right: str, text: str) -> Rule:
    """Two money totals are equal to the cent."""
    return Rule(metric, f"abs(coalesce(({left}), 0) - coalesce(({right}), 0))", text, max_value=0, unit="money")


# -- settings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    min_known_patient_share: float
    earliest_date: dt.date
    earliest_birth_date: dt.date
    max_days_ahead: int
    max_amount: float
    max_call_seconds: int
    min_row_count_ratio: float
    max_row_count_ratio: float
    today: dt.date

    @classmethod
    def from_config(cls, overrides: dict | None, today: dt.date | None = None) -> Settings:
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(DEFAULT_SETTINGS))
        if unknown:
            raise ConfigError(
                f"Unknown key(s) under `checks:` in the config: {', '.join(unknown)}. "
                f"Known keys: {', '.join(DEFAULT_SETTINGS)}."
            )
        values = {**DEFAULT_SETTINGS, **overrides}
        parsed: dict[str, Any] = {}
        for key, value in values.items():
            try:
                if key.startswith("earliest_"):
                    if isinstance(value, dt.datetime):
                        value = value.date()
                    parsed[key] = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
                elif key in ("max_days_ahead", "max_call_seconds"):
                    parsed[key] = int(value)
                else:
                    parsed[key] = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"checks.{key}: {value!r} is not a valid value (default {DEFAULT_SETTINGS[key]!r}).") from None
        return cls(**parsed, today=today or dt.date.today())

    @property
    def latest_event(self) -> str:
        """Events that already happened (payments, cards, calls) are dated before tomorrow."""
        return _date(self.today + dt.timedelta(days=1))

    @property
    def latest_booking(self) -> str:
        return _date(self.today + dt.timedelta(days=self.max_days_ahead + 1))


def _date(day: dt.date) -> str:
    return f"date '{day.isoformat()}'"


def _sql_set(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _status(column: str) -> str:
    """The status as the staging models read it (clean_status): trimmed, lower-cased, '_' for ' ' and '-'."""
    return f"replace(replace(lower(nullif(trim({column}), '')), ' ', '_'), '-', '_')"


def _id(column: str) -> str:
    """An id as the staging models read it (clean_text): trimmed, empty = null (ids are text in raw)."""
    return f"nullif(trim({column}), '')"


# -- the suites -------------------------------------------------------------------------------------


def declared_rule(table: Table, rule: RawRule, relation: str, alias: str = "") -> Rule:
    """The GE rule measuring one rule of the raw-table declaration (runner/schema.py) on `relation`."""
    col = f"{alias}." if alias else ""
    noun = table.noun
    if rule.kind == "rows":
        return Rule("rows", "count(*)", f"the {table.name} export has rows", min_value=1, severity=rule.severity)
    name = rule.columns[0]
    if rule.kind == "required":
        is_key = name in table.key
        metric = "missing_id" if table.key == (name,) else "missing_" + name.removesuffix("_id")
        article = "an" if name[0] in "aeiou" else "a"
        value = _id(col + name) if table.column(name).type == "text" else col + name
        example = f"{col}_source_line" if is_key else f"{col}{table.key[0]}" if table.key else f"{col}_source_line"
        return no_rows(metric, relation, example, f"{value} is null", f"every {noun} has {article} {name}")
    if rule.kind == "unique":
        if len(rule.columns) == 1:
            return unique("duplicate_ids", relation, _id(col + name), f"{name} is unique")
        keys = [f"lower({_id(col + k)})" if table.column(k).type == "text" else col + k for k in rule.columns]
        return unique_together("duplicate_keys", relation, keys, "one row per " + " and ".join(rule.columns))
    # accepted values, compared as the staging models read them (trimmed, lower-cased)
    status = _status(col + name)
    outside = f"{status} not in ({_sql_set(rule.values)})"
    condition = f"{status} is null or {outside}" if rule.required else f"{status} is not null and {outside}"
    key = f"{col}{table.key[0]} || ': ' || " if table.key else ""
    metric = "unknown_" + name
    return no_rows(metric, relation, f"{key}coalesce({col}{name}, 'null')", condition,
                   f"{name} in {{{', '.join(rule.values)}}}")


def declared_rules(name: str, relation: str | None = None, alias: str = "") -> tuple[Rule, ...]:
    """Every rule the declaration gives raw table `name`, measured on `relation` (default raw.<name>)."""
    table = TABLES[name]
    return tuple(declared_rule(table, rule, relation or f"raw.{name}", alias) for rule in rules(table))


def raw_suites(s: Settings) -> list[Suite]:
    """One suite per raw export: the declared rules (runner/schema.py: rows, keys, required values,
    allowed values), then the plausibility rules only `check` knows (dates, amounts, orphans)."""
    earliest, earliest_birth = _date(s.earliest_date), _date(s.earliest_birth_date)
    # semi-joins (`in (select …)`): at 10 M rows far cheaper than a left join on distinct keys
    known_patient = f"(select {_id('patient_id')} from raw.patients)"
    known_visit = f"(select {_id('visit_id')} from raw.visits)"
    max_amount = f"{s.max_amount:.2f}"
    share = s.min_known_patient_share

    patients = Suite(
        "raw.patients", "raw.patients",
        requires=("raw.patients",),
        rules=declared_rules("patients") + (
            no_rows("implausible_birth_date", "raw.patients", "patient_id",
                    f"birth_date < {earliest_birth} or birth_date >= {s.latest_event}",
                    f"birth dates between {s.earliest_birth_date} and today", WARN),
            no_rows("implausible_created_at", "raw.patients", "patient_id",
                    f"created_at < {earliest} or created_at >= {s.latest_event}",
                    f"cards created between {s.earliest_date} and today", WARN),
        ),
    )

    patient_id = _id("patient_id")
    visits_from = (
        "raw.visits as visits left join ("
        f"select {patient_id} as patient_id, min(birth_date) as birth_date from raw.patients group by {patient_id}"
        f") as cards on {_id('visits.patient_id')} = cards.patient_id"
    )
    visits = Suite(
        "raw.visits", visits_from,
        requires=("raw.visits", "raw.patients"),
        rules=declared_rules("visits", visits_from, "visits") + (
            no_rows("implausible_date", visits_from, "visits.visit_id || ' at ' || visits.scheduled_at",
                    f"visits.scheduled_at < {earliest} or visits.scheduled_at >= {s.latest_booking}",
                    f"visits between {s.earliest_date} and {s.max_days_ahead} days ahead", WARN),
            no_rows("completed_in_future", visits_from, "visits.visit_id || ' at ' || visits.scheduled_at",
                    f"{_status('visits.status')} = 'completed' and visits.scheduled_at >= {s.latest_event}",
                    "no completed visit dated after today", WARN),
            no_rows("before_birth", visits_from,
                    "visits.visit_id || ' at ' || visits.scheduled_at || ', born ' || cards.birth_date",
                    "cast(visits.scheduled_at as date) < cards.birth_date",
                    "no visit before the patient's birth"),
            share_at_least("known_patient", "cards.patient_id is not null", share,
                           f"at least {share:.0%} of visits are of a known patient"),
        ),
    )

    payments_from = "raw.payments as payments"
    payments = Suite(
        "raw.payments", payments_from,
        requires=("raw.payments", "raw.patients", "raw.visits"),
        rules=declared_rules("payments", payments_from, "payments") + (
            no_rows("implausible_amount", payments_from, "payments.payment_id || ': ' || payments.amount",
                    f"abs(payments.amount) > {max_amount}", f"amounts within ±{s.max_amount:,.0f}", WARN),
            no_rows("implausible_date", payments_from, "payments.payment_id || ' at ' || payments.paid_at",
                    f"payments.paid_at < {earliest} or payments.paid_at >= {s.latest_event}",
                    f"payments between {s.earliest_date} and today", WARN),
            share_at_least("known_patient", f"{_id('payments.patient_id')} in {known_patient}", share,
                           f"at least {share:.0%} of payments are of a known patient"),
            share_at_least("known_visit", f"{_id('payments.visit_id')} in {known_visit}", share,
                           f"at least {share:.0%} of visit payments name a known visit", WARN,
                           among=f"{_id('payments.visit_id')} is not null"),
        ),
    )

    services = Suite(
        "raw.visit_services", "raw.visit_services",
        requires=("raw.visit_services", "raw.visits"),
        skip_if_empty="raw.visit_services",
        rules=declared_rules("visit_services") + (
            no_rows("implausible_amount", "raw.visit_services", "visit_id || ': ' || amount",
                    f"amount < 0 or amount > {max_amount}", f"amounts between 0 and {s.max_amount:,.0f}", WARN),
            no_rows("implausible_quantity", "raw.visit_services", "visit_id || ': ' || quantity",
                    "quantity < 1", "quantity at least 1", WARN),
            share_at_least("known_visit", f"{_id('visit_id')} in {known_visit}", share,
                           f"at least {share:.0%} of service lines name a known visit", WARN),
        ),
    )

    plans = Suite(
        "raw.treatment_plans", "raw.treatment_plans",
        requires=("raw.treatment_plans",),
        skip_if_empty="raw.treatment_plans",
        rules=declared_rules("treatment_plans") + (
            no_rows("implausible_amount", "raw.treatment_plans", "plan_id || ': ' || total_amount",
                    f"total_amount < 0 or total_amount > {max_amount}",
                    f"plan totals between 0 and {s.max_amount:,.0f}", WARN),
            no_rows("implausible_date", "raw.treatment_plans", "plan_id || ' at ' || created_at",
                    f"created_at < {earliest} or created_at >= {s.latest_event}",
                    f"plans created between {s.earliest_date} and today", WARN),
        ),
    )

    calls = Suite(
        "raw.calls", "raw.calls",
        requires=("raw.calls",),
        skip_if_empty="raw.calls",
        rules=declared_rules("calls") + (
            no_rows("implausible_duration", "raw.calls", "call_id || ': ' || duration_s",
                    f"duration_s < 0 or duration_s > {s.max_call_seconds}",
                    f"call durations between 0 and {s.max_call_seconds:,} s", WARN),
            no_rows("implausible_date", "raw.calls", "call_id || ' at ' || called_at",
                    f"called_at < {earliest} or called_at >= {s.latest_event}",
                    f"calls between {s.earliest_date} and today", WARN),
        ),
    )

    spend = Suite(
        "raw.marketing_spend", "raw.marketing_spend",
        requires=("raw.marketing_spend",),
        skip_if_empty="raw.marketing_spend",
        rules=declared_rules("marketing_spend") + (
            no_rows("not_first_of_month", "raw.marketing_spend", "month || ' ' || channel",
                    "extract(day from month) <> 1", "month is the first day of a month", WARN),
            # no upper bound: a clinic network's monthly budget for a channel can be anything
            no_rows("negative_amount", "raw.marketing_spend", "month || ' ' || channel || ': ' || amount",
                    "amount < 0", "amounts not negative", WARN),
        ),
    )
    suites = [patients, visits, payments, services, plans, calls, spend]
    assert {suite.name for suite in suites} == {f"raw.{t.name}" for t in TABLES.values() if t.checked}
    return suites


def load_history_suite(wh, s: Settings) -> Suite | None:
    """Rows of each raw table now against the load it replaced (raw.load_ledger keeps every load)."""
    versions = """(
        with loads as (
            select table_name, load_id, max(loaded_at) as loaded_at, sum(rows_loaded) as row_count,
                   max(case when is_current then 1 else 0 end) as is_current
            from raw.load_ledger
            group by table_name, load_id
        ),
        ranked as (
            select table_name, loaded_at, row_count,
                   row_number() over (partition by table_name order by is_current desc, loaded_at desc) as version
            from loads
        )
        select table_name,
               max(case when version = 1 then row_count end) as rows_now,
               max(case when version = 2 then row_count end) as rows_before,
               max(case when version = 2 then loaded_at end) as loaded_before
        from ranked
        group by table_name
    )"""
    history = wh.rows(
        f"select table_name, rows_now, rows_before, loaded_before from {versions} as versions "
        "where rows_before > 0 and rows_now is not null order by table_name"
    )
    if not history:
        return None
    lo, hi = s.min_row_count_ratio, s.max_row_count_ratio
    rules = tuple(
        Rule(
            table, f"max(case when table_name = '{table}' then rows_now * 1.0 / rows_before end)",
            f"{table}: {int(now):,} rows vs {int(before):,} at the load of {when:%Y-%m-%d} (×{lo:g}–×{hi:g})",
            min_value=lo, max_value=hi, severity=WARN, unit="ratio",
        )
        for table, now, before, when in history
    )
    return Suite("raw.load_history", f"{versions} as versions", rules, requires=("raw.load_ledger",))


def mart_suites(catalog: dict[str, set[str]], wh) -> list[Suite]:
    as_of = "(select max(as_of_date) from marts.dim_patients)"
    raw_revenue = f"(select coalesce(sum(amount), 0) from raw.payments where cast(paid_at as date) < {as_of})"
    fct_revenue = "(select coalesce(sum(amount), 0) from marts.fct_payments)"
    cards_of_persons = (
        f"(select person_id, trim(item) as patient_id from (select person_id, {wh.split('patient_ids')} as item "
        "from marts.dim_patients) as items)"
    )
    opted_out = (
        "(select persons.person_id, max(case when coalesce(cards.do_not_call, false) or coalesce(cards.is_deceased, false) "
        f"then 1 else 0 end) = 1 as may_not_call from {cards_of_persons} as persons "
        f"inner join raw.patients as cards on {_id('cards.patient_id')} = persons.patient_id group by persons.person_id)"
    )

    suites = [
        Suite(
            "marts.fct_payments", "(select 1 as one_row) as one_row",
            requires=("marts.fct_payments", "marts.dim_patients", "raw.payments"),
            rules=(
                equal("net_revenue_vs_raw", fct_revenue, raw_revenue,
                      "net revenue equals the raw payments before the as-of date"),
                Rule("rows_vs_raw",
                     "abs((select count(*) from marts.fct_payments) - (select count(*) from raw.payments "
                     f"where cast(paid_at as date) < {as_of}))",
                     "one row per raw payment before the as-of date", max_value=0),
            ),
        ),
        Suite(
            "marts.dim_patients",
            f"marts.dim_patients as persons left join {opted_out} as flags on persons.person_id = flags.person_id",
            requires=("marts.dim_patients", "marts.fct_payments", "marts.fct_visits", "raw.patients"),
            rules=(
                equal("revenue_vs_fct_payments",
                      "sum(persons.total_revenue) + (select coalesce(sum(amount), 0) from marts.fct_payments "
                      "where person_id is null)", fct_revenue,
                      "total_revenue adds up to fct_payments"),
                Rule("completed_visits_vs_fct_visits",
                     "abs(coalesce(sum(persons.completed_visits), 0) - (select count(*) from marts.fct_visits "
                     "where is_completed and person_id is not null))",
                     "completed_visits add up to fct_visits", max_value=0),
                no_rows("callable_but_opted_out",
                        f"marts.dim_patients as persons left join {opted_out} as flags on persons.person_id = flags.person_id",
                        "persons.person_id", "persons.can_call and coalesce(flags.may_not_call, false)",
                        "nobody who opted out of calls or died is callable"),
            ),
        ),
    ]
    if "marts.rfm_scores" in catalog:
        # the scale the mart was built with (var rfm_scale); 5, the largest allowed, if it does not say
        scale = "rfm_scale" if "rfm_scale" in catalog["marts.rfm_scores"] else "5"
        suites.append(Suite(
            "marts.rfm_scores", "marts.rfm_scores",
            requires=("marts.rfm_scores",),
            rules=tuple(
                no_rows(f"{score}_out_of_range", "marts.rfm_scores", f"person_id || ': ' || coalesce({score}, -1)",
                        f"{score} is null or {score} not between 1 and {scale}",
                        f"{score} between 1 and rfm_scale")
                for score in ("r_score", "f_score", "m_score")
            ) + (
                no_rows("code_mismatch", "marts.rfm_scores", "person_id || ': ' || rfm_code",
                        "rfm_code is distinct from 'R' || r_score || 'F' || f_score || 'M' || m_score",
                        "rfm_code spells the three scores"),
            ),
        ))
    rates = {
        "marts.kpi_monthly": ("month", ("churn_rate", "retention_rate")),
        "marts.cohort_retention": ("cohort_month || ' +' || months_since_first", ("retention_rate",)),
        "marts.rfm_segment_summary": ("segment", ("share_of_patients",)),
    }
    for mart, (key, columns) in rates.items():
        if mart not in catalog:
            continue
        rules = [
            no_rows(f"{column}_out_of_range", mart, f"{key} || ': ' || {column}",
                    f"{column} < 0 or {column} > 1", f"{column} between 0 and 1")
            for column in columns if column in catalog[mart]
        ]
        if mart == "marts.kpi_monthly" and "revenue" in catalog[mart]:
            rules.append(equal("revenue_vs_fct_payments", "sum(revenue)", fct_revenue,
                               "monthly revenue adds up to fct_payments"))
        if rules:
            suites.append(Suite(mart, mart, tuple(rules), requires=(mart, "marts.fct_payments")))
    if "marts.kpi_headline" in catalog:
        suites.append(headline_suite())
    # skipped (and named in the summary) until the mart is built
    suites += [
        call_list_suite(mart, catalog.get(mart, set()), opted_out,
                        listed_persons(wh) if mart == "marts.call_list" else None)
        for mart in CALL_LIST_MARTS
    ]
    return suites


def headline_suite() -> Suite:
    """The owner's headline figures must be possible before they are shown: a negative net revenue or
    repeat revenue above 100% of revenue means the payments export is wrong (a refund entered twice or
    with the wrong sign), not that the clinic lost money; the check stops the run with that said."""
    return Suite(
        "marts.kpi_headline", "marts.kpi_headline",
        (
            Rule("net_revenue_all_time_not_negative", "min(net_revenue_all_time)",
                 "net revenue of all time is not negative (if it is, refunds exceed payments: look for a refund "
                 "entered twice or with the wrong sign in the payments export)", min_value=0, unit="money"),
            Rule("revenue_12m_not_negative", "min(revenue_12m)",
                 "net revenue of the last 12 months is not negative (if it is, refunds exceed payments in "
                 "those months: check the payments export)", min_value=0, unit="money"),
            Rule("repeat_revenue_share_12m_at_most_100_percent", "coalesce(max(repeat_revenue_share_12m), 0)",
                 "repeat revenue is between 0% and 100% of net revenue over 12 months (above 100% means refunds "
                 "of first visits exceed their payments: check the payments export)",
                 min_value=0, max_value=1, unit="share"),
        ),
        requires=("marts.kpi_headline",),
    )


def call_list_suite(mart: str, columns: set[str], opted_out: str, relation: str | None = None) -> Suite:
    """Nobody the call list asks to call may be someone who must not be called: a person whose card
    says do-not-call or deceased (raw.patients, any card of the person), or whom dim_patients does not
    find callable (no valid phone). Rows with another channel (message, none), or excluded for good
    (`exclusion_reason`), are not calls."""
    to_call = ["true"]
    if "channel" in columns:
        to_call.append("listed.channel = 'call'")
    if "exclusion_reason" in columns:
        to_call.append(f"coalesce(listed.exclusion_reason, '') not in ({_sql_set(HARD_EXCLUSIONS)})")
    calls_only = " and ".join(to_call)
    from_sql = (
        f"{relation or mart} as listed left join marts.dim_patients as persons on listed.person_id = persons.person_id "
        f"left join {opted_out} as flags on listed.person_id = flags.person_id"
    )
    return Suite(
        mart, from_sql, requires=(mart, "marts.dim_patients", "raw.patients"),
        rules=(
            no_rows("may_not_be_called", from_sql, "listed.person_id",
                    f"{calls_only} and (not coalesce(persons.can_call, false) or coalesce(flags.may_not_call, false))",
                    "nobody to call has opted out, died or lacks a valid phone"),
        ),
    )


# -- running ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One expectation's result, as the summary prints it."""

    suite: str
    text: str
    observed: str
    passed: bool
    severity: str
    example: str | None = None


@dataclass
class CheckReport:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "marts.call_list (not built)"
    docs_index: Path | None = None
    seconds: float = 0.0

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed and o.severity == ERROR]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed and o.severity == WARN]


def run_checks(cfg: Config, progress=None) -> CheckReport:
    """Measure every suite's rules in the warehouse's engine, validate them with GX, write the Data Docs.

    On PostgreSQL and Spark the raw suites measure the engine's raw tables (the same rows the loading
    area pushed there) and the mart suites its marts; inside a writing command (`run`) the version
    being built, not yet published (runner/db.py)."""
    from .db import open_warehouse
    from .engine import describe

    say = progress or (lambda _msg: None)
    start = time.perf_counter()
    settings = Settings.from_config(cfg.checks)
    report = CheckReport()
    with open_warehouse(cfg) as wh:
        catalog = _catalog(wh)
        if "raw.patients" not in catalog:
            raise PatientbaseError(
                f"The warehouse {describe(cfg)} has no raw tables yet: load the exports first "
                "(`patientbase load PATH` or `patientbase run --demo`)."
            )
        suites = raw_suites(settings)
        history = load_history_suite(wh, settings) if "raw.load_ledger" in catalog else None
        if history is None:
            report.skipped.append("raw.load_history (no previous load to compare with)")
        else:
            suites.append(history)
        if "marts.dim_patients" in catalog:
            suites += mart_suites(catalog, wh)
        else:
            report.skipped.append("marts.* (not built: run `patientbase build`)")
        runnable: list[Suite] = []
        for suite in suites:
            missing = [r for r in suite.requires if r not in catalog]
            if missing:
                report.skipped.append(f"{suite.name} (not built)" if missing == [suite.name]
                                      else f"{suite.name} (not built: {', '.join(missing)})")
            elif suite.skip_if_empty and not wh.rows(f"select 1 from {suite.skip_if_empty} limit 1"):
                report.skipped.append(f"{suite.name} (empty)")
            else:
                runnable.append(suite)
        say(f"Measuring {sum(len(s.rules) for s in runnable)} values in {wh.engine}")
        metrics = _measure(wh, runnable)
        say("Validating with Great Expectations")
        docs_dir = cfg.data_docs_path
        gx_results = _validate(metrics, runnable, docs_dir)
        report.docs_index = docs_dir / "index.html"
        for suite in runnable:
            for rule in suite.rules:
                column = f"{suite.name}.{rule.metric}"
                passed, observed = gx_results[column]
                example = None
                if not passed and rule.example_sql:
                    row = wh.rows(rule.example_sql)
                    example = _example(row[0][0]) if row else None
                report.outcomes.append(
                    Outcome(suite.name, rule.text, _format(observed, rule.unit), passed, rule.severity, example)
                )
    report.seconds = time.perf_counter() - start
    return report


def _example(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():  # Spark gives a DOUBLE where DuckDB gives a BIGINT
        return str(int(value))
    return str(value)


def _catalog(wh) -> dict[str, set[str]]:
    """"schema.table" -> its columns, for the published schemas the suites read (as this command sees them)."""
    out: dict[str, set[str]] = {}
    for schema in ("raw", "marts"):
        for table, columns in wh.columns(schema).items():
            out[f"{schema}.{table}"] = set(columns)
    return out


def _measure(wh, suites: list[Suite]) -> pd.DataFrame:
    """One aggregate query per suite; all measured values side by side in one row (as floats: every
    engine gives its own numeric type, DECIMAL, BIGINT or DOUBLE)."""
    values: dict[str, float | None] = {}
    for suite in suites:
        select = ", ".join(f"({rule.sql}) as m{i}" for i, rule in enumerate(suite.rules))
        try:
            row = wh.rows(f"select {select} from {suite.from_sql}")[0]
        except Exception as exc:  # each driver has its own error class
            if isinstance(exc, PatientbaseError):
                raise
            raise PatientbaseError(
                f"Could not measure suite {suite.name} on {wh.engine}: {str(exc).strip().splitlines()[0]}. "
                "Does the warehouse hold the columns of CONTRACT §1/§2? Rebuild it with `patientbase build`."
            ) from None
        for rule, value in zip(suite.rules, row):
            values[f"{suite.name}.{rule.metric}"] = None if value is None else float(value)
    return pd.DataFrame([values])


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """GX logs, warns and may print; the command's own summary is all the console should show."""
    logger = logging.getLogger("great_expectations")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _validate(metrics: pd.DataFrame, suites: list[Suite], docs_dir: Path) -> dict[str, tuple[bool, Any]]:
    """Run every suite as one GX checkpoint over the metrics row and write the Data Docs to `docs_dir`.

    The Data Docs are built next to `docs_dir` and swapped in at the end, so a failed run never
    leaves a half-written folder. Returns, per metric column, whether its expectation passed and the
    value GX observed.
    """
    building = docs_dir.with_name(docs_dir.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    try:
        results = _run_checkpoint(metrics, suites, building)
        old = docs_dir.with_name(docs_dir.name + ".old")
        if docs_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
            docs_dir.rename(old)
        building.rename(docs_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return results


def _run_checkpoint(metrics: pd.DataFrame, suites: list[Suite], site_dir: Path) -> dict[str, tuple[bool, Any]]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    _main_has_a_file()
    with _quiet():
        import great_expectations as gx
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        # Ephemeral: suites, results and checkpoint live in memory; only the Data Docs are written.
        context = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                data_docs_sites={
                    "patientbase": {
                        "class_name": "SiteBuilder",
                        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
                    }
                },
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False),
            ),
        )
        batch = (
            context.data_sources.add_pandas("warehouse")
            .add_dataframe_asset("measured_values")
            .add_batch_definition_whole_dataframe("this check")
        )
        definitions = []
        for suite in suites:
            gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name))
            for rule in suite.rules:
                gx_suite.add_expectation(_expectation(gx, suite, rule))
            definitions.append(
                context.validation_definitions.add(gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite))
            )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(name="patientbase", validation_definitions=definitions, result_format="BASIC")
        )
        result = checkpoint.run(
            batch_parameters={"dataframe": metrics}, run_id=RunIdentifier(run_name="patientbase-check")
        )
        # One build for all results (GX's UpdateDataDocsAction would rebuild the site once per suite).
        context.build_data_docs(site_names=["patientbase"], resource_identifiers=list(result.run_results))

    out: dict[str, tuple[bool, Any]] = {}
    for suite_result in result.run_results.values():
        for expectation in suite_result.results:
            column = expectation.expectation_config.kwargs["column"]
            observed = expectation.result.get("observed_value")
            if expectation.exception_info and expectation.exception_info.get("raised_exception"):
                observed = f"GX error: {expectation.exception_info.get('exception_message')}"
            out[column] = (bool(expectation.success), observed)
    return out


def _main_has_a_file() -> None:
    """GX imports pyspark when it is installed, and pyspark (pyspark/sql/connect/utils.py) takes a
    `__main__` module without a file or spec for its own doctests: without pyarrow it prints "Skipping
    doctests" and calls sys.exit(0). Such a `__main__` is what `python -c` and pytest-xdist's workers
    have, so `check` would end the process as if everything had passed. A file name that runs nothing
    keeps it from taking us for its doctests."""
    import sys

    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None and not hasattr(main, "__file__"):
        main.__file__ = os.devnull


def _expectation(gx, suite: Suite, rule: Rule):
    column = f"{suite.name}.{rule.metric}"
    common = dict(column=column, description=rule.text, severity=_GX_SEVERITY[rule.severity],
                  meta={"sql": rule.sql, "from": suite.from_sql})
    if rule.min_value is not None and rule.max_value is None:
        return gx.expectations.ExpectColumnMinToBeBetween(min_value=rule.min_value, **common)
    return gx.expectations.ExpectColumnMaxToBeBetween(min_value=rule.min_value, max_value=rule.max_value, **common)


def _format(value: Any, unit: str) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and value != value):
        return "none"
    if unit == "share":
        return f"{value:.2%}"
    if unit == "ratio":
        return f"×{value:.2f}"
    if unit == "money":
        return f"{value:,.2f}"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.4g}"


# -- the summary ------------------------------------------------------------------------------------


def summary_lines(report: CheckReport, verbose: bool = False) -> list[str]:
    """The human summary: a one-line total, then the expectations that failed (all of them with
    `verbose`), what was skipped (with `verbose`) and where the Data Docs are."""
    total = len(report.outcomes)
    passed = sum(o.passed for o in report.outcomes)
    suites = len({o.suite for o in report.outcomes})
    lines = [
        f"Data-quality checks (Great Expectations): {passed} of {total} expectations passed in {suites} suites "
        f"({len(report.errors)} failed with severity error, {len(report.warnings)} with warn) "
        f"in {report.seconds:.1f} s."
    ]
    shown = [o for o in report.outcomes if verbose or not o.passed]
    if shown:
        width_suite = max(len(o.suite) for o in shown)
        width_text = max(len(o.text) for o in shown)
        lines.append(f"  {'suite':<{width_suite}}  {'expectation':<{width_text}}  {'observed':>12}  result  severity")
    for o in shown:
        result = "pass" if o.passed else "FAIL"
        line = f"  {o.suite:<{width_suite}}  {o.text:<{width_text}}  {o.observed:>12}  {result:<6}  {o.severity}"
        if o.example:
            line += f"  (e.g. {o.example})"
        if not o.passed:
            line = click.style(line, fg="red" if o.severity == ERROR else "yellow")
        lines.append(line)
    if verbose:
        for skipped in report.skipped:
            lines.append(f"  skipped: {skipped}")
    elif report.skipped:
        lines.append(f"  {len(report.skipped)} suite(s) skipped (not built or empty); `check --verbose` lists "
                     "every expectation and what was skipped.")
    if report.docs_index:
        lines.append(f"Data Docs: {report.docs_index}")
    return lines


def failure_message(report: CheckReport) -> str:
    failed = "; ".join(f"{o.suite}: {o.text} (observed {o.observed})" for o in report.errors[:5])
    more = f" and {len(report.errors) - 5} more" if len(report.errors) > 5 else ""
    return (
        f"Data-quality check failed: {len(report.errors)} expectation(s) of severity error did not pass: "
        f"{failed}{more}. Fix the export or the model named, reload or rebuild, and run `patientbase check` "
        f"again; details in the Data Docs at {report.docs_index}."
    )
