"""``plan_command``: what one user command does to a workflow, its steps and their JEDI tasks.

Pure: the caller passes the workflow status and its step rows and gets back a
``CommandPlan`` to apply in one transaction (guarded updates: a step that moved
meanwhile makes the plan stale and the command is planned again).  Every status
change in a plan is checked against the lifecycles; a change they do not allow
refuses the command instead of writing an illegal row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ..core import jedi_statuses
from ..core.lifecycle import Lifecycle
from ..workflow.lifecycles import STEP_ACTIVE, STEP_ENDED, STEP_LIFECYCLE, WORKFLOW_LIFECYCLE, jedi_status_to_step_status
from .commands import COMMANDS, refusal_reason
from .step_graph import StepGraph, StepView, downstream_closure, node_path

# a step in one of these statuses cannot be reset: something is (about to be) running for it
STEP_BUSY = frozenset({"ready"}) | STEP_ACTIVE


@dataclass(frozen=True)
class CommandPolicy:
    """Site choices for commands (defaults follow JEDI's own rules)."""

    jedi_retry_statuses: frozenset[str] = jedi_statuses.RETRY_ACCEPTED  # JEDI 'retry' works from these
    production_retry_statuses: frozenset[str] = jedi_statuses.RETRY_ACCEPTED_WITH_PRODUCTION_ROLE  # ... and these with a production role


@dataclass(frozen=True)
class StepChange:
    node_key: str
    from_status: str
    to_status: str
    reason: str
    new_task: bool = False  # forget the JEDI task (id, outputs, results, error): the step is submitted as a new task


@dataclass(frozen=True)
class JediCommand:
    task_id: int
    command: str  # kill | pause | resume | retry | finish (sendCommandTaskPanda)
    node_key: str


@dataclass
class CommandPlan:
    command: str
    accepted: bool
    refusal: str | None = None
    workflow_status: str | None = None  # new workflow status, None when unchanged
    step_changes: list[StepChange] = field(default_factory=list)
    jedi_commands: list[JediCommand] = field(default_factory=list)
    drop_keys: list[str] = field(default_factory=list)  # loop iterations to delete: they will be generated again
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "accepted": self.accepted,
            "refusal": self.refusal,
            "workflow_status": self.workflow_status,
            "step_changes": [vars(c) for c in self.step_changes],
            "jedi_commands": [vars(c) for c in self.jedi_commands],
            "drop_keys": list(self.drop_keys),
            "message": self.message,
        }


class _Refused(Exception):
    pass


def plan_command(
    command: str,
    params: dict | None,
    workflow_status: str,
    steps: Iterable[Any],
    policy: CommandPolicy | None = None,
    *,
    workflow_id: int | None = None,
    production_role: bool = False,
    workflow_lifecycle: Lifecycle = WORKFLOW_LIFECYCLE,
    step_lifecycle: Lifecycle = STEP_LIFECYCLE,
) -> CommandPlan:
    """Plan ``command`` on a workflow in ``workflow_status`` with step rows ``steps``.

    Never raises for a bad command: unknown command or parameter, wrong workflow status,
    a step that is still running where a reset is needed, or a transition the lifecycles
    lack all give ``accepted=False`` with a ``refusal`` naming the workflow and the reason.
    Malformed step rows (no node_key, duplicate keys) raise ``ValueError``.
    """
    who = f"workflow {workflow_id}" if workflow_id is not None else "the workflow"
    rule = COMMANDS.get(command)
    if rule is None:
        return _refuse(command, f"cannot run {command!r} on {who}: unknown command (expected {', '.join(COMMANDS)})")
    params = dict(params or {})
    problem = _params_problem(rule, params)
    if problem:
        return _refuse(command, f"cannot {command} {who}: {problem}")
    if workflow_status not in workflow_lifecycle.states:
        return _refuse(command, f"cannot {command} {who}: unknown workflow status {workflow_status!r}")
    if workflow_status not in rule.accepted:
        return _refuse(command, f"cannot {command} {who}: {refusal_reason(command, workflow_status)}")
    graph = StepGraph.build(steps)
    plan = CommandPlan(command, True, workflow_status=rule.accepted[workflow_status])
    try:
        _PLANNERS[command](plan, graph, params, workflow_status, policy or CommandPolicy(), production_role)
        _check(plan, workflow_status, graph, workflow_lifecycle, step_lifecycle)
    except _Refused as exc:
        return _refuse(command, f"cannot {command} {who}: {exc}")
    plan.message = _summary(plan, who)
    return plan


def _refuse(command: str, reason: str) -> CommandPlan:
    return CommandPlan(command, False, refusal=reason, message=reason)


# parameters every command may carry: where it came from, for the history (not used by the plan)
ORIGIN_PARAMS = {"from_task_command": int}


def _params_problem(rule, params: dict) -> str | None:
    allowed = {**rule.params, **ORIGIN_PARAMS}
    for name, value in params.items():
        if name not in allowed:
            expected = ", ".join(rule.params) if rule.params else "none"
            return f"unknown parameter {name!r} (allowed: {expected})"
        if not isinstance(value, allowed[name]) or (allowed[name] is not bool and isinstance(value, bool)):
            return f"parameter {name!r} must be {allowed[name].__name__}, got {value!r}"
    missing = [name for name in rule.required if params.get(name) in (None, "")]
    if missing:
        return f"missing parameter {', '.join(repr(m) for m in missing)}"
    return None


def _label(step: StepView) -> str:
    return f"step {step.name!r} ({step.node_key})" if step.name else f"step {step.node_key}"


# ---- one planner per command -------------------------------------------------------------


def _plan_kill(plan: CommandPlan, graph: StepGraph, params, status, policy, prod) -> None:
    for step in graph.steps.values():
        if step.status in STEP_ENDED:
            continue
        reason = "workflow killed"
        if step.status == "submitting" and step.jedi_task_id is None:
            reason += " (task submission in flight: kill the task named after the step if it appears)"
        plan.step_changes.append(StepChange(step.node_key, step.status, "cancelled", reason))
        if step.status in STEP_ACTIVE and step.jedi_task_id is not None and step.jedi_status not in jedi_statuses.KILL_REFUSED:
            plan.jedi_commands.append(JediCommand(step.jedi_task_id, "kill", step.node_key))


def _plan_pause(plan: CommandPlan, graph: StepGraph, params, status, policy, prod) -> None:
    for step in _tasks(graph):
        if step.jedi_status not in jedi_statuses.PAUSE_REFUSED:
            plan.jedi_commands.append(JediCommand(step.jedi_task_id, "pause", step.node_key))


def _plan_resume(plan: CommandPlan, graph: StepGraph, params, status, policy, prod) -> None:
    for step in _tasks(graph):
        if step.jedi_status in (None, "paused"):  # never 'resume' a staging task: that would skip the carousel
            plan.jedi_commands.append(JediCommand(step.jedi_task_id, "resume", step.node_key))


def _plan_finish(plan: CommandPlan, graph: StepGraph, params, status, policy, prod) -> None:
    for step in graph.steps.values():
        if step.status == "ready":
            plan.step_changes.append(StepChange(step.node_key, "ready", "skipped", "workflow finishing: not submitted"))
    if status == "paused" or params.get("now"):
        for step in _tasks(graph):
            if step.jedi_status not in jedi_statuses.KILL_REFUSED:
                plan.jedi_commands.append(JediCommand(step.jedi_task_id, "finish", step.node_key))


def _plan_retry(plan: CommandPlan, graph: StepGraph, params, status, policy, prod) -> None:
    roots = [
        s.node_key
        for s in graph.steps.values()
        if not graph.is_container(s.node_key)
        and (s.status in ("failed", "finished", "cancelled") or (s.status == "skipped" and s.prev_status == "ready"))
    ]
    if not roots:
        raise _Refused("nothing to retry: no step failed, ended partially or was cancelled")
    retriable = policy.jedi_retry_statuses | (policy.production_retry_statuses if prod else frozenset())

    def jedi_retry(step: StepView) -> str | None:
        if step.jedi_task_id is None or step.status not in ("failed", "finished"):
            return None
        jedi_status = step.jedi_status or step.status  # a failed/finished step mirrors its task unless told otherwise
        if jedi_status_to_step_status.get(jedi_status) in STEP_ACTIVE:
            return ADOPT  # the task was retried in JEDI already (its owner's pbook retry): follow it, send nothing
        return RETRY if jedi_status in retriable else None

    _apply_reset(plan, graph, roots, "retry", jedi_retry)


def _plan_rerun(plan: CommandPlan, graph: StepGraph, params, status, policy, prod) -> None:
    wanted = params["step"]
    roots = [k for k, s in graph.steps.items() if k == wanted or s.name == wanted]
    if not roots:
        raise _Refused(f"no step named {wanted!r} (give a step name or a node key from 'show')")
    paths = sorted({node_path(k) for k in roots})
    if len(paths) > 1:
        raise _Refused(f"step name {wanted!r} is ambiguous: it names nodes {', '.join(paths)}; give a node key instead")
    not_run = [k for k in roots if graph.steps[k].status == "defined"]
    if len(not_run) == len(roots):
        raise _Refused(f"nothing to rerun: {_label(graph.steps[roots[0]])} has not run yet")
    _apply_reset(plan, graph, roots, "rerun", lambda step: None)


RETRY = "retry"  # a root's task gets JEDI 'retry'
ADOPT = "adopt"  # a root's task is already running again in JEDI: the step follows it


def _apply_reset(plan: CommandPlan, graph: StepGraph, roots: list[str], verb: str, jedi_retry) -> None:
    """Reset ``roots`` and what depends on them; ``jedi_retry(step)`` says RETRY, ADOPT or None (a new task) per root."""
    closure = downstream_closure(graph, roots)
    root_set = set(roots)
    order = list(graph.steps)
    for key in order:
        step = graph.steps[key]
        if (key in closure.reset or key in closure.drop) and step.status in STEP_BUSY:
            task = f" with JEDI task {step.jedi_task_id}" if step.jedi_task_id else ""
            raise _Refused(f"{_label(step)} is {step.status}{task} and would have to run again; wait for it to end or kill the workflow")
    for key in order:
        step = graph.steps[key]
        if key in closure.reset:
            how = jedi_retry(step) if key in root_set else None
            if how == RETRY:
                plan.step_changes.append(StepChange(key, step.status, "retrying", f"user {verb}: JEDI retry of task {step.jedi_task_id}"))
                plan.jedi_commands.append(JediCommand(step.jedi_task_id, "retry", key))
            elif how == ADOPT:
                plan.step_changes.append(StepChange(key, step.status, "retrying",
                                                    f"user {verb}: task {step.jedi_task_id} already retried in JEDI ({step.jedi_status})"))
            elif step.status != "defined":
                why = f"user {verb}" if key in root_set else f"user {verb}: downstream of a step run again"
                plan.step_changes.append(StepChange(key, step.status, "defined", why, new_task=step.jedi_task_id is not None))
        elif key in closure.reopen and step.status in STEP_ENDED:
            plan.step_changes.append(StepChange(key, step.status, "running", f"user {verb}: body runs again"))
    plan.drop_keys = [k for k in order if k in closure.drop]


def _tasks(graph: StepGraph) -> list[StepView]:
    """Steps with a live JEDI task."""
    return [s for s in graph.steps.values() if s.status in STEP_ACTIVE and s.jedi_task_id is not None]


_PLANNERS = {
    "kill": _plan_kill,
    "pause": _plan_pause,
    "resume": _plan_resume,
    "finish": _plan_finish,
    "retry": _plan_retry,
    "rerun": _plan_rerun,
}


def _check(plan: CommandPlan, workflow_status: str, graph: StepGraph, workflow_lifecycle: Lifecycle, step_lifecycle: Lifecycle) -> None:
    if plan.workflow_status is not None and not workflow_lifecycle.can(workflow_status, plan.workflow_status):
        raise _Refused(f"the workflow lifecycle has no transition {workflow_status} -> {plan.workflow_status} (operators: add it)")
    for change in plan.step_changes:
        if not step_lifecycle.can(change.from_status, change.to_status):
            step = graph.steps[change.node_key]
            raise _Refused(
                f"the step lifecycle has no transition {change.from_status} -> {change.to_status}, needed for {_label(step)} (operators: add it)"
            )


def _summary(plan: CommandPlan, who: str) -> str:
    parts = [f"{plan.command} {who} accepted"]
    if plan.workflow_status:
        parts.append(f"workflow -> {plan.workflow_status}")
    if plan.step_changes:
        parts.append(f"{len(plan.step_changes)} step(s) changed")
    if plan.jedi_commands:
        by_command: dict[str, int] = {}
        for c in plan.jedi_commands:
            by_command[c.command] = by_command.get(c.command, 0) + 1
        parts.append(", ".join(f"{n} JEDI task(s) to {c}" for c, n in by_command.items()))
    if plan.drop_keys:
        parts.append(f"{len(plan.drop_keys)} loop iteration row(s) dropped")
    return "; ".join(parts)
