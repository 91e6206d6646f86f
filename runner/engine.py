"""The warehouse engine: DuckDB (default), PostgreSQL or Spark (`engine:` in patientbase.yml).

The loader always parses and validates the export files locally, in the DuckDB file (the loading
area: its ledger makes a reload a no-op). On PostgreSQL and Spark this module then pushes the typed
raw tables into the engine, points dbt at it through the repo's `profiles.yml` (environment
variables), and publishes each build safely:

* PostgreSQL: everything is written into `<schema>__next` schemas (`raw__next`, `staging__next`,
  `intermediate__next`, `marts__next`, `predictions__next`); at the end one transaction renames the
  live schemas away, the new ones in and drops the old ones. Readers see yesterday's schemas until the
  commit, today's after. A schema the command did not write (no load: no `raw__next`; no predict: no
  `predictions__next`) stays as it is and the new version reads the live one.
* Spark: two versions of every schema (`marts__a`, `marts__b`); a build writes the version that is not
  live, then the published schemas (`raw`, `staging`, `intermediate`, `marts`, `predictions`) get views
  over the new version. Spark has no multi-table transaction: while the views are being replaced (well
  under a second per view) a reader may see some views of the new version and some of the old. The
  predictions of the version being built start as a copy of the live ones (a build without predict
  keeps yesterday's scores, never the older version's).

Everything engine-specific in the runner lives here; the SQL differences live in dispatched dbt macros.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from .config import WAREHOUSE_ENV, Config
from .errors import ConfigError, PatientbaseError

ENGINES = ("duckdb", "postgres", "spark")
PUBLISHED_SCHEMAS = ("raw", "staging", "intermediate", "marts", "predictions")
#: the schemas dbt builds (the models' version); raw and predictions are written by the runner
MODEL_SCHEMAS = ("staging", "intermediate", "marts")
SUFFIX_ENV = "PATIENTBASE_SCHEMA_SUFFIX"
RAW_SUFFIX_ENV = "PATIENTBASE_RAW_SUFFIX"
PREDICTIONS_SUFFIX_ENV = "PATIENTBASE_PREDICTIONS_SUFFIX"

POSTGRES_DEFAULTS = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "", "dbname": "patientbase"}
SPARK_DEFAULTS = {"method": "session", "warehouse_dir": "spark-warehouse"}

# DuckDB type of a raw column -> PostgreSQL type
_PG_TYPES = {
    "VARCHAR": "text", "BIGINT": "bigint", "INTEGER": "integer", "DATE": "date", "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean", "DOUBLE": "double precision", "FLOAT": "real", "HUGEINT": "numeric",
}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def engine_of(cfg: Config) -> str:
    engine = (cfg.engine or "duckdb").lower()
    if engine not in ENGINES:
        raise ConfigError(f"engine: {cfg.engine!r} is not supported; use one of {', '.join(ENGINES)}.")
    return engine


def settings(cfg: Config) -> dict:
    """The engine's connection block of patientbase.yml over its defaults."""
    engine = engine_of(cfg)
    if engine == "postgres":
        out = {**POSTGRES_DEFAULTS, **(cfg.postgres or {})}
    elif engine == "spark":
        out = {**SPARK_DEFAULTS, **(cfg.spark or {})}
        if out["method"] != "session":
            raise ConfigError("spark: only `method: session` (Spark inside the patientbase process) is "
                              "supported so far; a thrift server is not.")
        out["warehouse_dir"] = str(Path(out["warehouse_dir"]).expanduser().resolve())
    else:
        out = {}
    return out


def describe(cfg: Config) -> str:
    """Where the published warehouse is, for the commands' last line."""
    engine = engine_of(cfg)
    conf = settings(cfg)
    if engine == "postgres":
        return (f"PostgreSQL {conf['host']}:{conf['port']}/{conf['dbname']} "
                "(schemas raw, staging, intermediate, marts, predictions)")
    if engine == "spark":
        return f"Spark, warehouse {conf['warehouse_dir']} (databases raw, staging, intermediate, marts, predictions)"
    return str(cfg.warehouse_path)


def dbt_env(cfg: Config, suffix: str = "", raw_suffix: str = "", predictions_suffix: str = "") -> dict[str, str]:
    """Environment variables profiles.yml and the models read for this engine."""
    engine = engine_of(cfg)
    env = {"PATIENTBASE_ENGINE": engine, WAREHOUSE_ENV: str(cfg.warehouse_path),
           SUFFIX_ENV: suffix, RAW_SUFFIX_ENV: raw_suffix, PREDICTIONS_SUFFIX_ENV: predictions_suffix}
    conf = settings(cfg)
    if engine == "postgres":
        env.update({f"PATIENTBASE_PG_{k.upper()}": str(conf[k]) for k in POSTGRES_DEFAULTS})
    elif engine == "spark":
        env["PATIENTBASE_SPARK_DIR"] = conf["warehouse_dir"]
    return env


@contextlib.contextmanager
def dbt_environment(cfg: Config):
    """Set the variables of `dbt_env` while dbt runs, then restore the previous ones."""
    if engine_of(cfg) == "postgres":
        # raw and predictions: this command's new version when it wrote one, else the live schema
        env = dbt_env(cfg, "__next", "__next" if _pg_schema_exists(cfg, "raw__next") else "",
                      "__next" if _pg_schema_exists(cfg, "predictions__next") else "")
    elif engine_of(cfg) == "spark":
        state = _spark_state(cfg)
        version = "__" + state["building"]
        env = dbt_env(cfg, version, version, version)
        _spark_register_raw(cfg, state)
    else:
        env = dbt_env(cfg)
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def models_built(cfg: Config) -> bool:
    """Whether the version a writing command works on holds every model: always on DuckDB (the private
    copy of the file); on PostgreSQL and Spark only once this command ran dbt (the new version starts
    empty on PostgreSQL, and on Spark holds the models of two runs ago)."""
    engine = engine_of(cfg)
    if engine == "postgres":
        return _pg_schema_exists(cfg, "intermediate__next")
    if engine == "spark":
        return bool(_spark_state(cfg)["built"])
    return True


def mark_written(cfg: Config, schema: str) -> None:
    """Spark: the runner wrote `schema` of the version being built (predictions), so it is published
    with it. (PostgreSQL publishes any `<schema>__next` there is; DuckDB the whole file.)"""
    if engine_of(cfg) == "spark":
        state = _spark_state(cfg)
        if schema not in state["fresh"]:
            state["fresh"].append(schema)
            _spark_save_state(cfg, state)


def spark_fresh(cfg: Config) -> list[str]:
    """Spark: the schemas of the version being built that this command wrote (the others are stale)."""
    return list(_spark_state(cfg)["fresh"])


# ---------------------------------------------------------------------------------------------------
# Pushing the raw tables


def _raw_tables(duck) -> list[tuple[str, list[tuple[str, str]]]]:
    tables = [r[0] for r in duck.execute(
        "select table_name from information_schema.tables where table_schema = 'raw' "
        "and table_type = 'BASE TABLE' order by table_name").fetchall()]
    out = []
    for table in tables:
        cols = duck.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = ? order by ordinal_position", [table]).fetchall()
        out.append((table, cols))
    return out


def push_raw(cfg: Config) -> None:
    """Copy every table of the local `raw` schema into the engine's new raw version (no-op on DuckDB)."""
    engine = engine_of(cfg)
    if engine == "duckdb":
        return
    import duckdb

    with duckdb.connect(str(cfg.warehouse_path), read_only=True) as duck, \
            tempfile.TemporaryDirectory(prefix="patientbase-push-") as tmp:
        tables = _raw_tables(duck)
        if engine == "postgres":
            _pg_push(cfg, duck, tables, Path(tmp))
        else:
            _spark_push(cfg, duck, tables)


# ---------------------------------------------------------------------------------------------------
# PostgreSQL


def pg_connect(cfg: Config):
    try:
        import psycopg2
    except ImportError:
        raise ConfigError("engine: postgres needs psycopg2: pip install 'patientbase[postgres]'.") from None
    conf = settings(cfg)
    try:
        return psycopg2.connect(host=conf["host"], port=int(conf["port"]), user=conf["user"],
                                password=conf["password"] or None, dbname=conf["dbname"])
    except psycopg2.OperationalError as exc:
        raise PatientbaseError(
            f"Cannot connect to PostgreSQL at {conf['host']}:{conf['port']} (database {conf['dbname']}, user "
            f"{conf['user']}): {str(exc).strip()}. Check the `postgres:` block of patientbase.yml."
        ) from None


def _pg_schema_exists(cfg: Config, schema: str) -> bool:
    with contextlib.closing(pg_connect(cfg)) as con, con.cursor() as cur:
        cur.execute("select 1 from pg_namespace where nspname = %s", [schema])
        return cur.fetchone() is not None


def _pg_type(duck_type: str) -> str:
    if duck_type.startswith("DECIMAL"):
        return duck_type.replace("DECIMAL", "numeric")
    return _PG_TYPES.get(duck_type, "text")


def _pg_push(cfg: Config, duck, tables, tmp: Path) -> None:
    """Write the raw tables into `raw__next`. A second push in the same command (call assignments or
    outcomes recorded after the build) refills the tables it already made in place, so the views the
    build made over them (staging) stay."""
    with contextlib.closing(pg_connect(cfg)) as con:
        with con.cursor() as cur:
            cur.execute("create schema if not exists raw__next")
            cur.execute("select table_name, string_agg(column_name || ' ' || data_type, ', ' order by ordinal_position) "
                        "from information_schema.columns where table_schema = 'raw__next' group by table_name")
            existing = dict(cur.fetchall())
            for table, cols in tables:
                columns = ", ".join(f"{_q(name)} {_pg_type(kind)}" for name, kind in cols)
                if table in existing and existing[table] == _pg_signature(cols):
                    cur.execute(f"truncate raw__next.{_q(table)}")
                else:
                    cur.execute(f"drop table if exists raw__next.{_q(table)} cascade")
                    cur.execute(f"create table raw__next.{_q(table)} ({columns})")
                csv_path = tmp / f"{table}.csv"
                # empty strings are written quoted and read back as '', NULLs unquoted and read as NULL
                duck.execute(f"copy (select * from raw.{_q(table)}) to '{csv_path}' (format csv, header false)")
                with csv_path.open("rb") as fh:
                    cur.copy_expert(f"copy raw__next.{_q(table)} from stdin with (format csv, null '')", fh)
        con.commit()


def _pg_signature(cols) -> str:
    """A raw table's columns as information_schema shows them once created (to know a refill is enough)."""
    shown = {"text": "text", "bigint": "bigint", "integer": "integer", "date": "date", "boolean": "boolean",
             "timestamp": "timestamp without time zone", "double precision": "double precision", "real": "real"}
    out = []
    for name, kind in cols:
        pg = _pg_type(kind)
        out.append(f"{name} {shown.get(pg, 'numeric' if pg.startswith('numeric') else pg)}")
    return ", ".join(out)


def _pg_begin(cfg: Config) -> None:
    """Drop what a failed or killed run left behind: a new version not published."""
    with contextlib.closing(pg_connect(cfg)) as con, con.cursor() as cur:
        for schema in PUBLISHED_SCHEMAS:
            cur.execute(f"drop schema if exists {schema}__next cascade")
        con.commit()


def _pg_publish(cfg: Config) -> None:
    """Swap every `<schema>__next` in for `<schema>` in one transaction and drop the old version."""
    with contextlib.closing(pg_connect(cfg)) as con, con.cursor() as cur:
        cur.execute("select nspname from pg_namespace")
        existing = {r[0] for r in cur.fetchall()}
        for schema in PUBLISHED_SCHEMAS:
            if f"{schema}__next" not in existing:
                continue
            cur.execute(f"drop schema if exists {schema}__old cascade")
            if schema in existing:
                cur.execute(f"alter schema {schema} rename to {schema}__old")
            cur.execute(f"alter schema {schema}__next rename to {schema}")
            if schema in existing:
                _pg_repoint_views(cur, f"{schema}__old", schema)
                cur.execute(f"drop schema {schema}__old cascade")
        con.commit()


def _pg_repoint_views(cur, old: str, new: str) -> None:
    """Views outside `old` that still read it (staging views built before this command's raw push, or
    the published ones when only raw changed: `outcomes`) are re-created over the same tables of
    `new`, in the publishing transaction, instead of being dropped with the old schema."""
    cur.execute(
        """
        select distinct view_ns.nspname, view_class.relname, pg_get_viewdef(view_class.oid)
        from pg_depend as dep
        join pg_rewrite as rule on rule.oid = dep.objid
        join pg_class as view_class on view_class.oid = rule.ev_class
        join pg_namespace as view_ns on view_ns.oid = view_class.relnamespace
        join pg_class as used on used.oid = dep.refobjid
        join pg_namespace as used_ns on used_ns.oid = used.relnamespace
        where used_ns.nspname = %s and view_ns.nspname <> %s and view_class.relkind = 'v'
        """,
        [old, old],
    )
    for schema, view, definition in cur.fetchall():
        definition = re.sub(rf'(?<![\w"]){old}\.', f"{new}.", definition).replace(f'"{old}".', f'"{new}".')
        cur.execute(f"create or replace view {_q(schema)}.{_q(view)} as {definition}")


def _pg_discard(cfg: Config) -> None:
    with contextlib.suppress(PatientbaseError):
        _pg_begin(cfg)


# ---------------------------------------------------------------------------------------------------
# Spark


def spark_session(cfg: Config):
    """The process's SparkSession, configured exactly as dbt-spark's `session` method configures it."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("engine: spark needs pyspark: pip install 'patientbase[spark]' (and Java 17).") from None
    import yaml

    from .build import project_dir

    env = dbt_env(cfg)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        profile = yaml.safe_load((project_dir() / "profiles.yml").read_text())
        params = profile["patientbase"]["outputs"]["spark"]["server_side_parameters"]
        from jinja2 import Template

        rendered = {k: Template(str(v)).render(env_var=lambda n, d="": os.environ.get(n, d)) for k, v in params.items()}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    rendered["spark.sql.ansi.enabled"] = "false"  # as dbt-spark sets it
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in rendered.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _spark_state_path(cfg: Config) -> Path:
    return Path(settings(cfg)["warehouse_dir"]) / "patientbase_versions.json"


def _spark_state(cfg: Config) -> dict:
    """live: the model version readers see (`a`/`b`); raw_live: the Parquet folder `raw` reads;
    pending_raw: a folder this run loaded, not yet published; version_raw: the folder each model
    version was built from; built: this run built models (into the version that is not live); fresh:
    the schemas of the building version this command wrote (raw, the models' schemas, predictions)."""
    path = _spark_state_path(cfg)
    state = {"live": None, "raw_live": None, "pending_raw": None, "version_raw": {}, "built": False, "fresh": []}
    if path.exists():
        state.update(json.loads(path.read_text()))
    state["building"] = "b" if state["live"] == "a" else "a"
    return state


def _spark_save_state(cfg: Config, state: dict) -> None:
    path = _spark_state_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: v for k, v in state.items() if k != "building"}))
    os.replace(tmp, path)


def _spark_push(cfg: Config, duck, tables) -> None:
    """Write each raw table as Parquet into a new folder (never rewritten: readers of the live raw
    tables keep reading theirs); it is published at the end of the command."""
    state = _spark_state(cfg)
    raw_dir = Path(settings(cfg)["warehouse_dir"]) / "raw_files" / uuid.uuid4().hex
    raw_dir.mkdir(parents=True)
    # Spark reads a Parquet timestamp without time zone as TIMESTAMP_NTZ; written as UTC instants (and
    # read in a UTC session) the clinic's local times arrive as plain TIMESTAMPs, unchanged
    duck.execute("set TimeZone = 'UTC'")
    for table, cols in tables:
        (raw_dir / table).mkdir()
        select = ", ".join(f"cast({_q(name)} as timestamptz) as {_q(name)}" if kind == "TIMESTAMP" else _q(name)
                           for name, kind in cols)
        duck.execute(f"copy (select {select} from raw.{_q(table)}) to '{raw_dir / table / 'part-0.parquet'}' "
                     "(format parquet)")
    state["pending_raw"] = str(raw_dir)
    _spark_save_state(cfg, state)


def _spark_register(spark, schema: str, raw_dir: str) -> None:
    spark.sql(f"create database if not exists {schema}")
    for table in sorted(p.name for p in Path(raw_dir).iterdir()):
        spark.sql(f"drop table if exists {schema}.{table}")
        spark.sql(f"create table {schema}.{table} using parquet location '{Path(raw_dir) / table}'")


def _spark_register_raw(cfg: Config, state: dict) -> None:
    """Register the raw tables the models of the building version read (this run's load, else the
    live one)."""
    raw_dir = state["pending_raw"] or state["raw_live"]
    if raw_dir is None:
        raise PatientbaseError("Nothing loaded into Spark yet: run `patientbase load` first.")
    spark = spark_session(cfg)
    _spark_register(spark, f"raw__{state['building']}", raw_dir)
    state["version_raw"][state["building"]] = raw_dir
    state["built"] = True
    if "predictions" not in state["fresh"]:
        _spark_copy_live_predictions(spark, state["building"])
    state["fresh"] = sorted(set(state["fresh"]) | {"raw", "predictions", *MODEL_SCHEMAS})
    _spark_save_state(cfg, state)


def _spark_copy_live_predictions(spark, building: str) -> None:
    """The building version's predictions start as the live ones (none if predict never ran): its
    models must not read the scores of two runs ago."""
    target = f"predictions__{building}"
    spark.sql(f"drop database if exists {target} cascade")
    if not spark.catalog.databaseExists("predictions"):
        return
    spark.sql(f"create database {target}")
    for row in spark.sql("show tables in predictions").collect():
        if not row.isTemporary:
            spark.sql(f"create table {target}.{row.tableName} using parquet as select * from predictions.{row.tableName}")


def _spark_begin(cfg: Config) -> None:
    state = _spark_state(cfg)
    if state["pending_raw"]:
        shutil.rmtree(state["pending_raw"], ignore_errors=True)
    state["pending_raw"], state["built"], state["fresh"] = None, False, []
    _spark_save_state(cfg, state)


def _spark_publish(cfg: Config) -> None:
    """Publish this run's raw tables and model version: `raw` tables over the new Parquet folder,
    views in `staging`/`intermediate`/`marts` over the version just built; then mark it live."""
    state = _spark_state(cfg)
    building = state["building"]
    spark = spark_session(cfg)
    if state["pending_raw"]:
        _spark_register(spark, "raw", state["pending_raw"])
        state["raw_live"] = state["pending_raw"]
    if state["built"]:
        for schema in PUBLISHED_SCHEMAS[1:]:
            version = f"{schema}__{building}"
            if schema not in state["fresh"] or not spark.catalog.databaseExists(version):
                continue
            spark.sql(f"create database if not exists {schema}")
            new = {row.tableName for row in spark.sql(f"show tables in {version}").collect()}
            for table in sorted(new):
                spark.sql(f"create or replace view {schema}.{table} as select * from {version}.{table}")
            for row in spark.sql(f"show tables in {schema}").collect():
                if row.tableName not in new and not row.isTemporary:
                    spark.sql(f"drop view if exists {schema}.{row.tableName}")
        state["live"] = building
    state["pending_raw"], state["built"], state["fresh"] = None, False, []
    _spark_save_state(cfg, state)
    keep = {state["raw_live"], *state["version_raw"].values()}
    root = Path(settings(cfg)["warehouse_dir"]) / "raw_files"
    if root.is_dir():
        for folder in root.iterdir():
            if str(folder) not in keep:
                shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# Publishing


@contextlib.contextmanager
def publishing(cfg: Config):
    """Around a writing command: start a new version in the engine, publish it only on success."""
    engine = engine_of(cfg)
    if engine == "duckdb":
        yield
        return
    if engine == "postgres":
        _pg_begin(cfg)
        try:
            yield
        except BaseException:
            _pg_discard(cfg)
            raise
        _pg_publish(cfg)
        return
    _spark_begin(cfg)
    try:
        yield
    except BaseException:
        _spark_begin(cfg)  # forget the unpublished load; the version built is simply not switched to
        raise
    _spark_publish(cfg)
