"""retry and rerun-from reset exactly the steps downstream of what runs again, on real-looking DAGs."""

from __future__ import annotations

import pytest

from example_paths import EXAMPLES
from pandajedi_wf.control import enclosing, node_path, plan_command
from pandajedi_wf.workflow import (
    CancelStep,
    CreateStep,
    MakeReady,
    RunContext,
    SetStepStatus,
    SetWorkflowStatus,
    Skip,
    StepRecord,
    SubmitStep,
    next_actions,
    parse_workflow,
)
from pandajedi_wf.workflow.lifecycles import STEP_LIFECYCLE, WORKFLOW_LIFECYCLE

WF_LC, STEP_LC = WORKFLOW_LIFECYCLE, STEP_LIFECYCLE


def step(key, status, parents=(), task=None, name=None, **extra):
    return {"node_key": key, "status": status, "parent_keys": list(parents), "jedi_task_id": task, "name": name or key, **extra}


def plan(command, steps, status="failed", step_name=None, **kw):
    params = {"step": step_name} if step_name else None
    return plan_command(command, params, status, steps, workflow_id=3, workflow_lifecycle=WF_LC, step_lifecycle=STEP_LC, **kw)


def changes(result):
    assert result.accepted, result.refusal
    return {c.node_key: (c.from_status, c.to_status, c.new_task) for c in result.step_changes}


def test_node_keys_name_their_body():
    assert enclosing("001") is None
    assert enclosing("003/001") == ("003", None)
    assert enclosing("004i2/001") == ("004", 2)
    assert enclosing("004s1i12/001") == ("004s1", 12)
    assert enclosing("004i1/002/001") == ("004i1/002", None)
    assert node_path("004s1i2/001") == "004/001"
    assert node_path("007s10/006") == "007/006"


def test_chain_retry_resets_only_below_the_failed_step():
    steps = [
        step("001", "done", task=1),
        step("002", "failed", ["001"], task=2, jedi_status="failed"),
        step("003", "skipped", ["002"]),
        step("004", "skipped", ["003"]),
    ]
    result = plan("retry", steps)
    assert result.workflow_status == "running"
    assert changes(result) == {"002": ("failed", "retrying", False), "003": ("skipped", "defined", False), "004": ("skipped", "defined", False)}
    assert [(c.task_id, c.command) for c in result.jedi_commands] == [(2, "retry")]


def test_fan_in_retry_keeps_the_successful_branch():
    steps = [
        step("001", "failed", task=1, jedi_status="broken"),
        step("002", "done", task=2),
        step("003", "skipped", ["001", "002"]),
    ]
    result = plan("retry", steps)
    # broken tasks cannot be retried by JEDI: a new task is submitted
    assert changes(result) == {"001": ("failed", "defined", True), "003": ("skipped", "defined", False)}
    assert result.jedi_commands == []


def diamond():
    return [
        step("001", "done", task=1, name="a"),
        step("002", "done", ["001"], task=2, name="b"),
        step("003", "done", ["001"], task=3, name="c"),
        step("004", "done", ["002", "003"], task=4, name="d"),
        step("005", "done", task=5, name="side"),
    ]


def test_diamond_rerun_from_top_resets_all_of_it_but_not_the_side_branch():
    result = plan("rerun", diamond(), status="done", step_name="a")
    assert result.workflow_status == "running"
    assert changes(result) == {k: ("done", "defined", True) for k in ("001", "002", "003", "004")}
    assert result.jedi_commands == [] and result.drop_keys == []


def test_diamond_rerun_from_one_arm_by_node_key():
    assert set(changes(plan("rerun", diamond(), status="done", step_name="002"))) == {"002", "004"}


def test_condition_branches_are_decided_again_after_retry():
    # top failed: the 'ok' branch was skipped (condition false), the 'ng' branch ran
    steps = [
        step("001", "failed", task=1, name="top", jedi_status="failed"),
        step("002", "skipped", ["001"], name="bottom_OK"),
        step("003", "done", ["001"], task=3, name="bottom_NG"),
        step("004", "done", task=4, name="other"),
        step("005", "skipped", ["004"], name="not_taken"),  # branch not taken, not downstream of a failure
    ]
    assert changes(plan("retry", steps, status="finished")) == {
        "001": ("failed", "retrying", False),
        "002": ("skipped", "defined", False),
        "003": ("done", "defined", True),
    }


def loop_rows(second_iteration="failed"):
    return [
        step("001", "done", task=1, name="work_start"),
        step("005", "failed", ["001"], name="work_loop"),
        step("005i1/002", "done", task=21, name="inner_work_top"),
        step("005i1/003", "done", ["005i1/002"], task=31, name="inner_work_bottom"),
        step("005i1/004", "done", ["005i1/002", "005i1/003"], task=41, name="checkpoint"),
        step("005i2/002", second_iteration, task=22, name="inner_work_top", jedi_status=second_iteration),
        step("005i2/003", "skipped", ["005i2/002"], name="inner_work_bottom"),
        step("005i2/004", "skipped", ["005i2/002", "005i2/003"], name="checkpoint"),
        step("006", "skipped", ["005"], name="work_end"),
    ]


def test_retry_inside_a_loop_iteration_reopens_the_loop():
    result = plan("retry", loop_rows(), status="finished")
    assert changes(result) == {
        "005": ("failed", "running", False),
        "005i2/002": ("failed", "retrying", False),
        "005i2/003": ("skipped", "defined", False),
        "005i2/004": ("skipped", "defined", False),
        "006": ("skipped", "defined", False),
    }
    assert result.drop_keys == []


def test_rerun_of_a_loop_body_step_restarts_from_its_first_iteration():
    # 'inner_work_top' names 005i1/002 and 005i2/002: one node, so both; iteration 2 depends on 1 and is dropped
    result = plan("rerun", loop_rows("done"), status="done", step_name="inner_work_top")
    assert changes(result) == {
        "005": ("failed", "running", False),
        "005i1/002": ("done", "defined", True),
        "005i1/003": ("done", "defined", True),
        "005i1/004": ("done", "defined", True),
        "006": ("skipped", "defined", False),
    }
    assert result.drop_keys == ["005i2/002", "005i2/003", "005i2/004"]


def test_rerun_upstream_of_a_loop_resets_the_loop_and_its_first_iteration():
    result = plan("rerun", loop_rows("done"), status="done", step_name="work_start")
    assert changes(result) == {
        "001": ("done", "defined", True),
        "005": ("failed", "defined", False),
        "005i1/002": ("done", "defined", True),
        "005i1/003": ("done", "defined", True),
        "005i1/004": ("done", "defined", True),
        "006": ("skipped", "defined", False),
    }
    assert result.drop_keys == ["005i2/002", "005i2/003", "005i2/004"]


def test_scatter_copies_of_a_sub_workflow_are_independent():
    steps = [
        step("001", "done", task=1, name="make"),
        step("007s0", "failed", ["001"], name="body"),
        step("007s0/005", "failed", task=50, name="sig", jedi_status="failed"),
        step("007s0/006", "skipped", ["007s0/005"], name="combine"),
        step("007s1", "done", ["001"], name="body"),
        step("007s1/005", "done", task=51, name="sig"),
        step("007s1/006", "done", ["007s1/005"], task=61, name="combine"),
        step("008", "skipped", ["007s0", "007s1"], name="merge"),
    ]
    assert changes(plan("retry", steps, status="finished")) == {
        "007s0": ("failed", "running", False),
        "007s0/005": ("failed", "retrying", False),
        "007s0/006": ("skipped", "defined", False),
        "008": ("skipped", "defined", False),
    }


def test_nested_body_of_a_reset_container_is_reset_at_every_depth():
    steps = [
        step("001", "done", task=1, name="top"),
        step("002", "done", ["001"], name="outer"),
        step("002/001", "done", name="inner"),
        step("002/001/001", "done", task=9, name="leaf"),
    ]
    assert changes(plan("rerun", steps, status="done", step_name="top")) == {
        "001": ("done", "defined", True),
        "002": ("done", "defined", False),
        "002/001": ("done", "defined", False),
        "002/001/001": ("done", "defined", True),
    }


@pytest.mark.parametrize(
    "row, expected, command",
    [
        (step("001", "finished", task=1), ("finished", "retrying", False), "retry"),
        (step("001", "failed", task=1, jedi_status="exhausted"), ("failed", "defined", True), None),
        (step("001", "cancelled", task=1, jedi_status="aborted"), ("cancelled", "defined", True), None),
        (step("001", "failed"), ("failed", "defined", False), None),  # JEDI refused the submission: no task
        (step("001", "skipped", prev_status="ready"), ("skipped", "defined", False), None),  # skipped by a finish
    ],
)
def test_retry_chooses_jedi_retry_or_a_new_task(row, expected, command):
    result = plan("retry", [row], status="finished")
    assert changes(result) == {"001": expected}
    assert [c.command for c in result.jedi_commands] == ([command] if command else [])


def test_exhausted_task_is_retried_by_jedi_for_a_production_role():
    result = plan("retry", [step("001", "failed", task=1, jedi_status="exhausted")], production_role=True)
    assert changes(result) == {"001": ("failed", "retrying", False)}


def test_retry_while_running_keeps_the_workflow_running():
    steps = [step("001", "failed", task=1), step("002", "running", task=2, jedi_status="running")]
    result = plan("retry", steps, status="running")
    assert result.accepted and result.workflow_status is None
    assert set(changes(result)) == {"001"}


def test_retry_refused_while_a_downstream_step_still_runs():
    steps = [step("001", "failed", task=1, name="gen"), step("002", "running", ["001"], task=2, name="sim")]
    result = plan("retry", steps, status="running")
    assert result.refusal == "cannot retry workflow 3: step 'sim' (002) is running with JEDI task 2 and would have to run again; wait for it to end or kill the workflow"


@pytest.mark.parametrize(
    "command, steps, step_name, reason",
    [
        ("retry", [step("001", "done", task=1), step("002", "skipped", ["001"])], None, "nothing to retry: no step failed, ended partially or was cancelled"),
        ("rerun", diamond(), "nope", "no step named 'nope' (give a step name or a node key from 'show')"),
        ("rerun", [step("001", "running", task=1, name="a"), step("002", "defined", ["001"], name="b")], "b", "nothing to rerun: step 'b' (002) has not run yet"),
        (
            "rerun",
            [step("002/003", "done", task=1, name="merge"), step("004/003", "done", task=2, name="merge")],
            "merge",
            "step name 'merge' is ambiguous: it names nodes 002/003, 004/003; give a node key instead",
        ),
    ],
)
def test_reset_refusals(command, steps, step_name, reason):
    result = plan(command, steps, status="finished", step_name=step_name)
    assert result.refusal == f"cannot {command} workflow 3: {reason}"


# ---- round trip through the engine -------------------------------------------------------------


class Run:
    """Plays engine actions and JEDI outcomes like the processor, and applies command plans."""

    def __init__(self, spec, outcome):
        self.workflow = parse_workflow("cwl", str(EXAMPLES / spec), {}, str(EXAMPLES))
        self.ctx = RunContext(out_ds="user.alice.wf", user_name="alice", workflow_id=3, workflow_status="parsed")
        self.steps: dict[str, StepRecord] = {}
        self.rows: dict[str, dict] = {}
        self.outcome = outcome  # (name, attempt) -> final JEDI status
        self.attempts: dict[str, int] = {}
        self.next_task = 100

    def set(self, key, status):
        STEP_LC.check(self.steps[key].status, status)
        self.steps[key].status = status
        self.rows[key]["status"] = status

    def apply(self, actions):
        for a in actions:
            if isinstance(a, CreateStep):
                self.steps[a.node_key] = StepRecord(a.node_key, a.node_id, "defined", a.iteration, a.scatter_index)
                self.rows[a.node_key] = step(a.node_key, "defined", a.parents, name=a.name)
            elif isinstance(a, (MakeReady, Skip, SetStepStatus, CancelStep, SubmitStep)):
                target = {MakeReady: "ready", Skip: "skipped", CancelStep: "cancelled", SubmitStep: "submitting"}.get(type(a)) or a.status
                self.set(a.node_key, target)
            elif isinstance(a, SetWorkflowStatus):
                WF_LC.check(self.ctx.workflow_status, a.status)
                self.ctx.workflow_status = a.status

    def jedi(self):
        for key, row in self.rows.items():
            if row["status"] in ("submitting", "retrying"):
                if row["status"] == "submitting":
                    self.set(key, "submitted")
                    self.next_task += 1
                    row["jedi_task_id"] = self.next_task
                self.set(key, "running")
                self.attempts[key] = self.attempts.get(key, 0) + 1
                final = self.outcome(row["name"], self.attempts[key])
                self.set(key, final)
                row["jedi_status"] = final

    def run(self):
        for _ in range(30):
            self.apply(next_actions(self.workflow, self.steps, self.ctx))
            if self.ctx.workflow_status in ("done", "finished", "failed", "cancelled"):
                return self.ctx.workflow_status
            self.jedi()
        raise AssertionError("workflow did not end")

    def command(self, command, params=None):
        result = plan_command(command, params, self.ctx.workflow_status, list(self.rows.values()), workflow_id=3, workflow_lifecycle=WF_LC, step_lifecycle=STEP_LC)
        assert result.accepted, result.refusal
        for key in result.drop_keys:
            del self.steps[key], self.rows[key]
        for change in result.step_changes:
            self.set(change.node_key, change.to_status)
            if change.new_task:
                self.rows[change.node_key].update(jedi_task_id=None, jedi_status=None)
        if result.workflow_status:
            self.ctx.workflow_status = result.workflow_status
        return result


def test_round_trip_retry_then_rerun_through_the_engine():
    run = Run("chain.cwl", lambda name, attempt: "failed" if (name, attempt) == ("top", 1) else "done")
    assert run.run() == "failed"
    assert run.rows["002"]["status"] == "skipped"
    first_task = run.rows["001"]["jedi_task_id"]
    run.command("retry")
    assert run.run() == "done"
    assert run.rows["001"]["jedi_task_id"] == first_task  # JEDI retried the same task
    assert [run.rows[k]["status"] for k in ("001", "002")] == ["done", "done"]
    run.command("rerun", {"step": "bottom"})
    assert run.rows["001"]["status"] == "done" and run.rows["002"]["status"] == "defined"
    assert run.run() == "done"
    assert run.attempts == {"001": 2, "002": 2}


def test_round_trip_retry_of_a_failed_loop_iteration():
    run = Run("iterate.cwl", lambda name, attempt: "failed" if (name, attempt) == ("fit", 1) else "done")
    assert run.run() == "finished"
    assert run.rows["005"]["status"] == "failed" and run.rows["006"]["status"] == "skipped"
    result = run.command("retry")
    assert [c.node_key for c in result.jedi_commands] == ["005i1/002"]
    assert run.run() == "done"
    assert all(row["status"] == "done" for row in run.rows.values())
