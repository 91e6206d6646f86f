"""`patientbase load`: validate export files and load them into the warehouse's `raw` schema.

Everything is set-based DuckDB SQL: the file is read by DuckDB's CSV reader as text, every value is
parsed in one pass, and each problem becomes a row of `raw.load_rejects` naming file, line, column,
the raw value and the reason. Nothing is lost silently:

* a row whose key, required value or CSV structure is broken is rejected whole (`row_rejected`);
* a bad optional value (say an impossible birth date) is emptied and the row kept (`value_nulled`);
* an exact repeat of an earlier row is dropped (`duplicate_dropped`); a second row with the same key
  but other content is rejected (`row_rejected`).

A table's file replaces that table (a full export). All tables of one load are written in a single
transaction, so a failed load leaves the warehouse as it was. Loading the same files again changes
nothing: a ledger of file hashes (`raw.load_ledger`) says the table already holds them.

Line numbers count CSV records with the header as line 1 (a value spanning two physical lines
counts once), the same way DuckDB's reader reports structural errors.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import duckdb
import pandas as pd

from .errors import PatientbaseError
from .mapping import FileFormat, Mapping, TableMapping, canonical, detect_encoding, matches, to_utf8, xlsx_format, xlsx_to_csv
from .phones import normalise_many
from .schema import LOADER_COLUMNS, PHONE_COLUMNS, SQL_TYPES, TABLES, Column, Table

@dataclass
class FileResult:
    table: str
    file: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    values_nulled: int = 0
    duplicates_dropped: int = 0
    skipped_unchanged: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    load_id: str
    files: list[FileResult]
    created_empty: list[str]
    ignored: list[str] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)


# --------------------------------------------------------------------------------------------------
# SQL building blocks


def q_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def q_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(q_str(v) for v in values) + "]"


def is_empty(expr: str) -> str:
    return f"({expr} is null or trim({expr}) = '')"


def parse_expr(expr: str, column: Column, fmt: FileFormat) -> str:
    """SQL that turns the raw text `expr` into the column's type, or NULL when it cannot."""
    v = f"nullif(trim({expr}), '')"
    if column.type == "text":
        return expr
    if column.type == "date":
        return f"cast(try_strptime({v}, {_sql_list(fmt.date_formats)}) as DATE)"
    if column.type == "timestamp":
        return f"try_strptime({v}, {_sql_list(fmt.timestamp_formats)})"
    if column.type == "boolean":
        return (
            f"case when lower({v}) in ({', '.join(q_str(x) for x in fmt.true_values)}) then true "
            f"when lower({v}) in ({', '.join(q_str(x) for x in fmt.false_values)}) then false end"
        )
    if column.type == "decimal":
        # Thousands separators (spaces, no-break spaces) are dropped; the decimal mark becomes '.'.
        cleaned = f"replace(replace({v}, ' ', ''), chr(160), '')"
        if fmt.decimal_separator != ".":
            cleaned = f"replace({cleaned}, {q_str(fmt.decimal_separator)}, '.')"
        return f"try_cast({cleaned} as DECIMAL(18,2))"
    if column.type == "integer":
        return f"try_cast({v} as BIGINT)"
    raise ValueError(f"unknown column type {column.type}")


def _expected(column: Column, fmt: FileFormat) -> str:
    if column.type == "date":
        return "a date like " + " or ".join(_example(f) for f in fmt.date_formats)
    if column.type == "timestamp":
        return "a date-time like " + " or ".join(_example(f) for f in fmt.timestamp_formats[:2])
    if column.type == "boolean":
        return "true/false (" + "/".join(fmt.true_values[:2] + fmt.false_values[:2]) + ")"
    if column.type == "decimal":
        return f"an amount like 1500{fmt.decimal_separator}00"
    if column.type == "integer":
        return "a whole number"
    return "text"


def _example(strftime_format: str) -> str:
    return dt.datetime(2024, 3, 31, 14, 30).strftime(strftime_format)


# --------------------------------------------------------------------------------------------------
# Reading one file


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_header(path: Path, fmt: FileFormat, display: str) -> list[str]:
    """The header row, stripped and lower-cased (the file is UTF-8 by now)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh, delimiter=fmt.delimiter, quotechar=fmt.quote), None)
    except UnicodeDecodeError as exc:
        raise PatientbaseError(
            f"{display}, line 1: the header is not valid UTF-8 ({exc.reason}). Save the export as UTF-8 "
            "or name its encoding in the mapping (encoding: cp1251, or auto)."
        ) from None
    if not header:
        raise PatientbaseError(f"{display}, line 1: the file is empty; expected a header row.")
    names = [h.strip().lower() for h in header]
    if len(names) == 1 and fmt.delimiter not in header[0] and any(d in header[0] for d in ";,\t"):
        raise PatientbaseError(
            f"{display}, line 1: the header is one column {header[0]!r}: the file is not delimited by "
            f"{fmt.delimiter!r}. Set `delimiter` in the mapping."
        )
    seen: set[str] = set()
    for i, name in enumerate(names, start=1):
        if not name:
            raise PatientbaseError(f"{display}, line 1, column {i}: the header has an empty column name.")
        if name in seen:
            raise PatientbaseError(f"{display}, line 1: column '{name}' appears twice in the header.")
        seen.add(name)
    return names


def _prepare(path: Path, tm: TableMapping, workdir: Path) -> tuple[Path, FileFormat]:
    """The UTF-8 CSV to read for this export file and its format (XLSX and other encodings are converted)."""
    fmt = tm.fmt
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        target = workdir / f"{path.stem}.{uuid.uuid4().hex[:6]}.csv"
        xlsx_to_csv(path, tm.sheet, target)
        return target, xlsx_format(fmt)
    encoding = fmt.encoding.lower().replace("_", "-")
    if encoding == "auto":
        encoding = detect_encoding(path)
    if encoding in ("utf-8", "utf8", "utf-8-sig"):
        return path, fmt
    target = workdir / f"{path.stem}.{uuid.uuid4().hex[:6]}.csv"
    to_utf8(path, encoding, target)
    return target, fmt


def _value_map_expr(ident: str, vmap: dict[str, str]) -> str:
    """Map export values (compared trimmed, lower-cased, ё as е) to canonical ones; others pass unchanged."""
    if not vmap:
        return ident
    key = f"replace(lower(trim({ident})), 'ё', 'е')"
    whens = " ".join(f"when {q_str(k)} then {q_str(v)}" for k, v in vmap.items())
    return f"case {key} {whens} else {ident} end"


def _stage_file(con: duckdb.DuckDBPyConnection, path: Path, read_path: Path, tm: TableMapping, table: Table,
                fmt: FileFormat, idx: int, result: FileResult, mapping_source: str = "mapping") -> tuple[str, list[str]]:
    """Read one file into temp view `_in_<idx>` with canonical column names, file and line; return its columns."""
    header = read_header(read_path, fmt, path.name)
    source_of: dict[str, str] = {}  # canonical column -> header column
    for col in table.column_names:
        export = next((name for name in tm.export_names(col) if name in header), None)
        if export is not None:
            source_of[col] = export
    missing = [c.name for c in table.columns if c.required and c.name not in source_of and c.name not in tm.constants]
    if missing:
        parts = []
        for c in missing:
            names = " or ".join(f"'{n}'" for n in tm.export_names(c))
            line = tm.lines.get("columns." + c)
            parts.append(names if c not in tm.columns else f"{names} (for {c}, {mapping_source} line {line})")
        raise PatientbaseError(
            f"{path.name}, line 1: required column(s) {', '.join(parts)} of table '{table.name}' are missing "
            f"from the header (found: {', '.join(header)}). Rename the column in the export or fix the "
            f"mapping{' (--mapping)' if not tm.columns else ''}."
        )
    absent = [c for c in table.column_names if c not in source_of and c not in tm.constants]
    if absent:
        result.notes.append(f"no column {', '.join(absent)}: loaded as empty")
    columns = "{" + ", ".join(f"{q_str(h)}: 'VARCHAR'" for h in header) + "}"
    staged, rej_e, rej_s = f"_in_{idx}", f"_rej_errors_{idx}", f"_rej_scans_{idx}"
    con.execute(
        f"""
        create or replace temp table _read_{idx} as
        select *
        from read_csv({q_str(str(read_path))}, auto_detect = false, header = true, columns = {columns},
                      delim = {q_str(fmt.delimiter)}, quote = {q_str(fmt.quote)}, escape = {q_str(fmt.quote)},
                      store_rejects = true,
                      rejects_table = {q_str(rej_e)}, rejects_scan = {q_str(rej_s)})
        """
    )
    # The temp table keeps the file's order (insertion order is preserved), so rowid gives each record
    # its position for free, where row_number() over () forced a single-threaded pass (6.5 s of a
    # 10M-row file). Rowids inside a transaction start at an offset: subtract the first. Should they
    # ever not be one contiguous run, number the rows the slow, certain way.
    first, last, count = con.execute(f"select min(rowid), max(rowid), count(*) from _read_{idx}").fetchone()
    read_table = f"_read_{idx}"
    if count and last - first + 1 == count:
        position = f"(read.rowid - {int(first)} + 1)"
    else:
        read_table = f"_read_{idx}_numbered"
        con.execute(f"create or replace temp table {read_table} as "
                    f"select *, row_number() over (order by rowid) as _rn from _read_{idx}")
        position = "read._rn"
    # Structural errors (wrong number of fields, broken quotes): reject the record with DuckDB's line.
    con.execute(
        f"""
        create or replace temp table _struct_{idx} as
        select line, column_name, csv_line, error_type, error_message from {rej_e}
        """
    )
    con.execute(
        f"""
        insert into _issues
        select {q_str(path.name)}, line, column_name, null, csv_line,
               lower(replace(error_type, '_', ' ')) || ': ' || error_message, 'row_rejected'
        from _struct_{idx}
        """
    )
    # Good records are numbered in read order (`position`); skip the line numbers taken by rejected
    # records. With no structural error (the usual case) that is a cheap view; otherwise a small
    # correction per row.
    structural = con.execute(f"select count(*) from _struct_{idx}").fetchone()[0]
    used = set(source_of.values())
    projection = [
        f"{_value_map_expr('read.' + q_ident(src), tm.values.get(col, {}))} as {q_ident(col)}"
        for col, src in source_of.items()
        if col not in tm.constants
    ]
    projection += [f"{q_str(v)} as {q_ident(c)}" for c, v in tm.constants.items()]
    projection += [
        f"read.{q_ident(h)}" for h in header if h not in used and h not in table.column_names
    ]
    columns_out = [c for c in source_of if c not in tm.constants] + list(tm.constants) + [
        h for h in header if h not in used and h not in table.column_names
    ]
    if structural == 0:
        line = f"{position} + 1"  # position 1 is the record on line 2, after the header
        kind = "view"
        with_rejected = ""
    else:
        line = (f"{position} + 1 + (select count(*) from rejected "
                f"where rejected.line - rejected.nth - 1 < {position})")
        kind = "table"
        with_rejected = (
            f"with rejected as (select line, row_number() over (order by line) as nth "
            f"from (select distinct line from _struct_{idx}))"
        )
    con.execute(
        f"""
        create or replace temp {kind} {staged} as
        {with_rejected}
        select {', '.join(projection)}, {q_str(path.name)} as _source_file, {line} as _source_line
        from {read_table} as read
        """
    )
    for tmp in (f"_struct_{idx}", rej_e, rej_s):
        con.execute(f"drop table if exists {tmp}")
    return staged, columns_out


# --------------------------------------------------------------------------------------------------
# Validating and writing one table


def _validate_and_write(con, table: Table, staged: list[tuple[str, list[str]]], fmt: FileFormat,
                        phone_region: str, incremental: bool = False) -> None:
    """Union the staged files, record every problem in _issues, write raw.<table> from the good rows.

    One scan records the value problems, one aggregate finds repeated keys (a window runs only over
    the rows whose key repeats), and the good rows are parsed straight into the raw table.
    """
    all_columns = table.column_names + sorted(
        {h for _, header in staged for h in header} - set(table.column_names)
    )
    parts = []
    for name, header in staged:
        cols = ", ".join(
            (q_ident(c) if c in header else f"cast(null as VARCHAR) as {q_ident(c)}") for c in all_columns
        )
        parts.append(f"select {cols}, _source_file, _source_line from {name}")
    con.execute("create or replace temp view _in as " + " union all ".join(parts))

    record = "json_object(" + ", ".join(f"{q_str(c)}, {q_ident(c)}" for c in all_columns) + ")"
    checks = []
    for col in table.columns:
        ident = q_ident(col.name)
        action = "'row_rejected'" if col.required else "'value_nulled'"
        if col.required:
            checks.append((is_empty(ident), "'missing required value'", "'row_rejected'", col.name))
        if col.type != "text":
            checks.append(
                (
                    f"not {is_empty(ident)} and ({parse_expr(ident, col, fmt)}) is null",
                    q_str(f"not {_expected(col, fmt)}"),
                    action,
                    col.name,
                )
            )
        if col.accepted:
            checks.append(
                (
                    f"not {is_empty(ident)} and lower(trim({ident})) not in ({', '.join(q_str(a) for a in col.accepted)})",
                    q_str("unknown value; allowed: " + ", ".join(col.accepted)),
                    action,
                    col.name,
                )
            )
    if checks:
        con.execute(
            "insert into _issues "
            + " union all ".join(
                f"select _source_file, _source_line, {q_str(name)}, {q_ident(name)}, {record}, {reason}, {action} "
                f"from _in where {cond}"
                for cond, reason, action, name in checks
            )
        )
    con.execute(
        "create or replace temp table _drop as "
        "select distinct file_name, line from _issues where action = 'row_rejected'"
    )

    if table.key:
        _find_duplicates(con, table)

    phone_cols, phone_join = "", ""
    if table.name == "patients":
        _normalise_new_phones(con, phone_region)
        phone_cols = (
            ", lookup.phone_e164, case when _in.phone is null or trim(_in.phone) = '' then 'empty' "
            "else coalesce(lookup.phone_status, 'invalid') end as phone_status"
        )
        phone_join = (
            f"left join raw.phone_lookup as lookup on lookup.phone_raw = _in.phone and lookup.region = {q_str(phone_region)}"
        )

    def typed(col: Column) -> str:
        ident = f"_in.{q_ident(col.name)}"
        expr = parse_expr(ident, col, fmt)
        if col.accepted:
            expr = f"case when lower(trim({ident})) in ({', '.join(q_str(a) for a in col.accepted)}) then {expr} end"
        return f"cast({expr} as {SQL_TYPES[col.type]}) as {q_ident(col.name)}"

    extras = [f"_in.{q_ident(c)}" for c in all_columns if c not in table.column_names]
    select_typed = ", ".join([typed(c) for c in table.columns] + extras)
    target = f"raw.{q_ident(table.name)}"
    exists = table_exists(con, "raw", table.name)
    con.execute(
        f"""
        create or replace {'temp table _written' if incremental and exists else 'table ' + target} as
        select {select_typed}, _in._source_file, _in._source_line{phone_cols}
        from _in
        anti join _drop on _drop.file_name = _in._source_file and _drop.line = _in._source_line
        {phone_join}
        """
    )
    if incremental and exists:
        # upsert by key: the new version of a row replaces the old one; new extra columns are added
        have = {r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ?",
            [table.name]).fetchall()}
        for column_name, column_type in con.execute(
            "select column_name, data_type from information_schema.columns where table_name = '_written' "
            "and table_schema = 'temp' order by ordinal_position"
        ).fetchall():
            if column_name not in have:
                con.execute(f"alter table {target} add column {q_ident(column_name)} {column_type}")
        key = ", ".join(q_ident(k) for k in table.key)
        con.execute(f"delete from {target} where ({key}) in (select ({key}) from _written)")
        con.execute(f"insert into {target} by name select * from _written")
    else:
        con.execute(f"create or replace temp view _written as select _source_file from {target}")


def _find_duplicates(con, table: Table) -> None:
    """Record repeated keys among the rows not already rejected: an exact repeat of an earlier row is
    dropped, a row with the same key but other content is rejected. Adds both to _drop."""
    key = ", ".join(q_ident(k) for k in table.key)
    good = "(select * from _in anti join _drop on _drop.file_name = _in._source_file and _drop.line = _in._source_line)"
    con.execute(
        f"create or replace temp table _dup_keys as select {key} from {good} as good group by {key} having count(*) > 1"
    )
    if con.execute("select count(*) from _dup_keys").fetchone()[0] == 0:
        return
    content = "hash(" + ", ".join(q_ident(c) for c in table.column_names) + ")"
    key_text = " || ', ' || ".join(
        f"{q_str(k + '=')} || coalesce(cast({q_ident(k)} as VARCHAR), '')" for k in table.key
    )
    con.execute(
        f"""
        create or replace temp table _dups as
        select _source_file, _source_line, {key_text} as key_text, first_file, first_line,
               content_hash = first_hash as is_identical
        from (
            select *, {content} as content_hash,
                   row_number() over w as nth,
                   first_value(_source_file) over w as first_file,
                   first_value(_source_line) over w as first_line,
                   first_value({content}) over w as first_hash
            from {good} as good
            semi join _dup_keys using ({key})
            window w as (partition by {key} order by _source_file, _source_line)
        )
        where nth > 1
        """
    )
    con.execute(
        """
        insert into _issues
        select _source_file, _source_line, null, key_text, null,
               case when is_identical then 'exact duplicate of ' || first_file || ' line ' || first_line
                    else 'duplicate key (' || key_text || '): differs from ' || first_file || ' line ' || first_line
               end,
               case when is_identical then 'duplicate_dropped' else 'row_rejected' end
        from _dups
        """
    )
    con.execute("insert into _drop select _source_file, _source_line from _dups")


def _normalise_new_phones(con, region: str) -> None:
    """Parse (with libphonenumber) only the phone spellings never seen before; cache them in raw.phone_lookup."""
    con.execute(
        "create table if not exists raw.phone_lookup "
        "(phone_raw VARCHAR primary key, region VARCHAR, phone_e164 VARCHAR, phone_status VARCHAR)"
    )
    new = [
        r[0]
        for r in con.execute(
            """
            select distinct phone from _in
            where phone is not null and trim(phone) <> ''
              and phone not in (select phone_raw from raw.phone_lookup where region = ?)
            """,
            [region],
        ).fetchall()
    ]
    if not new:
        return
    rows = normalise_many(new, region)
    frame = pd.DataFrame(rows, columns=["phone_raw", "phone_e164", "phone_status"])
    frame.insert(1, "region", region)
    con.register("_new_phones", frame)
    con.execute("delete from raw.phone_lookup where phone_raw in (select phone_raw from _new_phones)")
    con.execute("insert into raw.phone_lookup select phone_raw, region, phone_e164, phone_status from _new_phones")
    con.unregister("_new_phones")


# --------------------------------------------------------------------------------------------------
# The load


def discover(paths: Iterable[str | Path], mapping: Mapping) -> tuple[dict[str, list[Path]], list[str]]:
    """Map table name -> files by the mapping's file patterns; also return the files no pattern matches.

    A folder is searched (not recursively) for files matching each table's pattern; a file given by
    name must match a pattern too.
    """
    found: dict[str, list[Path]] = {}
    ignored: list[str] = []
    for raw_path in paths:
        path = Path(raw_path)
        if path.is_dir():
            for candidate in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "~$"))):
                table = matches(mapping, candidate.name)
                if table:
                    found.setdefault(table, []).append(candidate)
                else:
                    ignored.append(candidate.name)
        elif path.is_file():
            table = matches(mapping, path.name)
            if table is None:
                expected = "; ".join(f"{t}: {', '.join(tm.patterns)}" for t, tm in mapping.tables.items())
                raise PatientbaseError(
                    f"{path.name}: cannot tell which table this file is: it matches no file pattern of "
                    f"mapping {mapping.source} ({expected})."
                )
            found.setdefault(table, []).append(path)
        else:
            raise PatientbaseError(f"{path}: no such file or folder.")
    return found, ignored


def ensure_raw_schema(con) -> None:
    con.execute("create schema if not exists raw")
    con.execute(
        """
        create table if not exists raw.load_rejects (
            load_id VARCHAR, loaded_at TIMESTAMP, table_name VARCHAR, file_name VARCHAR, line BIGINT,
            column_name VARCHAR, raw_value VARCHAR, reason VARCHAR, action VARCHAR, raw_record VARCHAR)
        """
    )
    con.execute(
        """
        create table if not exists raw.load_ledger (
            load_id VARCHAR, loaded_at TIMESTAMP, table_name VARCHAR, file_name VARCHAR, sha256 VARCHAR,
            size_bytes BIGINT, rows_loaded BIGINT, rows_rejected BIGINT, is_current BOOLEAN)
        """
    )


def create_empty(con, table: Table) -> None:
    cols = [f"{q_ident(c.name)} {SQL_TYPES[c.type]}" for c in table.columns]
    cols += [f"{n} {t}" for n, t in LOADER_COLUMNS]
    if table.name == "patients":
        cols += [f"{n} {t}" for n, t in PHONE_COLUMNS]
    con.execute(f"create table raw.{q_ident(table.name)} ({', '.join(cols)})")


def table_exists(con, schema: str, name: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchone()[0]
    )


def load(
    con: duckdb.DuckDBPyConnection,
    paths: Iterable[str | Path],
    mapping: Mapping | None = None,
    phone_region: str = "RU",
    max_reject_share: float = 0.05,
    progress: Callable[[str], None] | None = None,
) -> LoadResult:
    """Load export files into `raw` in one transaction; see the module docstring for the rules."""
    say = progress or (lambda _msg: None)
    mapping = mapping or canonical()
    files, ignored = discover(paths, mapping)
    if not files:
        expected = "; ".join(f"{t}: {', '.join(tm.patterns)}" for t, tm in mapping.tables.items())
        raise PatientbaseError(
            f"No export files found. With mapping {mapping.source} the files are expected as: {expected}."
        )
    load_id = uuid.uuid4().hex[:12]
    loaded_at = dt.datetime.now().replace(microsecond=0)
    results: list[FileResult] = []
    created_empty: list[str] = []
    con.execute("begin transaction")
    try:
        with tempfile.TemporaryDirectory(prefix="patientbase-load-") as workdir:
            ensure_raw_schema(con)
            for name, table in TABLES.items():
                tm = mapping.tables[name]
                table_files = sorted(files.get(name, []))
                if not table_files:
                    if not table_exists(con, "raw", name):
                        if table.required:
                            raise PatientbaseError(
                                f"Required table '{name}' has no file: expected {' or '.join(tm.patterns)} "
                                f"in the export folder{tm.where('table')}."
                            )
                        create_empty(con, table)
                        created_empty.append(name)
                    continue
                incremental = tm.mode == "incremental"
                hashes = [(p, file_sha256(p)) for p in table_files]
                if incremental:  # a file already merged into the table is not merged again
                    seen = {r[0] for r in con.execute(
                        "select sha256 from raw.load_ledger where table_name = ?", [name]).fetchall()}
                    fresh = [(p, h) for p, h in hashes if h not in seen]
                    unchanged = table_exists(con, "raw", name) and not fresh
                else:
                    current = con.execute(
                        "select sha256 from raw.load_ledger where table_name = ? and is_current order by sha256", [name]
                    ).fetchall()
                    fresh = hashes
                    unchanged = table_exists(con, "raw", name) and sorted(h for _, h in hashes) == [r[0] for r in current]
                if unchanged:
                    for path, _ in hashes:
                        results.append(FileResult(name, path.name, skipped_unchanged=True))
                    say(f"{name}: unchanged since the last load")
                    continue
                for path, _ in hashes:
                    if (path, _) not in fresh:
                        results.append(FileResult(name, path.name, skipped_unchanged=True))
                say(f"{name}: reading {', '.join(p.name for p, _ in fresh)}")
                con.execute(
                    "create or replace temp table _issues (file_name VARCHAR, line BIGINT, column_name VARCHAR, "
                    "column_value VARCHAR, raw_record VARCHAR, reason VARCHAR, action VARCHAR)"
                )
                file_results = {p.name: FileResult(name, p.name) for p, _ in fresh}
                staged = []
                for i, (path, _) in enumerate(fresh):
                    read_path, read_fmt = _prepare(path, tm, Path(workdir))
                    staged.append(_stage_file(con, path, read_path, tm, table, read_fmt, i, file_results[path.name],
                                              mapping.source))
                if name == "patients":
                    say("patients: checking values and normalising phone numbers")
                # parse with the mapping's formats and ISO ones (XLSX date cells arrive as ISO text)
                _validate_and_write(con, table, staged, xlsx_format(tm.fmt), phone_region, incremental)
                if name == "calls":
                    merge_outcomes_into_calls(con)
                if not incremental:
                    con.execute("delete from raw.load_rejects where table_name = ?", [name])
                con.execute(
                    """
                    insert into raw.load_rejects
                    select ?, ?, ?, file_name, line, column_name, column_value, reason, action, raw_record from _issues
                    """,
                    [load_id, loaded_at, name],
                )
                stats = dict(
                    ((f, a), n)
                    for f, a, n in con.execute(
                        "select file_name, action, count(distinct line) from _issues group by all"
                    ).fetchall()
                )
                nulled = dict(
                    con.execute(
                        "select file_name, count(*) from _issues where action = 'value_nulled' group by all"
                    ).fetchall()
                )
                loaded = dict(con.execute("select _source_file, count(*) from _written group by all").fetchall())
                if not incremental:
                    con.execute("update raw.load_ledger set is_current = false where table_name = ?", [name])
                for path, sha in fresh:
                    res = file_results[path.name]
                    res.rows_loaded = loaded.get(path.name, 0)
                    res.rows_rejected = stats.get((path.name, "row_rejected"), 0)
                    res.duplicates_dropped = stats.get((path.name, "duplicate_dropped"), 0)
                    res.values_nulled = nulled.get(path.name, 0)
                    res.rows_read = res.rows_loaded + res.rows_rejected + res.duplicates_dropped
                    con.execute(
                        "insert into raw.load_ledger values (?, ?, ?, ?, ?, ?, ?, ?, true)",
                        [load_id, loaded_at, name, path.name, sha, path.stat().st_size, res.rows_loaded, res.rows_rejected],
                    )
                    results.append(res)
                    share = res.rows_rejected / res.rows_read if res.rows_read else 0.0
                    if share > max_reject_share:
                        raise PatientbaseError(
                            f"{path.name}: {res.rows_rejected:,} of {res.rows_read:,} rows ({share:.1%}) were rejected, "
                            f"more than the allowed {max_reject_share:.0%} (config max_reject_share). Nothing was "
                            "loaded. The first problems:\n" + _first_issues(con, path.name)
                        )
                _drop_temp_objects(con)
                say(f"{name}: {sum(loaded.values()):,} rows loaded")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return LoadResult(load_id, results, created_empty, ignored)


def merge_outcomes_into_calls(con) -> None:
    """Make raw.calls hold every call-list outcome loaded with `patientbase outcomes` (replacing an
    older version of the same call), so a newer MIS call export never loses them."""
    if not table_exists(con, "raw", "call_list_outcomes"):
        return
    con.execute("delete from raw.calls where call_id in (select call_id from raw.call_list_outcomes)")
    con.execute(
        """
        insert into raw.calls by name
        select call_id, patient_id, operator_id, called_at, duration_s, result, action_code, comment,
               list_file as _source_file, cast(null as BIGINT) as _source_line
        from raw.call_list_outcomes
        """
    )


def _drop_temp_objects(con) -> None:
    """Free the memory the staged text of a table holds before the next table is read."""
    for kind, name in con.execute(
        "select 'view', view_name from duckdb_views() where temporary and view_name like '\\_%' escape '\\' "
        "union all select 'table', table_name from duckdb_tables() where temporary and table_name like '\\_%' escape '\\' "
        "and table_name <> '_issues'"
    ).fetchall():
        con.execute(f"drop {kind} if exists {q_ident(name)}")


def _first_issues(con, file_name: str, limit: int = 5) -> str:
    rows = con.execute(
        """
        select line, column_name, column_value, reason from _issues
        where file_name = ? and action = 'row_rejected' order by line limit ?
        """,
        [file_name, limit],
    ).fetchall()
    return "\n".join(
        f"  line {line}" + (f", column {col}" if col else "") + (f" ({val!r})" if val is not None else "") + f": {reason}"
        for line, col, val, reason in rows
    )
