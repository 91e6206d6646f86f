"""`patientbase report`: the owner's report, one self-contained HTML file of plotly charts.

Every chart's data, and the one-line reading aid above it, is one SQL query against the marts; Python
only hands the small result (a few dozen rows) to plotly and formats the figures for the clinic's
language and currency. plotly.js is inlined once in the page head and every figure's data is inline,
so the file opens offline. The file is written to a temporary name and renamed into place.

Sections fed by the call-list marts (`call_list_candidates` / `patient_next_action`, `call_outcomes`,
`base_potential`) appear only when those tables exist; the footer names what was left out and why.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from . import __version__
from .config import Config
from .db import open_warehouse
from .errors import ConfigError, PatientbaseError
from .report_texts import DAYS, LANGUAGES, MONTHS, NOUNS, SHORT_DAYS, SHORT_MONTHS, TEXTS

#: Marts the report cannot do without; the call-list marts are optional (conditional sections).
REQUIRED_MARTS = ("kpi_headline", "kpi_monthly", "dim_patients", "cohort_revenue", "cohort_retention", "rfm_scores",
                  "rfm_segment_summary", "rfm_segment_migration", "channel_ltv")

CURRENCY_SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€", "GBP": "£", "KZT": "₸", "UAH": "₴", "BYN": "Br",
                    "AMD": "֏", "GEL": "₾", "UZS": "сум", "KGS": "сом", "AZN": "₼"}
PREFIX_SYMBOLS = ("$", "€", "£")

FONT = "Inter, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"
INK = "#1f2933"
MUTED = "#6b7785"
PRIMARY = "#e9a03b"   # first-visit money
REPEAT = "#1f7a8c"    # repeat money: the report's main colour
ACCENT = "#c8553d"    # costs and warnings
LIGHT = "#9cc9d3"
HEAT = [[0.0, "#f4f8fb"], [0.15, "#d3e7ee"], [0.4, "#8fc1cf"], [0.7, "#3a8fa3"], [1.0, "#0d4f5f"]]
BUBBLES = [[0.0, "#bcdbe4"], [0.5, "#3a8fa3"], [1.0, "#0d4f5f"]]


# ---------------------------------------------------------------------------------------------------
# Formatting figures for people


@dataclass
class Fmt:
    lang: str
    currency: str

    @property
    def symbol(self) -> str:
        return CURRENCY_SYMBOLS.get(self.currency.upper(), self.currency)

    def number(self, value, digits: int = 0) -> str:
        if value is None:
            return "—"
        text = f"{float(value):,.{digits}f}"
        if self.lang == "ru":
            text = text.replace(",", "\u00a0").replace(".", ",")
        return text

    def money(self, value, short: bool = False) -> str:
        if value is None:
            return "—"
        value = float(value)
        if short and abs(value) >= 1_000_000:
            text = self.number(value / 1_000_000, 1) + ("\u00a0млн" if self.lang == "ru" else "\u00a0M")
        elif short and abs(value) >= 10_000:
            text = self.number(value / 1_000, 0) + ("\u00a0тыс." if self.lang == "ru" else "\u00a0k")
        else:
            text = self.number(value)
        if self.lang == "en" and self.symbol in PREFIX_SYMBOLS:
            return f"{self.symbol}{text}"
        return f"{text}\u00a0{self.symbol}"

    def pct(self, share) -> str:
        if share is None:
            return "—"
        percent = float(share) * 100
        return self.number(percent, 0 if abs(percent) >= 10 or percent == 0 else 1) + "%"

    def ratio(self, value) -> str:
        return self.number(value, 1)

    def count(self, n, noun: str = "patient") -> str:
        """'1 пациент', '3 пациента', '359 пациентов'; '1 patient', '3 patients'."""
        if n is None:
            return "—"
        n = int(n)
        forms = NOUNS[noun][self.lang]
        if self.lang == "ru":
            tail, tens = n % 10, n % 100
            form = forms[0] if tail == 1 and tens != 11 else forms[1] if 2 <= tail <= 4 and not 12 <= tens <= 14 else forms[2]
        else:
            form = forms[0] if n == 1 else forms[1]
        return f"{self.number(n)}\u00a0{form}"

    def month(self, day) -> str:
        if day is None:
            return "—"
        return f"{MONTHS[self.lang][day.month - 1]} {day.year}"

    def month_label(self, day) -> str:
        """'окт 2026' / 'Oct 2026': a heatmap row's label."""
        return f"{SHORT_MONTHS[self.lang][day.month - 1]} {day.year}"

    def date(self, day) -> str:
        return f"{day:%d.%m.%Y}" if self.lang == "ru" else f"{day:%Y-%m-%d}"

    # plotly settings for the language: d3 separators and the money axis/hover format
    @property
    def separators(self) -> str:
        return ",\u00a0" if self.lang == "ru" else ".,"

    def money_axis(self) -> dict:
        if self.lang == "en" and self.symbol in PREFIX_SYMBOLS:
            return {"tickformat": ",.0f", "tickprefix": self.symbol}
        return {"tickformat": ",.0f", "ticksuffix": f"\u00a0{self.symbol}"}

    def money_hover(self, field_ref: str) -> str:
        if self.lang == "en" and self.symbol in PREFIX_SYMBOLS:
            return f"{self.symbol}%{{{field_ref}:,.0f}}"
        return f"%{{{field_ref}:,.0f}}\u00a0{self.symbol}"


# ---------------------------------------------------------------------------------------------------
# The report's parts


@dataclass
class Tile:
    label: str
    value: str
    note: str


@dataclass
class Chart:
    key: str
    title: str
    reading: str | None
    figure: object | None  # a plotly Figure, or None when the mart has no rows yet
    height: int = 420
    wide: bool = True
    html: str = ""


@dataclass
class Section:
    key: str
    title: str
    charts: list[Chart] = field(default_factory=list)


@dataclass
class ReportResult:
    path: Path
    language: str
    as_of: dt.date | None
    charts: int
    empty: list[str]
    not_shown: list[str]
    seconds: float
    size_bytes: int


def _columns(wh, sql: str, params=()) -> dict[str, list]:
    """A query's result as {column: values}: the column-wise shape plotly takes. The SQL is portable
    (runner/db.py); decimals come back as floats, which is what a chart draws."""
    import decimal

    rows = wh.records(sql, params)
    if not rows:
        return {name.lower(): [] for name in _names(wh, sql, params)}
    names = list(rows[0])
    return {name.lower(): [float(v) if isinstance(v, decimal.Decimal) else v for v in (row[name] for row in rows)]
            for name in names}


def _names(wh, sql: str, params) -> list[str]:
    """The column names of a query that returned no rows."""
    return list(wh.frame(f"select * from ({sql}) as query where 1 = 0", params).columns)


def _table_columns(wh, table: str) -> set[str]:
    return set(wh.table_columns("marts", table))


def _label_column(columns: set[str], lang: str, stem: str, fallback: str, alias: str = "") -> str:
    """The language's label column of a mart (`segment_label_ru`), else the plain one, else `fallback`."""
    for name in (f"{stem}_{lang}", stem):
        if name in columns:
            return f"coalesce({alias + '.' if alias else ''}{name}, {fallback})"
    return fallback


class ReportBuilder:
    def __init__(self, wh, lang: str, fmt: Fmt, daily_calls: int | None = None):
        self.con = wh  # the warehouse layer (runner/db.py): portable SQL on any engine
        self.lang = lang
        self.fmt = fmt
        self.daily_calls = daily_calls  # the call list's capacity: administrators x calls each
        self.t = TEXTS[lang]
        self.not_shown: list[str] = []
        # the headline figures, each defined once in marts.kpi_headline
        self.headline = {k: v[0] for k, v in _columns(wh, "select * from marts.kpi_headline").items()}

    # -- plotly plumbing ------------------------------------------------------------------------------

    def layout(self, **overrides) -> dict:
        base = {
            "template": "plotly_white",
            "separators": self.fmt.separators,
            "font": {"family": FONT, "size": 13, "color": INK},
            "margin": {"l": 70, "r": 24, "t": 16, "b": 56},
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
            "hoverlabel": {"font": {"family": FONT, "size": 13}},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
        }
        base.update(overrides)
        return base

    # -- headline tiles -------------------------------------------------------------------------------

    def tiles(self) -> list[Tile]:
        t, f = self.t, self.fmt
        row = self.headline
        period = "—"
        if row["period_start"] is not None:
            period = f"{SHORT_MONTHS[self.lang][row['period_start'].month - 1]} {row['period_start'].year} – " \
                     f"{SHORT_MONTHS[self.lang][row['period_end'].month - 1]} {row['period_end'].year}"
        tiles = [
            Tile(t["tile_active"], f.number(row["active_patients"]),
                 t["tile_active_note"].format(base=f.number(row["persons_with_visits"]))),
            Tile(t["tile_repeat"], f.pct(row["repeat_revenue_share_12m"]), t["tile_repeat_note"].format(period=period)),
            Tile(t["tile_check"], f.money(row["avg_check_12m"]), t["tile_check_note"]),
            Tile(t["tile_ltv"], f.money(row["ltv_12m"]),
                 t["tile_ltv_note"].format(patients=f.number(row["ltv_patients_12m"]))),
            Tile(t["tile_churn"], f.pct(row["churn_rate"]),
                 t["tile_churn_note"].format(month=f.month(row["churn_month"]), churned=f.number(row["churned_patients"]),
                                             base=f.number(row["churn_base_patients"]))),
        ]
        if row["potential_revenue"] is not None and self.con.table_exists("marts", "base_potential"):
            tiles.append(Tile(t["tile_potential"], f.money(row["potential_revenue"], short=True),
                              t["tile_potential_note"].format(returns=f.number(row["expected_returns"]))))
        return tiles

    # -- revenue --------------------------------------------------------------------------------------

    def revenue_by_month(self) -> Chart:
        import plotly.graph_objects as go

        t, f = self.t, self.fmt
        data = _columns(self.con, """
            with

            months as (
                select
                    *,
                    is_complete_month
                        and row_number() over (partition by is_complete_month order by month desc) <= 12
                        as is_last_year
                from marts.kpi_monthly
            )

            select
                month,
                primary_revenue,
                repeat_revenue,
                repeat_revenue_share,
                case when is_complete_month then 1.0 else 0.45 end as opacity,
                sum(case when is_last_year then repeat_revenue end) over () as last_year_repeat,
                sum(case when is_last_year then revenue end) over () as last_year_revenue
            from months
            order by month
        """)
        chart = Chart("revenue_by_month", t["revenue_title"], None, None, height=440)
        if not data["month"]:
            return chart
        repeat, total = data["last_year_repeat"][0], data["last_year_revenue"][0]
        chart.reading = t["revenue_reading"].format(
            share=f.pct(repeat / total if total else None), repeat=f.money(repeat, short=True),
            total=f.money(total, short=True))
        money_hover = f.money_hover("y")
        fig = go.Figure()
        fig.add_bar(name=t["revenue_primary"], x=data["month"], y=data["primary_revenue"], marker_color=PRIMARY,
                    marker_opacity=data["opacity"], hovertemplate=f"%{{x|%b %Y}}: {money_hover}<extra>{t['revenue_primary']}</extra>")
        fig.add_bar(name=t["revenue_repeat"], x=data["month"], y=data["repeat_revenue"], marker_color=REPEAT,
                    marker_opacity=data["opacity"], hovertemplate=f"%{{x|%b %Y}}: {money_hover}<extra>{t['revenue_repeat']}</extra>")
        fig.add_scatter(name=t["revenue_share"], x=data["month"], y=data["repeat_revenue_share"], yaxis="y2",
                        mode="lines+markers", line={"color": INK, "width": 2}, marker={"size": 5},
                        hovertemplate=f"%{{x|%b %Y}}: %{{y:.1%}}<extra>{t['revenue_share']}</extra>")
        fig.update_layout(self.layout(
            barmode="stack", bargap=0.18,
            xaxis={"type": "date", "tickformat": "%b\n%Y", "dtick": "M3"},
            yaxis={**f.money_axis(), "rangemode": "tozero", "gridcolor": "#e6ebef"},
            yaxis2={"overlaying": "y", "side": "right", "range": [0, 1], "dtick": 0.2, "tickformat": ".0%",
                    "showgrid": False},
            legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0, "traceorder": "normal"},
            margin={"l": 100, "r": 56, "t": 16, "b": 56},
        ))
        chart.figure = fig
        return chart

    # -- cohorts --------------------------------------------------------------------------------------

    def _cohort_heatmap(self, key: str, title: str, data: dict, hover: str, colour_format: dict, zmax=None):
        import plotly.graph_objects as go

        fig = go.Figure(go.Heatmap(
            x=data["months_since_first"], y=data["cohort_label"], z=data["value"],
            colorscale=HEAT, zmin=0, zmax=zmax, hovertemplate=hover, xgap=1, ygap=1,
            colorbar={"thickness": 12, "outlinewidth": 0, **colour_format},
        ))
        cohorts = len(set(data["cohort_label"]))
        fig.update_layout(self.layout(
            xaxis={"title": {"text": self.t["months_since"]}, "dtick": 3 if max(data["months_since_first"]) > 12 else 1,
                   "showgrid": False, "zeroline": False},
            # one row per cohort that exists (a month without new patients has no row)
            yaxis={"title": {"text": self.t["cohort_axis"]}, "type": "category", "autorange": "reversed",
                   "showgrid": False},
            margin={"l": 110, "r": 24, "t": 16, "b": 56},
        ))
        return Chart(key, title, None, fig, height=max(360, min(760, 120 + 16 * cohorts)))

    def cohort_revenue(self) -> Chart:
        t, f = self.t, self.fmt
        data = _columns(self.con, """
            with

            cells as (
                select
                    *,
                    is_complete_month and months_since_first = 0 as is_month_0,
                    is_complete_month and months_since_first = 6 as is_month_6,
                    is_complete_month and months_since_first = 12 as is_month_12
                from marts.cohort_revenue
            )

            select
                cohort_month,
                months_since_first,
                cumulative_revenue_per_patient as value,
                sum(case when is_month_0 then cumulative_revenue end) over ()
                    / nullif(sum(case when is_month_0 then cohort_size end) over (), 0) as month_0,
                sum(case when is_month_6 then cumulative_revenue end) over ()
                    / nullif(sum(case when is_month_6 then cohort_size end) over (), 0) as month_6,
                sum(case when is_month_12 then cumulative_revenue end) over ()
                    / nullif(sum(case when is_month_12 then cohort_size end) over (), 0) as month_12
            from cells
            order by cohort_month, months_since_first
        """)
        if not data["cohort_month"]:
            return Chart("cohort_revenue", t["cohort_revenue_title"], None, None)
        data["cohort_label"] = [f.month_label(day) for day in data["cohort_month"]]
        chart = self._cohort_heatmap("cohort_revenue", t["cohort_revenue_title"], data,
                                     t["cohort_hover_revenue"].replace("%{z:,.0f}", f.money_hover("z")),
                                     f.money_axis())
        # calendar months since the cohort month, not the day-exact LTV: the reading names the LTV of the
        # tile (kpi_headline.ltv_12m) beside it, so nobody reads two different "LTV at 12 months"
        chart.reading = t["cohort_revenue_reading"].format(
            m0=f.money(data["month_0"][0]), m6=f.money(data["month_6"][0]), m12=f.money(data["month_12"][0]),
            ltv=f.money(self.headline.get("ltv_12m")))
        return chart

    def cohort_retention(self) -> Chart:
        t, f = self.t, self.fmt
        data = _columns(self.con, """
            with

            cells as (
                select
                    *,
                    is_complete_month and months_since_first = 1 as is_month_1,
                    is_complete_month and months_since_first = 6 as is_month_6,
                    is_complete_month and months_since_first = 12 as is_month_12
                from marts.cohort_retention
                where months_since_first >= 1  -- month 0 is 100% by definition
            )

            select
                cohort_month,
                months_since_first,
                retention_rate as value,
                sum(case when is_month_1 then active_patients end) over () * 1.0
                    / nullif(sum(case when is_month_1 then cohort_size end) over (), 0) as month_1,
                sum(case when is_month_6 then active_patients end) over () * 1.0
                    / nullif(sum(case when is_month_6 then cohort_size end) over (), 0) as month_6,
                sum(case when is_month_12 then active_patients end) over () * 1.0
                    / nullif(sum(case when is_month_12 then cohort_size end) over (), 0) as month_12
            from cells
            order by cohort_month, months_since_first
        """)
        if not data["cohort_month"]:
            return Chart("cohort_retention", t["cohort_retention_title"], None, None)
        data["cohort_label"] = [f.month_label(day) for day in data["cohort_month"]]
        rates = sorted(v for v in data["value"] if v is not None)
        chart = self._cohort_heatmap("cohort_retention", t["cohort_retention_title"], data,
                                     t["cohort_hover_retention"], {"tickformat": ".0%"},
                                     zmax=_quantile(rates, 0.98) or None)
        chart.reading = t["cohort_retention_reading"].format(
            m1=f.pct(data["month_1"][0]), m6=f.pct(data["month_6"][0]), m12=f.pct(data["month_12"][0]))
        return chart

    # -- RFM ------------------------------------------------------------------------------------------

    def rfm_grid(self) -> Chart:
        import plotly.graph_objects as go

        t, f = self.t, self.fmt
        label = _label_column(_table_columns(self.con, "rfm_scores"), self.lang, "segment_label", "segment")
        data = _columns(self.con, f"""
            with

            cells as (
                select
                    r_score,
                    f_score,
                    max(rfm_scale) as rfm_scale,
                    count(*) as patients,
                    sum(monetary) as revenue
                from marts.rfm_scores
                group by r_score, f_score
            )

            select
                r_score,
                f_score,
                rfm_scale,
                patients,
                revenue,
                patients * 1.0 / sum(patients) over () as share_of_patients,
                revenue / nullif(sum(revenue) over (), 0) as share_of_revenue,
                case when revenue > 0.3 * max(revenue) over () then 'white' else '{INK}' end as text_colour
            from cells
            order by revenue desc, r_score desc, f_score desc
        """)
        chart = Chart("rfm_grid", t["rfm_grid_title"], None, None, height=460, wide=False)
        if not data["r_score"]:
            return chart
        names: dict[tuple, list[str]] = {}  # the segments a cell holds, in name order
        for r_score, f_score, name in self.con.rows(
                f"select distinct r_score, f_score, {label} as segment_label from marts.rfm_scores"):
            names.setdefault((r_score, f_score), []).append(name)
        data["segments"] = [" / ".join(sorted(names.get(cell, []))) for cell in zip(data["r_score"], data["f_score"])]
        scale = max(data["rfm_scale"])
        chart.reading = t["rfm_grid_reading"].format(
            r=data["r_score"][0], f=data["f_score"][0], patients=f.count(data["patients"][0]),
            share_patients=f.pct(data["share_of_patients"][0]), share_revenue=f.pct(data["share_of_revenue"][0]))
        biggest = max(data["patients"])
        fig = go.Figure(go.Scatter(
            x=data["r_score"], y=data["f_score"], mode="markers+text", text=data["patients"],
            customdata=[[s] for s in data["segments"]],
            textfont={"color": data["text_colour"], "size": 13},
            marker={"size": data["patients"], "sizemode": "area", "sizeref": 2.0 * biggest / (92 ** 2 if scale <= 3 else 58 ** 2),
                    "sizemin": 8, "opacity": 0.95, "color": data["revenue"], "colorscale": BUBBLES, "line": {"width": 1, "color": "#ffffff"},
                    "colorbar": {"title": {"text": t["revenue_colour"]}, "thickness": 12, "outlinewidth": 0, **f.money_axis()}},
            hovertemplate=t["rfm_hover"].replace("%{marker.color:,.0f}", f.money_hover("marker.color")),
        ))
        ticks = list(range(1, scale + 1))
        fig.update_layout(self.layout(
            xaxis={"title": {"text": t["recency_axis"].format(scale=scale)}, "range": [0.45, scale + 0.55],
                   "tickvals": ticks, "ticktext": [f"R{i}" for i in ticks], "showgrid": False, "zeroline": False},
            yaxis={"title": {"text": t["frequency_axis"].format(scale=scale)}, "range": [0.45, scale + 0.55],
                   "tickvals": ticks, "ticktext": [f"F{i}" for i in ticks], "showgrid": False, "zeroline": False},
            shapes=[{"type": "rect", "xref": "x", "yref": "y", "x0": r - 0.5, "x1": r + 0.5, "y0": fs - 0.5,
                     "y1": fs + 0.5, "line": {"color": "#e6ebef", "width": 1}, "layer": "below"}
                    for r in ticks for fs in ticks],
        ))
        chart.figure = fig
        return chart

    def segments(self) -> Chart:
        import plotly.graph_objects as go

        t, f = self.t, self.fmt
        label = _label_column(_table_columns(self.con, "rfm_segment_summary"), self.lang, "segment_label", "segment")
        data = _columns(self.con, f"""
            with

            pareto as (
                select top15_revenue_share_all_time as top_15_share from marts.kpi_headline
            ),

            segments as (
                select
                    {label} as segment_label,
                    sort_order,
                    patients,
                    share_of_patients,
                    share_of_revenue
                from marts.rfm_segment_summary
            )

            select
                segments.*,
                -- the segment with the largest share of revenue (arg_max, written portably)
                first_value(segment_label) over (order by share_of_revenue desc nulls last, sort_order)
                    as top_segment,
                max(share_of_revenue) over () as top_share_of_revenue,
                first_value(share_of_patients) over (order by share_of_revenue desc nulls last, sort_order)
                    as top_share_of_patients,
                pareto.top_15_share
            from segments
            cross join pareto
            order by sort_order, segment_label
        """)
        chart = Chart("segments", t["segments_title"], None, None, height=460, wide=False)
        if not data["segment_label"] or not sum(data["patients"]):
            return chart
        chart.reading = t["segments_reading"].format(
            top=data["top_segment"][0], share_patients=f.pct(data["top_share_of_patients"][0]),
            share_revenue=f.pct(data["top_share_of_revenue"][0]), pareto=f.pct(data["top_15_share"][0]))
        fig = go.Figure()
        fig.add_bar(name=t["segments_patients"], y=data["segment_label"], x=data["share_of_patients"], orientation="h",
                    marker_color=LIGHT, texttemplate="%{x:.0%}", textposition="outside",
                    hovertemplate="%{y}: %{x:.1%}<extra>" + t["segments_patients"] + "</extra>")
        fig.add_bar(name=t["segments_revenue"], y=data["segment_label"], x=data["share_of_revenue"], orientation="h",
                    marker_color=REPEAT, texttemplate="%{x:.0%}", textposition="outside",
                    hovertemplate="%{y}: %{x:.1%}<extra>" + t["segments_revenue"] + "</extra>")
        # shares of revenue are empty when there is no net revenue (a clinic without payment data)
        top = max([v for v in data["share_of_patients"] + data["share_of_revenue"] if v is not None] or [1.0])
        fig.update_layout(self.layout(
            barmode="group", bargap=0.25, bargroupgap=0.05,
            xaxis={"tickformat": ".0%", "range": [0, min(1.0, top * 1.18) or 1], "gridcolor": "#e6ebef"},
            yaxis={"autorange": "reversed", "automargin": True},
            margin={"l": 120, "r": 24, "t": 16, "b": 40},
        ))
        chart.figure = fig
        return chart

    def migration(self) -> Chart:
        import plotly.graph_objects as go

        t, f = self.t, self.fmt
        label = _label_column(_table_columns(self.con, "rfm_segment_summary"), self.lang, "segment_label", "segment")
        data = _columns(self.con, f"""
            with

            last_month as (select max(month) as month from marts.rfm_segment_migration),

            moves as (
                select from_segment, to_segment, patients
                from marts.rfm_segment_migration
                where month = (select month from last_month)
            ),

            segments as (
                select segment, {label} as segment_label, sort_order from marts.rfm_segment_summary
            ),

            from_segments as (
                select 'new_entry' as segment, ? as segment_label, -1 as sort_order
                union all
                select * from segments
            ),

            grid as (
                select
                    from_segments.segment as from_segment,
                    from_segments.segment_label as from_label,
                    from_segments.sort_order as from_order,
                    to_segments.segment_label as to_label,
                    to_segments.sort_order as to_order,
                    from_segments.segment = 'new_entry' as is_new_entry,
                    from_segments.segment = to_segments.segment as is_same_segment,
                    case
                        when from_segments.segment <> 'new_entry' and from_segments.segment <> to_segments.segment
                            then 1
                        else 0
                    end as is_flow,
                    coalesce(moves.patients, 0) as patients
                from from_segments
                cross join segments as to_segments
                left join moves
                    on moves.from_segment = from_segments.segment
                    and moves.to_segment = to_segments.segment
            )

            select
                from_label,
                to_label,
                nullif(patients, 0) as patients,
                (select month from last_month) as month,
                max(case when not is_same_segment then patients end) over () as colour_max,
                sum(case when not is_same_segment and not is_new_entry then patients end) over () as moved,
                sum(case when not is_new_entry then patients end) over () as scored_before,
                sum(case when is_new_entry then patients end) over () as new_entries,
                -- the largest flow between two segments and its labels (arg_max, written portably)
                case when max(is_flow) over () = 1 then
                    first_value(from_label) over (order by is_flow desc, patients desc, from_order, from_label,
                                                     to_order, to_label)
                end as flow_from,
                case when max(is_flow) over () = 1 then
                    first_value(to_label) over (order by is_flow desc, patients desc, from_order, from_label,
                                                   to_order, to_label)
                end as flow_to,
                max(case when is_flow = 1 then patients end) over () as flow_patients
            from grid
            order by from_order, from_label, to_order, to_label
        """, [t["migration_new_entry"]])
        month = data["month"][0] if data["month"] else None
        chart = Chart("migration", t["migration_title"].format(month=f.month(month)), None, None, height=470)
        if month is None or not any(data["patients"]):
            return chart
        moved, before = data["moved"][0] or 0, data["scored_before"][0] or 0
        chart.reading = t["migration_reading"].format(
            month=f.month(month), moved=f.count(moved), share=f.pct(moved / before if before else None),
            from_label=data["flow_from"][0] or "—", to_label=data["flow_to"][0] or "—",
            flow=f.number(data["flow_patients"][0]), new=f.count(data["new_entries"][0]))
        fig = go.Figure(go.Heatmap(
            x=data["to_label"], y=data["from_label"], z=data["patients"], colorscale=HEAT, zmin=0,
            zmax=max(data["colour_max"][0] or 1, 1), texttemplate="%{z}", textfont={"size": 12}, xgap=2, ygap=2,
            hovertemplate=t["migration_hover"], colorbar={"thickness": 12, "outlinewidth": 0},
        ))
        fig.update_layout(self.layout(
            xaxis={"title": {"text": t["migration_to"]}, "side": "bottom", "showgrid": False, "tickangle": -30},
            yaxis={"title": {"text": t["migration_from"]}, "autorange": "reversed", "showgrid": False},
            margin={"l": 150, "r": 24, "t": 16, "b": 110},
        ))
        chart.figure = fig
        return chart

    # -- channels -------------------------------------------------------------------------------------

    def channel_ltv(self) -> Chart:
        import plotly.graph_objects as go

        t, f = self.t, self.fmt
        label = _label_column(_table_columns(self.con, "channel_ltv"), self.lang, "channel_label", "channel")
        data = _columns(self.con, f"""
            with

            channels as (
                select
                    {label} as channel_label,
                    patients,
                    ltv_6m,
                    ltv_12m,
                    cac,
                    ltv_12m_to_cac
                from marts.channel_ltv
            )

            select
                *,
                count(ltv_12m_to_cac) over () as channels_with_cac,
                -- arg_max / arg_min, written portably: the first label in the figure's order
                first_value(channel_label) over (order by ltv_12m_to_cac desc nulls last, channel_label)
                    as best_channel,
                max(ltv_12m_to_cac) over () as best_ratio,
                first_value(channel_label) over (order by ltv_12m_to_cac asc nulls last, channel_label)
                    as worst_channel,
                min(ltv_12m_to_cac) over () as worst_ratio,
                case when max(ltv_12m) over () is not null then
                    first_value(channel_label) over (order by ltv_12m desc nulls last, channel_label)
                end as best_ltv_channel,
                max(ltv_12m) over () as best_ltv
            from channels
            order by ltv_12m desc nulls last, channel_label
        """)
        chart = Chart("channel_ltv", t["channel_title"], None, None, height=440)
        if not data["channel_label"]:
            return chart
        with_cac = data["channels_with_cac"][0]
        if with_cac >= 2:
            chart.reading = t["channel_reading"].format(
                best=data["best_channel"][0], best_ratio=f.ratio(data["best_ratio"][0]),
                worst=data["worst_channel"][0], worst_ratio=f.ratio(data["worst_ratio"][0]))
        elif with_cac == 1:
            chart.reading = t["channel_reading_one"].format(best=data["best_channel"][0],
                                                            best_ratio=f.ratio(data["best_ratio"][0]))
        else:
            chart.reading = t["channel_reading_no_cac"].format(best=data["best_ltv_channel"][0] or "—",
                                                               ltv=f.money(data["best_ltv"][0]))
        fig = go.Figure()
        fig.add_bar(name=t["channel_ltv6"], x=data["channel_label"], y=data["ltv_6m"], marker_color=LIGHT,
                    hovertemplate=f"%{{x}}: {f.money_hover('y')}<extra>{t['channel_ltv6']}</extra>")
        fig.add_bar(name=t["channel_ltv12"], x=data["channel_label"], y=data["ltv_12m"], marker_color=REPEAT,
                    hovertemplate=f"%{{x}}: {f.money_hover('y')}<extra>{t['channel_ltv12']}</extra>")
        fig.add_scatter(name=t["channel_cac"], x=data["channel_label"], y=data["cac"], mode="markers",
                        marker={"symbol": "diamond", "size": 13, "color": ACCENT, "line": {"width": 1, "color": "white"}},
                        hovertemplate=f"%{{x}}: {f.money_hover('y')}<extra>{t['channel_cac']}</extra>")
        fig.update_layout(self.layout(
            barmode="group", bargap=0.3,
            yaxis={**f.money_axis(), "rangemode": "tozero", "gridcolor": "#e6ebef"},
            xaxis={"tickangle": -20, "automargin": True},
            margin={"l": 100, "r": 24, "t": 16, "b": 90},
        ))
        chart.figure = fig
        return chart

    # -- the call list (conditional on the actions marts) ---------------------------------------------

    def call_list(self) -> Chart | None:
        import plotly.graph_objects as go

        t, f = self.t, self.fmt
        if self.con.table_exists("marts", "call_list_candidates"):
            columns = _table_columns(self.con, "call_list_candidates")
            label = _label_column(columns, self.lang, "action_label", "action_code")
            where = "where exclusion_reason is null" if "exclusion_reason" in columns else ""
            source = f"select {label} as action_label, expected_value from marts.call_list_candidates {where}"
        elif self.con.table_exists("marts", "patient_next_action"):
            # before the candidates mart lands: today's due call actions (CONTRACT §2 columns)
            columns = _table_columns(self.con, "patient_next_action")
            label = _label_column(columns, self.lang, "action_label", "action_code")
            source = f"""
                select {label} as action_label, expected_value
                from marts.patient_next_action
                where channel = 'call'
                  and (due_date is null or due_date <= (select max(as_of_date) from marts.dim_patients))
            """
        else:
            self.not_shown.append(t["not_built"].format(what=t["label_call_list"], table="marts.call_list_candidates"))
            return None
        data = _columns(self.con, f"""
            with

            candidates as ({source}),

            actions as (
                select
                    action_label,
                    count(*) as patients,
                    coalesce(sum(expected_value), 0) as expected_value
                from candidates
                group by action_label
            )

            select
                *,
                sum(patients) over () as total_patients,
                sum(expected_value) over () as total_expected_value
            from actions
            order by patients desc, action_label
        """)
        chart = Chart("call_list", t["call_list_title"], None, None, height=max(260, 90 + 42 * len(data["action_label"])))
        if not data["action_label"]:
            return chart
        chart.reading = t["call_list_reading"].format(
            patients=f.count(data["total_patients"][0]), value=f.money(data["total_expected_value"][0], short=True),
            top=data["action_label"][0], top_patients=f.number(data["patients"][0]))
        if self.daily_calls and self.daily_calls < data["total_patients"][0]:
            chart.reading += t["call_list_capacity"].format(calls=f.count(self.daily_calls, "call"))
        fig = go.Figure(go.Bar(
            y=data["action_label"], x=data["patients"], orientation="h", marker_color=REPEAT,
            customdata=[[v] for v in data["expected_value"]], texttemplate="%{x}", textposition="outside",
            hovertemplate=f"%{{y}}<br>{t['call_list_patients']}: %{{x}}<br>{t['call_list_value']}: "
                          f"{f.money_hover('customdata[0]')}<extra></extra>",
        ))
        fig.update_layout(self.layout(
            xaxis={"title": {"text": t["call_list_patients"]}, "gridcolor": "#e6ebef", "rangemode": "tozero",
                   **({"dtick": 1} if max(data["patients"]) < 8 else {})},  # counts: no 0.5 ticks
            yaxis={"autorange": "reversed", "automargin": True},
            margin={"l": 180, "r": 40, "t": 16, "b": 56},
        ))
        chart.figure = fig
        return chart

    def call_outcomes(self) -> Chart | None:
        import plotly.graph_objects as go

        t, f = self.t, self.fmt
        if not self.con.table_exists("marts", "call_outcomes"):
            self.not_shown.append(t["not_built"].format(what=t["label_outcomes"], table="marts.call_outcomes"))
            return None
        if self.con.table_exists("marts", "action_rules"):
            label = _label_column(_table_columns(self.con, "action_rules"), self.lang, "label", "outcomes.action_code",
                                  alias="rules")
            labels_join = "left join marts.action_rules as rules on rules.action_code = outcomes.action_code"
        else:
            label, labels_join = "outcomes.action_code", ""
        data = _columns(self.con, f"""
            with

            by_action as (
                select
                    {label} as action_label,
                    sum(outcomes.attempts) as attempts,
                    sum(outcomes.reached) as reached,
                    sum(outcomes.booked) as booked,
                    sum(outcomes.came) as came,
                    sum(outcomes.revenue) as revenue
                from marts.call_outcomes as outcomes
                {labels_join}
                group by {label}
            )

            select
                *,
                sum(attempts) over () as total_attempts,
                sum(reached) over () * 1.0 / nullif(sum(attempts) over (), 0) as reach_rate,
                sum(booked) over () as total_booked,
                sum(came) over () as total_came,
                sum(revenue) over () as total_revenue
            from by_action
            where attempts > 0
            order by attempts desc, action_label
        """)
        if not data["action_label"]:
            self.not_shown.append(t["label_outcomes_empty"])
            return None
        chart = Chart("call_outcomes", t["outcomes_title"], t["outcomes_reading"].format(
            calls=f.number(data["total_attempts"][0]), reach=f.pct(data["reach_rate"][0]),
            booked=f.number(data["total_booked"][0]), came=f.number(data["total_came"][0]),
            revenue=f.money(data["total_revenue"][0], short=True)), None, height=420)
        fig = go.Figure()
        for key, colour in (("attempts", "#c9d1d9"), ("reached", LIGHT), ("booked", REPEAT), ("came", PRIMARY)):
            fig.add_bar(name=t[f"outcomes_{key}"], x=data["action_label"], y=data[key], marker_color=colour,
                        hovertemplate=f"%{{x}}: %{{y}}<extra>{t[f'outcomes_{key}']}</extra>")
        fig.update_layout(self.layout(
            barmode="group", bargap=0.25,
            yaxis={"title": {"text": t["outcomes_calls"]}, "gridcolor": "#e6ebef", "rangemode": "tozero"},
            xaxis={"automargin": True},
            margin={"l": 70, "r": 24, "t": 16, "b": 70},
        ))
        chart.figure = fig
        return chart

    def base_potential(self) -> Chart | None:
        import plotly.graph_objects as go

        t, f = self.t, self.fmt
        if not self.con.table_exists("marts", "base_potential"):
            self.not_shown.append(t["not_built"].format(what=t["label_potential"], table="marts.base_potential"))
            return None
        label = _label_column(_table_columns(self.con, "rfm_segment_summary"), self.lang, "segment_label", "segment")
        own_label = _label_column(_table_columns(self.con, "base_potential"), self.lang, "segment_label",
                                  "labels.segment_label", alias="base_potential")
        data = _columns(self.con, f"""
            with

            labels as (select segment, {label} as segment_label from marts.rfm_segment_summary),

            potential as (
                select
                    coalesce({own_label}, base_potential.segment) as segment_label,
                    base_potential.patients,
                    base_potential.expected_returns,
                    base_potential.potential_revenue
                from marts.base_potential
                left join labels on labels.segment = base_potential.segment
            )

            select
                *,
                sum(potential_revenue) over () as total_potential_revenue,
                potential_revenue / nullif(sum(potential_revenue) over (), 0) as share_of_potential
            from potential
            order by potential_revenue desc nulls last, segment_label
        """)
        chart = Chart("base_potential", t["potential_title"], None, None, wide=False,
                      height=max(300, 90 + 40 * len(data["segment_label"])))
        if not data["segment_label"] or not data["total_potential_revenue"][0]:
            return chart
        chart.reading = t["potential_reading"].format(
            total=f.money(data["total_potential_revenue"][0], short=True), top=data["segment_label"][0],
            top_value=f.money(data["potential_revenue"][0], short=True), top_share=f.pct(data["share_of_potential"][0]))
        fig = go.Figure(go.Bar(
            y=data["segment_label"], x=data["potential_revenue"], orientation="h", marker_color=PRIMARY,
            customdata=[[p] for p in data["patients"]],
            hovertemplate=f"%{{y}}: {f.money_hover('x')}<extra></extra>",
        ))
        fig.update_layout(self.layout(
            xaxis={**f.money_axis(), "gridcolor": "#e6ebef", "rangemode": "tozero", "nticks": 5},
            yaxis={"autorange": "reversed", "automargin": True},
            margin={"l": 130, "r": 30, "t": 16, "b": 56},
        ))
        chart.figure = fig
        return chart

    # -- the page -------------------------------------------------------------------------------------

    def sections(self) -> list[Section]:
        t = self.t
        sections = [
            Section("revenue", t["section_revenue"], [self.revenue_by_month()]),
            Section("cohorts", t["section_cohorts"], [self.cohort_revenue(), self.cohort_retention()]),
            Section("rfm", t["section_rfm"], [self.rfm_grid(), self.segments(), self.migration()]),
            Section("channels", t["section_channels"], [self.channel_ltv()]),
        ]
        from .report_backtest import backtest_chart  # the return prediction's backtest (one chart, one sentence)
        from .report_uplift import uplift_chart  # issue #13: what the calls added against the control group

        actions = [c for c in (self.call_list(), self.base_potential(), self.call_outcomes(), uplift_chart(self),
                               backtest_chart(self.con, self.lang)) if c is not None]
        if actions:
            halves = [c for c in actions if not c.wide]
            if len(halves) % 2:  # a half-width chart alone on its row takes the whole row
                halves[-1].wide = True
            sections.append(Section("actions", t["section_actions"], actions))
        return sections


# ---------------------------------------------------------------------------------------------------
# Rendering


def _locale_script(lang: str) -> str:
    """Register the language's month and day names with plotly.js (plotly ships only English)."""
    import json

    if lang == "en":
        return ""
    locale = {
        "moduleType": "locale",
        "name": lang,
        "dictionary": {},
        "format": {
            "days": DAYS[lang], "shortDays": SHORT_DAYS[lang], "months": MONTHS[lang],
            "shortMonths": SHORT_MONTHS[lang], "date": "%d.%m.%Y", "decimal": ",", "thousands": "\u00a0",
        },
    }
    return f"Plotly.register({json.dumps(locale, ensure_ascii=False)});"


def render(cfg: Config, lang: str, as_of, tiles: list[Tile], sections: list[Section], not_shown: list[str]) -> str:
    import jinja2
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    t = TEXTS[lang]
    fmt = Fmt(lang, cfg.currency)
    config = {"displaylogo": False, "responsive": True, "locale": lang,
              "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"]}
    for section in sections:
        for chart in section.charts:
            if chart.figure is not None:
                chart.html = pio.to_html(chart.figure, include_plotlyjs=False, full_html=False, config=config,
                                         div_id=f"chart-{chart.key}", default_height=f"{chart.height}px")
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        resources.files("patientbase").joinpath("templates/report.html.j2").read_text(encoding="utf-8"))
    generated = dt.datetime.now()
    return template.render(
        lang=lang, t=t, tiles=tiles, sections=sections,
        subtitle=t["subtitle"].format(as_of=fmt.date(as_of) if as_of else "—", currency=cfg.currency,
                                      generated=f"{fmt.date(generated.date())} {generated:%H:%M}"),
        not_shown=t["not_shown"].format(items="; ".join(not_shown)) if not_shown else "",
        footer=t["footer"].format(version=__version__, warehouse=_warehouse_name(cfg)),
        plotly_js=get_plotlyjs(), locale_js=_locale_script(lang),
    )


def _warehouse_name(cfg: Config) -> str:
    """The warehouse as the footer names it: the DuckDB file's name, else the engine and its database."""
    from .engine import engine_of, settings

    engine = engine_of(cfg)
    if engine == "postgres":
        return f"PostgreSQL {settings(cfg)['dbname']}"
    if engine == "spark":
        return "Spark"
    return cfg.warehouse_path.name


def _quantile(values: list[float], q: float) -> float | None:
    """The q-quantile of sorted values, interpolated linearly (as quantile_cont): a colour scale's top."""
    if not values:
        return None
    at = (len(values) - 1) * q
    low = int(at)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (at - low)


def resolve_language(cfg: Config, lang: str | None) -> str:
    lang = (lang or getattr(cfg, "language", None) or "ru").lower()
    if lang not in LANGUAGES:
        raise ConfigError(f"Report language {lang!r} is not available: use one of {', '.join(LANGUAGES)} "
                          "(config `language` or --lang).")
    return lang


def write_report(cfg: Config, out: str | os.PathLike | None = None, lang: str | None = None) -> ReportResult:
    """Build the report from the published warehouse (read-only) and write it atomically."""
    start = time.perf_counter()
    lang = resolve_language(cfg, lang)
    path = Path(out).expanduser().resolve() if out else cfg.exports_path / "report.html"
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder; give a file name such as {path / 'report.html'}.")
    with open_warehouse(cfg) as wh:
        missing = [m for m in REQUIRED_MARTS if not wh.table_exists("marts", m)]
        if missing:
            raise PatientbaseError(
                f"The warehouse has no {', '.join('marts.' + m for m in missing)} yet: run `patientbase build` "
                "(or `patientbase run`) first, then `patientbase report`."
            )
        admins, per_admin = getattr(cfg, "admins", None), getattr(cfg, "calls_per_admin", None)
        builder = ReportBuilder(wh, lang, Fmt(lang, cfg.currency),
                                daily_calls=len(admins) * per_admin if admins and per_admin else None)
        as_of = builder.headline["as_of_date"]
        tiles = builder.tiles()
        sections = builder.sections()
    html = render(cfg, lang, as_of, tiles, sections, builder.not_shown)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    charts = [c for s in sections for c in s.charts]
    return ReportResult(
        path=path, language=lang, as_of=as_of, charts=sum(c.figure is not None for c in charts),
        empty=[c.title for c in charts if c.figure is None], not_shown=builder.not_shown,
        seconds=time.perf_counter() - start, size_bytes=path.stat().st_size,
    )
