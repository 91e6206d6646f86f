"""The short human summary printed after a run: what is in the warehouse and where it is.

Every figure is read from the marts (`marts.kpi_headline` holds the headline figures, each defined
once with its period); this module only formats them.
"""

from __future__ import annotations

from .config import Config
from .db import open_warehouse
from .engine import describe


def _share(value) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def _money(value, currency: str) -> str:
    return "—" if value is None else f"{float(value):,.2f} {currency}"


def headline(cfg: Config) -> str:
    """The summary of the published warehouse, read through runner/db.py on its engine."""
    with open_warehouse(cfg) as wh:
        figures = None
        if wh.table_exists("marts", "kpi_headline"):
            rows = wh.records("select * from marts.kpi_headline")
            figures = rows[0] if rows else None
        models = [(schema, len(wh.tables(schema))) for schema in ("intermediate", "marts", "staging")]
        models = [(schema, n) for schema, n in models if n]
        rejects = wh.scalar("select count(*) from raw.load_rejects") if wh.table_exists("raw", "load_rejects") else 0
    lines = ["", f"Warehouse: {describe(cfg)}"]
    if figures:
        lines += [
            f"  patients (cards)   {figures['patient_cards']:>14,}   with a valid phone: {figures['cards_with_valid_phone']:,}",
            f"  completed visits   {figures['completed_visits_all_time']:>14,}   from {figures['first_visit_date'] or '—'} "
            f"to {figures['last_visit_date'] or '—'}",
            f"  net revenue        {_money(figures['net_revenue_all_time'], cfg.currency):>18}   "
            f"(refunds {_money(figures['refunds_all_time'], cfg.currency)}), all time",
        ]
    lines.append("  built: " + ", ".join(f"{n} in {schema}" for schema, n in models))
    if rejects:
        lines.append(f"  load problems: {rejects:,} rows in raw.load_rejects")
    if figures:
        lines += ["", f"Headline figures as of {figures['as_of_date']}:"] + [f"  {line}" for line in _figure_lines(figures)]
    return "\n".join(lines)


def _figure_lines(f: dict) -> list[str]:
    """The owner's first questions, each with its period."""
    period = "no complete month yet"
    if f["period_start"] is not None:
        period = f"{f['period_start']:%Y-%m} – {f['period_end']:%Y-%m}, {f['months_in_period']} complete months"
    lines = [
        f"repeat revenue          {_share(f['repeat_revenue_share_12m']):>6} of net revenue ({period}; visits after "
        "the first, and advances)",
        f"top 15% of patients     {_share(f['top15_revenue_share_all_time']):>6} of net revenue (all time)",
    ]
    if f["top_segment"]:
        lines.append(
            f"top segment             {f['top_segment_label_en'] or f['top_segment']}: "
            f"{_share(f['top_segment_share_of_patients'])} of patients bring {_share(f['top_segment_share_of_revenue'])} "
            "of revenue (all time)"
        )
    if f["persons_with_visits"]:
        lines.append(
            f"sleeping base           {_share(f['sleeping_share']):>6} sleeping + {_share(f['lost_share'])} lost of "
            f"{f['persons_with_visits']:,} patients with visits (as of {f['as_of_date']})"
        )
    return lines
