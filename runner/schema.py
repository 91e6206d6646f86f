"""The canonical raw input (CONTRACT §1): tables, columns, types, keys and allowed values.

This is the single declaration of the raw-table rules (keys, required columns, allowed values). Three
things follow from it:

* the loader validates every file against it (runner/load.py): a row with a broken key or required
  value, or a value outside the allowed set, is rejected;
* `patientbase check` measures the same rules on the warehouse's raw tables (runner/checks.py
  `raw_suites`, built from `rules()` below), whatever wrote them;
* the staging models' dbt tests on those columns (unique, not_null, accepted_values in
  models/staging/mis/_mis__models.yml) are generated from it by `python -m patientbase.staging_tests
  --write`; tests/test_raw_rules.py fails when the yml and this declaration disagree.

The dbt sources describe the same columns for humans. Types are the warehouse's: text, date,
timestamp, boolean, decimal, integer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SQL_TYPES = {
    "text": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
    "decimal": "DECIMAL(18,2)",
    "integer": "BIGINT",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "text"
    #: A row without a usable value here is rejected (keys, foreign keys, event time, money).
    required: bool = False
    #: Allowed values (compared lower-cased and trimmed); None = anything.
    accepted: tuple[str, ...] | None = None
    #: A boolean that must fail closed (opt-outs, death): a value in an unknown spelling counts as
    #: true (`value_assumed_true`), never as false or empty.
    fail_closed: bool = False
    #: The column's name in the staging model when staging renames it (scheduled_at -> visit_at).
    staging: str | None = None
    #: The allowed values as staging spells them, when not lower-case (sex: 'F', 'M').
    staging_values: tuple[str, ...] | None = None

    @property
    def staging_name(self) -> str:
        return self.staging or self.name

    @property
    def staging_accepted(self) -> tuple[str, ...] | None:
        return self.staging_values or self.accepted


@dataclass(frozen=True)
class Table:
    name: str
    required: bool
    columns: tuple[Column, ...]
    #: Natural key: a second row with the same key is a duplicate (rejected unless identical).
    key: tuple[str, ...] = field(default=())
    #: patientbase appends to this table itself: a file's rows are merged into it by key (as an
    #: incremental mapping does), never replacing it, so a reloaded file cannot erase recorded rows.
    merge_only: bool = False
    #: What one row is, in words ("every visit has a visit_id").
    noun: str = "row"
    #: Severity of "the export has rows" in `check`; None: an optional export, checked only when it
    #: has rows.
    expect_rows: str | None = None
    #: `check` measures these rules on the raw table (False: a table patientbase writes itself).
    checked: bool = True
    #: The staging model's key column when it is not the raw key (a surrogate key).
    staging_key: str | None = None

    @property
    def staging_model(self) -> str:
        return f"stg_mis__{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _c(name, type="text", required=False, accepted=None, fail_closed=False, staging=None, staging_values=None):
    return Column(name, type, required, tuple(accepted) if accepted else None, fail_closed, staging,
                  tuple(staging_values) if staging_values else None)


VISIT_STATUSES = ("completed", "no_show", "cancelled", "scheduled")
PLAN_STATUSES = ("proposed", "accepted", "in_progress", "completed", "declined", "cancelled")
CALL_RESULTS = ("booked", "callback", "no_answer", "refused", "wrong_number")

TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "patients",
            required=True,
            key=("patient_id",),
            noun="card",
            expect_rows="error",
            columns=(
                _c("patient_id", required=True),
                _c("last_name"),
                _c("first_name"),
                _c("middle_name"),
                _c("birth_date", "date"),
                _c("sex", accepted=("f", "m"), staging_values=("F", "M")),
                _c("phone"),
                _c("email"),
                _c("branch_id"),
                _c("source_channel"),
                _c("referred_by_patient_id"),
                _c("created_at", "timestamp"),
                _c("do_not_call", "boolean", fail_closed=True),
                _c("do_not_message", "boolean", fail_closed=True),
                _c("is_deceased", "boolean", fail_closed=True),
                _c("loyalty_member_since", "date"),
            ),
        ),
        Table(
            "visits",
            required=True,
            key=("visit_id",),
            noun="visit",
            expect_rows="error",
            columns=(
                _c("visit_id", required=True),
                _c("patient_id", required=True),
                _c("scheduled_at", "timestamp", required=True, staging="visit_at"),
                _c("status", required=True, accepted=VISIT_STATUSES),
                _c("doctor_id"),
                _c("specialty"),
                _c("branch_id"),
                _c("booked_at", "timestamp"),
            ),
        ),
        Table(
            "visit_services",
            required=False,
            # the export's line id when it has one; else the loader makes one from visit + service +
            # the n-th distinct line for them in the file (runner/load.py _service_line_keys)
            key=("service_line_id",),
            noun="service line",
            staging_key="visit_service_id",
            columns=(
                _c("service_line_id"),
                _c("visit_id", required=True),
                _c("service_code"),
                _c("service_name"),
                _c("service_category"),
                _c("quantity", "integer"),
                _c("amount", "decimal", required=True),
            ),
        ),
        Table(
            "payments",
            required=False,  # a clinic without money data: created empty
            key=("payment_id",),
            noun="payment",
            expect_rows="warn",
            columns=(
                _c("payment_id", required=True),
                _c("patient_id", required=True),
                _c("visit_id"),
                _c("paid_at", "timestamp", required=True),
                _c("amount", "decimal", required=True),
                _c("method"),
            ),
        ),
        Table(
            "treatment_plans",
            required=False,
            key=("plan_id",),
            noun="plan",
            columns=(
                _c("plan_id", required=True),
                _c("patient_id", required=True),
                _c("doctor_id"),
                _c("specialty"),
                _c("created_at", "timestamp", required=True),
                _c("total_amount", "decimal"),
                _c("status", required=True, accepted=PLAN_STATUSES),
                _c("status_changed_at", "timestamp"),
            ),
        ),
        Table(
            "calls",
            required=False,
            key=("call_id",),
            noun="call",
            columns=(
                _c("call_id", required=True),
                _c("patient_id", required=True),
                _c("operator_id"),
                _c("called_at", "timestamp", required=True),
                _c("duration_s", "integer"),
                _c("result", required=True, accepted=CALL_RESULTS),
                _c("action_code"),
                _c("comment"),
            ),
        ),
        # written by patientbase itself when a call list is exported (the arms of every list, for the
        # uplift of the calls); a demo or a migration may load it from call_assignments.csv
        Table(
            "call_assignments",
            required=False,
            key=("list_date", "patient_id", "action_code"),
            merge_only=True,
            noun="assignment",
            checked=False,  # patientbase's own record of its lists, not an MIS export
            staging_key="call_assignment_id",
            columns=(
                _c("list_date", "date", required=True),
                _c("patient_id", required=True),
                _c("action_code", required=True),
                _c("trigger_date", "date"),
                _c("arm", required=True, accepted=("call", "control")),
                _c("list_rank", "integer"),
                _c("operator_id"),
                _c("expected_value", "decimal"),
                _c("recorded_at", "timestamp"),
            ),
        ),
        Table(
            "marketing_spend",
            required=False,
            key=("month", "channel"),
            noun="spend row",
            staging_key="marketing_spend_id",
            columns=(
                _c("month", "date", required=True, staging="spend_month"),
                _c("channel", required=True, staging="source_channel"),
                _c("amount", "decimal", required=True),
            ),
        ),
    ]
}

#: Columns the loader adds to every raw table (provenance for data-quality messages).
LOADER_COLUMNS = (("_source_file", "VARCHAR"), ("_source_line", "BIGINT"))
#: Columns the loader adds to raw.patients (phone normalisation needs Python's phonenumbers).
PHONE_COLUMNS = (("phone_e164", "VARCHAR"), ("phone_status", "VARCHAR"))


# -- the rules that follow from the declaration ----------------------------------------------------


@dataclass(frozen=True)
class RawRule:
    """One rule of a raw table: `kind` is `rows` (the export has rows), `required` (no row without a
    value in `columns[0]`), `unique` (the key `columns` is unique) or `accepted` (`columns[0]` holds one
    of `values`, compared trimmed and lower-cased; a required column must have one)."""

    table: str
    kind: str
    columns: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    severity: str = "error"
    required: bool = False


def rules(table: Table) -> list[RawRule]:
    """The rules of `table`, in the order `check` lists them."""
    out: list[RawRule] = []
    if table.expect_rows:
        out.append(RawRule(table.name, "rows", severity=table.expect_rows))
    key = [table.column(k) for k in table.key]
    for column in key:
        if column.required:
            out.append(RawRule(table.name, "required", (column.name,), required=True))
    if table.key:
        out.append(RawRule(table.name, "unique", table.key))
    for column in table.columns:
        if column.accepted:
            out.append(RawRule(table.name, "accepted", (column.name,), column.accepted, required=column.required))
        elif column.required and column.name not in table.key:
            out.append(RawRule(table.name, "required", (column.name,), required=True))
    return out


def staging_tests(table: Table) -> dict[str, list]:
    """The dbt tests the declaration gives the staging model of `table`, per staging column, in the
    shape of a `data_tests:` list: the staging key unique and not null, every required column not
    null, every column with allowed values accepted_values (as staging spells them)."""
    out: dict[str, list] = {}
    key = table.staging_key or (table.column(table.key[0]).staging_name if len(table.key) == 1 else None)
    if key:
        out[key] = ["unique", "not_null"]
    for column in table.columns:
        tests = out.setdefault(column.staging_name, [])
        if column.required and "not_null" not in tests:
            tests.append("not_null")
        if column.accepted:
            tests.append({"accepted_values": {"arguments": {"values": list(column.staging_accepted)}}})
        if not tests:
            del out[column.staging_name]
    return out


#: The tests `staging_tests` owns; others on the same columns (relationships, …) are written by hand.
OWNED_TESTS = ("unique", "not_null", "accepted_values")
