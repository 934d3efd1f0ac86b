"""Critical-path priority: a step with slack gives way to one its workflow's end waits for.

JEDI orders a user's tasks by ``currentPriority`` (TaskRefiner takes it from the task parameters; for a submission
without production role ``insertTaskParamsPanda`` forces ``taskPriority`` to 1000, so that is the user's bound). A step
on the critical path keeps the bound; a step with slack is lowered by ``points_per_hour`` per hour of slack, at most
``max_lowering``: never above what the user would get anyway, so other users are not starved, and a wide workflow
runs the branches its end waits for first. Without an estimate for the workflow's live steps (nothing like them has
ended yet) nothing is changed: a guess would reorder at random.
"""

from __future__ import annotations

from dataclasses import dataclass

USER_TASK_PRIORITY = 1000  # what insertTaskParamsPanda gives a task submitted without production role


@dataclass(frozen=True)
class PriorityPolicy:
    points_per_hour: float = 10.0
    max_lowering: int = 100
    critical_within_seconds: float = 300.0  # slack this small is the critical path (estimates are not exact)


def step_priority(bound: int, slack_seconds: float | None, estimated: bool, policy: PriorityPolicy = PriorityPolicy()) -> tuple[int, str]:
    """(currentPriority, why) of a step about to be submitted, given its slack on the workflow's critical path."""
    if not estimated or slack_seconds is None:
        return bound, f"priority {bound}: no estimate of the workflow's remaining steps yet"
    if slack_seconds <= policy.critical_within_seconds:
        return bound, f"priority {bound}: on the critical path"
    lowering = min(policy.max_lowering, int(policy.points_per_hour * slack_seconds / 3600))
    return bound - lowering, f"priority {bound - lowering}: {_duration(slack_seconds)} of slack on the critical path"


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
