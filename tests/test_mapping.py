"""Mapping-driven loading: the messy "typical MIS" export gives the same warehouse as the canonical one."""

from __future__ import annotations

import textwrap

import pytest
from conftest import workspace_at

TABLE_COLUMNS = {
    "patients": "patient_id, last_name, first_name, middle_name, birth_date, sex, phone, email, branch_id, "
    "source_channel, referred_by_patient_id, created_at, do_not_call, do_not_message, is_deceased, "
    "loyalty_member_since, phone_e164, phone_status",
    "visits": "visit_id, patient_id, scheduled_at, status, doctor_id, specialty, branch_id, booked_at",
    "visit_services": "visit_id, service_code, service_name, service_category, quantity, amount",
    "payments": "payment_id, patient_id, visit_id, paid_at, amount, method",
    "treatment_plans": "plan_id, patient_id, doctor_id, specialty, created_at, total_amount, status, status_changed_at",
    "calls": "call_id, patient_id, operator_id, called_at, duration_s, result, action_code, comment",
    "marketing_spend": "month, channel, amount",
}


@pytest.fixture(scope="module")
def two_demos(tmp_path_factory):
    """The same demo clinic loaded and built twice: from canonical CSV and from the MIS-shaped export."""
    root = tmp_path_factory.mktemp("demos")
    out = {}
    for fmt, extra in (("canonical", []), ("mis", ["--mapping", "typical_mis"])):
        (root / fmt).mkdir()
        with workspace_at(root / fmt) as w:
            w.invoke("demo", "--patients", "600", "--seed", "7", "--out", "exports", "--format", fmt)
            w.invoke("load", "exports", *extra)
            w.invoke("build")
            out[fmt] = w
    return out


def test_mis_export_is_really_messy(two_demos):
    folder = two_demos["mis"].root / "exports"
    names = sorted(p.name for p in folder.iterdir())
    assert "Планы лечения.xlsx" in names and "Пациенты.csv" in names
    raw = (folder / "Пациенты.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # Windows-1251
    header = raw.decode("cp1251").splitlines()[0]
    assert header.startswith("Номер карты;Фамилия;Имя;Отчество;Дата рождения;Пол;Телефон")
    visits = (folder / "Приемы_2023-2026.csv").read_bytes().decode("cp1251").splitlines()[1].split(";")
    assert visits[3] in ("Пришел", "Неявка", "Отменен", "Записан")
    assert len(visits[2]) in (16, 19) and visits[2][2] == "." and visits[2][5] == "."  # dd.mm.yyyy hh:mm
    assert (folder / "Звонки.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM


def test_mis_export_loads_into_the_same_raw_tables(two_demos):
    canonical, mis = two_demos["canonical"], two_demos["mis"]
    for table, columns in TABLE_COLUMNS.items():
        query = f"select {columns} from raw.{table} order by all"
        expected = canonical.query(query)
        assert expected, table
        assert mis.query(query) == expected, table
    assert mis.scalar("select count(*) from raw.load_rejects") == canonical.scalar("select count(*) from raw.load_rejects")


def test_mis_export_gives_the_same_marts(two_demos):
    canonical, mis = two_demos["canonical"], two_demos["mis"]
    query = "select person_id, total_revenue, lifecycle_status, completed_visits from marts.dim_patients order by person_id"
    assert mis.query(query) == canonical.query(query)
    assert mis.scalar("select sum(amount) from marts.fct_payments") == canonical.scalar("select sum(amount) from marts.fct_payments")


def write(path, text, encoding="utf-8"):
    path.write_text(textwrap.dedent(text).lstrip(), encoding=encoding)


MAPPING = """
name: tiny clinic
defaults: {delimiter: ";", decimal_separator: ",", encoding: auto,
           date_formats: ["%d.%m.%Y"], timestamp_formats: ["%d.%m.%Y %H:%M"]}
tables:
  patients:
    file: "пациенты*.csv"
    columns:
      patient_id: "Карта"
      last_name: "Фамилия"
    constants:
      branch_id: B9
  visits:
    file: "визиты*.csv"
    columns:
      visit_id: "Визит"
      patient_id: "Карта"
      scheduled_at: "Начало"
      status: "Статус"
    values:
      status: {"Пришёл": completed, "Неявка": no_show}
  payments:
    file: "оплаты*.csv"
    mode: incremental
    columns:
      payment_id: "Платёж"
      patient_id: "Карта"
      paid_at: "Дата"
      amount: "Сумма"
"""


def make_exports(folder):
    folder.mkdir()
    write(folder / "Пациенты.csv", "Карта;Фамилия;Лишняя колонка\n1;Ёлкина;x\n2;Петров;y\n", "cp1251")
    write(folder / "Визиты.csv", "\ufeffВизит;Карта;Начало;Статус\nV1;1;05.03.2025 10:00;пришел\nV2;2;06.03.2025 11:30;НЕЯВКА\n")
    write(folder / "Оплаты_март.csv", "Платёж;Карта;Дата;Сумма\nP1;1;05.03.2025 10:30;1 500,50\nP2;1;06.03.2025 09:00;-500,00\n", "cp1251")


def test_a_custom_mapping_renames_maps_values_and_keeps_extra_columns(ws):
    (ws.root / "clinic.yml").write_text(MAPPING, encoding="utf-8")
    make_exports(ws.root / "in")
    ws.invoke("load", "in", "--mapping", "clinic.yml")
    assert ws.query("select patient_id, last_name, branch_id, \"лишняя колонка\" from raw.patients order by 1") == [
        ("1", "Ёлкина", "B9", "x"), ("2", "Петров", "B9", "y")
    ]
    assert ws.query("select visit_id, status, strftime(scheduled_at, '%Y-%m-%d %H:%M') from raw.visits order by 1") == [
        ("V1", "completed", "2025-03-05 10:00"), ("V2", "no_show", "2025-03-06 11:30")
    ]
    assert [str(r[0]) for r in ws.query("select amount from raw.payments order by payment_id")] == ["1500.50", "-500.00"]


def test_incremental_export_upserts_by_key_and_skips_files_already_merged(ws):
    (ws.root / "clinic.yml").write_text(MAPPING, encoding="utf-8")
    make_exports(ws.root / "in")
    ws.invoke("load", "in", "--mapping", "clinic.yml")
    # April's export: P2 corrected, P3 new; March's file is still in the folder and is not merged again
    write(ws.root / "in" / "Оплаты_апрель.csv", "Платёж;Карта;Дата;Сумма\nP2;1;06.03.2025 09:00;-400,00\nP3;2;01.04.2025 12:00;700,00\n", "cp1251")
    result = ws.invoke("load", "in", "--mapping", "clinic.yml")
    assert "Оплаты_апрель.csv" in result.output and "2 loaded" in result.output
    assert [(r[0], str(r[1])) for r in ws.query("select payment_id, amount from raw.payments order by 1")] == [
        ("P1", "1500.50"), ("P2", "-400.00"), ("P3", "700.00")
    ]
    again = ws.invoke("load", "in", "--mapping", "clinic.yml")
    assert again.output.count("unchanged since the last load") == 4  # 3 payment files + … all tables
    assert ws.scalar("select count(*) from raw.payments") == 3


def test_missing_required_column_names_the_mapping_line(ws):
    (ws.root / "clinic.yml").write_text(MAPPING, encoding="utf-8")
    make_exports(ws.root / "in")
    write(ws.root / "in" / "Визиты.csv", "Визит;Карта;Статус\nV1;1;пришел\n")
    result = ws.invoke("load", "in", "--mapping", "clinic.yml", expect=1)
    line = MAPPING.splitlines().index('      scheduled_at: "Начало"') + 1  # as written to clinic.yml
    assert line == 18
    assert f"Визиты.csv, line 1: required column(s) 'начало' (for scheduled_at, clinic.yml line {line})" in result.output


def test_wrong_delimiter_is_explained(ws):
    make_exports(ws.root / "in")
    (ws.root / "clinic.yml").write_text(MAPPING.replace('delimiter: ";"', 'delimiter: ","'), encoding="utf-8")
    result = ws.invoke("load", "in", "--mapping", "clinic.yml", expect=1)
    assert "the file is not delimited by ','" in result.output


def test_unknown_mapping_column_is_a_config_error(ws):
    (ws.root / "bad.yml").write_text("tables:\n  visits:\n    columns:\n      visit_date: Дата\n", encoding="utf-8")
    make_exports(ws.root / "in")
    result = ws.invoke("load", "in", "--mapping", "bad.yml", expect=2)
    assert "bad.yml line 4: visits has no column 'visit_date'" in result.output
