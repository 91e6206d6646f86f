"""Write the demo clinic the way a typical Russian MIS exports it (`patientbase demo --format mis`).

The canonical demo CSVs are rewritten through the `typical_mis` mapping read backwards: Russian
headers (the first alias of each column), Russian status and specialty names, `Да`/`Нет` flags,
`;` delimiters, decimal commas, `dd.mm.yyyy hh:mm` dates, Windows-1251 text (calls.csv as UTF-8 with a
BOM), and treatment plans as an XLSX workbook. Loading the result with `--mapping typical_mis` gives
the same warehouse as the canonical demo, which the tests check.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from .mapping import load_mapping
from .schema import TABLES

FILE_NAMES = {
    "patients": "Пациенты.csv",
    "visits": "Приемы_2023-2026.csv",
    "visit_services": "Услуги.csv",
    "payments": "Оплаты.csv",
    "treatment_plans": "Планы лечения.xlsx",
    "calls": "Звонки.csv",
    "marketing_spend": "Реклама.csv",
}
UTF8_BOM_TABLES = {"calls"}


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _export_value(canonical_value: str, vmap: dict[str, str]) -> str | None:
    """The first export spelling that maps to this canonical value, capitalised as an MIS shows it."""
    for export, canon in vmap.items():
        if canon == canonical_value:
            return export[:1].upper() + export[1:]
    return None


def _ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _xlsx_expr(column, tm) -> str:
    """XLSX cells carry native types: real date-times and numbers, as an MIS's Excel export does."""
    ident = f'"{column.name}"'
    if column.type == "timestamp":
        return f"cast({ident} as timestamp)"
    if column.type == "date":
        return f"cast({ident} as date)"
    if column.type == "decimal":
        return f"cast({ident} as double)"
    if column.type == "integer":
        return f"cast({ident} as bigint)"
    return _column_expr("", column, tm)


def _column_expr(table: str, column, tm) -> str:
    ident = f'"{column.name}"'
    if column.type == "date":
        return f"strftime(cast({ident} as date), '%d.%m.%Y')"
    if column.type == "timestamp":
        ts = f"cast({ident} as timestamp)"
        return (
            f"case when second({ts}) = 0 then strftime({ts}, '%d.%m.%Y %H:%M') "
            f"else strftime({ts}, '%d.%m.%Y %H:%M:%S') end"
        )
    if column.type == "decimal":
        return f"replace({ident}, '.', ',')"
    if column.type == "boolean":
        return f"case lower({ident}) when 'true' then 'Да' when 'false' then 'Нет' end"
    vmap = tm.values.get(column.name)
    if vmap:
        canon_values = sorted(set(vmap.values()))
        whens = " ".join(
            f"when {_q(v)} then {_q(_export_value(v, vmap))}" for v in canon_values
        )
        return f"case {ident} {whens} else {ident} end"
    return ident


def write_mis(canonical_dir: Path, out_dir: Path) -> dict[str, str]:
    """Rewrite the canonical demo in `canonical_dir` as a typical MIS export set in `out_dir`."""
    mapping = load_mapping("typical_mis")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    con = duckdb.connect()
    try:
        for name, table in TABLES.items():
            source = canonical_dir / f"{name}.csv"
            if not source.exists() or name not in FILE_NAMES:  # call_assignments: patientbase's own table
                continue
            tm = mapping.tables[name]
            # the demo's service lines have no line id (the loader derives one)
            exported = [c for c in table.columns if c.name != "service_line_id"]
            columns = {c.name: "VARCHAR" for c in exported}
            con.execute(
                f"create or replace table src as select * from read_csv({_q(str(source))}, header = true, "
                f"auto_detect = false, columns = {columns!r}, delim = ',', quote = '\"', escape = '\"')"
            )
            target = out_dir / FILE_NAMES[name]
            xlsx = target.suffix == ".xlsx"
            select = ", ".join(
                f"{_xlsx_expr(col, tm) if xlsx else _column_expr(name, col, tm)} as {_ident(tm.columns.get(col.name, (col.name,))[0])}"
                for col in exported
            )
            tmp = target.with_name(target.name + ".tmp")
            if xlsx:
                _write_xlsx(con, select, tmp)
            else:
                utf8 = target.with_name(target.name + ".utf8.tmp")
                con.execute(
                    f"copy (select {select} from src) to {_q(str(utf8))} (header, delimiter ';', quote '\"')"
                )
                encoding = "utf-8-sig" if name in UTF8_BOM_TABLES else "cp1251"
                with utf8.open(encoding="utf-8", newline="") as src, tmp.open("w", encoding=encoding, newline="") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                utf8.unlink()
            os.replace(tmp, target)
            written[name] = target.name
    finally:
        con.close()
    return written


def _write_xlsx(con, select: str, target: Path) -> None:
    from openpyxl import Workbook

    cursor = con.execute(f"select {select} from src")
    header = [d[0] for d in cursor.description]
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Планы")
    sheet.append(header)
    while batch := cursor.fetchmany(10_000):
        for row in batch:  # openpyxl writes row by row; plans are a small table
            sheet.append(list(row))
    with target.open("wb") as fh:
        book.save(fh)
