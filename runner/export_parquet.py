"""`patientbase export parquet`: every table of the marts schema as one Parquet file, for BI tools that
cannot open a DuckDB file (Power BI, Tableau, a data lake, pandas on another machine).

DuckDB writes each file itself (`COPY … TO … (FORMAT parquet)`) from a read-only connection to the
published warehouse, to a temporary name in the target folder that is renamed into place, so a reader
never sees half a file and a failed export leaves yesterday's file as it was. Besides the marts of
CONTRACT §2 the schema holds the reference seeds the marts are labelled with (rfm_segments,
channel_map, …): they are exported too, so a BI tool can join the same labels.

Parquet has no 128-bit integer: DuckDB would write a HUGEINT column (what `sum()` of integers gives) as
DOUBLE, so such columns are cast to BIGINT, which every BI tool reads as a whole number; a value too
large for BIGINT fails the export loudly instead of losing digits.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
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


def _select_list(con, table: str) -> str:
    """The table's columns, HUGEINT ones cast to BIGINT (see the module note)."""
    columns = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [SCHEMA, table],
    ).fetchall()
    quoted = ['"' + name.replace('"', '""') + '"' for name, _ in columns]
    return ", ".join(
        f"cast({column} as bigint) as {column}" if data_type in WIDE_INTEGERS else column
        for column, (_, data_type) in zip(quoted, columns, strict=True)
    )


def export_parquet(cfg: Config, out_dir: Path | None = None,
                   progress: Callable[[str], None] | None = None) -> ParquetExport:
    """Write <out_dir>/<table>.parquet for every table and view of the marts schema."""
    start = time.perf_counter()
    folder = (out_dir or cfg.exports_path / "parquet").expanduser().resolve()
    result = ParquetExport(folder)
    with connect(cfg, read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = ? order by table_name", [SCHEMA]
        ).fetchall()]
        if not tables:
            raise PatientbaseError(
                f"The warehouse {cfg.warehouse_path} has no {SCHEMA} yet: run `patientbase build` first."
            )
        folder.mkdir(parents=True, exist_ok=True)
        for table in tables:
            if progress:
                progress(f"Writing {SCHEMA}.{table}.parquet")
            target = folder / f"{table}.parquet"
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
            os.close(fd)
            try:
                relation = f'"{SCHEMA}"."{table}"'
                rows = con.execute(
                    f"copy (select {_select_list(con, table)} from {relation}) to {_sql_string(tmp)} "
                    "(format parquet, compression zstd)"
                ).fetchone()[0]
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
            result.files.append(ParquetFile(table, rows, target))
    result.seconds = time.perf_counter() - start
    return result
