"""Critical-path priority of a step about to be submitted (``control.priority``)."""

import pytest

from pandajedi_wf.control.priority import PriorityPolicy, step_priority


@pytest.mark.parametrize("slack, estimated, expected", [
    (None, True, 1000),  # the step is not on any path the estimate knows
    (7200.0, False, 1000),  # no estimate: nothing changes
    (0.0, True, 1000),
    (300.0, True, 1000),  # within the tolerance: critical
    (301.0, True, 1000),  # 0.08 h of slack: less than a point
    (3600.0, True, 990),
    (5 * 3600.0, True, 950),
    (100 * 3600.0, True, 900),  # capped
])
def test_slack_lowers_the_priority_below_the_user_s_bound_only(slack, estimated, expected):
    priority, why = step_priority(1000, slack, estimated)
    assert priority == expected and why.startswith(f"priority {expected}")
    assert priority <= 1000


def test_the_reason_says_why():
    assert step_priority(1000, 0.0, True)[1] == "priority 1000: on the critical path"
    assert step_priority(1000, 5400.0, True)[1] == "priority 985: 1 h 30 min of slack on the critical path"
    assert step_priority(1000, 7200.0, False)[1] == "priority 1000: no estimate of the workflow's remaining steps yet"


def test_the_policy_is_the_site_s():
    policy = PriorityPolicy(points_per_hour=100, max_lowering=500, critical_within_seconds=0)
    assert step_priority(900, 10.0, True, policy)[0] == 900
    assert step_priority(900, 3 * 3600.0, True, policy)[0] == 600
