"""`patientbase load`: validate export files and load them into the warehouse's `raw` schema.

Everything is set-based DuckDB SQL: the reader (`runner/reader.py`) hands over each file as text with
every record's physical line (the lines that cannot be a record already rejected whole), every value
is parsed in one pass, and each problem becomes a row of `raw.load_rejects` naming file, line, column,
the raw value and the reason. Nothing is lost silently:

* a line that cannot be a record (broken quoting, stray CR, NUL, wrong field count) is rejected whole
  with its raw text; a row whose key or required value is broken is rejected whole (`row_rejected`);
* a bad optional value (say an impossible birth date) is emptied and the row kept (`value_nulled`);
* an opt-out or death flag in an unknown spelling is read as TRUE (`value_assumed_true`);
* an exact repeat of an earlier row is dropped (`duplicate_dropped`); a second row with the same key
  but other content is rejected (`row_rejected`).

A table's file replaces that table (a full export). All tables of one load are written in a single
transaction, so a failed load leaves the warehouse as it was; a full export that would shrink its
table below `min_keep_share` is refused. Loading the same files with the same mapping again changes
nothing: a ledger of file hashes and mapping fingerprints (`raw.load_ledger`) says the table holds them.

Line numbers are physical lines with the header as line 1 (a record spanning lines is numbered by its
first line).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from .errors import PatientbaseError
from .mapping import (
    FileFormat,
    Mapping,
    TableMapping,
    canonical,
    mapping_fingerprint,
    matches,
    xlsx_format,
    xlsx_to_csv,
)
from .phones import normalise_many
from .reader import LINE_COLUMN, ReadFile, read_parquet, read_text_file
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
    values_assumed_true: int = 0
    lines_read: int = 0  # physical data lines (header excluded)
    blank_lines: int = 0
    filtered_out: int = 0
    skipped_unchanged: bool = False
    notes: list[str] = field(default_factory=list)
    appendable: bool = False  # read without a line the reader had to reject: a longer export may be read from its tail
    read_from_line: int | None = None  # only the lines from here on were read (the rest were loaded before)
    keyed_by_position: bool = False  # visit_services without its own line id


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
        return ("a date like " + " or ".join(_example(f) for f in fmt.date_formats)
                + " (formats: mapping key date_formats)")
    if column.type == "timestamp":
        return ("a date-time like " + " or ".join(_example(f) for f in fmt.timestamp_formats[:3])
                + " (formats: mapping key timestamp_formats)")
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
    return file_digest(path).sha256


@dataclass
class FileDigest:
    """One pass over a file's bytes: its hash, its line feeds, and the hash of its first `prefix_bytes`."""

    sha256: str
    newlines: int
    ends_with_newline: bool
    prefix_bytes: int | None = None
    prefix_sha256: str | None = None


def file_digest(path: Path, prefix_bytes: int | None = None) -> FileDigest:
    h = hashlib.sha256()
    newlines, done, prefix_sha, last = 0, 0, None, b""
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            if prefix_bytes is not None and prefix_sha is None and done + len(chunk) >= prefix_bytes:
                cut = prefix_bytes - done
                h.update(chunk[:cut])
                prefix_sha = h.copy().hexdigest()
                h.update(chunk[cut:])
            else:
                h.update(chunk)
            newlines += chunk.count(b"\n")
            done += len(chunk)
            last = chunk
    if prefix_bytes == 0:
        prefix_sha = hashlib.sha256().hexdigest()
    return FileDigest(h.hexdigest(), newlines, last.endswith(b"\n"), prefix_bytes, prefix_sha)


def read_export(con: duckdb.DuckDBPyConnection, path: Path, tm: TableMapping, into: str, workdir: Path,
                tick=None) -> tuple[ReadFile, FileFormat]:
    """Read one export file (CSV/text in any encoding, XLSX, Parquet) into temp table `into` with the reader;
    `tick(done, total)` hears the data lines read."""
    fmt = tm.fmt
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        rf = read_parquet(con, path, into, path.name)
        if tick:
            tick(rf.physical_lines, rf.physical_lines)
        return rf, xlsx_format(fmt)
    kwargs = dict(workdir=workdir, display=path.name, max_record_lines=tm.max_record_lines,
                  max_field_chars=tm.max_field_chars, names=list(tm.names) if tm.names else None,
                  **({"tick": tick} if tick else {}))
    if suffix in (".xlsx", ".xlsm"):
        target = workdir / f"{path.stem}.{uuid.uuid4().hex[:6]}.csv"
        xlsx_to_csv(path, tm.sheet, target)
        try:
            return read_text_file(con, target, into, encoding="utf-8", delimiter=",", quote='"', **kwargs), xlsx_format(fmt)
        finally:
            target.unlink(missing_ok=True)
    whitespace = fmt.delimiter.lower() == "whitespace"
    return read_text_file(con, path, into, encoding=fmt.encoding, delimiter="," if whitespace else fmt.delimiter,
                          quote=fmt.quote, whitespace=whitespace, **kwargs), fmt


def _value_map_expr(ident: str, vmap: dict[str, str]) -> str:
    """Map export values (compared trimmed, lower-cased, ё as е) to canonical ones; others pass unchanged.

    A key `prefix:c` matches every value starting with c; `pattern:<regex>` every value the regular
    expression finds a match in. Exact keys are tried first, then prefixes and patterns in mapping order."""
    if not vmap:
        return ident
    key = f"replace(lower(trim({ident})), 'ё', 'е')"
    exact = {k: v for k, v in vmap.items() if not k.startswith(("prefix:", "pattern:"))}
    whens = [f"when {key} = {q_str(k)} then {q_str(v)}" for k, v in exact.items()]
    for k, v in vmap.items():
        if k.startswith("prefix:"):
            whens.append(f"when starts_with({key}, {q_str(k[len('prefix:'):].strip())}) then {q_str(v)}")
        elif k.startswith("pattern:"):
            whens.append(f"when regexp_matches({key}, {q_str(k[len('pattern:'):].strip())}) then {q_str(v)}")
    return f"case {' '.join(whens)} else {ident} end"


def _stage_file(con: duckdb.DuckDBPyConnection, path: Path, tm: TableMapping, table: Table, idx: int,
                result: FileResult, workdir: Path, mapping_source: str = "mapping",
                tick=None, line_offset: int = 0) -> tuple[str, list[str], FileFormat]:
    """Read one file into temp table `_in_<idx>` with canonical column names, file and line; return its columns.

    `line_offset`: the file is the appended tail of an export (its header, then the new lines), whose
    first new line is line `line_offset + 2` of the export; lines are reported as the export's."""
    rf, fmt = read_export(con, path, tm, f"_read_{idx}", workdir, tick)
    header = rf.header
    result.lines_read = rf.physical_lines
    result.blank_lines = rf.blank_lines
    result.appendable = not rf.rejects
    if not rf.fast:
        result.notes.append(
            f"read line by line ({rf.why}): {len(rf.rejects):,} line(s) that cannot be a record rejected whole, "
            "reading resumed at the next line")
    source_of = _header_sources(path, tm, table, header, mapping_source)
    derived = set(tm.exprs) | set(tm.constants)
    absent = [c for c in table.column_names if c not in source_of and c not in derived and c != "service_line_id"]
    if absent:
        result.notes.append(f"no column {', '.join(absent)}: loaded as empty")
    staged = f"_in_{idx}"
    if rf.rejects:
        _record_reader_rejects(con, path, rf.rejects, line_offset)
    read_table, line = _line_numbers(con, f"_read_{idx}", rf.line_from_column, header_lines=0 if tm.names else 1)
    if line_offset:
        line = f"{line} + {int(line_offset)}"
    projection, columns_out = _projection(tm, table, header, source_of)
    _create_staged_view(con, path, tm, header, staged, read_table, projection, line, result, mapping_source)
    if table.name == "visit_services" and "service_line_id" not in source_of and "service_line_id" not in derived:
        staged = _service_line_keys(con, staged, columns_out)
        columns_out = columns_out + ["service_line_id"]
        result.keyed_by_position = True
    return staged, columns_out, fmt


def _header_sources(path: Path, tm: TableMapping, table: Table, header: list[str], mapping_source: str) -> dict[str, str]:
    """Which header column holds each canonical column; a required column nowhere to be found fails."""
    source_of: dict[str, str] = {}  # canonical column -> header column
    for col in table.column_names:
        if col in tm.exprs:
            continue
        export = next((name for name in tm.export_names(col) if name in header), None)
        if export is not None:
            source_of[col] = export
    derived = set(tm.exprs) | set(tm.constants)
    missing = [c.name for c in table.columns if c.required and c.name not in source_of and c.name not in derived]
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
    return source_of


def _record_reader_rejects(con, path: Path, rejects, line_offset: int = 0) -> None:
    """The lines the reader could not make a record of go to _issues whole (row_rejected)."""
    frame = pd.DataFrame(
        [(path.name, r.line + line_offset, None, None, r.raw, r.reason, "row_rejected") for r in rejects],
        columns=["file_name", "line", "column_name", "column_value", "raw_record", "reason", "action"],
    ).astype({"column_name": "object", "column_value": "object"})
    con.register("_reader_rejects", frame)
    con.execute("insert into _issues select file_name, line, cast(column_name as VARCHAR), "
                "cast(column_value as VARCHAR), raw_record, reason, action from _reader_rejects")
    con.unregister("_reader_rejects")


def _line_numbers(con, read_table: str, line_from_column: bool, header_lines: int) -> tuple[str, str]:
    """The table to read the records from and the SQL expression of each record's physical line."""
    if line_from_column:
        return read_table, f"cast(read.{q_ident(LINE_COLUMN)} as BIGINT)"
    # The temp table keeps the file's order (insertion order is preserved), so rowid gives each
    # record its position for free, where row_number() over () forced a single-threaded pass.
    # Should rowids ever not be one contiguous run, number the rows the slow, certain way.
    first, last, count = con.execute(f"select min(rowid), max(rowid), count(*) from {read_table}").fetchone()
    if count and last - first + 1 == count:
        position = f"(read.rowid - {int(first)} + 1)"
    else:
        numbered = f"{read_table}_numbered"
        con.execute(f"create or replace temp table {numbered} as "
                    f"select *, row_number() over (order by rowid) as _rn from {read_table}")
        read_table, position = numbered, "read._rn"
    return read_table, f"{position} + {header_lines}"  # position 1 is line 2, after the header


def _projection(tm: TableMapping, table: Table, header: list[str], source_of: dict[str, str]) -> tuple[list[str], list[str]]:
    """The select list that renames, value-maps, computes and adds constants; and the columns it yields."""
    used = set(source_of.values())

    def value(col: str, src: str) -> str:
        expr = _value_map_expr("read." + q_ident(src), tm.values.get(col, {}))
        return f"nullif(trim({expr}), '')" if col.endswith("_id") else expr  # ' 1001 ' and '1001' are one card

    projection = [f"{value(col, src)} as {q_ident(col)}" for col, src in source_of.items() if col not in tm.constants]
    projection += [f"cast({_value_map_expr(expr, tm.values.get(c, {}))} as VARCHAR) as {q_ident(c)}"
                   for c, expr in tm.exprs.items()]
    projection += [f"{q_str(v)} as {q_ident(c)}" for c, v in tm.constants.items()]
    extras = [h for h in header if h not in used and h not in table.column_names]
    projection += [f"read.{q_ident(h)}" for h in extras]
    columns_out = [c for c in source_of if c not in tm.constants] + list(tm.exprs) + list(tm.constants) + extras
    return projection, columns_out


def _create_staged_view(con, path: Path, tm: TableMapping, header: list[str], staged: str, read_table: str,
                        projection: list[str], line: str, result: FileResult, mapping_source: str) -> None:
    """Create the staged view (with the mapping's row filter); a computed column that fails names its line."""
    where = ""
    if tm.row_filter:
        where = f"where coalesce(({tm.row_filter}), false)"
    try:
        con.execute(
            f"""
            create or replace temp view {staged} as
            select {', '.join(projection)}, {q_str(path.name)} as _source_file, {line} as _source_line
            from {read_table} as read
            {where}
            """
        )
        if tm.row_filter:
            result.filtered_out = con.execute(f"select count(*) from {read_table}").fetchone()[0] - \
                con.execute(f"select count(*) from {staged}").fetchone()[0]
    except duckdb.Error as exc:
        what = ", ".join(f"{c} (line {tm.lines.get('columns.' + c, '?')})" for c in tm.exprs)
        if tm.row_filter:
            what += (", " if what else "") + f"filter (line {tm.lines.get('filter', '?')})"
        raise PatientbaseError(
            f"{path.name}: a computed column or row filter of mapping {mapping_source} cannot be evaluated: "
            f"{what}: {str(exc).splitlines()[0]}. Columns are text named as in the header, lower-cased "
            f"(found: {', '.join(header)}); num(x) reads a number (1 500,50 too), parse_date(x, '%d.%m.%Y') a date."
        ) from None


def _service_line_keys(con, staged: str, columns: list[str]) -> str:
    """visit_services without the export's line id: key = visit + service + the n-th distinct line for
    that visit and service in the file. An exact repeat shares its first copy's key (and is dropped as
    a duplicate); the same line in two overlapping exports has the same key (and money is not doubled)."""
    content = "hash(" + ", ".join(q_ident(c) for c in columns) + ")"
    keyed = staged + "_keyed"
    visit = "coalesce(trim(visit_id), '')"
    service = "coalesce(trim(service_code), '')"
    # Most visit + service pairs occur once (n = 1, no work); only the repeated pairs are numbered, in
    # a small table the rows are joined to (a window over every line cost 6 s per million lines).
    con.execute(
        f"""
        create or replace temp table {keyed}_repeats as
        with pairs as (
            select {visit} as _visit, {service} as _service from {staged} group by all having count(*) > 1
        ),
        lines as (
            select pairs._visit, pairs._service, {content} as _content, min(_source_line) as _first_line
            from {staged} as staged
            join pairs on pairs._visit = {visit} and pairs._service = {service}
            group by all
        )
        select _visit, _service, _content,
               row_number() over (partition by _visit, _service order by _first_line) as _nth
        from lines
        """
    )
    con.execute(
        f"""
        create or replace temp view {keyed} as
        select staged.*, {visit} || '|' || {service} || '|' || coalesce(repeats._nth, 1) as service_line_id
        from {staged} as staged
        left join {keyed}_repeats as repeats
            on repeats._visit = {visit} and repeats._service = {service} and repeats._content = {content}
        """
    )
    return keyed


# --------------------------------------------------------------------------------------------------
# Validating and writing one table


def _validate_and_write(con, table: Table, staged: list[tuple[str, list[str]]], fmt: FileFormat,
                        phone_region: str, incremental: bool = False, append: bool = False,
                        keyed_by_position: bool = False) -> None:
    """Union the staged files, record every problem in _issues, write raw.<table> from the good rows.

    One scan records the value problems, one aggregate finds repeated keys (a window runs only over
    the rows whose key repeats), and the good rows are parsed straight into the raw table.
    `incremental`: the rows replace the table's rows of the same key; `append`: the rows are the new
    tail of the exports already in the table and are added, unless one of them could have read
    differently in the whole file (NotAnAppend).
    """
    all_columns = _union_staged(con, table, staged)
    record = "json_object(" + ", ".join(f"{q_str(c)}, {q_ident(c)}" for c in all_columns) + ")"
    checks = _value_checks(table, fmt)
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
        _find_duplicates(con, table, record)

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

    extras = [f"_in.{q_ident(c)}" for c in all_columns if c not in table.column_names]
    select_typed = ", ".join([_typed_column(c, fmt) for c in table.columns] + extras)
    target = f"raw.{q_ident(table.name)}"
    exists = table_exists(con, "raw", table.name)
    separate = (incremental or append) and exists
    con.execute(
        f"""
        create or replace {'temp table _written' if separate else 'table ' + target} as
        select {select_typed}, _in._source_file, _in._source_line{phone_cols}
        from _in
        anti join _drop on _drop.file_name = _in._source_file and _drop.line = _in._source_line
        {phone_join}
        """
    )
    if append and exists:
        _refuse_overlap(con, table, target, keyed_by_position)
        _add_new_columns(con, table, target)
        con.execute(f"insert into {target} by name select * from _written")
    elif separate:
        _upsert_written(con, table, target)
    else:
        con.execute(f"create or replace temp view _written as select _source_file from {target}")


def _union_staged(con, table: Table, staged: list[tuple[str, list[str]]]) -> list[str]:
    """View _in: every staged file of the table with one column list (the table's, then the extras)."""
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
    return all_columns


def _value_checks(table: Table, fmt: FileFormat) -> list[tuple[str, str, str, str]]:
    """(condition, reason, action, column) for every value problem a row of the table can have."""
    checks = []
    for col in table.columns:
        ident = q_ident(col.name)
        action = "'row_rejected'" if col.required else "'value_nulled'"
        if col.fail_closed:  # an opt-out or death flag in an unknown spelling counts as set
            action = "'value_assumed_true'"
            checks.append((
                f"not {is_empty(ident)} and ({parse_expr(ident, col, fmt)}) is null",
                q_str(f"not {_expected(col, fmt)}: read as TRUE (an opt-out or death flag fails closed)"),
                action, col.name))
            continue
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
    return checks


def _typed_column(col: Column, fmt: FileFormat) -> str:
    """The select item that parses one column of _in into its raw type (a bad value becomes null)."""
    ident = f"_in.{q_ident(col.name)}"
    expr = parse_expr(ident, col, fmt)
    if col.fail_closed:
        expr = f"coalesce({expr}, case when not {is_empty(ident)} then true end)"
    if col.accepted:
        expr = f"case when lower(trim({ident})) in ({', '.join(q_str(a) for a in col.accepted)}) then {expr} end"
    return f"cast({expr} as {SQL_TYPES[col.type]}) as {q_ident(col.name)}"


def _upsert_written(con, table: Table, target: str) -> None:
    """Incremental load: the new version of a row (temp table _written) replaces the old one by key;
    columns new to the raw table are added first."""
    _add_new_columns(con, table, target)
    key = ", ".join(q_ident(k) for k in table.key)
    con.execute(f"delete from {target} where ({key}) in (select ({key}) from _written)")
    con.execute(f"insert into {target} by name select * from _written")


class NotAnAppend(Exception):
    """The new lines of an export cannot be loaded on their own: a whole read could give another result."""


def _refuse_overlap(con, table: Table, target: str, keyed_by_position: bool) -> None:
    """A new line whose key the table already holds is a duplicate whose verdict (dropped, rejected)
    depends on the earlier line: read the whole file instead. So is a new service line of a visit and
    service seen before when visit_services is keyed by position (`keyed_by_position`): a whole read
    numbers it after the earlier lines, the rejected ones included."""
    if table.key:  # scans one column of the table against the few new keys
        key = ", ".join(q_ident(k) for k in table.key)
        if con.execute(f"select count(*) from {target} where ({key}) in (select ({key}) from _written)").fetchone()[0]:
            raise NotAnAppend("a new line repeats the key of an earlier one")
    if keyed_by_position:
        new_pairs = "(select coalesce(trim(visit_id), '') || '|' || coalesce(trim(service_code), '') from _in)"
        rejected = ("coalesce(trim(json_extract_string(raw_record, '$.visit_id')), '') || '|' || "
                    "coalesce(trim(json_extract_string(raw_record, '$.service_code')), '')")
        seen = con.execute(
            f"""
            select (select count(*) from {target}
                    where coalesce(trim(visit_id), '') || '|' || coalesce(trim(service_code), '') in {new_pairs})
                 + (select count(*) from raw.load_rejects
                    where table_name = 'visit_services' and json_valid(raw_record) and {rejected} in {new_pairs})
            """
        ).fetchone()[0]
        if seen:
            raise NotAnAppend("a new service line belongs to a visit and service seen before")


def _add_new_columns(con, table: Table, target: str) -> None:
    """Add to the raw table the extra export columns the new rows (temp table _written) bring."""
    have = {r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ?",
        [table.name]).fetchall()}
    for column_name, column_type in con.execute(
        "select column_name, data_type from information_schema.columns where table_name = '_written' "
        "and table_schema = 'temp' order by ordinal_position"
    ).fetchall():
        if column_name not in have:
            con.execute(f"alter table {target} add column {q_ident(column_name)} {column_type}")


def _find_duplicates(con, table: Table, record: str) -> None:
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
               content_hash = first_hash as is_identical, _record
        from (
            select *, {content} as content_hash, {record} as _record,
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
        select _source_file, _source_line, null, key_text, _record,
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
                tables = matches(mapping, candidate.name)
                for table in tables:  # one file may feed several tables
                    found.setdefault(table, []).append(candidate)
                if not tables:
                    ignored.append(candidate.name)
        elif path.is_file():
            tables = matches(mapping, path.name)
            if not tables:
                expected = "; ".join(f"{t}: {', '.join(tm.patterns)}" for t, tm in mapping.tables.items())
                raise PatientbaseError(
                    f"{path.name}: cannot tell which table this file is: it matches no file pattern of "
                    f"mapping {mapping.source} ({expected})."
                )
            for table in tables:
                found.setdefault(table, []).append(path)
        else:
            raise PatientbaseError(f"{path}: no such file or folder.")
    return found, ignored


def _suggest_mapping(paths: Iterable[str | Path], mapping: Mapping) -> str:
    """' These files look like mapping X: load with --mapping X.' when a shipped mapping finds the
    required tables' files where the one in use does not."""
    from .mapping import BUILTIN_DIR, load_mapping

    for builtin in sorted(BUILTIN_DIR.glob("*.yml")):
        if builtin.name == mapping.source or builtin.stem == mapping.name:
            continue
        other = load_mapping(builtin.stem)
        try:
            found, _ = discover(paths, other)
        except PatientbaseError:
            continue
        if all(found.get(t) for t, table in TABLES.items() if table.required):
            return (f" These files match the shipped mapping '{builtin.stem}': load them with "
                    f"--mapping {builtin.stem} (or set mapping: {builtin.stem} in patientbase.yml).")
    return ""


def clean_stale_workdirs(max_age_hours: float = 12) -> int:
    """Remove the temporary folders of loads that were killed before they could clean up."""
    import shutil
    import time

    removed = 0
    for leftover in Path(tempfile.gettempdir()).glob("patientbase-load-*"):
        try:
            if time.time() - leftover.stat().st_mtime > max_age_hours * 3600:
                shutil.rmtree(leftover, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


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
    con.execute("alter table raw.load_ledger add column if not exists mapping_key VARCHAR")
    # what reading only an export's appended lines needs: the file's line feeds, whether it ended on a
    # whole line with no line the reader had to reject, and (for a tail read) the first line read
    con.execute("alter table raw.load_ledger add column if not exists newlines BIGINT")
    con.execute("alter table raw.load_ledger add column if not exists appendable BOOLEAN")
    con.execute("alter table raw.load_ledger add column if not exists read_from_line BIGINT")
    # helpers for a mapping's computed columns and row filters (export columns are text)
    con.execute("create or replace temp macro num(x) as try_cast(replace(replace(replace(trim(cast(x as VARCHAR)), "
                "' ', ''), chr(160), ''), ',', '.') as DOUBLE)")
    con.execute("create or replace temp macro parse_date(x, f) as cast(try_strptime(trim(cast(x as VARCHAR)), f) as DATE)")


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
    progress: Callable[..., None] | None = None,  # progress(text, done=None, total=None): lines of a file
    force: bool = False,
    min_keep_share: float = 0.9,
    accept_shrink: bool = False,
) -> LoadResult:
    """Load export files into `raw` in one transaction; see the module docstring for the rules."""
    say = progress or (lambda _msg, _done=None, _total=None: None)
    mapping = mapping or canonical()
    files, ignored = discover(paths, mapping)
    if not files:
        expected = "; ".join(f"{t}: {', '.join(tm.patterns)}" for t, tm in mapping.tables.items())
        raise PatientbaseError(
            f"No export files found. With mapping {mapping.source} the files are expected as: {expected}."
            + _suggest_mapping(paths, mapping)
        )
    stale = clean_stale_workdirs()
    if stale:
        say(f"removed {stale} temporary folder(s) left by an interrupted load")
    run = _LoadRun(
        load_id=uuid.uuid4().hex[:12], loaded_at=dt.datetime.now().replace(microsecond=0), mapping=mapping,
        phone_region=phone_region, max_reject_share=max_reject_share, min_keep_share=min_keep_share,
        accept_shrink=accept_shrink, force=force, say=say,
    )
    results: list[FileResult] = []
    created_empty: list[str] = []
    con.execute("begin transaction")
    try:
        with tempfile.TemporaryDirectory(prefix="patientbase-load-") as workdir:
            run.workdir = Path(workdir)
            ensure_raw_schema(con)
            for name, table in TABLES.items():
                tm = mapping.tables[name]
                table_files = sorted(files.get(name, []))
                if not table_files:
                    if not table_exists(con, "raw", name):
                        if table.required:
                            raise PatientbaseError(
                                f"Required table '{name}' has no file: expected {' or '.join(tm.patterns)} "
                                f"in the export folder{tm.where('table')}." + _suggest_mapping(paths, mapping)
                            )
                        create_empty(con, table)
                        created_empty.append(name)
                    continue
                results += _load_table(con, run, name, table, tm, table_files)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return LoadResult(run.load_id, results, created_empty, ignored)


@dataclass
class _LoadRun:
    """What every table of one load shares: its id and time, the mapping, the limits, the progress line."""

    load_id: str
    loaded_at: dt.datetime
    mapping: Mapping
    phone_region: str
    max_reject_share: float
    min_keep_share: float
    accept_shrink: bool
    force: bool
    say: Callable[..., None]
    workdir: Path = field(default_factory=Path)


def _load_table(con, run: _LoadRun, name: str, table: Table, tm: TableMapping,
                table_files: list[Path]) -> list[FileResult]:
    """Load one table's files (those not loaded before) into raw.<name>; return a result per file.

    A full export that is the loaded one with lines appended (its first bytes hash as the ledger's
    file did) is read from its new lines only, unless a new line could have read differently in the
    whole file; then, and after --force, the whole export is read."""
    incremental = tm.mode == "incremental" or table.merge_only
    ledger = [] if incremental else _current_files(con, name)
    current = {f.file_name: f for f in ledger}
    digests = {p: file_digest(p, current[p.name].size_bytes if p.name in current else None) for p in table_files}
    mkey = mapping_fingerprint(tm)
    fresh, unchanged = _fresh_files(con, name, mkey, digests, incremental, run.force, ledger)
    if unchanged:
        run.say(f"{name}: unchanged since the last load")
        return [FileResult(name, path.name, skipped_unchanged=True) for path in table_files]
    tails = None if incremental or run.force or not table_exists(con, "raw", name) else _tails(tm, mkey, digests, current)
    why = None
    if tails:
        try:
            return _read_and_write(con, run, _TableLoad(name, table, tm, digests, mkey, current, tails))
        except NotAnAppend as exc:
            why = f"lines were appended, but {exc}: the whole export was read"
            run.say(f"{name}: {why}")
            _drop_temp_objects(con)
    results = _read_and_write(con, run, _TableLoad(name, table, tm, digests, mkey, current, None, fresh, incremental))
    for res in results:
        if why and res.file in {p.name for p in tails}:
            res.notes.append(why)
    return results


@dataclass
class _LedgerFile:
    """A file of the table's current load, as the ledger has it."""

    file_name: str
    sha256: str
    size_bytes: int
    mapping_key: str | None
    newlines: int | None
    appendable: bool | None
    rows_loaded: int
    rows_rejected: int


@dataclass
class _Tail:
    """An export that is the loaded file with lines appended: read from byte `offset` (line `lines_before + 1`)."""

    offset: int
    lines_before: int
    earlier: _LedgerFile


@dataclass
class _TableLoad:
    """One table's files and how they are read: whole (`tails` None) or the appended lines of each."""

    name: str
    table: Table
    tm: TableMapping
    digests: dict[Path, FileDigest]
    mapping_key: str
    current: dict[str, _LedgerFile]
    tails: dict[Path, _Tail] | None
    fresh: list[Path] = field(default_factory=list)
    incremental: bool = False

    def __post_init__(self):
        if self.tails is not None:
            self.fresh = list(self.tails)


NOT_APPENDABLE_SUFFIXES = (".xlsx", ".xlsm", ".parquet")


def _current_files(con, name: str) -> list[_LedgerFile]:
    return [_LedgerFile(*r) for r in con.execute(
        "select file_name, sha256, size_bytes, mapping_key, newlines, appendable, rows_loaded, rows_rejected "
        "from raw.load_ledger where table_name = ? and is_current", [name]).fetchall()]


def _fresh_files(con, name: str, mkey: str, digests: dict[Path, FileDigest], incremental: bool,
                 force: bool, ledger: list[_LedgerFile]) -> tuple[list[Path], bool]:
    """The files to load now, and whether the table is unchanged (`ledger`: its current files)."""
    # the ledger keys a file on its content and the mapping that read it: a fixed mapping reloads
    hashes = [(p, d.sha256 + ":" + mkey) for p, d in digests.items()]
    if incremental:  # a file already merged into the table is not merged again
        seen = {r[0] for r in con.execute(
            "select sha256 || ':' || coalesce(mapping_key, '') from raw.load_ledger where table_name = ?",
            [name]).fetchall()}
        fresh = [p for p, h in hashes if force or h not in seen]
        return fresh, table_exists(con, "raw", name) and not fresh
    unchanged = (not force and table_exists(con, "raw", name)
                 and sorted(h for _, h in hashes) == sorted(f"{f.sha256}:{f.mapping_key or ''}" for f in ledger))
    return [p for p, _ in hashes], unchanged


def _tails(tm: TableMapping, mkey: str, digests: dict[Path, FileDigest],
           current: dict[str, _LedgerFile]) -> dict[Path, _Tail] | None:
    """The appended part of each changed file, when every file of the table is either the one loaded
    or that file with whole lines appended, read by the same mapping; else None (read everything)."""
    if not current or sorted(current) != sorted(p.name for p in digests):
        return None
    tails = {}
    for path, digest in digests.items():
        earlier = current[path.name]
        if earlier.mapping_key != mkey:
            return None
        if digest.sha256 == earlier.sha256:
            continue
        if (path.suffix.lower() in NOT_APPENDABLE_SUFFIXES or not earlier.appendable or earlier.newlines is None
                or digest.prefix_sha256 != earlier.sha256 or not digest.ends_with_newline):
            return None
        tails[path] = _Tail(earlier.size_bytes, earlier.newlines, earlier)
    return tails or None


def _tail_file(path: Path, tail: _Tail, has_header: bool, workdir: Path) -> Path:
    """A file holding the export's header line (when it has one), then its lines after `tail.offset`,
    under the export's own name (the reader and the rejects name the file)."""
    folder = workdir / f"tail-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    target = folder / path.name
    with path.open("rb") as src, target.open("wb") as dst:
        if has_header:
            dst.write(src.readline())
        src.seek(tail.offset)
        while block := src.read(1 << 20):
            dst.write(block)
    return target


def _read_and_write(con, run: _LoadRun, job: _TableLoad) -> list[FileResult]:
    """Read the table's files (or their appended lines), validate them, write raw.<table>, the rejects
    and the ledger; return a result per file."""
    name, table, tm = job.name, job.table, job.tm
    results = [FileResult(name, p.name, skipped_unchanged=True) for p in job.digests if p not in job.fresh]
    run.say(f"{name}: reading {', '.join(p.name for p in job.fresh)}")
    con.execute(
        "create or replace temp table _issues (file_name VARCHAR, line BIGINT, column_name VARCHAR, "
        "column_value VARCHAR, raw_record VARCHAR, reason VARCHAR, action VARCHAR)"
    )
    file_results = {p.name: FileResult(name, p.name) for p in job.fresh}
    staged = []
    for i, path in enumerate(job.fresh):
        tail = job.tails[path] if job.tails else None
        reading = f"{name}: reading {path.name}" + (f" (file {i + 1} of {len(job.fresh)})" if len(job.fresh) > 1 else "")
        if tail:
            reading += f" from line {tail.lines_before + 1:,}"

        def tick(done: int, total: int, reading: str = reading) -> None:
            run.say(f"{reading}, {done:,} of {total:,} lines", done, total)

        source, offset = path, 0
        if tail:
            header_lines = 0 if tm.names else 1
            source = _tail_file(path, tail, bool(header_lines), run.workdir)
            offset = tail.lines_before - header_lines
            file_results[path.name].read_from_line = tail.lines_before + 1
        stage, columns_out, _read_fmt = _stage_file(con, source, tm, table, i, file_results[path.name],
                                                    run.workdir, run.mapping.source, tick, offset)
        staged.append((stage, columns_out))
    rows = sum(r.lines_read for r in file_results.values())
    if name == "patients":
        run.say(f"patients: checking {rows:,} lines and normalising phone numbers")
    else:
        run.say(f"{name}: checking and writing {rows:,} lines")
    before = (con.execute(f"select count(*) from raw.{q_ident(name)}").fetchone()[0]
              if table_exists(con, "raw", name) else 0)
    # parse with the mapping's formats and ISO ones (XLSX date cells arrive as ISO text)
    _validate_and_write(con, table, staged, xlsx_format(tm.fmt), run.phone_region, job.incremental,
                        append=job.tails is not None,
                        keyed_by_position=any(r.keyed_by_position for r in file_results.values()))
    if name == "calls":
        merge_outcomes_into_calls(con)
    if not job.incremental and job.tails is None:
        con.execute("delete from raw.load_rejects where table_name = ?", [name])
    con.execute(
        """
        insert into raw.load_rejects
        select ?, ?, ?, file_name, line, column_name, column_value, reason, action, raw_record from _issues
        """,
        [run.load_id, run.loaded_at, name],
    )
    loaded = dict(con.execute("select _source_file, count(*) from _written group by all").fetchall())
    if not job.incremental:
        con.execute("update raw.load_ledger set is_current = false where table_name = ?", [name])
    results += _record_files(con, run, job, file_results, loaded)
    if not job.incremental:
        after = con.execute(f"select count(*) from raw.{q_ident(name)}").fetchone()[0]
        _refuse_shrink(name, before, after, table.required, run.min_keep_share, run.accept_shrink,
                       [p.name for p in job.fresh])
    _drop_temp_objects(con)
    run.say(f"{name}: {sum(loaded.values()):,} rows " + ("added" if job.tails else "loaded"))
    return results


def _record_files(con, run: _LoadRun, job: _TableLoad, file_results: dict[str, FileResult],
                  loaded: dict[str, int]) -> list[FileResult]:
    """Fill in each loaded file's counts, write its ledger row; a file with too many rejects fails the load.

    The ledger row of a file read from its appended lines counts the whole file (the earlier lines'
    rows and rejects plus the new ones); an unchanged file of that table gets its row again under
    this load, so each load's rows add up to the table."""
    stats = dict(
        ((f, a), n)
        for f, a, n in con.execute(
            "select file_name, action, count(distinct line) from _issues group by all"
        ).fetchall()
    )
    per_value = dict(
        ((f, a), n)
        for f, a, n in con.execute(
            "select file_name, action, count(*) from _issues where action in ('value_nulled', "
            "'value_assumed_true') group by all"
        ).fetchall()
    )
    ledger = ("insert into raw.load_ledger (load_id, loaded_at, table_name, file_name, sha256, size_bytes, "
              "rows_loaded, rows_rejected, is_current, mapping_key, newlines, appendable, read_from_line) "
              "values (?, ?, ?, ?, ?, ?, ?, ?, true, ?, ?, ?, ?)")
    results = []
    for path in job.fresh:
        res = file_results[path.name]
        res.rows_loaded = loaded.get(path.name, 0)
        res.rows_rejected = stats.get((path.name, "row_rejected"), 0)
        res.duplicates_dropped = stats.get((path.name, "duplicate_dropped"), 0)
        res.values_nulled = per_value.get((path.name, "value_nulled"), 0)
        res.values_assumed_true = per_value.get((path.name, "value_assumed_true"), 0)
        res.rows_read = res.rows_loaded + res.rows_rejected + res.duplicates_dropped
        digest = job.digests[path]
        earlier = job.tails[path].earlier if job.tails else None
        appendable = (res.appendable and digest.ends_with_newline and path.suffix.lower() not in NOT_APPENDABLE_SUFFIXES
                      and (earlier is None or bool(earlier.appendable)))
        con.execute(ledger, [
            run.load_id, run.loaded_at, job.name, path.name, digest.sha256, path.stat().st_size,
            res.rows_loaded + (earlier.rows_loaded if earlier else 0),
            res.rows_rejected + (earlier.rows_rejected if earlier else 0),
            job.mapping_key, digest.newlines, appendable, res.read_from_line,
        ])
        if earlier:
            res.notes.append(f"read from line {res.read_from_line:,}: the lines before are the export loaded "
                             "before, unchanged")
        results.append(res)
        lines, rejected = res.lines_read or res.rows_read, res.rows_rejected
        if earlier:  # the share is the whole export's, as when it is read whole
            lines += job.tails[path].lines_before - (0 if job.tm.names else 1)
            rejected += earlier.rows_rejected
        share = rejected / lines if lines else 0.0
        if share > run.max_reject_share:
            raise PatientbaseError(
                f"{path.name}: {rejected:,} of {lines:,} lines ({share:.1%}) were rejected, "
                f"more than the allowed {run.max_reject_share:.0%} (config max_reject_share). Nothing was "
                "loaded. The first problems:\n" + _first_issues(con, path.name)
            )
    if job.tails is not None:
        for path in job.digests:
            if path not in job.tails:
                kept = job.current[path.name]
                con.execute(ledger, [
                    run.load_id, run.loaded_at, job.name, path.name, kept.sha256, kept.size_bytes, kept.rows_loaded,
                    kept.rows_rejected, kept.mapping_key, kept.newlines, kept.appendable, None,
                ])
    return results


def _refuse_shrink(name: str, before: int, after: int, required: bool, min_keep_share: float, accept: bool,
                   files: list[str]) -> None:
    """A full export that would leave its table with no rows, or with fewer than `min_keep_share` of
    the rows it replaces, is more likely a broken or partial export than a clinic that lost patients."""
    if accept:
        return
    which = ", ".join(files)
    if after == 0 and before > 0:
        raise PatientbaseError(
            f"{which}: table '{name}' would have no rows" + (f" (it has {before:,} now)" if before else "")
            + ". Nothing was loaded. If the export really is empty, load it with --accept-shrink "
            "(or set accept_shrink: true in patientbase.yml)."
        )
    if before and after < min_keep_share * before:
        raise PatientbaseError(
            f"{which}: table '{name}' would shrink from {before:,} to {after:,} rows ({after / before:.0%}, less "
            f"than min_keep_share {min_keep_share:.0%}). Nothing was loaded. Is this a partial export? If the "
            "table really is smaller now, load it with --accept-shrink (or set accept_shrink: true or a lower "
            "min_keep_share in patientbase.yml)."
        )


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
