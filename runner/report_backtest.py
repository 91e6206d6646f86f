"""The report's backtest chart and sentence: how well the return prediction did on the clinic's own
history (marts.prediction_backtest), in one picture and one line.

Kept apart from report.py so the report only calls `backtest_chart(wh, lang)`; the figures come from
one query against the mart, Python only draws them.
"""

from __future__ import annotations

TEXTS = {
    "en": {
        "title": "Who came back: the return prediction checked on the clinic's own history",
        "sentence": "Of the 10% the model ranked highest on {cutoff}, {top} came back within {days} days; "
                    "of everyone, {base}.",
        "predicted": "Predicted by {model}",
        "actual": "Came back",
        "decile": "Tenth of the ranking (1 = most likely to return)",
        "rate": "Share who came back",
    },
    "ru": {
        "title": "Кто вернулся: прогноз возврата, проверенный на истории клиники",
        "sentence": "Из 10% пациентов, которых модель {cutoff} поставила выше всех, за {days} дн. вернулись "
                    "{top}; из всех — {base}.",
        "predicted": "Прогноз ({model})",
        "actual": "Вернулись",
        "decile": "Десятая часть рейтинга (1 — самые вероятные)",
        "rate": "Доля вернувшихся",
    },
}


def _float(value) -> float | None:
    return None if value is None else float(value)


def _pct(share: float, lang: str) -> str:
    text = f"{100 * share:.0f}%"
    return text.replace(".", ",") if lang == "ru" else text


def backtest_figures(wh) -> dict | None:
    """The chosen model's backtest: cutoff, horizon, base and top-decile return rates, and per decile
    the predicted and observed return rates (read through the warehouse layer `wh`, any engine). None
    before predict has run."""
    if not wh.table_exists("marts", "prediction_backtest"):
        return None
    rows = [(cutoff, days, decile, model, _float(rate), _float(predicted)) for cutoff, days, decile, model, rate, predicted
            in wh.rows("""
        select cutoff_date, horizon_days, decile, model_name, return_rate, predicted_return_rate
        from marts.prediction_backtest
        where is_chosen_model
        order by decile nulls first
    """)]
    if not rows or rows[0][2] is not None or len(rows) < 2:
        return None
    total, per_decile = rows[0], rows[1:]
    return {
        "cutoff": total[0], "days": total[1], "model": total[3], "base": total[4],
        "top": per_decile[0][4] if per_decile[0][2] == 1 else None,
        "deciles": [r[2] for r in per_decile], "actual": [r[4] for r in per_decile],
        "predicted": [r[5] for r in per_decile],
    }


def backtest_sentence(wh, lang: str = "en") -> str | None:
    figures = backtest_figures(wh)
    if figures is None or figures["top"] is None:
        return None
    return TEXTS[lang]["sentence"].format(cutoff=figures["cutoff"], days=figures["days"],
                                          top=_pct(figures["top"], lang), base=_pct(figures["base"], lang))


def backtest_chart(wh, lang: str = "en"):
    """A report Chart (observed vs predicted return rate per decile of the chosen model) with the
    sentence as its reading aid; None before predict has run."""
    import plotly.graph_objects as go

    from .report import PRIMARY, REPEAT, Chart

    figures = backtest_figures(wh)
    if figures is None:
        return None
    t = TEXTS[lang]
    fig = go.Figure([
        go.Bar(x=figures["deciles"], y=figures["actual"], name=t["actual"], marker_color=REPEAT),
        go.Scatter(x=figures["deciles"], y=figures["predicted"], name=t["predicted"].format(model=figures["model"]),
                   mode="lines+markers", line={"color": PRIMARY}),
    ])
    fig.update_layout(
        xaxis={"title": t["decile"], "dtick": 1}, yaxis={"title": t["rate"], "tickformat": ".0%", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.25}, margin={"l": 60, "r": 20, "t": 16, "b": 90},
        plot_bgcolor="white", paper_bgcolor="white",
    )
    return Chart("prediction_backtest", t["title"], backtest_sentence(wh, lang), fig, wide=True)
