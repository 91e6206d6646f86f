"""Shared test helpers: run the CLI as a user would, in a temporary working directory."""

from __future__ import annotations

import contextlib
import shutil
import types
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from patientbase.cli import cli

FIXTURES = Path(__file__).parent / "fixtures"


class Workspace:
    """A clinic's working directory: config, warehouse and exports live here."""

    def __init__(self, root: Path):
        self.root = root
        self.warehouse = root / "patientbase.duckdb"

    def invoke(self, *args: str, expect: int | None = 0):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, f"exit {result.exit_code}, output:\n{result.output}"
        return result

    def config(self, text: str) -> None:
        (self.root / "patientbase.yml").write_text(text, encoding="utf-8")

    def copy_fixture(self, name: str) -> Path:
        target = self.root / name
        shutil.copytree(FIXTURES / name, target)
        return target

    def query(self, sql: str, params=None) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params=None):
        return self.query(sql, params)[0][0]


@contextlib.contextmanager
def workspace_at(root: Path):
    """A Workspace in `root`, with the working directory and warehouse variable set while open."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("PATIENTBASE_WAREHOUSE", str(root / "patientbase.duckdb"))
        yield Workspace(root)


@pytest.fixture(scope="session")
def clinic15_built(tmp_path_factory) -> Workspace:
    """clinic15 loaded and built as of 2025-07-01 once per test session (see fixtures/clinic15/README.md).
    Never used directly: each module works on its own copy (`clinic15`)."""
    with workspace_at(tmp_path_factory.mktemp("clinic15_built")) as w:
        w.invoke("load", str(w.copy_fixture("clinic15")))
        # the dbt unit tests run here (the daily build skips them); keep the output for a test to check
        w.build_output = w.invoke("build", "--as-of", "2025-07-01", "--all-tests").output
    return w


@pytest.fixture(scope="module")
def clinic15(clinic15_built, tmp_path_factory):
    """A private copy of the built clinic15 workspace for one test module, open as the working
    directory: what a module does to it (checks, exports, loads) no other module sees."""
    yield from private_copy(clinic15_built, tmp_path_factory.mktemp("clinic15"))


def private_copy(built: Workspace, root: Path):
    """`built`'s workspace copied into `root`, open as the working directory, with the output of the
    command that built it as if it had run there (its paths name `root`)."""
    shutil.copytree(built.root, root, dirs_exist_ok=True)
    with workspace_at(root) as w:
        w.build_output = built.build_output.replace(str(built.root), str(root))
        yield w


@pytest.fixture(scope="session")
def demo_run_built(tmp_path_factory) -> Workspace:
    """`patientbase run --demo --patients 1500`, once per session; modules use private copies."""
    with workspace_at(tmp_path_factory.mktemp("run_demo_built")) as w:
        w.build_output = w.invoke("run", "--demo", "--patients", "1500").output
    return w


@pytest.fixture(scope="module")
def demo_run(demo_run_built, tmp_path_factory):
    """A private copy of the demo's daily run for one module, and what `run` printed (as `.output`)."""
    for w in private_copy(demo_run_built, tmp_path_factory.mktemp("run_demo")):
        yield w, types.SimpleNamespace(output=w.build_output)


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Workspace:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATIENTBASE_WAREHOUSE", str(tmp_path / "patientbase.duckdb"))
    return Workspace(tmp_path)
