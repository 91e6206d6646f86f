"""Opening the DuckDB warehouse."""

from __future__ import annotations

import contextlib

import duckdb

from .config import Config
from .errors import PatientbaseError


@contextlib.contextmanager
def connect(cfg: Config, read_only: bool = False):
    """Open the warehouse file; explain a lock held by another process instead of a traceback."""
    path = cfg.warehouse_path
    if read_only and not path.exists():
        raise PatientbaseError(f"No warehouse at {path} yet: run `patientbase run --demo` or `patientbase load` first.")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise PatientbaseError(
            f"Cannot open the warehouse {path}: {exc}. Another patientbase run or a BI tool may hold it "
            "open for writing; wait for it to finish or close it."
        ) from None
    try:
        yield con
    finally:
        con.close()
