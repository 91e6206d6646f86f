"""The report's uplift card (issue #13): per action, the came-rate of the called against the control
group, the difference with its 95% interval, and the revenue the calls added, one sentence each.

All figures are marts.call_uplift's (rows over all months, every operator); Python only formats them
and draws the intervals.
"""

from __future__ import annotations

from .report_texts import UPLIFT_TEXTS

#: an uplift whose whole 95% interval lies within ±2 points reads as "about zero"
ABOUT_ZERO = 0.02


def uplift_sentence(t: dict, fmt, action: str, row: dict) -> str:
    """One sentence per action: rates, the difference in points with its interval, the added revenue."""

    def points(share, signed=False):
        if share is None:
            return "—"
        text = fmt.number(float(share) * 100, 1)
        return ("+" + text) if signed and float(share) > 0 else text

    text = t["sentence"].format(
        action=action, rate_called=fmt.pct(row["rate_called"]), rate_control=fmt.pct(row["rate_control"]),
        uplift=points(row["uplift"], signed=True), low=points(row["uplift_low"], signed=True),
        high=points(row["uplift_high"], signed=True), revenue=fmt.money(row["incremental_revenue"], short=True))
    low, high = row["uplift_low"], row["uplift_high"]
    if low is not None and -ABOUT_ZERO <= float(low) and float(high) <= ABOUT_ZERO:
        text += t["about_zero"]
    elif not row["is_significant"]:
        text += t["not_significant"]
    return text


def uplift_chart(report):
    """The uplift card for `report` (a runner.report.Report), or None when there is nothing to show."""
    import plotly.graph_objects as go

    from .report import Chart, _columns, _label_column, _table_columns

    t, fmt, con = UPLIFT_TEXTS[report.lang], report.fmt, report.con
    if not con.table_exists("marts", "call_uplift"):
        report.not_shown.append(report.t["not_built"].format(what=t["label"], table="marts.call_uplift"))
        return None
    if con.table_exists("marts", "action_rules"):
        label = _label_column(_table_columns(con, "action_rules"), report.lang, "label", "uplift.action_code",
                              alias="rules")
        labels_join = "left join marts.action_rules as rules on rules.action_code = uplift.action_code"
    else:
        label, labels_join = "uplift.action_code", ""
    data = _columns(con, f"""
        select
            case when uplift.action_code = 'all' then ? else {label} end as action_label,
            uplift.rate_called, uplift.rate_control, uplift.uplift, uplift.uplift_low, uplift.uplift_high,
            uplift.is_significant, uplift.incremental_revenue
        from marts.call_uplift as uplift
        {labels_join}
        where uplift.operator_id = 'all' and uplift.month is null and uplift.called > 0 and uplift.control > 0
        order by case when uplift.action_code = 'all' then 1 else 0 end, uplift.called desc, uplift.action_code
    """, [t["all"]])
    if not data["action_label"]:
        report.not_shown.append(t["empty"])
        return None
    rows = [dict(zip(data, values)) for values in zip(*data.values())]
    reading = " ".join(uplift_sentence(t, fmt, row["action_label"], row) for row in rows)
    chart = Chart("call_uplift", t["title"], reading, None, height=380)
    y = [float(r["uplift"]) * 100 for r in rows]
    fig = go.Figure()
    fig.add_scatter(
        x=data["action_label"], y=y, mode="markers", marker={"size": 12, "color": "#1f7a8c"},
        error_y={"type": "data", "symmetric": False,
                 "array": [float(r["uplift_high"]) * 100 - v for r, v in zip(rows, y)],
                 "arrayminus": [v - float(r["uplift_low"]) * 100 for r, v in zip(rows, y)]},
        hovertemplate=f"%{{x}}: %{{y:.1f}}<extra>{t['hover']}</extra>",
    )
    fig.add_hline(y=0, line_color="#6b7785", line_width=1)
    fig.update_layout(report.layout(
        yaxis={"title": {"text": t["axis"]}, "gridcolor": "#e6ebef"}, xaxis={"automargin": True},
        margin={"l": 70, "r": 24, "t": 16, "b": 70}, showlegend=False,
    ))
    chart.figure = fig
    return chart
