"""Workflow commands: which workflow statuses accept each, and what kill/pause/resume/finish do to steps and tasks."""

from __future__ import annotations

import pytest

from pandajedi_wf.control import (
    COMMANDS,
    JediCommand,
    StepChange,
    plan_command,
)
from pandajedi_wf.workflow.lifecycles import STEP_LIFECYCLE, WORKFLOW_LIFECYCLE

WF_LC, STEP_LC = WORKFLOW_LIFECYCLE, STEP_LIFECYCLE

# written out independently of COMMANDS: the specification the table must meet
EXPECTED = {
    "kill": {"registered": "cancelled", "parsed": "cancelling", "running": "cancelling", "paused": "cancelling", "finishing": "cancelling"},
    "pause": {"parsed": "paused", "running": "paused"},
    "resume": {"paused": "running"},
    "finish": {"running": "finishing", "paused": "finishing"},
    "retry": {"running": None, "finished": "running", "failed": "running"},
    "rerun": {"running": None, "done": "running", "finished": "running", "failed": "running"},
}
PARAMS = {"rerun": {"step": "b"}}


def chain():
    return [
        {"node_key": "001", "name": "a", "status": "done", "jedi_task_id": 101, "parent_keys": []},
        {"node_key": "002", "name": "b", "status": "failed", "jedi_task_id": 102, "jedi_status": "failed", "parent_keys": ["001"]},
        {"node_key": "003", "name": "c", "status": "skipped", "parent_keys": ["002"]},
    ]


def plan(command, status, steps=None, params=None, **kw):
    kw.setdefault("workflow_lifecycle", WF_LC)
    kw.setdefault("step_lifecycle", STEP_LC)
    return plan_command(command, params if params is not None else PARAMS.get(command), status, chain() if steps is None else steps, workflow_id=7, **kw)


@pytest.mark.parametrize("command", sorted(EXPECTED))
@pytest.mark.parametrize("status", sorted(WORKFLOW_LIFECYCLE.states))
def test_every_command_from_every_workflow_status(command, status):
    result = plan(command, status)
    if status in EXPECTED[command]:
        assert result.accepted, result.refusal
        assert result.workflow_status == EXPECTED[command][status]
        assert result.refusal is None
    else:
        assert not result.accepted
        assert result.refusal.startswith(f"cannot {command} workflow 7: ")
        assert result.step_changes == [] and result.jedi_commands == [] and result.workflow_status is None


def test_table_matches_the_specification():
    assert {name: dict(rule.accepted) for name, rule in COMMANDS.items()} == EXPECTED


@pytest.mark.parametrize("command", sorted(EXPECTED))
@pytest.mark.parametrize("status", sorted(WORKFLOW_LIFECYCLE.states))
def test_with_current_lifecycles_a_missing_row_is_a_clear_refusal(command, status):
    result = plan_command(command, PARAMS.get(command), status, chain(), workflow_id=7)
    if not result.accepted and status in EXPECTED[command]:
        assert "lifecycle has no transition" in result.refusal and "operators: add it" in result.refusal
    if result.accepted:
        for change in result.step_changes:
            assert STEP_LIFECYCLE.can(change.from_status, change.to_status)
        if result.workflow_status:
            assert WORKFLOW_LIFECYCLE.can(status, result.workflow_status)


def test_the_lifecycles_allow_every_reset_the_commands_make():
    """retry and rerun-from move ended steps back (and a done workflow back to running): the tables say so."""
    assert WORKFLOW_LIFECYCLE.can("done", "running") and not WORKFLOW_LIFECYCLE.is_final("done")
    for source in ("done", "finished", "failed", "cancelled", "skipped"):
        assert STEP_LIFECYCLE.can(source, "defined"), source
    for source in ("done", "finished", "failed"):
        assert STEP_LIFECYCLE.can(source, "running"), source


@pytest.mark.parametrize(
    "command, status, reason",
    [
        ("resume", "running", "it is running, not paused"),
        ("pause", "paused", "it is already paused"),
        ("kill", "cancelling", "it is already being cancelled"),
        ("kill", "done", "it is done already"),
        ("finish", "failed", "it has failed already"),
        ("retry", "done", "it is done: no step failed (use rerun-from to run steps again)"),
        ("retry", "cancelled", "it was cancelled; a cancelled workflow cannot run again, submit it anew"),
        ("rerun", "paused", "it is paused; resume it first"),
        ("retry", "parsed", "it has not started yet (parsed)"),
        ("finish", "parsed", "it has not started yet (kill it instead)"),
        ("pause", "finishing", "it is finishing; pause is accepted only when the workflow is parsed or running"),
    ],
)
def test_refusal_messages_say_why(command, status, reason):
    assert plan(command, status).refusal == f"cannot {command} workflow 12: {reason}".replace("12", "7")


def test_kill_cancels_what_has_not_ended_and_kills_live_tasks():
    steps = [
        {"node_key": "001", "name": "gen", "status": "done", "jedi_task_id": 1},
        {"node_key": "002", "name": "sim", "status": "running", "jedi_task_id": 2, "jedi_status": "running", "parent_keys": ["001"]},
        {"node_key": "003", "name": "rec", "status": "retrying", "jedi_task_id": 3, "jedi_status": "toretry", "parent_keys": ["001"]},
        {"node_key": "004", "name": "ana", "status": "submitted", "jedi_task_id": 4, "jedi_status": "aborting"},
        {"node_key": "005", "name": "mrg", "status": "submitting"},
        {"node_key": "006", "name": "plot", "status": "ready"},
        {"node_key": "007", "name": "tail", "status": "defined", "parent_keys": ["006"]},
        {"node_key": "008", "name": "loop", "status": "running"},
        {"node_key": "008i1/001", "name": "body", "status": "running", "jedi_task_id": 8},
    ]
    result = plan("kill", "running", steps)
    assert result.workflow_status == "cancelling"
    assert [(c.node_key, c.from_status, c.to_status) for c in result.step_changes] == [
        ("002", "running", "cancelled"),
        ("003", "retrying", "cancelled"),
        ("004", "submitted", "cancelled"),
        ("005", "submitting", "cancelled"),
        ("006", "ready", "cancelled"),
        ("007", "defined", "cancelled"),
        ("008", "running", "cancelled"),
        ("008i1/001", "running", "cancelled"),
    ]
    assert "kill the task named after the step" in result.step_changes[3].reason
    # task 4 is already being aborted: JEDI would refuse a second kill
    assert result.jedi_commands == [JediCommand(2, "kill", "002"), JediCommand(3, "kill", "003"), JediCommand(8, "kill", "008i1/001")]
    assert result.message.startswith("kill workflow 7 accepted; workflow -> cancelling; 8 step(s) changed; 3 JEDI task(s) to kill")


def test_kill_of_a_registered_workflow_cancels_it_at_once():
    result = plan("kill", "registered", [])
    assert result.accepted and result.workflow_status == "cancelled" and result.step_changes == []


def test_pause_pauses_live_tasks_only_and_changes_no_step():
    steps = [
        {"node_key": "001", "status": "done", "jedi_task_id": 1, "jedi_status": "done"},
        {"node_key": "002", "status": "running", "jedi_task_id": 2, "jedi_status": "running"},
        {"node_key": "003", "status": "submitted", "jedi_task_id": 3},
        {"node_key": "004", "status": "running", "jedi_task_id": 4, "jedi_status": "paused"},
        {"node_key": "005", "status": "defined"},
    ]
    result = plan("pause", "running", steps)
    assert result.workflow_status == "paused" and result.step_changes == []
    assert [(c.task_id, c.command) for c in result.jedi_commands] == [(2, "pause"), (3, "pause")]


def test_resume_resumes_paused_tasks_but_never_a_staging_one():
    steps = [
        {"node_key": "001", "status": "running", "jedi_task_id": 1, "jedi_status": "paused"},
        {"node_key": "002", "status": "submitted", "jedi_task_id": 2, "jedi_status": "staging"},
        {"node_key": "003", "status": "running", "jedi_task_id": 3},
        {"node_key": "004", "status": "done", "jedi_task_id": 4, "jedi_status": "paused"},
    ]
    result = plan("resume", "paused", steps)
    assert result.workflow_status == "running"
    assert [(c.task_id, c.command) for c in result.jedi_commands] == [(1, "resume"), (3, "resume")]


def test_finish_skips_ready_steps_and_lets_running_tasks_end():
    steps = [
        {"node_key": "001", "status": "running", "jedi_task_id": 1, "jedi_status": "running"},
        {"node_key": "002", "status": "ready", "parent_keys": ["001"]},
        {"node_key": "003", "status": "defined", "parent_keys": ["002"]},
    ]
    result = plan("finish", "running", steps)
    assert result.workflow_status == "finishing"
    assert result.step_changes == [StepChange("002", "ready", "skipped", "workflow finishing: not submitted")]
    assert result.jedi_commands == []
    now = plan("finish", "running", steps, params={"now": True})
    assert now.jedi_commands == [JediCommand(1, "finish", "001")]


def test_finish_of_a_paused_workflow_finishes_its_paused_tasks():
    steps = [
        {"node_key": "001", "status": "running", "jedi_task_id": 1, "jedi_status": "paused"},
        {"node_key": "002", "status": "running", "jedi_task_id": 2, "jedi_status": "failed"},
    ]
    assert plan("finish", "paused", steps).jedi_commands == [JediCommand(1, "finish", "001")]


@pytest.mark.parametrize(
    "command, params, reason",
    [
        ("explode", None, "cannot run 'explode' on workflow 7: unknown command (expected kill, pause, resume, finish, retry, rerun)"),
        ("kill", {"force": True}, "cannot kill workflow 7: unknown parameter 'force' (allowed: none)"),
        ("finish", {"now": "yes"}, "cannot finish workflow 7: parameter 'now' must be bool, got 'yes'"),
        ("rerun", {}, "cannot rerun workflow 7: missing parameter 'step'"),
        ("rerun", {"step": 3}, "cannot rerun workflow 7: parameter 'step' must be str, got 3"),
    ],
)
def test_bad_commands_and_parameters_are_refused_precisely(command, params, reason):
    result = plan(command, "running", params=params)
    assert not result.accepted and result.refusal == reason


def test_unknown_workflow_status_is_refused():
    assert plan("kill", "sleeping").refusal == "cannot kill workflow 7: unknown workflow status 'sleeping'"


@pytest.mark.parametrize(
    "steps, message",
    [
        ([{"status": "done"}], "step record without a node_key"),
        ([{"node_key": "001"}], "step 001: record without a status"),
        ([{"node_key": "001", "status": "done"}, {"node_key": "001", "status": "done"}], "step 001 appears twice"),
        ([{"node_key": "002", "status": "done", "parent_keys": "001"}], "parent_keys must be a list"),
    ],
)
def test_malformed_step_rows_raise(steps, message):
    with pytest.raises(ValueError, match=message):
        plan("kill", "running", steps)


def test_plan_to_dict_is_plain_data():
    d = plan("retry", "failed").to_dict()
    assert d["accepted"] is True and d["workflow_status"] == "running"
    assert d["jedi_commands"] == [{"task_id": 102, "command": "retry", "node_key": "002"}]
    assert {"node_key": "003", "from_status": "skipped", "to_status": "defined", "reason": "user retry: downstream of a step run again", "new_task": False} in d["step_changes"]
