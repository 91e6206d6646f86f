"""One warehouse, any engine: the hand-made clinics built on PostgreSQL and on Spark give every mart (and
every seed the marts read) equal, row for row, to DuckDB's.

Each clinic is built once per engine for the whole session (`built`). Values are normalised only where
engines legitimately differ: floats to 6 decimal places (binary noise), thousands separators in the
readable `reason` texts (DuckDB writes "120 000", the others "120000"), timestamps to ISO text. Money
is compared to the cent: a half-cent rounded differently is a failure.

PostgreSQL: the server named by PATIENTBASE_TEST_PG_HOST/PORT/USER/PASSWORD (.ci/run starts one); each
clinic gets its own database. Spark: pyspark and Java 17 on the machine; one in-process session, so one
clinic (clinic15), models and seeds only (its data and unit tests take many minutes on two cores). Without them the tests skip, saying why; with
PATIENTBASE_REQUIRE_ENGINES=1 (CI) a missing engine fails instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import os
import re
import shutil
import time
from pathlib import Path

import duckdb
import pytest
from conftest import workspace_at

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2025-07-01"
MARTS = sorted(p.stem for p in (ROOT / "models" / "marts").rglob("*.sql"))
SEEDS = sorted(p.stem for p in (ROOT / "seeds").glob("*.csv"))
# clinic -> (patientbase.yml vars, build with every test incl. the dbt unit tests)
CLINICS = {
    # predict's gradient boosting needs prediction_min_persons persons; clinic15 has 13, so it is lowered
    # to 5 on every engine: the hazard model (not only BG/NBD) is compared too (the models ignore the var)
    "clinic15": ("vars:\n  prediction_min_persons: 5\n", True),
    "actions": ("vars:\n  rfm_method: thresholds\n  transition_min_from_visits: 3\n", False),
}
SPARK_CLINICS = ("clinic15",)
TIMINGS: dict[str, float] = {}


def _unavailable(reason: str):
    if os.environ.get("PATIENTBASE_REQUIRE_ENGINES") == "1":
        pytest.fail(f"{reason} (PATIENTBASE_REQUIRE_ENGINES=1: CI must test every engine)")
    pytest.skip(reason)


def _pg_settings(dbname: str) -> dict:
    return {
        "host": os.environ.get("PATIENTBASE_TEST_PG_HOST", "127.0.0.1"),
        "port": int(os.environ.get("PATIENTBASE_TEST_PG_PORT", "5432")),
        "user": os.environ.get("PATIENTBASE_TEST_PG_USER", "postgres"),
        "password": os.environ.get("PATIENTBASE_TEST_PG_PASSWORD", ""),
        "dbname": dbname,
    }


def _pg_fresh_database(dbname: str) -> dict:
    try:
        import psycopg2
    except ImportError:
        _unavailable("psycopg2 is not installed: pip install -e '.[test,engines]'")
    conf = _pg_settings("postgres")
    try:
        con = psycopg2.connect(**{**conf, "password": conf["password"] or None}, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        _unavailable(f"no PostgreSQL at {conf['host']}:{conf['port']} ({str(exc).strip()}); "
                     "set PATIENTBASE_TEST_PG_HOST/PORT/USER/PASSWORD or run .ci/run")
    con.autocommit = True
    with contextlib.closing(con), con.cursor() as cur:
        cur.execute(f'drop database if exists "{dbname}" with (force)')
        cur.execute(f'create database "{dbname}"')
    return _pg_settings(dbname)


def _spark_check() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        _unavailable("pyspark is not installed: pip install -e '.[test,engines]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        _unavailable("no Java for Spark (Debian: apt-get install openjdk-17-jre-headless)")


def _yaml_block(values: dict) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}" for k, v in values.items()) + "}"


# ---------------------------------------------------------------------------------------------------
# Normalising rows

_THOUSANDS = re.compile(r"(?<=\d)[  ](?=\d{3}(?!\d))")


def _value(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float, decimal.Decimal)):
        out = round(float(v), 6)
        return 0.0 if out == 0 else out
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, str):
        return _THOUSANDS.sub("", v)
    if isinstance(v, (list, tuple)):
        return tuple(_value(x) for x in v)
    return str(v)


def _table(columns: list[str], rows) -> tuple[list[str], list[tuple]]:
    order = sorted(range(len(columns)), key=lambda i: columns[i].lower())
    cols = [columns[i].lower() for i in order]
    normal = [tuple(_value(row[i]) for i in order) for row in rows]
    normal.sort(key=lambda r: tuple((x is None, type(x).__name__, x if x is not None else 0) for x in r))
    return cols, normal


def _read_duckdb(w, relations) -> dict:
    out = {}
    with duckdb.connect(str(w.warehouse), read_only=True) as con:
        for name in relations:
            cur = con.execute(f"select * from marts.{name}")
            out[name] = _table([d[0] for d in cur.description], cur.fetchall())
    return out


def _read_postgres(conf, relations) -> dict:
    import psycopg2

    out = {}
    with contextlib.closing(psycopg2.connect(**{**conf, "password": conf["password"] or None})) as con, \
            con.cursor() as cur:
        for name in relations:
            cur.execute(f"select * from marts.{name}")
            out[name] = _table([d[0] for d in cur.description], cur.fetchall())
    return out


def _read_spark(cfg, relations) -> dict:
    from patientbase.engine import spark_session

    spark = spark_session(cfg)
    out = {}
    for name in relations:
        frame = spark.sql(f"select * from marts.{name}")
        out[name] = _table(frame.columns, [tuple(r) for r in frame.collect()])
    return out


# ---------------------------------------------------------------------------------------------------
# Built clinics, once per engine and clinic for the session

_BUILT: dict[tuple[str, str], dict] = {}


def _build(tmp_path_factory, engine: str, clinic: str) -> dict:
    key = (engine, clinic)
    if key in _BUILT:
        if isinstance(_BUILT[key], BaseException):
            raise _BUILT[key]
        return _BUILT[key]
    if engine == "postgres":
        conf = _pg_fresh_database(f"patientbase_test_{clinic}")
        engine_block = f"engine: postgres\npostgres: {_yaml_block(conf)}\n"
    elif engine == "spark":
        _spark_check()
        if clinic not in SPARK_CLINICS:
            pytest.skip(f"Spark builds {', '.join(SPARK_CLINICS)} only (one in-process session; ~3 min a build)")
        engine_block = None  # the warehouse dir sits in the workspace
    else:
        engine_block = ""
    vars_block, all_tests = CLINICS[clinic]
    root = tmp_path_factory.mktemp(f"{engine}-{clinic}")
    try:
        with workspace_at(root) as w:
            if engine_block is None:
                engine_block = f"engine: spark\nspark: {{method: session, warehouse_dir: '{root / 'spark'}'}}\n"
            w.config(engine_block + vars_block)
            start = time.perf_counter()
            w.invoke("load", str(w.copy_fixture(clinic)))
            if engine == "spark":
                # models and seeds only: the ~400 data tests and 18 unit tests are each a Spark job
                # (20-70 s a unit test on two busy cores); the marts they check are compared with
                # DuckDB's, and the unit tests' SQL is the same models' SQL
                args = ["build", "--as-of", AS_OF, "--exclude", "resource_type:test"]
            else:
                args = ["build", "--as-of", AS_OF] + (["--all-tests"] if all_tests else [])
            w.build_output = w.invoke(*args).output
            TIMINGS[f"{engine} {clinic}"] = time.perf_counter() - start
            relations = MARTS + SEEDS
            if engine == "duckdb":
                marts = _read_duckdb(w, relations)
            elif engine == "postgres":
                marts = _read_postgres(conf, relations)
            else:
                from patientbase.config import load_config

                marts = _read_spark(load_config(root / "patientbase.yml"), relations)
            _BUILT[key] = {"workspace": w, "marts": marts, "output": w.build_output}
    except BaseException as exc:  # a failed build fails every test of it, once, without rebuilding
        if not isinstance(exc, pytest.skip.Exception):
            _BUILT[key] = exc
        raise
    return _BUILT[key]


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    def get(engine: str, clinic: str) -> dict:
        return _build(tmp_path_factory, engine, clinic)

    yield get
    if TIMINGS:
        print("\nengine build times (load + build): " + ", ".join(f"{k} {v:.0f} s" for k, v in TIMINGS.items()))


# ---------------------------------------------------------------------------------------------------
# Tests


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["postgres", "spark"])
@pytest.mark.parametrize("clinic", list(CLINICS))
def test_build_runs_every_model_and_test_on_the_engine(built, engine, clinic):
    if engine == "spark" and clinic not in SPARK_CLINICS:
        pytest.skip(f"Spark builds {', '.join(SPARK_CLINICS)} only")
    counts = _counts(built(engine, clinic)["output"])
    expected = _counts(built("duckdb", clinic)["output"])
    if engine == "spark":  # no data tests or unit tests there (see _build)
        expected = {k: n for k, n in expected.items() if not k.startswith(("test ", "unit_test "))}
    assert counts == expected
    assert counts["model success"] == len(list((ROOT / "models").rglob("*.sql")))


def _counts(output: str) -> dict[str, int]:
    """'dbt build passed in 9.1 s (3 exposure no-op, 42 model success, …)' as {'model success': 42, …}."""
    listed = re.search(r"dbt build passed in [\d.]+ s \((.*)\)", output).group(1)
    return {kind: int(n) for n, kind in (item.split(" ", 1) for item in listed.split(", "))}


@pytest.mark.slow
@pytest.mark.parametrize("relation", MARTS + SEEDS)
@pytest.mark.parametrize("engine", ["postgres", "spark"])
@pytest.mark.parametrize("clinic", list(CLINICS))
def test_mart_equals_duckdb_row_for_row(built, engine, clinic, relation):
    if engine == "spark" and clinic not in SPARK_CLINICS:
        pytest.skip(f"Spark builds {', '.join(SPARK_CLINICS)} only")
    expected_cols, expected_rows = built("duckdb", clinic)["marts"][relation]
    cols, rows = built(engine, clinic)["marts"][relation]
    assert cols == expected_cols
    assert len(rows) == len(expected_rows)
    diff = [(a, b) for a, b in zip(rows, expected_rows) if a != b]
    assert not diff, f"{len(diff)} row(s) differ; first: {engine} {diff[0][0]} vs duckdb {diff[0][1]} ({cols})"


def test_the_comparison_can_fail():
    """The normalisation keeps a cent and a reordered list apart (a test that cannot fail is a defect)."""
    assert _table(["a"], [(decimal.Decimal("12.35"),)]) != _table(["a"], [(decimal.Decimal("12.34"),)])
    assert _table(["a"], [("A1,A2",)]) != _table(["a"], [("A2,A1",)])
    assert _table(["a"], [("due 120 000",)]) == _table(["a"], [("due 120000",)])
    assert _table(["a", "b"], [(1, 0.1 + 0.2)]) == _table(["b", "a"], [(0.3, 1)])


@pytest.mark.slow
def test_postgres_failed_build_leaves_the_published_schemas_as_they_were(built):
    """Safe publishing on PostgreSQL: a build that fails publishes nothing and leaves no new version
    behind; the marts read exactly as before. (Runs last: it breaks the clinic's raw visits.)"""
    import psycopg2

    clinic = built("postgres", "actions")
    conf = _pg_settings("patientbase_test_actions")
    schemas_sql = "select nspname from pg_namespace where nspname in ('raw', 'staging', 'intermediate', 'marts') " \
                  "or nspname like '%\\_\\_%' order by 1"
    with contextlib.closing(psycopg2.connect(**{**conf, "password": conf["password"] or None})) as con:
        with con.cursor() as cur:
            cur.execute(schemas_sql)
            assert [r[0] for r in cur.fetchall()] == ["intermediate", "marts", "raw", "staging"]
            # a visit without an id passes into staging but fails the build's tests
            cur.execute("update raw.visits set visit_id = null where visit_id = (select min(visit_id) from raw.visits)")
        con.commit()
    before = _read_postgres(conf, MARTS)
    assert before == {name: clinic["marts"][name] for name in MARTS}  # nothing changed since the build
    with workspace_at(clinic["workspace"].root) as w:
        result = w.invoke("build", "--as-of", AS_OF, expect=1)
    assert "dbt build failed" in result.output
    assert _read_postgres(conf, MARTS) == before
    with contextlib.closing(psycopg2.connect(**{**conf, "password": conf["password"] or None})) as con, \
            con.cursor() as cur:
        cur.execute(schemas_sql)
        assert [r[0] for r in cur.fetchall()] == ["intermediate", "marts", "raw", "staging"]


# ---------------------------------------------------------------------------------------------------
# check and predict on the engines (through runner/db.py), compared with DuckDB on the same clinic

_CHECKED: dict[str, str] = {}
_PREDICTED: dict[str, dict] = {}


def _check_output(built, engine: str) -> str:
    if engine not in _CHECKED:
        with workspace_at(built(engine, "clinic15")["workspace"].root) as w:
            _CHECKED[engine] = w.invoke("check", "--verbose").output
    return _CHECKED[engine]


def _outcomes(output: str) -> dict:
    from test_checks import outcomes

    return outcomes(output)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["postgres", "spark"])
def test_check_observes_the_same_values_as_duckdb(built, engine):
    """Every expectation of every suite (raw tables measured on the engine's raw, marts on its marts)
    observes the same value on the engine as on DuckDB, and passes the same way; the same suites are
    skipped."""
    expected = _check_output(built, "duckdb")
    got = _check_output(built, engine)
    assert _outcomes(got) == _outcomes(expected)
    assert len(_outcomes(got)) == 65
    assert "65 of 65 expectations passed in 16 suites (0 failed with severity error, 0 with warn)" in got
    skipped = sorted(line.strip() for line in got.splitlines() if line.strip().startswith("skipped:"))
    assert skipped == sorted(line.strip() for line in expected.splitlines() if line.strip().startswith("skipped:"))
    assert skipped == ["skipped: raw.calls (empty)", "skipped: raw.load_history (no previous load to compare with)"]


@pytest.mark.slow
def test_a_visit_before_birth_fails_the_same_expectation_on_postgres(built):
    """The broken input of test_checks.py, loaded into PostgreSQL's raw tables: the same expectation
    fails with the same observed value and example, and check exits 1."""
    import psycopg2

    clinic = built("postgres", "clinic15")
    conf = _pg_settings("patientbase_test_clinic15")
    with contextlib.closing(psycopg2.connect(**{**conf, "password": conf["password"] or None})) as con:
        with con.cursor() as cur:
            cur.execute("insert into raw.visits (visit_id, patient_id, scheduled_at, status) "
                        "values ('V9999', 'P03', '2009-12-01 10:00', 'cancelled')")
        con.commit()
        try:
            with workspace_at(clinic["workspace"].root) as w:
                result = w.invoke("check", "--verbose", expect=1)
        finally:
            with con.cursor() as cur:
                cur.execute("delete from raw.visits where visit_id = 'V9999'")
            con.commit()
    rows = _outcomes(result.output)
    assert rows[("raw.visits", "no visit before the patient's birth")] == (
        "1", "FAIL", "error", "(e.g. V9999 at 2009-12-01 10:00:00, born 2010-03-03)")
    assert rows[("raw.visits", "the visits export has rows")] == ("29", "pass", "error")
    assert "1 failed with severity error, 0 with warn" in result.output
    assert "Data-quality check failed: 1 expectation(s) of severity error did not pass: " \
           "raw.visits: no visit before the patient's birth (observed 1)" in result.output


def _predict(built, engine: str) -> dict:
    """Run `patientbase predict` on the engine's clinic15 once; the prediction marts read back."""
    if engine not in _PREDICTED:
        clinic = built(engine, "clinic15")
        with workspace_at(clinic["workspace"].root) as w:
            config = w.root / "patientbase.yml"
            output = w.invoke("predict").output
            relations = ["patient_predictions", "prediction_backtest"]
            if engine == "duckdb":
                marts = _read_duckdb(w, relations)
            elif engine == "postgres":
                marts = _read_postgres(_pg_settings("patientbase_test_clinic15"), relations)
            else:
                from patientbase.config import load_config

                marts = _read_spark(load_config(config), relations)
        _PREDICTED[engine] = {"output": output, "marts": marts}
    return _PREDICTED[engine]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["postgres", "spark"])
def test_predict_on_the_engine_equals_duckdb(built, engine):
    """Features read from the engine (in one defined order), the same models fitted, the scores and
    the backtest written into the engine's predictions schema and the marts rebuilt there: every row of
    patient_predictions and prediction_backtest equals DuckDB's (floats to 6 decimals, see _value).
    The gradient boosting fit is deterministic given the same frame (random_state=0, no early stopping
    under 2,000 rows), so no wider tolerance is needed. The tests below compare each engine's
    workspace with DuckDB's after this one: both have predicted."""
    expected = _predict(built, "duckdb")
    got = _predict(built, engine)
    assert "scored by return_hazard_gbm" in expected["output"]
    for relation in ("patient_predictions", "prediction_backtest"):
        cols, rows = got["marts"][relation]
        assert (cols, rows) == expected["marts"][relation], relation
    cols, rows = got["marts"]["patient_predictions"]
    assert len(rows) == 12  # every person with a completed visit (P06 never came)
    assert {row[cols.index("model_name")] for row in rows} == {"return_hazard_gbm"}
    cols, rows = got["marts"]["prediction_backtest"]
    models = {row[cols.index("model_name")] for row in rows}
    # at the backtest cutoff the hazard model is not fitted (too little history before it), on DuckDB too
    assert models == {"bg_nbd", "rfm_rules"}


@pytest.mark.slow
def test_unpublished_predictions_never_show_on_postgres(built, monkeypatch):
    """A predict whose rebuild fails: its scores sat in predictions__next only while it ran, readers saw
    the published ones throughout, and nothing of it is left or published afterwards."""
    import psycopg2
    from patientbase import build as build_module

    _predict(built, "postgres")
    clinic = built("postgres", "clinic15")
    conf = _pg_settings("patientbase_test_clinic15")

    def query(sql):
        with contextlib.closing(psycopg2.connect(**{**conf, "password": conf["password"] or None})) as con, \
                con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()

    # mark the published scores, so that new ones would be told apart
    with contextlib.closing(psycopg2.connect(**{**conf, "password": conf["password"] or None})) as con:
        with con.cursor() as cur:
            cur.execute("update predictions.patient_scores set model_name = 'published'")
        con.commit()
    seen = {}

    def failing_dbt(*args, **kwargs):
        seen["next"] = query("select model_name, count(*) from predictions__next.patient_scores group by 1")
        seen["live"] = query("select model_name, count(*) from predictions.patient_scores group by 1")
        return build_module.BuildResult(success=False, failures=["model boom: failed on purpose"])

    monkeypatch.setattr(build_module, "run_dbt", failing_dbt)
    with workspace_at(clinic["workspace"].root) as w:
        result = w.invoke("predict", expect=1)
    assert "failed on purpose" in result.output
    assert seen == {"next": [("return_hazard_gbm", 12)], "live": [("published", 12)]}
    assert query("select model_name, count(*) from predictions.patient_scores group by 1") == [("published", 12)]
    assert query("select nspname from pg_namespace where nspname like '%\\_\\_%' order by 1") == []
    # the marts were built from the published scores and were not touched either
    assert _read_postgres(conf, ["patient_predictions"]) == {
        "patient_predictions": _PREDICTED["postgres"]["marts"]["patient_predictions"]}
    # the scores as predict wrote them again, for the tests below that rebuild from them
    with contextlib.closing(psycopg2.connect(**{**conf, "password": conf["password"] or None})) as con:
        with con.cursor() as cur:
            cur.execute("update predictions.patient_scores set model_name = 'return_hazard_gbm'")
        con.commit()


# ---------------------------------------------------------------------------------------------------
# The commands after the build: the same files and figures on every engine
#
# On the built clinic15 of each engine: the headline summary, the segment files, the report's figures
# and the Parquet export equal DuckDB's (read-only commands; this test runs before the ones below, which
# change the workspace). Then the administrator's day: the list filled in (4 of its 7 rows called) goes
# back with `outcomes`, and `export call-list` publishes the next list; the calls, the recorded arms,
# call_outcomes and the list file equal DuckDB's after the same day. Spark reuses the one Spark
# workspace of the session (one in-process session per pytest process).

FILLED = [("записан", "14:10"), ("не дозвонились", "14:11"), ("перезвонить завтра", "14:12"), ("отказ", "14:13")]


def _wh_rows(w, sql: str) -> list[tuple]:
    """Rows of `sql` read through the runner's warehouse layer in workspace `w`, normalised."""
    from patientbase.config import load_config
    from patientbase.db import open_warehouse

    with workspace_at(w.root), open_warehouse(load_config(w.root / "patientbase.yml")) as wh:
        columns = [c.lower() for c in wh.frame(f"select * from ({sql}) as q where 1 = 0").columns]
        return _table(columns, wh.rows(sql))[1]


def _csv(path: Path) -> list[list[str]]:
    import csv

    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [[_THOUSANDS.sub("", cell) for cell in row] for row in csv.reader(fh, delimiter=";")]


def _report_text(path: Path) -> list[str]:
    """The report's words and figures (tiles, readings, titles), without the charts' scripts and without
    the two lines that name the time and the warehouse."""
    html = re.sub(r"<script.*?</script>", "", path.read_text(encoding="utf-8"), flags=re.S)
    text = [line.strip() for line in re.sub(r"<[^>]+>", "\n", html).splitlines() if line.strip()]
    text = [line for line in text if "every figure comes" not in line and "все цифры посчитаны" not in line]
    # the time it was generated ("generated 01.12.2026 04:56", "сформирован …") differs by a minute
    return [_THOUSANDS.sub("", re.sub(r"(\d\d\.\d\d\.\d{4}|\d{4}-\d\d-\d\d) \d\d:\d\d", "<time>", line)) for line in text]


def _readers(w) -> dict:
    from patientbase.config import load_config
    from patientbase.summary import headline

    with workspace_at(w.root):
        w.invoke("export", "segments", "--out", "out/segments")
        w.invoke("report", "--lang", "en", "--out", "out/report.html")
        parquet = w.invoke("export", "parquet", "--out", "out/parquet").output
        summary = headline(load_config(w.root / "patientbase.yml")).splitlines()
    segments = {p.name: _csv(p) for p in sorted((w.root / "out" / "segments").iterdir())}
    files = {p.stem: duckdb.sql(f"select count(*) from read_parquet('{p}')").fetchall()[0][0]
             for p in (w.root / "out" / "parquet").glob("*.parquet")}
    return {"segments": segments, "report": _report_text(w.root / "out" / "report.html"),
            "summary": [line for line in summary if not line.startswith("Warehouse:")],
            "parquet": re.sub(r" in [\d.]+ s\.$", "", parquet.strip().splitlines()[-1].split(" in /")[0]), "rows": files}


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["postgres", "spark"])
def test_summary_segments_report_and_parquet_equal_duckdb(built, engine):
    expected = _readers(built("duckdb", "clinic15")["workspace"])
    start = time.perf_counter()
    got = _readers(built(engine, "clinic15")["workspace"])
    TIMINGS[f"{engine} readers"] = time.perf_counter() - start
    assert got["summary"] == expected["summary"]
    assert "  built: 30 in intermediate, 32 in marts, 10 in staging" in got["summary"]
    assert got["segments"] == expected["segments"]
    assert [(name, len(rows) - 1) for name, rows in got["segments"].items()] == [
        ("segment_at_risk.csv", 2), ("segment_champions.csv", 1), ("segment_former_best.csv", 1),
        ("segment_lost.csv", 2), ("segment_new.csv", 3), ("segment_one_off.csv", 1), ("segment_potential.csv", 1)]
    assert got["report"] == expected["report"]
    # 1,304 rows before predict; the predict tests above (when selected) fill the two prediction marts
    predicted = expected["rows"]["patient_predictions"] + expected["rows"]["prediction_backtest"]
    assert predicted in (0, 12 + expected["rows"]["prediction_backtest"])
    assert got["parquet"] == expected["parquet"] == f"32 Parquet files ({1304 + predicted:,} rows)"
    assert got["rows"] == expected["rows"]


def _fill(listed: Path, filled: Path) -> None:
    import csv

    with listed.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    header = rows[0]
    for row, (result, at) in zip(rows[1:], FILLED):
        row[header.index("Результат")], row[header.index("Время звонка")] = result, at
    with filled.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh, delimiter=";").writerows(rows)


def _administrators_day(w, filled: Path, engine: str) -> dict:
    """outcomes, then the next list; DuckDB's `export call-list` rebuilds the list's models only, so its
    day has the `build` in between that PostgreSQL's and Spark's full rebuild of the version includes."""
    with workspace_at(w.root):
        loaded = w.invoke("outcomes", str(filled)).output
        if engine == "duckdb":
            w.invoke("build", "--as-of", AS_OF)
        listed = w.invoke("export", "call-list", "--out", "day").output
    return {
        "outcomes": loaded.strip().splitlines()[-1],
        "list": [line.split(" -> ")[0] for line in listed.strip().splitlines()[-7:]],
        "file": _csv(w.root / "day" / f"call_list_{AS_OF}.csv"),
        "calls": _wh_rows(w, "select call_id, patient_id, operator_id, called_at, result, action_code, comment "
                             "from raw.calls"),
        "arms": _wh_rows(w, "select list_date, patient_id, action_code, trigger_date, arm, list_rank, operator_id, "
                            "expected_value from raw.call_assignments"),
        "call_outcomes": _wh_rows(w, "select * from marts.call_outcomes"),
    }


_DUCKDB_DAY: dict = {}


def _duckdb_day(built, tmp_path_factory) -> dict:
    """The same day on a copy of the built DuckDB clinic15 (once per session)."""
    if not _DUCKDB_DAY:
        source = built("duckdb", "clinic15")["workspace"]
        root = tmp_path_factory.mktemp("duckdb-day")
        shutil.copy(source.warehouse, root / "patientbase.duckdb")
        # the same vars as the engines' workspaces
        shutil.copy(source.root / "patientbase.yml", root / "patientbase.yml")
        with workspace_at(root) as w:
            from patientbase.config import load_config
            from patientbase.db import open_warehouse
            from patientbase.export import export_call_list

            with open_warehouse(load_config(root / "patientbase.yml")) as wh:  # the list as published, unrecorded
                export_call_list(wh, root / "listed", ["admin1"], 50)
            _fill(root / "listed" / f"call_list_{AS_OF}.csv", root / "filled.csv")
            _DUCKDB_DAY.update(_administrators_day(w, root / "filled.csv", "duckdb"), filled=root / "filled.csv")
    return _DUCKDB_DAY


_ENGINE_DAY: dict = {}


def _engine_day(built, tmp_path_factory, engine: str) -> dict:
    """The day on the engine's built clinic15 (once per session: it changes the workspace)."""
    if engine not in _ENGINE_DAY:
        expected = _duckdb_day(built, tmp_path_factory)
        w = built(engine, "clinic15")["workspace"]
        start = time.perf_counter()
        _ENGINE_DAY[engine] = _administrators_day(w, expected["filled"], engine)
        TIMINGS[f"{engine} outcomes + call list"] = time.perf_counter() - start
    return _ENGINE_DAY[engine]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["postgres", "spark"])
def test_outcomes_and_the_next_call_list_equal_duckdb(built, tmp_path_factory, engine):
    expected = _duckdb_day(built, tmp_path_factory)
    got = _engine_day(built, tmp_path_factory, engine)
    assert got["outcomes"] == expected["outcomes"] == \
        "filled.csv: 4 calls loaded from 4 called rows; 3 rows not called yet. Run `patientbase build` to refresh call_outcomes."
    assert got["calls"] == expected["calls"]
    assert sorted(row[-1] for row in got["calls"]) == ["booked", "callback", "no_answer", "refused"]  # result
    assert got["call_outcomes"] == expected["call_outcomes"]
    assert got["file"] == expected["file"]
    assert got["list"] == expected["list"]
    assert got["arms"] == expected["arms"]
    assert len(got["file"]) - 1 == sum(1 for row in got["arms"] if row[1] == "call")  # arm


# ---------------------------------------------------------------------------------------------------
# `patientbase run` end to end: the daily job on each engine after the day above, equal to DuckDB's



def _daily_run(w) -> dict:
    from patientbase.config import load_config
    from patientbase.summary import headline

    with workspace_at(w.root):
        output = w.invoke("run", "clinic15", "--as-of", AS_OF).output
        summary = headline(load_config(w.root / "patientbase.yml")).splitlines()
    exports = w.root / "exports"
    return {
        "steps": [line.replace(str(w.root), "<workspace>") for line in output.splitlines()
                  if line.startswith(("Call assignments", "Call list for", "Segment files", "Report ("))],
        "summary": [line for line in summary if not line.startswith("Warehouse:")],
        "file": _csv(exports / f"call_list_{AS_OF}.csv"),
        "segments": {p.name: _csv(p) for p in sorted((exports / "segments").iterdir())},
        "report": _report_text(exports / "report.html"),
        "arms": _wh_rows(w, "select list_date, patient_id, action_code, trigger_date, arm, list_rank, operator_id, "
                            "expected_value from raw.call_assignments"),
        "predictions": _wh_rows(w, "select * from marts.patient_predictions"),
    }


_DUCKDB_RUN: dict = {}


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["postgres", "spark"])
def test_run_end_to_end_equals_duckdb(built, tmp_path_factory, engine):
    """The whole daily job (load, build, predict, check, record the arms, summary, call list, segment
    files, report) in the engine's workspace after the administrator's day, against the same on DuckDB."""
    day = _duckdb_day(built, tmp_path_factory)
    if not _DUCKDB_RUN:
        with workspace_at(day["filled"].parent) as reference:
            reference.copy_fixture("clinic15")
            _DUCKDB_RUN.update(_daily_run(reference))
    expected = _DUCKDB_RUN
    w = built(engine, "clinic15")["workspace"]
    _engine_day(built, tmp_path_factory, engine)  # the day above (already done when that test ran)
    start = time.perf_counter()
    got = _daily_run(w)
    TIMINGS[f"{engine} run"] = time.perf_counter() - start
    assert got["steps"][0].startswith("Call assignments recorded:")
    for key in ("steps", "summary", "file", "segments", "report", "arms", "predictions"):
        assert got[key] == expected[key], key
