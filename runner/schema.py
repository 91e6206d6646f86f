"""The canonical raw input (CONTRACT §1): tables, columns, types, keys and allowed values.

This is the single description the loader validates against; the dbt sources describe the same
columns for humans. Types are the warehouse's: text, date, timestamp, boolean, decimal, integer.
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

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _c(name, type="text", required=False, accepted=None, fail_closed=False):
    return Column(name, type, required, tuple(accepted) if accepted else None, fail_closed)


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
            columns=(
                _c("patient_id", required=True),
                _c("last_name"),
                _c("first_name"),
                _c("middle_name"),
                _c("birth_date", "date"),
                _c("sex", accepted=("f", "m")),
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
            columns=(
                _c("visit_id", required=True),
                _c("patient_id", required=True),
                _c("scheduled_at", "timestamp", required=True),
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
            columns=(
                _c("month", "date", required=True),
                _c("channel", required=True),
                _c("amount", "decimal", required=True),
            ),
        ),
    ]
}

#: Columns the loader adds to every raw table (provenance for data-quality messages).
LOADER_COLUMNS = (("_source_file", "VARCHAR"), ("_source_line", "BIGINT"))
#: Columns the loader adds to raw.patients (phone normalisation needs Python's phonenumbers).
PHONE_COLUMNS = (("phone_e164", "VARCHAR"), ("phone_status", "VARCHAR"))
