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
        figures = _figures(con) if table_exists(con, "marts", "rfm_segment_summary") else None
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
    if figures:
        lines += ["", f"Headline figures as of {figures['as_of']}:"] + [f"  {line}" for line in figures["lines"]]
    return "\n".join(lines)


def _figures(con) -> dict:
    """The owner's first questions, answered from the marts."""
    as_of = con.execute("select as_of_date from intermediate.int_as_of_date").fetchone()[0]
    revenue, repeat = con.execute(
        "select coalesce(sum(revenue), 0), coalesce(sum(repeat_revenue), 0) from marts.kpi_monthly"
    ).fetchone()
    base, sleeping, lost = con.execute(
        """
        select count(*),
               count(*) filter (where lifecycle_status = 'sleeping'),
               count(*) filter (where lifecycle_status = 'lost')
        from marts.dim_patients where completed_visits > 0
        """
    ).fetchone()
    top = con.execute(
        """
        select coalesce(segment_label_en, segment), share_of_patients, share_of_revenue
        from marts.rfm_segment_summary where patients > 0 order by revenue desc limit 1
        """
    ).fetchone()
    pareto = con.execute(
        """
        with ranked as (
            select total_revenue,
                   row_number() over (order by total_revenue desc) as position,
                   count(*) over () as persons,
                   sum(total_revenue) over () as revenue
            from marts.dim_patients where completed_visits > 0
        )
        select coalesce(sum(total_revenue) / nullif(max(revenue), 0), 0)
        from ranked where position <= ceiling(0.15 * persons)
        """
    ).fetchone()[0]
    lines = [
        f"repeat revenue          {float(repeat) / float(revenue) if revenue else 0:>6.1%} of net revenue (visits after the first, and advances)",
        f"top 15% of patients     {float(pareto):>6.1%} of net revenue",
    ]
    if top:
        lines.append(
            f"top segment             {top[0]}: {float(top[1]):.1%} of patients bring {float(top[2]):.1%} of revenue"
        )
    if base:
        lines.append(
            f"sleeping base           {sleeping / base:>6.1%} sleeping + {lost / base:.1%} lost of {base:,} patients with visits"
        )
    return {"as_of": as_of, "lines": lines}
