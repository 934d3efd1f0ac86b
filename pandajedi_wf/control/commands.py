"""The workflow commands as data: where each is accepted, where it leads, what it does to steps.

One row per command, read on one screen.  ``plan_command`` (control.plan) turns a row
plus the current step rows into concrete changes; this module only says what is allowed
and why a refusal happens, in words a user understands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..workflow.lifecycles import WORKFLOW_ENDED



@dataclass(frozen=True)
class CommandRule:
    name: str
    accepted: Mapping[str, str | None]  # workflow status -> new workflow status (None: unchanged)
    effect: str  # what happens to steps and JEDI tasks
    params: Mapping[str, type] = field(default_factory=dict)  # allowed parameters and their types
    required: tuple[str, ...] = ()


COMMANDS: dict[str, CommandRule] = {
    rule.name: rule
    for rule in (
        CommandRule(
            "kill",
            {"registered": "cancelled", "parsed": "cancelling", "running": "cancelling", "paused": "cancelling", "finishing": "cancelling"},
            "steps not ended are cancelled; their active JEDI tasks get 'kill'",
        ),
        CommandRule(
            "pause",
            {"parsed": "paused", "running": "paused"},
            "no new step is submitted; active JEDI tasks get 'pause'",
        ),
        CommandRule(
            "resume",
            {"paused": "running"},
            "steps are submitted again; paused JEDI tasks get 'resume'",
        ),
        CommandRule(
            "finish",
            {"running": "finishing", "paused": "finishing"},
            "ready steps are skipped and nothing new is submitted; running steps end "
            "(their JEDI tasks get 'finish' if the workflow was paused or with now=true)",
            params={"now": bool},
        ),
        CommandRule(
            "retry",
            {"running": None, "finished": "running", "failed": "running"},
            "failed, partial and cancelled steps (and those skipped by a finish) run again: JEDI 'retry' for "
            "finished/failed tasks, a new task otherwise; everything downstream of them is reset",
        ),
        CommandRule(
            "rerun",
            {"running": None, "done": "running", "finished": "running", "failed": "running"},
            "the named step and everything downstream of it are reset and run again as new JEDI tasks",
            params={"step": str},
            required=("step",),
        ),
    )
}

_ENDED_WORDS = {"done": "is done", "finished": "has finished", "failed": "has failed", "cancelled": "was cancelled"}


def refusal_reason(command: str, workflow_status: str) -> str:
    """Why ``command`` is not accepted while the workflow is ``workflow_status`` (the part after 'cannot X workflow N: ')."""
    rule = COMMANDS[command]
    target = next((t for t in rule.accepted.values() if t is not None), None)
    if command in ("retry", "rerun"):
        if workflow_status == "cancelled":
            return "it was cancelled; a cancelled workflow cannot run again, submit it anew"
        if workflow_status == "done" and command == "retry":
            return "it is done: no step failed (use rerun-from to run steps again)"
        if workflow_status == "paused":
            return "it is paused; resume it first"
        if workflow_status in ("registered", "parsed"):
            return f"it has not started yet ({workflow_status})"
        if workflow_status in ("finishing", "cancelling"):
            return f"it is {workflow_status}; wait until it ends"
    if command == "resume" and workflow_status not in WORKFLOW_ENDED:
        return f"it is {workflow_status}, not paused"
    if command == "kill" and workflow_status == "cancelling":
        return "it is already being cancelled"
    if workflow_status == target:
        return f"it is already {workflow_status}"
    if workflow_status in WORKFLOW_ENDED:
        return f"it {_ENDED_WORDS[workflow_status]} already"
    if command == "finish" and workflow_status == "parsed":
        return "it has not started yet (kill it instead)"
    accepted = sorted(rule.accepted)
    listed = ", ".join(accepted[:-1]) + (" or " if len(accepted) > 1 else "") + accepted[-1]
    return f"it is {workflow_status}; {command} is accepted only when the workflow is {listed}"

