"""Opening the DuckDB warehouse."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import os
import shutil
from pathlib import Path

import duckdb

from .config import Config
from .engine import publishing as engine_publishing
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


# ---------------------------------------------------------------------------------------------------
# Safe publishing: build a copy, swap it in only when everything passed


class RunLock:
    """An exclusive lock beside the warehouse (`<warehouse>.lock`), held for a whole writing command.

    The operating system releases it when the process ends, even when killed, so a crash never leaves
    the warehouse locked.
    """

    def __init__(self, warehouse: Path):
        self.path = warehouse.with_name(warehouse.name + ".lock")
        self._fh = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise PatientbaseError(
                f"Another patientbase command is already writing the warehouse {self.path.with_suffix('')} "
                f"({holder}). Wait for it to finish; two runs at once could otherwise publish a mix of both."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}, started {dt.datetime.now():%Y-%m-%d %H:%M:%S}")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def publishing(cfg: Config):
    """Yield a Config whose warehouse is a private copy (`<warehouse>.building`); on success swap it in.

    BI tools reading the warehouse keep seeing yesterday's complete file until the rename, which is
    atomic; a failed or killed command leaves the published warehouse untouched (a leftover copy is
    discarded by the next run). The lock makes a second concurrent command fail with a clear message.
    """
    live = cfg.warehouse_path
    staging = live.with_name(live.name + ".building")
    with RunLock(live):
        if staging.exists():  # a command that was killed left its copy; under the lock it is nobody's
            import click

            click.echo(f"Removed {staging.name}, the unfinished copy of an interrupted command.", err=True)
        _remove(staging, Path(f"{staging}.wal"))
        if live.exists():
            shutil.copyfile(live, staging)
            if Path(f"{live}.wal").exists():  # an unclean shutdown: carry the log so DuckDB replays it
                shutil.copyfile(f"{live}.wal", f"{staging}.wal")
        try:
            staged = dataclasses.replace(cfg, warehouse=str(staging), building=True)
            with engine_publishing(staged):  # PostgreSQL/Spark: a new version, published on success
                yield staged
        except PatientbaseError as exc:
            _remove(staging, Path(f"{staging}.wal"))
            kept = f"The published warehouse {live} was left as it was." if live.exists() else "Nothing was published."
            raise type(exc)(f"{exc.message}\n{kept}", exc.exit_code) from None
        except BaseException:
            _remove(staging, Path(f"{staging}.wal"))
            raise
        _checkpoint(staging)
        _remove(Path(f"{live}.wal"))
        os.replace(staging, live)


def _checkpoint(path: Path) -> None:
    """Fold any write-ahead log into the file so the single file we rename is complete."""
    con = duckdb.connect(str(path))
    try:
        con.execute("checkpoint")
    finally:
        con.close()
