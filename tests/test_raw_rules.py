"""The raw-table rules are declared once (runner/schema.py): the loader validates against the
declaration, `check` measures it (raw_suites) and the staging models' dbt tests are generated from it
(runner/staging_tests.py). These tests fail when one of them drifts from the declaration."""

from __future__ import annotations

import shutil
from pathlib import Path

from patientbase import staging_tests
from patientbase.checks import Settings, raw_suites
from patientbase.schema import TABLES, rules

ROOT = Path(__file__).resolve().parent.parent
MODELS_YML = ROOT / staging_tests.MODELS_YML


def test_the_staging_yml_carries_exactly_the_declared_tests():
    assert staging_tests.differences(MODELS_YML) == []
    # and rewriting it from the declaration changes nothing (the committed file is the generated one)
    text = MODELS_YML.read_text(encoding="utf-8")
    assert staging_tests.rewrite(text) == text


def test_a_drifted_yml_is_named_and_rewritten_back(tmp_path):
    drifted = tmp_path / "_mis__models.yml"
    shutil.copyfile(MODELS_YML, drifted)
    text = drifted.read_text(encoding="utf-8")
    # someone drops `not_null` from visits.patient_id and adds a status to the accepted values by hand
    broken = text.replace("values: ['completed', 'no_show', 'cancelled', 'scheduled']",
                          "values: ['completed', 'no_show', 'cancelled', 'scheduled', 'moved']", 1)
    at = broken.index("Card the appointment is for.")
    broken = broken[:at] + broken[at:].replace("          - not_null\n", "", 1)
    drifted.write_text(broken, encoding="utf-8")
    assert staging_tests.differences(drifted) == [
        "stg_mis__visits.patient_id: has [], the declaration gives ['not_null']",
        "stg_mis__visits.status: has ['not_null', {'accepted_values': {'arguments': {'values': "
        "['completed', 'no_show', 'cancelled', 'scheduled', 'moved']}}}], the declaration gives ['not_null', "
        "{'accepted_values': {'arguments': {'values': ['completed', 'no_show', 'cancelled', 'scheduled']}}}]",
    ]
    assert staging_tests.rewrite(broken) == text  # the relationships test of patient_id is kept
    assert staging_tests.main(["--write"]) == 0  # the repo's own file is already in order


def test_every_declared_rule_is_an_expectation_of_check():
    """Each rule of each checked table becomes one expectation of its raw suite, with its severity."""
    suites = {suite.name: suite for suite in raw_suites(Settings.from_config({}))}
    assert set(suites) == {f"raw.{name}" for name, table in TABLES.items() if table.checked}
    texts = {name: {rule.text: rule.severity for rule in suite.rules} for name, suite in suites.items()}
    assert texts["raw.visits"].items() >= {
        "the visits export has rows": "error", "every visit has a visit_id": "error", "visit_id is unique": "error",
        "every visit has a patient_id": "error", "every visit has a scheduled_at": "error",
        "status in {completed, no_show, cancelled, scheduled}": "error",
    }.items()
    assert texts["raw.payments"]["the payments export has rows"] == "warn"
    assert texts["raw.marketing_spend"]["one row per month and channel"] == "error"
    assert texts["raw.patients"]["sex in {f, m}"] == "error"
    for name, table in TABLES.items():
        if table.checked:
            declared = rules(table)
            metrics = [rule.metric for rule in suites[f"raw.{name}"].rules]
            assert len(metrics) == len(set(metrics)), name  # one GX column per rule
            assert len([m for m in metrics if m == "rows" or m.startswith(("missing_", "duplicate_", "unknown_"))]) \
                == len(declared), name
