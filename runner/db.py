"""The runner's one way to run SQL against the warehouse, whatever the engine (`engine:` in patientbase.yml).

`open_warehouse(cfg)` gives a `Warehouse` over DuckDB (the file), PostgreSQL (psycopg2) or Spark (the
in-process SparkSession dbt-spark also uses). Commands write their SQL once, portably, naming the
published schemas as readers know them (`marts.call_list`, `raw.visits`, `intermediate.int_as_of_date`);
the layer points those names at the version the command must see:

* outside a writing command: the published version (`marts`);
* inside `warehouse.publishing()` (the Config it yields has `building=True`): the version being built,
  not yet published (`marts__next` on PostgreSQL, `marts__a`/`marts__b` on Spark; DuckDB's private copy
  of the file is already the version being built, so names stay as they are) - for each schema the
  command has written so far; a schema it has not written yet (standalone `predict` reads yesterday's
  features) is read where it is published.

Parameters are written `?` on every engine; a quoted identifier goes through `quote()` (Spark quotes
with backticks). Results come back the way DuckDB gives them: `rows()` as
tuples (dates as `datetime.date`, money as `Decimal`), `frame()` as a pandas DataFrame with DATE and
TIMESTAMP columns as datetime64 and DECIMAL columns as float64.

What stays engine-specific lives here and in runner/engine.py; the SQL of the commands does not branch
on the engine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import io
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd

from .config import Config
from .engine import engine_of

#: The schemas a command reads or writes; each is versioned by the engine's safe publishing.
SCHEMAS = ("raw", "staging", "intermediate", "marts", "predictions")
_QUALIFIED = re.compile(r"(?<![\w.\"'])(" + "|".join(SCHEMAS) + r")\.(?=[A-Za-z_\"`])")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Warehouse:
    """An open connection to the warehouse of one Config (see the module docstring)."""

    engine: str = "duckdb"

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.building = bool(getattr(cfg, "building", False))

    # -- names ---------------------------------------------------------------------------------------

    def schema(self, name: str) -> str:
        """The physical schema behind a published schema name for the version this command sees."""
        return name

    def sql(self, text: str) -> str:
        """`text` with every `schema.` of SCHEMAS pointed at this version's physical schema."""
        return _QUALIFIED.sub(lambda m: self.schema(m.group(1)) + ".", text)

    def relation(self, schema: str, table: str) -> str:
        return f"{self.schema(schema)}.{table}"

    def quote(self, name: str) -> str:
        """An identifier quoted for this engine (backticks on Spark, double quotes elsewhere)."""
        return _quote(name)

    def split(self, column: str, separator: str = ",") -> str:
        """A select-list expression giving one row per `separator`-separated part of a text column
        ('P01,P07' -> 'P01', 'P07'); use it alone in a subquery's select list and trim outside."""
        return f"unnest(string_split({column}, '{separator}'))"

    # -- reading -------------------------------------------------------------------------------------

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._fetch(self.sql(sql), list(params))[1]

    def records(self, sql: str, params: Sequence[Any] = ()) -> list[dict]:
        columns, rows = self._fetch(self.sql(sql), list(params))
        return [dict(zip(columns, row)) for row in rows]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        columns, rows = self._fetch(self.sql(sql), list(params))
        return _typed_frame(columns, rows)

    def columns(self, schema: str) -> dict[str, list[str]]:
        """Table -> its columns in order, for every table and view of a published schema."""
        out: dict[str, list[str]] = {}
        for table, column in self._catalog(self.schema(schema)):
            out.setdefault(table, []).append(column)
        return out

    def tables(self, schema: str) -> list[str]:
        """The tables and views of a published schema (this version's), sorted."""
        return [r[0] for r in self._fetch(
            "select distinct table_name from information_schema.tables where table_schema = ? order by table_name",
            [self.schema(schema)])[1]]

    def table_columns(self, schema: str, table: str) -> list[str]:
        """The columns of one table or view, in order ([] when it does not exist)."""
        return [r[0] for r in self._fetch(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position", [self.schema(schema), table])[1]]

    def column_types(self, schema: str, table: str) -> list[tuple[str, str]]:
        """(column, DuckDB type) of one table or view: the engine's declared types, as DuckDB names them."""
        rows = self._fetch(
            "select column_name, data_type, numeric_precision, numeric_scale from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position", [self.schema(schema), table])[1]
        return [(name, _duckdb_type(kind, precision, scale)) for name, kind, precision, scale in rows]

    def table_exists(self, schema: str, table: str) -> bool:
        return bool(self._fetch(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [self.schema(schema), table])[1][0][0])

    # -- writing -------------------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._execute(self.sql(sql), list(params))

    def write_frame(self, frame: pd.DataFrame, schema: str, table: str, types: dict[str, str]) -> None:
        """Replace `schema.table` of this version by `frame`; `types` maps each column to a portable SQL
        type (varchar, integer, bigint, double, date, timestamp, boolean, decimal(p,s))."""
        raise NotImplementedError

    def copy_csv(self, sql: str, path, delimiter: str = ";") -> bool:
        """Write the rows of `sql` into CSV file `path` straight from the engine, without passing them
        through Python: a header of the column names, `delimiter`, CRLF line ends, a cell quoted only
        where Python's csv module quotes it (QUOTE_MINIMAL), NULL as an empty cell; no BOM. Returns
        False when the engine cannot, and the caller writes the rows itself."""
        return False

    # -- engine hooks ----------------------------------------------------------------------------------

    def _fetch(self, sql: str, params: list) -> tuple[list[str], list[tuple]]:
        raise NotImplementedError

    def _execute(self, sql: str, params: list) -> None:
        raise NotImplementedError

    def _catalog(self, schema: str) -> list[tuple[str, str]]:
        return self._fetch(
            "select table_name, column_name from information_schema.columns where table_schema = ? "
            "order by table_name, ordinal_position", [schema])[1]

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------------
# DuckDB


class DuckDBWarehouse(Warehouse):
    engine = "duckdb"

    def __init__(self, cfg: Config, con):
        super().__init__(cfg)
        self.con = con

    def _fetch(self, sql, params):
        cursor = self.con.execute(sql, params)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        return columns, cursor.fetchall()

    def _execute(self, sql, params):
        self.con.execute(sql, params)

    def copy_csv(self, sql, path, delimiter=";"):
        def literal(text) -> str:
            return "'" + str(text).replace("'", "''") + "'"

        # comment '': DuckDB would otherwise quote a cell starting with '#', which Python's csv does not
        self.con.execute(
            f"copy ({self.sql(sql)}) to {literal(path)} (format csv, header true, delimiter {literal(delimiter)}, "
            "quote '\"', escape '\"', new_line '\r\n', comment '')")
        return True

    def frame(self, sql, params=()):  # DuckDB's own conversion is the reference (and the fastest)
        return self.con.execute(self.sql(sql), list(params)).df()

    def write_frame(self, frame, schema, table, types):
        name = f"_frame_{table}"
        self.con.register(name, frame)
        try:
            select = ", ".join(f"cast({_quote(c)} as {types[c]}) as {_quote(c)}" for c in frame.columns)
            self.con.execute(f"create schema if not exists {self.schema(schema)}")
            self.con.execute(f"create or replace table {self.relation(schema, table)} as select {select} from {name}")
        finally:
            self.con.unregister(name)


# ---------------------------------------------------------------------------------------------------
# PostgreSQL


class PostgresWarehouse(Warehouse):
    engine = "postgres"

    def __init__(self, cfg: Config, con):
        super().__init__(cfg)
        self.con = con

    def schema(self, name):
        return f"{name}__next" if self.building and self._has(f"{name}__next") else name

    def split(self, column, separator=","):
        return f"unnest(string_to_array({column}, '{separator}'))"

    def _has(self, schema: str) -> bool:
        if not hasattr(self, "_schemas"):
            with self.con.cursor() as cur:
                cur.execute("select nspname from pg_namespace")
                self._schemas = {r[0] for r in cur.fetchall()}
        return schema in self._schemas

    @staticmethod
    def _paramstyle(sql: str, params: list) -> str:
        return sql.replace("%", "%%").replace("?", "%s") if params else sql

    def _fetch(self, sql, params):
        with self.con.cursor() as cur:
            cur.execute(self._paramstyle(sql, params), params or None)
            columns = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall() if cur.description else []
        self.con.commit()
        return columns, rows

    def _execute(self, sql, params):
        with self.con.cursor() as cur:
            cur.execute(self._paramstyle(sql, params), params or None)
        self.con.commit()

    def write_frame(self, frame, schema, table, types):
        physical = self._writable_schema(schema)
        target = f"{physical}.{_quote(table)}"
        columns = ", ".join(f"{_quote(c)} {_pg_type(types[c])}" for c in frame.columns)
        buffer = io.StringIO()
        _whole_numbers(frame, types).to_csv(buffer, index=False, header=False, na_rep="\\N",
                                            date_format="%Y-%m-%d %H:%M:%S")
        buffer.seek(0)
        with self.con.cursor() as cur:
            cur.execute(f"create schema if not exists {physical}")
            cur.execute(f"drop table if exists {target}")
            cur.execute(f"create table {target} ({columns})")
            cur.copy_expert(f"copy {target} from stdin with (format csv, null '\\N')", buffer)
        self.con.commit()

    def _writable_schema(self, schema: str) -> str:
        """Inside a writing command every write goes to the new version, created on first use."""
        if self.building:
            physical = f"{schema}__next"
            if hasattr(self, "_schemas"):
                self._schemas.add(physical)
            return physical
        return schema

    def close(self):
        self.con.close()


def _pg_type(portable: str) -> str:
    kind = portable.strip().lower()
    return {"varchar": "text", "string": "text", "double": "double precision"}.get(kind, kind)


# ---------------------------------------------------------------------------------------------------
# Spark


class SparkWarehouse(Warehouse):
    engine = "spark"

    def __init__(self, cfg: Config, spark, building_version: str | None):
        super().__init__(cfg)
        self.spark = spark
        self.version = building_version  # a/b while building, None when reading the published views

    def schema(self, name):
        """While building, the version's database (`marts__b`) once this command has built it (or written
        that schema itself); before that the published one: a version left by an older build is not
        this command's and is never read."""
        if not (self.building and self.version):
            return name
        from .engine import spark_fresh

        # the other version's databases exist too, with the tables of two runs ago: only what this
        # command wrote is read there (runner/engine.py keeps the list)
        return f"{name}__{self.version}" if name in spark_fresh(self.cfg) else name

    def quote(self, name):
        return "`" + name.replace("`", "``") + "`"

    def split(self, column, separator=","):
        return f"explode(split({column}, '{re.escape(separator)}'))"

    def _fetch(self, sql, params):
        result = self.spark.sql(sql, args=params) if params else self.spark.sql(sql)
        columns = result.columns
        return columns, [tuple(row) for row in result.collect()]

    def _execute(self, sql, params):
        self.spark.sql(sql, args=params) if params else self.spark.sql(sql)

    def _catalog(self, schema):
        out = []
        for table in self._tables(schema):
            out.extend((table, c.name) for c in self.spark.catalog.listColumns(f"{schema}.{table}"))
        return out

    def _tables(self, physical: str) -> list[str]:
        if not self.spark.catalog.databaseExists(physical):
            return []
        return sorted(t.name for t in self.spark.catalog.listTables(physical) if not t.isTemporary)

    def tables(self, schema):
        return self._tables(self.schema(schema))

    def table_columns(self, schema, table):
        if not self.table_exists(schema, table):
            return []
        return [c.name for c in self.spark.catalog.listColumns(f"{self.schema(schema)}.{table}")]

    def column_types(self, schema, table):
        if not self.table_exists(schema, table):
            return []
        return [(c.name, _duckdb_type(c.dataType)) for c in
                self.spark.catalog.listColumns(f"{self.schema(schema)}.{table}")]

    def table_exists(self, schema, table):
        physical = self.schema(schema)
        return self.spark.catalog.databaseExists(physical) and self.spark.catalog.tableExists(f"{physical}.{table}")

    def write_frame(self, frame, schema, table, types):
        from pyspark.sql.types import StringType, StructField, StructType

        from .engine import mark_written

        physical = f"{schema}__{self.version}" if self.building and self.version else schema
        self.spark.sql(f"create database if not exists {physical}")
        view = f"_frame_{table}"
        # every value as text (None for missing), cast by Spark: a column of nulls has no type to infer
        text = _whole_numbers(frame, types).astype(object)
        rows = [tuple(None if pd.isna(v) else _text(v) for v in row) for row in text.itertuples(index=False)]
        spark_schema = StructType([StructField(str(c), StringType(), True) for c in frame.columns])
        self.spark.createDataFrame(rows, spark_schema).createOrReplaceTempView(view)
        select = ", ".join(f"cast(`{c}` as {_spark_type(types[c])}) as `{c}`" for c in frame.columns)
        self.spark.sql(f"drop table if exists {physical}.{table}")
        self.spark.sql(f"create table {physical}.{table} using parquet as select {select} from {view}")
        self.spark.catalog.dropTempView(view)
        if self.building and self.version:
            mark_written(self.cfg, schema)


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _whole_numbers(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Integer columns as pandas' nullable Int64: a column of integers with a missing value is float in
    pandas and would be written `3.0`, which an integer column of PostgreSQL refuses."""
    out = frame.copy()
    for column in frame.columns:
        if types[column].strip().lower() in ("integer", "int", "bigint", "smallint"):
            out[column] = pd.to_numeric(out[column]).round().astype("Int64")
    return out


def _spark_type(portable: str) -> str:
    kind = portable.strip().lower()
    return {"varchar": "string", "text": "string", "integer": "int"}.get(kind, kind)


# ---------------------------------------------------------------------------------------------------


_DUCKDB_TYPES = {
    "integer": "INTEGER", "int": "INTEGER", "smallint": "SMALLINT", "tinyint": "TINYINT", "bigint": "BIGINT",
    "hugeint": "HUGEINT", "double precision": "DOUBLE", "double": "DOUBLE", "real": "FLOAT", "float": "FLOAT",
    "date": "DATE", "timestamp without time zone": "TIMESTAMP", "timestamp": "TIMESTAMP",
    "timestamp_ntz": "TIMESTAMP", "boolean": "BOOLEAN",
}


def _duckdb_type(kind: str, precision=None, scale=None) -> str:
    """An engine's column type as DuckDB names it: decimals keep their precision and scale (PostgreSQL's
    unconstrained numeric, a computed ratio, becomes DOUBLE); text and anything else VARCHAR."""
    kind = kind.strip().lower()
    if kind.startswith(("decimal", "numeric")):
        if "(" in kind:
            return kind.upper().replace("NUMERIC", "DECIMAL")
        return f"DECIMAL({precision},{scale})" if precision else "DOUBLE"
    return _DUCKDB_TYPES.get(kind, "VARCHAR")


def _typed_frame(columns: list[str], rows: list[tuple]) -> pd.DataFrame:
    """A DataFrame typed as DuckDB's `.df()` types it: dates/timestamps datetime64, decimals float."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for column in frame.columns:
        values = frame[column].dropna()
        if values.empty or frame[column].dtype != object:
            continue
        first = values.iloc[0]
        if isinstance(first, decimal.Decimal):
            frame[column] = frame[column].astype(float)
        elif isinstance(first, (dt.date, dt.datetime)):
            frame[column] = pd.to_datetime(frame[column])
    return frame


@contextlib.contextmanager
def loading_area(cfg: Config) -> Iterator[tuple[Warehouse, Any]]:
    """(warehouse, local DuckDB connection) for a command that reads the marts and writes raw tables.

    The raw tables' source of truth is the local DuckDB file (the loading area, see runner/engine.py):
    the connection writes there; `engine.push_raw(cfg)` afterwards copies raw into the engine. The
    warehouse reads the engine; on DuckDB it is the same file and the same connection.
    """
    from .warehouse import connect

    with connect(cfg) as con:
        if engine_of(cfg) == "duckdb":
            yield DuckDBWarehouse(cfg, con), con
            return
        with open_warehouse(cfg) as wh:
            yield wh, con


@contextlib.contextmanager
def open_warehouse(cfg: Config, read_only: bool = True) -> Iterator[Warehouse]:
    """The warehouse of `cfg` on its engine, closed at the end (see the module docstring)."""
    engine = engine_of(cfg)
    if engine == "duckdb":
        from .warehouse import connect

        with connect(cfg, read_only=read_only) as con:
            yield DuckDBWarehouse(cfg, con)
        return
    if engine == "postgres":
        from .engine import pg_connect

        wh = PostgresWarehouse(cfg, pg_connect(cfg))
    else:
        from .engine import _spark_state, spark_session

        building = bool(getattr(cfg, "building", False))
        wh = SparkWarehouse(cfg, spark_session(cfg), _spark_state(cfg)["building"] if building else None)
    try:
        yield wh
    finally:
        wh.close()
