"""What one workflow's decisions change in a pass: the engine's actions as checked changes of the step rows.

Every status change goes through ``Plan.move``/``move_workflow``, which check it against the lifecycle tables (the one
place a decision meets the state machines), and keeps only the first and the last status of a step for the database;
every step between goes to the history. Nothing here touches the database: ``writer`` writes a batch of plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pandajedi_wf.core import jedi_statuses
from pandajedi_wf.taskbuffer import steps
from pandajedi_wf.workflow import (
    STEP_LIFECYCLE,
    WORKFLOW_LIFECYCLE,
    CancelStep,
    CreateStep,
    MakeReady,
    SetStepStatus,
    SetWorkflowStatus,
    Skip,
    SubmitStep,
)
from pandajedi_wf.workflow.errors import StepDefinitionError
from pandajedi_wf.workflow.lifecycles import STEP_ACTIVE, STEP_ENDED

from .step_row import StepRow

_TARGETS = {MakeReady: "ready", Skip: "skipped", CancelStep: "cancelled"}


@dataclass
class Plan:
    """Everything one workflow's decisions change in this pass, kept in memory until the batch is written.

    Steps are the rows loaded at the start of the pass (``orig`` = status read then) or new rows for steps created
    now.
    """

    wf: dict
    history: list[tuple[str, StepRow | None, str | None, str, str]] = field(default_factory=list)
    touched: dict[str, StepRow] = field(default_factory=dict)
    created: list[StepRow] = field(default_factory=list)
    workflow_change: tuple[str, str] | None = None
    deferred: int = 0  # ready steps left without an intent: the workflow's submission cap was reached this pass
    results: list[tuple[StepRow, dict | None]] = field(default_factory=list)
    dialogs: list[tuple[StepRow, str]] = field(default_factory=list)  # error_dialog of steps whose status stays
    to_kill: list[int] = field(default_factory=list)
    marks: dict[str, steps.RetryMark] = field(default_factory=dict)  # retry decisions to record, by node key
    retries_started: list[StepRow] = field(default_factory=list)  # automatic retries begun: auto_retries + 1
    jedi_retries: list[tuple[int, StepRow]] = field(default_factory=list)  # (task id, step): JEDI 'retry' after commit
    written_alone: bool = False  # the batch's transaction failed and this plan was written again on its own

    @property
    def mirrored(self) -> bool:
        """Whether the rows in memory are what the database holds once this plan is written: not after retry
        decisions, kills or a second write attempt, whose effects the rows do not all carry."""
        return not (self.marks or self.jedi_retries or self.to_kill or self.written_alone)

    @property
    def workflow_id(self) -> int:
        return int(self.wf["workflow_id"])

    def move(self, s: StepRow, target: str, reason: str) -> None:
        STEP_LIFECYCLE.check(s.status, target)
        self.history.append(("step", s, s.status, target, reason))
        self.touched[s.node_key] = s
        s.status = target

    def note(self, s: StepRow, reason: str) -> None:
        """A decision about a step that leaves its status as it is (history only)."""
        self.history.append(("step", s, s.status, s.status, reason))
        self.touched[s.node_key] = s

    def move_workflow(self, target: str, reason: str) -> None:
        WORKFLOW_LIFECYCLE.check(self.wf["status"], target)
        self.history.append(("workflow", None, self.wf["status"], target, reason))
        first = self.workflow_change[0] if self.workflow_change else self.wf["status"]
        self.workflow_change = (first, target)
        self.wf["status"] = target

    def explain_submissions(self, why: dict[int, str]) -> None:
        """Add to the history line of each step going ``submitting`` why its task parameters are what they are
        (``why``: id of the row -> reason), as the priority and the placement set them after the engine decided."""
        self.history = [(kind, row, old, new, f"{reason}; {why[id(row)]}" if new == "submitting" and id(row) in why else reason)
                        for kind, row, old, new, reason in self.history]

    def submissions(self) -> list[StepRow]:
        steps_now = {s.node_key: s for s in self.created} | self.touched  # a new step may also have moved
        return [s for s in steps_now.values() if s.status == "submitting"]


def apply_actions(plan: Plan, by_key: dict[str, StepRow], actions, stats, submissions: int | None = None) -> None:
    """The engine's actions as changes of the in-memory rows.

    Only ``submissions`` SubmitStep actions become intents (None: all); a step beyond them stays ``ready``, and the
    engine submits it again in a later pass (nothing the engine decided after it depends on ``submitting``: both
    statuses are active and neither is an outcome)."""
    budget = submissions
    for action in actions:
        if isinstance(action, CreateStep):
            s = StepRow(None, plan.workflow_id, action.node_key, action.node_id, action.name, action.type, "defined",
                        iteration=action.iteration, scatter_index=action.scatter_index, parent_keys=tuple(action.parents),
                        task_name=action.task_name)
            by_key[action.node_key] = s
            plan.created.append(s)
            plan.history.append(("step", s, None, "defined", f"step {action.name} created"))
            stats.add("steps_created")
        elif isinstance(action, SetWorkflowStatus):
            if plan.wf["status"] != action.status:
                plan.move_workflow(action.status, action.reason)
                stats.add("workflow_transitions")
        elif isinstance(action, SubmitStep):
            s = by_key[action.node_key]
            if action.task_params is None:  # the workflow came without the client's task templates: nothing to send
                raise StepDefinitionError(f"step {s.name!r} has no task parameters: the workflow was stored without task "
                                          "templates (the pchain client's taskParams, or pandajedi-wf submit --templates)", s.name)
            if budget is not None:
                if budget <= 0:
                    plan.deferred += 1
                    stats.add("submissions_deferred")
                    continue
                budget -= 1
            s.task_name, s.task_params = action.task_name, action.task_params
            plan.move(s, "submitting", f"submitting JEDI task {action.task_name}")
            stats.add("step_transitions")
        else:
            s = by_key[action.node_key]
            if isinstance(action, CancelStep) and s.jedi_task_id and s.status in STEP_ACTIVE:
                plan.to_kill.append(int(s.jedi_task_id))
            target = action.status if isinstance(action, SetStepStatus) else _TARGETS.get(type(action))
            if target is None or target == s.status:
                continue
            plan.move(s, target, action.reason)
            if target == "failed" and s.step_id:  # the engine's reason (e.g. a scatter over the cap) where users look
                plan.dialogs.append((s, action.reason))
            stats.add("step_transitions")


def definition_failure(wf: dict, rows: list[StepRow], reason: str) -> Plan | None:
    """The workflow ends ``failed`` with the definition error as its reason: steps not ended are cancelled and their
    live tasks killed, as for a kill. None where the workflow's state has no way to ``failed`` (paused: the error is
    recorded and the workflow waits for its user)."""
    if not WORKFLOW_LIFECYCLE.can(wf["status"], "failed"):
        return None
    plan = Plan(wf)
    for s in rows:  # decisions made before the error are dropped: the rows go back to what the database holds
        s.status = s.orig if s.orig is not None else s.status
        if s.status not in STEP_ENDED and STEP_LIFECYCLE.can(s.status, "cancelled"):
            if s.jedi_task_id and s.jedi_status not in jedi_statuses.ENDED:
                plan.to_kill.append(int(s.jedi_task_id))
            plan.move(s, "cancelled", reason)
    plan.move_workflow("failed", reason)
    return plan
