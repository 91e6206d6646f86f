"""The uplift of the calls measured on the demo clinic against the simulation's truth (issue #13).

The demo's past call lists held DEMO_CONTROL_SHARE (30%) of their candidates out. Its calls have an
effect per action that the simulation knows occurrence by occurrence (raw.call_assignments'
extra column demo_came_because_called: the person came only because of the call) and none at all for
DEMO_ZERO_EFFECT_ACTION. The true uplift of an action is the mean of that flag over its called
occurrences whose 30-day window is over; the 95% interval of marts.call_uplift must contain it for
every action with at least 30 final occurrences in each arm (each interval covers its truth 95% of the
time; the demo's seed is fixed, so the test is deterministic).
"""

from __future__ import annotations

import pytest
from conftest import workspace_at
from patientbase.demo import DEMO_ZERO_EFFECT_ACTION


@pytest.fixture(scope="module")
def demo6000(tmp_path_factory):
    with workspace_at(tmp_path_factory.mktemp("uplift_demo")) as w:
        w.invoke("run", "--demo", "--patients", "6000")
        yield w


def test_measured_uplift_interval_contains_the_true_effect(demo6000):
    ws = demo6000
    as_of = ws.scalar("select as_of_date from intermediate.int_as_of_date")
    truth = dict(ws.query(
        """select action_code, avg(case when demo_came_because_called then 1.0 else 0.0 end)
           from raw.call_assignments
           where arm = 'call' and demo_came_because_called is not null and list_date + 30 < ?
           group by action_code""", [as_of]))
    rows = ws.query(
        """select action_code, called, control, uplift, uplift_low, uplift_high from marts.call_uplift
           where operator_id = 'all' and month is null and action_code <> 'all'""")
    checked = []
    for action, called, control, uplift, low, high in rows:
        if called >= 30 and control >= 30:
            assert low <= truth[action] <= high, (action, float(truth[action]), float(uplift), float(low), float(high))
            checked.append(action)
    assert DEMO_ZERO_EFFECT_ACTION in checked and truth[DEMO_ZERO_EFFECT_ACTION] == 0
    assert len(checked) >= 4, checked


def test_the_report_states_the_uplift_per_action(demo6000):
    page = (demo6000.root / "exports" / "report.html").read_text(encoding="utf-8")
    assert 'data-chart="call_uplift"' in page
    assert "в контрольной группе" in page
