"""The staging models' dbt tests that follow from the raw-table declaration (runner/schema.py).

`python -m patientbase.staging_tests` says whether models/staging/mis/_mis__models.yml carries exactly
the tests the declaration gives (exit 1 and the differences if not); `--write` rewrites the
`data_tests:` of those columns in place, keeping everything else of the file as it is (descriptions,
comments, the hand-written tests such as relationships, which it keeps after the generated ones).

The yml stays a plain, committed dbt properties file, so `dbt build` by hand runs the same tests;
tests/test_raw_rules.py fails when the two disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from .schema import OWNED_TESTS, TABLES, staging_tests

MODELS_YML = Path("models") / "staging" / "mis" / "_mis__models.yml"


def _kind(test) -> str:
    return test if isinstance(test, str) else next(iter(test))


def _owned(test) -> bool:
    return _kind(test) in OWNED_TESTS


def expected() -> dict[str, dict[str, list]]:
    """Staging model -> column -> the tests the declaration gives it."""
    return {table.staging_model: staging_tests(table) for table in TABLES.values()}


def differences(models_yml: Path) -> list[str]:
    """Where the yml's unique/not_null/accepted_values tests differ from the declaration's."""
    parsed = yaml.safe_load(models_yml.read_text(encoding="utf-8"))
    models = {m["name"]: m for m in parsed["models"]}
    out = []
    for model, columns in expected().items():
        if model not in models:
            out.append(f"{model}: not described in {models_yml.name}")
            continue
        described = {c["name"]: c for c in models[model].get("columns", [])}
        for name, tests in columns.items():
            if name not in described:
                out.append(f"{model}.{name}: column not described")
                continue
            have = [t for t in described[name].get("data_tests") or [] if _owned(t)]
            if have != tests:
                out.append(f"{model}.{name}: has {have}, the declaration gives {tests}")
        for name, column in described.items():
            if name not in columns and any(_owned(t) for t in column.get("data_tests") or []):
                # unique / not_null / accepted_values on a column the declaration does not cover are
                # fine (derived columns); on a raw column they would be a second declaration
                pass
    return out


def _tests_block(tests: list, indent: int) -> list[str]:
    """A `data_tests:` list written as the hand-written yml writes it: block mappings, lists of values
    in flow style with quoted strings (`values: ['F', 'M']`)."""
    pad = " " * indent
    lines = [f"{pad}data_tests:"]
    for test in tests:
        lines += _emit(test, indent + 2, "- ")
    return lines


def _emit(value, indent: int, lead: str = "") -> list[str]:
    pad = " " * indent
    if not isinstance(value, dict):
        return [f"{pad}{lead}{_scalar(value)}"]
    out = []
    for n, (key, item) in enumerate(value.items()):
        head = f"{pad}{lead if n == 0 else ' ' * len(lead)}{key}:"
        inner = indent + len(lead) + 2
        if isinstance(item, dict):
            out.append(head)
            out += _emit(item, inner)
        else:
            out.append(f"{head} {_scalar(item)}")
    return out


def _scalar(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join("'" + str(v).replace("'", "''") + "'" if isinstance(v, str) else str(v)
                               for v in value) + "]"
    return str(value)


def rewrite(text: str) -> str:
    """`text` (the models yml) with the declaration's tests on every declared column."""
    wanted = expected()
    current = {m["name"]: {c["name"]: c.get("data_tests") or [] for c in m.get("columns", [])}
               for m in yaml.safe_load(text)["models"]}
    lines = text.splitlines()
    out: list[str] = []
    model = None
    i = 0
    while i < len(lines):
        line = lines[i]
        top = re.match(r"^  - name: (\S+)\s*$", line)
        if top:
            model = top.group(1)
        col = re.match(r"^( {6})- name: (\S+)\s*$", line)
        if not (col and model in wanted and col.group(2) in wanted[model]):
            out.append(line)
            i += 1
            continue
        name = col.group(2)
        # the column's block: up to the next line indented like its `- name` or less
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > 6):
            end += 1
        while end > i + 1 and not lines[end - 1].strip():  # keep blank lines after the block
            end -= 1
        block = lines[i:end]
        kept: list[str] = []
        j = 0
        while j < len(block):
            if re.match(r"^ {8}data_tests:", block[j]):
                j += 1
                while j < len(block) and (len(block[j]) - len(block[j].lstrip()) > 8 or not block[j].strip()):
                    j += 1
                continue
            kept.append(block[j])
            j += 1
        tests = wanted[model][name] + [t for t in current[model].get(name, []) if not _owned(t)]
        out.extend(kept + _tests_block(tests, 8))
        i = end
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from .build import project_dir

    path = project_dir() / MODELS_YML
    if "--write" in argv:
        path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    diff = differences(path)
    for line in diff:
        print(line)
    if not diff:
        print(f"{path}: the staging tests follow runner/schema.py.")
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
