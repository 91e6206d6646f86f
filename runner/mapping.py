"""Export mappings: how a clinic's MIS export set maps onto the canonical raw tables.

A mapping is a YAML file (see `runner/mappings/typical_mis.yml`, documented line by line) that names,
per raw table, the file pattern, the encoding, delimiter, decimal separator, date formats, header
renames (e.g. Russian -> canonical), value maps for statuses and flags, constants and the load mode
(`full`: the file is the whole table; `incremental`: new and changed rows, upserted by key), and
what real exports need beyond that: no header (`header: false` + `names`), computed columns
(`{expr: SQL}`), flags from non-empty values (`{nonempty: column}`), row filters (`filter`), value maps
by `prefix:` / `pattern:`, reader limits (`max_record_lines`, `max_field_chars`). Reading the file
itself (CSV, whitespace-aligned, XLSX, Parquet) is `runner/reader.py`'s job. Two mappings ship with patientbase: `canonical` (what `patientbase demo` writes) and `typical_mis`.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from .errors import ConfigError, PatientbaseError
from .schema import TABLES

BUILTIN_DIR = Path(__file__).resolve().parent / "mappings"

FORMAT_KEYS = {"encoding", "delimiter", "quote", "decimal_separator", "date_formats", "timestamp_formats",
               "true_values", "false_values"}
TABLE_KEYS = FORMAT_KEYS | {"file", "columns", "values", "constants", "mode", "sheet", "header", "names", "filter",
                            "max_record_lines", "max_field_chars"}

ISO_DATE = ("%Y-%m-%d",)
ISO_TIMESTAMPS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")
TRUE_VALUES = ("true", "t", "1", "yes", "y", "да", "д", "так")
FALSE_VALUES = ("false", "f", "0", "no", "n", "нет", "н", "ні")


@dataclass(frozen=True)
class FileFormat:
    """How one export file is written. The canonical demo format is the default."""

    delimiter: str = ","
    quote: str = '"'
    encoding: str = "utf-8"  # or 'auto': UTF-8 (with or without BOM) if it decodes, else Windows-1251
    date_formats: tuple[str, ...] = ISO_DATE
    timestamp_formats: tuple[str, ...] = ISO_TIMESTAMPS
    decimal_separator: str = "."
    true_values: tuple[str, ...] = TRUE_VALUES
    false_values: tuple[str, ...] = FALSE_VALUES


CANONICAL_FORMAT = FileFormat()


@dataclass
class TableMapping:
    table: str
    patterns: tuple[str, ...]
    fmt: FileFormat = CANONICAL_FORMAT
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # canonical column -> export header(s)
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> {export value: canonical}
    constants: dict[str, str] = field(default_factory=dict)
    mode: str = "full"
    sheet: str | None = None
    #: Canonical column -> SQL expression over the export's columns (`expr:`), or a flag that is true
    #: when the named export column is not empty (`nonempty:`), already written as SQL.
    exprs: dict[str, str] = field(default_factory=dict)
    #: The file has no header: its columns, in order (`header: false` + `names:`).
    names: tuple[str, ...] | None = None
    #: SQL condition over the export's columns: rows where it is not true are skipped (and counted).
    row_filter: str | None = None
    max_record_lines: int = 20
    max_field_chars: int = 20_000
    lines: dict[str, int] = field(default_factory=dict)  # "columns.<name>" -> line in the mapping file

    def export_names(self, column: str) -> tuple[str, ...]:
        """Headers the column may have in the export (lower-cased); the canonical name when unmapped."""
        return tuple(n.strip().lower() for n in self.columns.get(column, (column,)))

    def where(self, key: str) -> str:
        line = self.lines.get(key) or self.lines.get("table")
        return f" (mapping line {line})" if line else ""


@dataclass
class Mapping:
    name: str
    source: str  # file name, for messages
    tables: dict[str, TableMapping]


def canonical() -> Mapping:
    return load_mapping("canonical")


def load_mapping(name_or_path: str | Path | None) -> Mapping:
    """A built-in mapping by name ('canonical', 'typical_mis') or a YAML file."""
    if name_or_path is None:
        name_or_path = "canonical"
    path = Path(name_or_path)
    if not path.exists():
        builtin = BUILTIN_DIR / f"{name_or_path}.yml"
        if not builtin.exists():
            known = ", ".join(sorted(p.stem for p in BUILTIN_DIR.glob("*.yml")))
            raise ConfigError(f"Mapping {name_or_path!r} is neither a file nor a built-in mapping ({known}).")
        path = builtin
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"Mapping {path.name} is not valid YAML: {exc}") from None
    return _parse(data, _line_index(node), path.name)


def _line_index(node, prefix: str = "") -> dict[str, int]:
    """Map dotted keys ('tables.visits.columns.status') to 1-based line numbers in the YAML file."""
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            dotted = f"{prefix}.{key.value}" if prefix else str(key.value)
            out[dotted] = key.start_mark.line + 1
            out.update(_line_index(value, dotted))
    return out


def _fmt_from(spec: dict, base: FileFormat, where: str) -> FileFormat:
    changes = {}
    for key in FORMAT_KEYS & set(spec):
        value = spec[key]
        if key in ("date_formats", "timestamp_formats", "true_values", "false_values"):
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: `{key}` must be a list of strings.")
            value = tuple(v.lower() for v in value) if key.endswith("_values") else tuple(value)
        elif not isinstance(value, str):
            raise ConfigError(f"{where}: `{key}` must be a string.")
        changes[key] = value
    return replace(base, **changes)


def _parse(data: dict, lines: dict[str, int], source: str) -> Mapping:
    if not isinstance(data, dict) or not isinstance(data.get("tables", {}), dict):
        raise ConfigError(f"Mapping {source}: expected keys `name`, `defaults` and `tables`.")
    base = _fmt_from(data.get("defaults") or {}, CANONICAL_FORMAT, f"{source}, defaults")
    default_values = (data.get("defaults") or {}).get("values") or {}
    tables: dict[str, TableMapping] = {}
    for table_name, spec in (data.get("tables") or {}).items():
        tables[table_name] = _parse_table(table_name, spec or {}, base, default_values, lines, source)
    for name in TABLES:  # tables the mapping does not mention keep their canonical file name
        tables.setdefault(name, TableMapping(table=name, patterns=(f"{name}.csv",), fmt=base))
    return Mapping(name=str(data.get("name", source)), source=source, tables=tables)


def _parse_table(table_name: str, spec: dict, base: FileFormat, default_values: dict, lines: dict[str, int],
                 source: str) -> TableMapping:
    """One table's entry of a mapping, checked: an unknown table, key or column fails with its line."""
    at = f"{source} line {lines.get(f'tables.{table_name}', '?')}"
    if table_name not in TABLES:
        raise ConfigError(f"{at}: unknown table {table_name!r}; raw tables are {', '.join(TABLES)}.")
    unknown = set(spec) - TABLE_KEYS
    if unknown:
        raise ConfigError(f"{at}: unknown key(s) {', '.join(sorted(unknown))} for table {table_name}.")
    table = TABLES[table_name]
    columns, exprs = _parse_columns(table_name, spec.get("columns") or {}, lines, source)
    constants = {str(k): str(v) for k, v in (spec.get("constants") or {}).items()}
    values = {**{k: v for k, v in default_values.items() if k in table.column_names}, **(spec.get("values") or {})}
    for col in list(columns) + list(exprs) + list(constants) + list(values):
        if col not in table.column_names:
            line = lines.get(f"tables.{table_name}.columns.{col}") or lines.get(f"tables.{table_name}")
            raise ConfigError(
                f"{source} line {line}: {table_name} has no column {col!r}; its columns are "
                f"{', '.join(table.column_names)}."
            )
    mode = spec.get("mode", "full")
    if mode not in ("full", "incremental"):
        raise ConfigError(f"{at}: mode must be 'full' or 'incremental', not {mode!r}.")
    if mode == "incremental" and not table.key:
        raise ConfigError(f"{at}: {table_name} has no key, so it can only be loaded in full mode.")
    names = _parse_names(spec, at)
    limits = {}
    for key in ("max_record_lines", "max_field_chars"):
        if key in spec:
            if not isinstance(spec[key], int) or spec[key] < 1:
                raise ConfigError(f"{at}: `{key}` must be a positive whole number.")
            limits[key] = spec[key]
    pattern = spec.get("file", f"{table_name}.csv")
    patterns = tuple(pattern) if isinstance(pattern, list) else (str(pattern),)
    return TableMapping(
        table=table_name,
        patterns=patterns,
        fmt=_fmt_from(spec, base, at),
        columns=columns,
        values={
            col: {_norm(k): str(v) for k, v in (vmap or {}).items()} for col, vmap in values.items()
        },
        constants=constants,
        mode=mode,
        sheet=spec.get("sheet"),
        exprs=exprs,
        names=tuple(str(n).strip().lower() for n in names) if names else None,
        row_filter=str(spec["filter"]) if spec.get("filter") else None,
        **limits,
        lines={
            "table": lines.get(f"tables.{table_name}", 0),
            **{f"columns.{c}": lines.get(f"tables.{table_name}.columns.{c}", 0) for c in [*columns, *exprs]},
            "filter": lines.get(f"tables.{table_name}.filter", 0),
        },
    )


def _parse_columns(table_name: str, spec_columns: dict, lines: dict[str, int],
                   source: str) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """A table's `columns:`: header aliases per column, and computed columns ({expr:} or {nonempty:}) as SQL."""
    columns: dict[str, tuple[str, ...]] = {}
    exprs: dict[str, str] = {}
    for k, v in spec_columns.items():
        if isinstance(v, dict):
            where = f"{source} line {lines.get(f'tables.{table_name}.columns.{k}', '?')}"
            if set(v) == {"expr"}:
                exprs[str(k)] = f"({v['expr']})"
            elif set(v) == {"nonempty"}:
                names_ = v["nonempty"] if isinstance(v["nonempty"], list) else [v["nonempty"]]
                cond = " or ".join(
                    f"nullif(trim(read.{_qi(str(n).strip().lower())}), '') is not null" for n in names_)
                exprs[str(k)] = f"(case when {cond} then 'true' else 'false' end)"
            else:
                raise ConfigError(f"{where}: a computed column is {{expr: SQL}} or {{nonempty: column}}, "
                                  f"not {v!r}.")
        else:
            columns[str(k)] = tuple(str(x) for x in v) if isinstance(v, list) else (str(v),)
    return columns, exprs


def _parse_names(spec: dict, at: str):
    """`header:` and `names:` of a table: the column names of a headerless file, else None."""
    header_flag = spec.get("header", True)
    names = spec.get("names")
    if header_flag is False and not (isinstance(names, list) and names):
        raise ConfigError(f"{at}: `header: false` needs `names:`, the file's columns in order.")
    if names is not None and header_flag is not False:
        raise ConfigError(f"{at}: `names:` is for a file without a header; add `header: false`.")
    return names


def _norm(value) -> str:
    return str(value).strip().lower().replace("ё", "е")


# ---------------------------------------------------------------------------------------------------
# Finding and preparing files


def matches(mapping: Mapping, file_name: str) -> list[str]:
    """The tables whose pattern matches this file name (case-insensitive): one file may feed several."""
    lowered = file_name.lower()
    return [name for name, tm in mapping.tables.items()
            if any(fnmatch.fnmatch(lowered, p.lower()) for p in tm.patterns)]


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def mapping_fingerprint(tm: TableMapping) -> str:
    """A hash of everything in a table's mapping that changes what is read from a file: the ledger
    keys a loaded file on its content and this, so a fixed mapping reloads."""
    import hashlib

    parts = repr((tm.patterns, tm.fmt, sorted(tm.columns.items()), sorted((k, sorted(v.items())) for k, v in tm.values.items()),
                  sorted(tm.constants.items()), tm.mode, tm.sheet, sorted(tm.exprs.items()), tm.names, tm.row_filter,
                  tm.max_record_lines, tm.max_field_chars))
    return hashlib.sha256(parts.encode("utf-8")).hexdigest()[:16]


def xlsx_to_csv(path: Path, sheet: str | None, target: Path) -> None:
    """Write an XLSX sheet as UTF-8 CSV (one CSV record per sheet row, so line numbers match rows).

    Dates become ISO text and numbers plain decimals; openpyxl reads row by row in read-only mode.
    """
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise PatientbaseError(f"{path.name}: cannot read it as an Excel workbook ({exc}).") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise PatientbaseError(f"{path.name}: no sheet {sheet!r}; sheets are {', '.join(book.sheetnames)}.")
        ws = book[sheet] if sheet else book.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None) or ()
        while header and header[-1] is None:  # trailing empty header cells are formatting, not columns
            header = header[:-1]
        width = len(header)
        with target.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([_cell_text(v) for v in header])
            for row in rows:
                # read-only mode drops trailing empty cells: pad to the header; keep any extra non-empty
                # cells so a row that is really too long is still rejected as one
                cells = list(row)
                while len(cells) > width and cells[-1] is None:
                    cells.pop()
                cells += [None] * (width - len(cells))
                writer.writerow([_cell_text(v) for v in cells])
    finally:
        book.close()


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") if (value.hour, value.minute, value.second) != (0, 0, 0) else value.strftime("%Y-%m-%d")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float):
        return f"{value:.2f}" if not value.is_integer() else str(int(value))
    return str(value)


def xlsx_format(fmt: FileFormat) -> FileFormat:
    """The format of a CSV made from XLSX: ISO dates from date cells, the mapping's formats for text cells."""
    return replace(
        fmt,
        delimiter=",",
        quote='"',
        encoding="utf-8",
        date_formats=ISO_DATE + tuple(f for f in fmt.date_formats if f not in ISO_DATE),
        timestamp_formats=ISO_TIMESTAMPS + tuple(f for f in fmt.timestamp_formats if f not in ISO_TIMESTAMPS),
    )
