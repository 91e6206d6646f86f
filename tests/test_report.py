"""`patientbase report`: the owner's report, checked as text and in a real browser.

clinic15 (fixtures/clinic15/README.md) as of 2025-07-01 gives numbers worked out by hand:
* 12 persons have a completed visit (13 persons less P06, who never came); P05 is lost and P11 died,
  so the active base is 10.
* the top 15% of 12 persons are 2 (ceiling of 1.8): P01 (55,000) and P08 (5,000 + 20,000 + a 30,000
  advance = 55,000); 110,000 of 188,500 net revenue is 58%.
* LTV (12 months) rests on the two persons whose first visit is a year old: P05 (4 x 8,000 in the
  first year) and P14 (2 x 4,500): (32,000 + 9,000) / 2 = 20,500.
* churn in June 2025: P05's last visit (2024-06-01) is 12 months old and nothing followed, 1 of the
  11 persons active at the month start (everyone with a visit in the 12 months before it): 9.1%.

The browser test opens the report written by `run --demo --patients 1000` in headless Chromium
(Debian package `chromium`), driven over the DevTools protocol on a pipe (no port, no network), and
fails on any console error, uncaught exception, or chart without its plotly SVG and data marks. It
saves a full-page screenshot to tests/artifacts/report.png.
"""

from __future__ import annotations

import base64
import fcntl
import html
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import duckdb
import pytest
from conftest import workspace_at

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install chromium; CI installs it)"
)

BASE_CHARTS = {"revenue_by_month", "cohort_revenue", "cohort_retention", "rfm_grid", "segments", "migration",
               "channel_ltv"}
ACTION_CHARTS = {"call_list", "base_potential", "call_outcomes", "call_uplift"}


def tiles(page: str) -> dict[str, tuple[str, str]]:
    """Headline tiles as {label: (value, note)}."""
    found = re.findall(
        r'<div class="label">(.*?)</div>\s*<div class="value">(.*?)</div>\s*<div class="note">(.*?)</div>', page, re.S)
    return {html.unescape(label): (html.unescape(value), html.unescape(note)) for label, value, note in found}


def readings(page: str) -> dict[str, str]:
    """Reading aid of each chart card: {chart key: text}."""
    found = re.findall(r'data-chart="([a-z_]+)">\s*<h3>.*?</h3>\s*<p class="reading">(.*?)</p>', page, re.S)
    return {key: html.unescape(text) for key, text in found}


def cards(page: str) -> set[str]:
    return set(re.findall(r'data-chart="([a-z_]+)"', page))


# ---------------------------------------------------------------------------------------------------
# The report as a file


ACTION_MARTS = ("call_list_candidates", "patient_next_action", "call_outcomes", "base_potential", "call_uplift")


def copy_of(clinic15, root: Path, *statements: str) -> Path:
    """A private copy of the built clinic15 warehouse in `root`, changed by `statements`."""
    shutil.copyfile(clinic15.warehouse, root / "patientbase.duckdb")
    with duckdb.connect(str(root / "patientbase.duckdb")) as con:
        for sql in statements:
            con.execute(sql)
    return root / "patientbase.duckdb"


@pytest.fixture(scope="module")
def report15(clinic15, tmp_path_factory):
    """The report on clinic15 as it was before the call-list marts existed (they are dropped)."""
    root = tmp_path_factory.mktemp("report15")
    copy_of(clinic15, root, *(f"drop table if exists marts.{mart}" for mart in ACTION_MARTS))
    with workspace_at(root) as ws:
        result = ws.invoke("report")
        path = root / "exports" / "report.html"
        yield result, path, path.read_text(encoding="utf-8")


def test_report_writes_one_self_contained_file_in_russian(report15):
    result, path, page = report15
    assert f"-> {path}" in result.output
    assert "Report (ru, 7 charts" in result.output
    assert page.startswith("<!doctype html>") and '<html lang="ru">' in page
    # offline: no external script, stylesheet, image or font; plotly.js inline exactly once
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)=', page)
    from plotly.offline import get_plotlyjs

    bundle = get_plotlyjs()
    assert page.count(bundle) == 1
    assert "http" not in page.replace(bundle, "")  # nothing but the bundle even names a web address
    assert cards(page) == BASE_CHARTS
    assert page.count('class="plotly-graph-div"') == len(BASE_CHARTS)
    assert "Отчёт для владельца клиники" in page and "Данные на 01.07.2025" in page
    assert not list(path.parent.glob(".report.html.*"))  # no temporary file left


def test_headline_tiles_and_reading_aids_match_clinic15(report15):
    _, _, page = report15
    tile = tiles(page)
    assert tile["Активная база"][0] == "10"
    assert "всего с визитами — 12" in tile["Активная база"][1]
    assert tile["LTV за 12 месяцев"][0] == "20\u00a0500\u00a0₽"
    assert tile["LTV за 12 месяцев"][1].endswith("пациентов с годом истории — 2")
    assert tile["Отток"] == ("9,1%", "за июнь 2025: потеряно 1 из 11 активных")
    assert "Потенциал базы" not in tile  # base_potential is not built yet
    reading = readings(page)
    assert reading["segments"].endswith("топ-15% пациентов приносят 58% выручки.")
    # the cohort chart counts calendar months (its month 12 ends 12-13 months after the visit) and says
    # so; the LTV it names is the tile's (here both happen to be 20,500: two persons, no late payments)
    assert reading["cohort_revenue"].endswith(
        "20\u00a0500\u00a0₽ к концу 12-го (это 12–13 месяцев истории; LTV за 12 месяцев, ровно 12 месяцев от "
        "каждого первого визита, — 20\u00a0500\u00a0₽).")
    assert set(reading) == BASE_CHARTS  # every chart has its reading aid


def test_figures_come_from_the_marts(report15, clinic15):
    """The tiles that are not hand-worked are checked against the marts they summarise."""
    _, _, page = report15
    revenue, repeat, visits = clinic15.query(
        """
        select sum(revenue), sum(repeat_revenue), sum(completed_visits) from (
            select * from marts.kpi_monthly where is_complete_month order by month desc limit 12)
        """
    )[0]
    tile = tiles(page)
    assert tile["Доля повторной выручки"][0] == f"{round(100 * float(repeat / revenue))}%"
    assert tile["Средний чек"][0] == f"{float(revenue / visits):,.0f}".replace(",", "\u00a0") + "\u00a0₽"


def test_english_report_to_a_chosen_file(clinic15):
    out = clinic15.root / "owner" / "report_en.html"
    result = clinic15.invoke("report", "--lang", "en", "--out", str(out))
    page = out.read_text(encoding="utf-8")
    assert f"-> {out}" in result.output
    assert '<html lang="en">' in page and "<h1>Clinic owner&#39;s report</h1>" in page
    assert tiles(page)["Churn"] == ("9.1%", "June 2025: 1 of 11 active patients lapsed")
    assert "the top 15% of patients bring 58%" in readings(page)["segments"]


def test_money_is_in_the_clinic_currency(clinic15, tmp_path):
    copy_of(clinic15, tmp_path)
    with workspace_at(tmp_path) as ws:
        ws.config("currency: EUR\n")
        ws.invoke("report", "--lang", "en")
        page = (tmp_path / "exports" / "report.html").read_text(encoding="utf-8")
    assert tiles(page)["LTV (12 months)"][0] == "€20,500"
    assert '"tickprefix":"\\u20ac"' in page  # plotly's JSON spells € as \u20ac
    assert "₽" not in page and "\\u20bd" not in page


def test_call_list_sections_stay_out_until_their_marts_exist(report15):
    result, _, page = report15
    assert not cards(page) & ACTION_CHARTS
    assert "Работа с базой" not in page
    footer = re.search(r"<footer>(.*?)</footer>", page, re.S).group(1)
    for table in ("marts.call_list_candidates", "marts.base_potential", "marts.call_outcomes"):
        assert table in footer
        assert table in result.output


# Stand-ins for the call-list marts, with the columns of CONTRACT §2 and of models/marts/actions, so
# the conditional sections are checked with numbers worked out here, whatever the real models give.
STAND_INS = [
    """
    create or replace table marts.call_list_candidates as select * from (values
        ('P04', 'reactivation', 'Вернуть пациента', 'Win back', null, 2, 2500.00),
        ('P15', 'reactivation', 'Вернуть пациента', 'Win back', null, 2, 2500.00),
        ('P09', 'welcome_second_visit', 'Пригласить на второй визит', 'Second visit', null, 3, 3500.00),
        ('P14', 'recall_due', 'Пора на гигиену', 'Hygiene recall', 'calls_not_allowed', 1, 4500.00)
    ) as candidates(person_id, action_code, action_label_ru, action_label, exclusion_reason, priority, expected_value)
    """,
    """
    create or replace table marts.call_outcomes as select * from (values
        ('admin1', 'reactivation', date '2025-06-16', 6, 5, 4, 2, 1, 1, 2500.00),
        ('admin1', 'welcome_second_visit', date '2025-06-16', 2, 2, 1, 1, 0, 1, 3500.00),
        ('admin2', 'reactivation', date '2025-06-23', 2, 2, 1, 0, 1, 0, 0.00)
    ) as outcomes(operator_id, action_code, week_start, attempts, patients_called, reached, booked, refused, came,
                  revenue)
    """,
    """
    create or replace table marts.base_potential as select * from (values
        ('at_risk', 'В зоне риска', 'At risk', 2, 0.25, 0.5, 8000.00, 4000.00),
        ('sleeping', 'Спящие', 'Sleeping', 2, 0.10, 0.2, 4500.00, 900.00),
        ('lost', 'Потерянные', 'Lost', 1, 0.02, 0.02, 8000.00, 160.00)
    ) as potential(segment, segment_label_ru, segment_label_en, patients, reactivation_rate, expected_returns, avg_check,
                   potential_revenue)
    """,
    # the uplift card reads the rows over all months and operators; the monthly and operator rows are ignored
    """
    create or replace table marts.call_uplift as select * from (values
        ('reactivation', 'all', cast(null as date), 200, 50, 0.2000, 0.0800, 0.1200, 0.0400, 0.2000, true, 24000.00),
        ('recall_due', 'all', cast(null as date), 100, 40, 0.3000, 0.2900, 0.0100, -0.0100, 0.0150, false, 1000.00),
        ('recall_due', 'all', date '2025-05-01', 100, 40, 0.9000, 0.1000, 0.8000, 0.7000, 0.9000, true, 9.00),
        ('recall_due', 'OP1', cast(null as date), 100, 40, 0.9000, 0.1000, 0.8000, 0.7000, 0.9000, true, 9.00)
    ) as uplift(action_code, operator_id, month, called, control, rate_called, rate_control, uplift, uplift_low,
                uplift_high, is_significant, incremental_revenue)
    """,
    # the tile reads the headline mart, which sums base_potential
    "update marts.kpi_headline set potential_revenue = 5060.00, expected_returns = 0.72",
]


@pytest.fixture(scope="module")
def with_actions(clinic15, tmp_path_factory):
    """A copy of clinic15 with the call-list marts present, and its report."""
    root = tmp_path_factory.mktemp("report_actions")
    copy_of(clinic15, root, *STAND_INS)
    with workspace_at(root) as ws:
        result = ws.invoke("report")
        path = root / "exports" / "report.html"
        yield ws, result, path, path.read_text(encoding="utf-8")


def test_call_list_sections_appear_once_their_marts_exist(with_actions):
    _, result, _, page = with_actions
    assert "Report (ru, 11 charts" in result.output
    assert "not shown" not in result.output
    assert cards(page) == BASE_CHARTS | ACTION_CHARTS
    assert "Работа с базой" in page
    tile = tiles(page)
    # 4,000 + 900 + 160 = 5,060; 0.5 + 0.2 + 0.02 = 0.72 returns round to 1
    assert tile["Потенциал базы"] == ("5\u00a0060\u00a0₽", "выручка, которая ждёт в базе; ожидаем вернуть пациентов: 1")
    reading = readings(page)
    # P14 is excluded (calls not allowed): 3 to call, 2,500 + 2,500 + 3,500 expected
    assert reading["call_list"] == ("Можно позвонить сегодня: 3\u00a0пациента, ожидаемая выручка 8\u00a0500\u00a0₽; "
                                    "больше всего — «Вернуть пациента» (2).")
    # attempts 6 + 2 + 2 = 10, reached 4 + 1 + 1 = 6, booked 2 + 1 + 0 = 3, came 1 + 1 + 0 = 2 with 2,500 + 3,500
    assert reading["call_outcomes"] == ("Звонков: 10; дозвон — 60%; записались — 3; пришли на приём — 2, "
                                        "их выручка 6\u00a0000\u00a0₽.")
    assert reading["base_potential"] == ("В базе ждут 5\u00a0060\u00a0₽; больше всего — в сегменте «В зоне риска» "
                                         "(4\u00a0000\u00a0₽, 79%).")
    # one sentence per action, most called first; recall's whole interval lies within ±2 points: about zero
    assert reading["call_uplift"] == (
        "Реактивация: пришли 20% из тех, кому звонили, против 8,0% в контрольной группе, +12,0 п.п. "
        "(95%: от +4,0 до +20,0); 24\u00a0тыс.\u00a0₽ выручки, которой без звонков не было бы. "
        "Плановый повторный визит: пришли 30% из тех, кому звонили, против 29% в контрольной группе, +1,0 п.п. "
        "(95%: от -1,0 до +1,5); 1\u00a0000\u00a0₽ выручки, которой без звонков не было бы. "
        "Звонки по этой задаче почти ничего не добавляют: её приоритет стоит снизить.")


def test_call_list_falls_back_to_patient_next_action(clinic15, tmp_path):
    """Before call_list_candidates lands, today's due call actions of patient_next_action are shown."""
    copy_of(clinic15, tmp_path, "drop table if exists marts.call_list_candidates", """
            create or replace table marts.patient_next_action as select * from (values
                ('P04', 'reactivation', 'Вернуть пациента', 'sleeping', 'call', 2, date '2025-06-30', null, 2500.00),
                ('P09', 'welcome_second_visit', 'Второй визит', 'new', 'call', 3, date '2025-07-15', null, 3500.00),
                ('P14', 'recall_due', 'Гигиена', 'due', 'message', 1, date '2025-06-01', null, 4500.00)
            ) as actions(person_id, action_code, action_label, reason, channel, priority, due_date, offer, expected_value)
        """)
    with workspace_at(tmp_path) as ws:
        ws.invoke("report")
        page = (tmp_path / "exports" / "report.html").read_text(encoding="utf-8")
    # only P04: P09 is due after the as-of date, P14 is a message
    assert readings(page)["call_list"].startswith("Можно позвонить сегодня: 1\u00a0пациент, ожидаемая выручка 2\u00a0500\u00a0₽")


def test_call_list_reading_names_the_daily_capacity(clinic15, tmp_path):
    """With one administrator making 2 calls a day, the 3 candidates of the stand-in do not all fit."""
    copy_of(clinic15, tmp_path, STAND_INS[0])
    with workspace_at(tmp_path) as ws:
        ws.config("admins: [anna]\ncalls_per_admin: 2\n")
        ws.invoke("report")
        page = (tmp_path / "exports" / "report.html").read_text(encoding="utf-8")
    assert readings(page)["call_list"].endswith("В дневной список войдут первые 2\u00a0звонка по приоритету.")


def test_report_is_replaced_atomically(clinic15, tmp_path, monkeypatch):
    """A failure while writing leaves the previous report whole and no temporary file behind."""
    copy_of(clinic15, tmp_path)
    out = tmp_path / "report.html"
    out.write_text("yesterday's report", encoding="utf-8")

    def broken_replace(src, dst):
        raise OSError("disk full")

    import patientbase.report as report

    monkeypatch.setattr(report.os, "replace", broken_replace)
    with workspace_at(tmp_path) as ws:
        result = ws.invoke("report", "--out", str(out), expect=1)
    assert "disk full" in result.output
    assert out.read_text(encoding="utf-8") == "yesterday's report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patientbase.duckdb", "report.html"]


def test_report_without_a_built_warehouse_says_what_to_do(ws):
    result = ws.invoke("report", expect=1)
    assert "No warehouse at" in result.output and "patientbase run --demo" in result.output
    ws.invoke("load", str(ws.copy_fixture("clinic15")))
    result = ws.invoke("report", expect=1)
    assert "has no marts.kpi_headline, marts.kpi_monthly" in result.output and "run `patientbase build`" in result.output
    assert not (ws.root / "exports" / "report.html").exists()


# ---------------------------------------------------------------------------------------------------
# In a real browser


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4, --remote-debugging-pipe).

    No port, no websocket library, no network: messages are JSON separated by NUL bytes.
    """

    FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe"]

    def __init__(self, binary: str):
        self.profile = tempfile.mkdtemp(prefix="patientbase-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # copies above fd 10, so wiring them to 3 and 4 in the child cannot clobber one another
        child_in = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)
        # bash puts the pipe ends on fds 3 and 4 and execs Chromium (no preexec_fn in a threaded process; dash
        # cannot redirect fds above 9)
        wiring = f'exec "$0" "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["bash", "-c", wiring, binary, *self.FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            pass_fds=(child_in, child_out), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
        )
        os.close(child_in)
        os.close(child_out)
        self.out, self.inp = to_browser_w, from_browser_r
        self.buffer = b""
        self.events: list[dict] = []
        self.last_id = 0

    def _pump(self, deadline: float, what: str) -> None:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.inp], [], [], left)[0]:
            raise TimeoutError(f"Chromium did not answer {what} in time")
        chunk = os.read(self.inp, 1 << 20)
        if not chunk:
            self.stderr.seek(0)
            raise RuntimeError(f"Chromium exited: {self.stderr.read().decode(errors='replace')[-2000:]}")
        self.buffer += chunk

    def _messages(self):
        while b"\0" in self.buffer:
            raw, self.buffer = self.buffer.split(b"\0", 1)
            yield json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for m in self._messages():
                if m.get("id") == self.last_id:
                    if "error" in m:
                        raise RuntimeError(f"{method}: {m['error']}")
                    return m.get("result", {})
                self.events.append(m)
            self._pump(deadline, method)

    def wait_for(self, event: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            self.events.extend(self._messages())
            for m in self.events:
                if m.get("method") == event:
                    return m
            self._pump(deadline, event)

    def errors(self) -> list[str]:
        """Uncaught exceptions, console.error/assert calls and browser log errors seen so far."""
        found = []
        for m in self.events:
            method, params = m.get("method"), m.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"{params['entry']['source']}: {params['entry']['text']} {params['entry'].get('url', '')}")
        return found

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.out)
        os.close(self.inp)
        self.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


CHART_STATE_JS = """JSON.stringify(Array.from(document.querySelectorAll('article.card')).map(card => {
    const plot = card.querySelector('.plotly-graph-div');
    const box = plot ? plot.getBoundingClientRect() : null;
    return {
        key: card.dataset.chart,
        plot: !!plot,
        svg: plot ? plot.querySelectorAll('svg.main-svg').length : 0,
        marks: plot ? plot.querySelectorAll('.point, .hm image, path.js-line').length : 0,
        traces: plot && plot._fullData ? plot._fullData.length : 0,
        width: box ? Math.round(box.width) : 0,
        height: box ? Math.round(box.height) : 0,
        reading: (card.querySelector('.reading') || {}).textContent || ''
    };
}))"""


def open_in_chromium(page: Path, screenshot: Path | None = None, width: int = 1280) -> tuple[list[dict], list[str]]:
    """Load the file, wait until every chart has drawn, return (chart states, errors); save a full-page PNG."""
    browser = Chromium(CHROMIUM)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            browser.send(domain, session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        deadline = time.monotonic() + 30
        while True:  # plotly draws synchronously on load; poll briefly in case a chart is still settling
            state = json.loads(browser.send("Runtime.evaluate", {"expression": CHART_STATE_JS, "returnByValue": True},
                                            session=session)["result"]["value"])
            if all(c["svg"] and c["marks"] for c in state if c["plot"]) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if screenshot is not None:
            height = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]["height"]
            browser.send("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": int(height), "deviceScaleFactor": 1, "mobile": False},
                         session=session)
            time.sleep(0.3)  # let plotly's responsive resize run before the picture
            shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                                session=session, timeout=60)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        return state, browser.errors()
    finally:
        browser.close()


def artifact(name: str) -> Path:
    """tests/artifacts/<name>; the folder ignores itself in git."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n", encoding="utf-8")
    return ARTIFACTS / name


def assert_every_chart_drawn(state: list[dict], expected: set[str]) -> None:
    assert {c["key"] for c in state} == expected
    for chart in state:
        assert chart["plot"], f"{chart['key']}: no chart on the page"
        assert chart["svg"] >= 1, f"{chart['key']}: plotly drew no SVG"
        assert chart["traces"] >= 1 and chart["marks"] >= 1, f"{chart['key']}: the chart is empty ({chart})"
        assert chart["width"] > 300 and chart["height"] >= 250, f"{chart['key']}: drawn too small ({chart})"
        assert len(chart["reading"]) > 20, f"{chart['key']}: no reading aid"


# demo_run (conftest.py): the daily job on the 1,500-patient demo, which ends by writing the report


def test_run_demo_writes_the_report(demo_run):
    ws, result = demo_run
    path = ws.root / "exports" / "report.html"
    assert f"-> {path}" in result.output
    assert result.output.index("Headline figures") < result.output.index("Report (ru")
    page = path.read_text(encoding="utf-8")
    assert cards(page) >= BASE_CHARTS


def test_every_ltv_in_the_report_is_kpi_headlines(demo_run):
    """Issue #15: the tile said 26,708 ₽ and the cohort chart 27,731 ₽, both read as "LTV at 12 months".
    The chart's month 12 is the end of the 12th calendar month after the first-visit month (12-13 months
    of payments, cohorts with that month complete); the LTV is exactly 12 months from each first visit
    (channel_ltv, weighted in kpi_headline). On the demo the two differ, so the reading must name the
    calendar figure as such and quote the tile's LTV, and every LTV figure on the page must be
    kpi_headline.ltv_12m."""
    from patientbase.report import Fmt

    ws, _ = demo_run
    page = (ws.root / "exports" / "report.html").read_text(encoding="utf-8")
    ltv, = ws.query("select ltv_12m from marts.kpi_headline")[0]
    calendar_12, = ws.query(
        "select sum(cumulative_revenue) / sum(cohort_size) from marts.cohort_revenue "
        "where is_complete_month and months_since_first = 12")[0]
    money = Fmt("ru", "RUB").money
    assert money(ltv) != money(calendar_12)  # the demo shows the two quantities apart
    assert tiles(page)["LTV за 12 месяцев"][0] == money(ltv)
    reading = readings(page)["cohort_revenue"]
    assert f"{money(calendar_12)} к концу 12-го (это 12–13 месяцев истории" in reading
    # every money figure a reading calls LTV (the channel chart's readings compare LTV with CAC as ratios)
    quoted = [figure for text in readings(page).values()
              for figure in re.findall(r"LTV[^₽]*?(\d[\d\u00a0]*\u00a0₽)", text)]
    assert quoted == [money(ltv)]


@needs_chromium
def test_report_renders_in_chromium_with_every_chart_filled(demo_run):
    ws, _ = demo_run
    path = ws.root / "exports" / "report.html"
    screenshot = artifact("report.png")
    start = time.perf_counter()
    state, errors = open_in_chromium(path, screenshot)
    seconds = time.perf_counter() - start
    assert errors == []
    expected = cards(path.read_text(encoding="utf-8"))
    assert expected >= BASE_CHARTS
    assert_every_chart_drawn(state, expected)
    assert screenshot.stat().st_size > 50_000
    print(f"\nreport rendered in Chromium in {seconds:.1f} s; screenshot: {screenshot}")


@needs_chromium
def test_conditional_sections_render_in_chromium(with_actions):
    _, _, path, _ = with_actions
    state, errors = open_in_chromium(path, artifact("report_with_call_list.png"))
    assert errors == []
    assert_every_chart_drawn(state, BASE_CHARTS | ACTION_CHARTS)
