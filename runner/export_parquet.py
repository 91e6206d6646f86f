"""`patientbase export parquet`: every table of the marts schema as one Parquet file, for BI tools that
cannot open a DuckDB file (Power BI, Tableau, a data lake, pandas on another machine).

DuckDB writes each file (`COPY … TO … (FORMAT parquet)`), to a temporary name in the target folder
that is renamed into place, so a reader never sees half a file and a failed export leaves yesterday's
file as it was. On a DuckDB warehouse it copies straight from a read-only connection to the published
file. On PostgreSQL and Spark each mart is read through the warehouse layer (runner/db.py) as Python
values, typed as the engine declares its columns (decimals keep their precision and scale; PostgreSQL's
unconstrained numeric, a computed ratio, is DOUBLE), and an in-memory DuckDB writes it with the same COPY:
pyarrow is not a dependency, and the writer, the compression and the integer rule below are the same
on every engine. Besides the marts of
CONTRACT §2 the schema holds the reference seeds the marts are labelled with (rfm_segments,
channel_map, …): they are exported too, so a BI tool can join the same labels.

Parquet has no 128-bit integer: DuckDB would write a HUGEINT column (what `sum()` of integers gives) as
DOUBLE, so such columns are cast to BIGINT, which every BI tool reads as a whole number; a value too
large for BIGINT fails the export loudly instead of losing digits.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
from .db import open_warehouse
from .engine import describe, engine_of
from .errors import PatientbaseError
from .warehouse import connect

SCHEMA = "marts"
WIDE_INTEGERS = ("HUGEINT", "UHUGEINT")


@dataclass
class ParquetFile:
    table: str
    rows: int
    path: Path


@dataclass
class ParquetExport:
    folder: Path
    files: list[ParquetFile] = field(default_factory=list)
    seconds: float = 0.0


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _select_list(con, relation: str) -> str:
    """The relation's columns, HUGEINT ones cast to BIGINT (see the module note)."""
    columns = con.execute(f"describe select * from {relation}").fetchall()
    quoted = ['"' + row[0].replace('"', '""') + '"' for row in columns]
    return ", ".join(
        f"cast({column} as bigint) as {column}" if row[1] in WIDE_INTEGERS else column
        for column, row in zip(quoted, columns, strict=True)
    )


def _write(con, relation: str, target: Path) -> int:
    """COPY `relation` of the DuckDB connection `con` to `target` as Parquet, atomically; the row count."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        rows = con.execute(
            f"copy (select {_select_list(con, relation)} from {relation}) to {_sql_string(tmp)} "
            "(format parquet, compression zstd)"
        ).fetchone()[0]
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return rows


@contextlib.contextmanager
def _sources(cfg: Config):
    """Yield (tables of the marts schema, a function table -> (DuckDB connection, relation) to copy from)."""
    if engine_of(cfg) == "duckdb":
        with connect(cfg, read_only=True) as con:
            yield (_duckdb_tables(con), lambda table: (con, f'"{SCHEMA}"."{table}"'))
        return
    import duckdb
    import pandas as pd

    with open_warehouse(cfg) as wh, contextlib.closing(duckdb.connect()) as local:
        def source(table: str):
            # the engine's declared column types, so a Parquet column is typed as the mart, not as its values
            types = wh.column_types(SCHEMA, table)
            frame = pd.DataFrame(wh.rows(f"select * from {SCHEMA}.{table}"), columns=[c for c, _ in types],
                                 dtype=object)
            local.register("_rows", frame)
            local.execute("create or replace temp table _mart as select "
                          + ", ".join(f'cast("{c}" as {kind}) as "{c}"' for c, kind in types) + " from _rows")
            local.unregister("_rows")
            return local, "_mart"

        yield wh.tables(SCHEMA), source


def _duckdb_tables(con) -> list[str]:
    return [r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = ? order by table_name", [SCHEMA]
    ).fetchall()]


def export_parquet(cfg: Config, out_dir: Path | None = None,
                   progress: Callable[[str], None] | None = None) -> ParquetExport:
    """Write <out_dir>/<table>.parquet for every table and view of the marts schema."""
    start = time.perf_counter()
    folder = (out_dir or cfg.exports_path / "parquet").expanduser().resolve()
    result = ParquetExport(folder)
    with _sources(cfg) as (tables, source):
        if not tables:
            raise PatientbaseError(
                f"The warehouse ({describe(cfg)}) has no {SCHEMA} yet: run `patientbase build` first."
            )
        folder.mkdir(parents=True, exist_ok=True)
        for table in tables:
            if progress:
                progress(f"Writing {SCHEMA}.{table}.parquet")
            target = folder / f"{table}.parquet"
            con, relation = source(table)
            result.files.append(ParquetFile(table, _write(con, relation, target), target))
    result.seconds = time.perf_counter() - start
    return result
