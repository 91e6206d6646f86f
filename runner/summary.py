"""The short human summary printed after a run: what is in the warehouse and where it is."""

from __future__ import annotations

from .config import Config
from .load import table_exists
from .warehouse import connect


def headline(cfg: Config) -> str:
    with connect(cfg, read_only=True) as con:
        patients, valid_phones = con.execute(
            "select count(*), count(*) filter (where phone_status = 'valid') from staging.stg_mis__patients"
        ).fetchone()
        completed, first_visit, last_visit = con.execute(
            "select count(*), min(visit_date), max(visit_date) from staging.stg_mis__visits where is_completed"
        ).fetchone()
        revenue, refunds = con.execute(
            "select coalesce(sum(amount), 0), coalesce(-sum(amount) filter (where is_refund), 0) "
            "from staging.stg_mis__payments"
        ).fetchone()
        models = con.execute(
            "select table_schema, count(*) from information_schema.tables "
            "where table_schema in ('staging', 'intermediate', 'marts') group by 1 order by 1"
        ).fetchall()
        rejects = con.execute("select count(*) from raw.load_rejects").fetchone()[0] if table_exists(con, "raw", "load_rejects") else 0
    lines = [
        "",
        f"Warehouse: {cfg.warehouse_path}",
        f"  patients (cards)   {patients:>14,}   with a valid phone: {valid_phones:,}",
        f"  completed visits   {completed:>14,}   from {first_visit} to {last_visit}",
        f"  net revenue        {revenue:>14,.2f} {cfg.currency}   (refunds {refunds:,.2f})",
        "  built: " + ", ".join(f"{n} in {schema}" for schema, n in models),
    ]
    if rejects:
        lines.append(f"  load problems: {rejects:,} rows in raw.load_rejects")
    return "\n".join(lines)
