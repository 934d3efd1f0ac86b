"""A pre-stage's state as the monitor shows it (``snapshot.prestage_state``), from the columns our code writes."""

from __future__ import annotations

import datetime

import pytest

T = datetime.datetime(2026, 12, 3, 12, 0)


def row(**kw):
    base = {"workflow_id": 1, "dataset": "d", "node_key": "002", "ready_time": T, "need_by_time": T, "request_id": None, "outcome": None,
            "creation_time": T, "taken_time": None, "released_time": None, "request_status": None}
    return base | kw


@pytest.mark.parametrize("columns, state", [
    ({}, "planned"),
    ({"taken_time": T, "request_id": 5, "outcome": "requested", "request_status": "queued"}, "queued"),
    ({"taken_time": T, "request_id": 5, "outcome": "shared", "request_status": "submitting"}, "staging"),
    ({"taken_time": T, "request_id": 5, "outcome": "requested", "request_status": "staging"}, "staging"),
    ({"taken_time": T, "request_id": 5, "outcome": "requested", "request_status": "switching"}, "staging"),
    ({"taken_time": T, "request_id": 5, "outcome": "requested", "request_status": "done"}, "done"),
    ({"taken_time": T, "request_id": 5, "outcome": "requested", "request_status": "failed"}, "failed"),
    ({"taken_time": T, "outcome": "on_disk"}, "on disk"),
    ({"taken_time": T, "outcome": "unavailable"}, "unavailable"),
    ({"taken_time": T, "request_id": 5, "outcome": "requested", "request_status": "done", "released_time": T}, "released"),
    ({"taken_time": T, "outcome": "on_disk", "released_time": T}, "released"),
])
def test_state_of_a_pre_stage(columns, state):
    from pandajedi_wf.monitor.snapshot import prestage_state

    assert prestage_state(row(**columns)) == state


def test_requests_list_each_workflow_once_under_its_request():
    from pandajedi_wf.monitor.snapshot import prestage_requests_panel

    rows = [row(workflow_id=2, taken_time=T, request_id=5, outcome="shared", request_status="staging", workflow_name="soon"),
            row(workflow_id=1, taken_time=T, request_id=5, outcome="requested", request_status="staging", workflow_name="late"),
            row(workflow_id=3, dataset="e", taken_time=T, request_id=6, outcome="requested", request_status="queued")]
    panel = prestage_requests_panel(rows, T)
    assert [(r["request_id"], [(w["workflow_id"], w["joined"], w["state"]) for w in r["workflows"]]) for r in panel] == [
        (5, [(2, True, "staging"), (1, False, "staging")]), (6, [(3, False, "queued")])]
