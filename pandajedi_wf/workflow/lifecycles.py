"""The workflow and step lifecycles as transition tables, and how JEDI task statuses map onto steps."""

from __future__ import annotations

from ..core.lifecycle import Lifecycle

WORKFLOW_LIFECYCLE = Lifecycle(
    "workflow",
    states={
        "registered": "received from the client, description not read yet",
        "parsed": "description read and checked; steps being defined",
        "running": "steps are being submitted or run",
        "paused": "no new step is submitted until resumed",
        "finishing": "user asked to finish: running steps end, pending steps are skipped",
        "cancelling": "user asked to cancel: tasks are being killed",
        "done": "every step done or skipped as a branch not taken",
        "finished": "ended with some steps failed, partial or skipped for lack of input",
        "failed": "ended with no useful output, or the description was refused",
        "cancelled": "ended by the user",
    },
    transitions=[
        ("registered", "parsed", "description parsed and valid"),
        ("registered", "failed", "description refused (syntax, references, size)"),
        ("registered", "cancelled", "cancelled before parsing"),
        ("parsed", "running", "first steps created"),
        ("parsed", "paused", "pause before start"),
        ("parsed", "cancelling", "cancel before start"),
        ("parsed", "failed", "no step could be created"),
        ("running", "paused", "user pause"),
        ("running", "finishing", "user finish"),
        ("running", "cancelling", "user cancel"),
        ("running", "done", "all steps done or skipped branches"),
        ("running", "finished", "all steps ended, some failed or partial"),
        ("running", "failed", "all steps ended, nothing useful"),
        ("paused", "running", "user resume"),
        ("paused", "finishing", "user finish while paused"),
        ("paused", "cancelling", "user cancel while paused"),
        ("finishing", "finished", "running steps ended"),
        ("finishing", "done", "everything had already succeeded"),
        ("finishing", "failed", "running steps ended, nothing useful"),
        ("finishing", "cancelling", "user cancel while finishing"),
        ("cancelling", "cancelled", "all tasks ended"),
        ("finished", "running", "user retry of failed and partial steps"),
        ("failed", "running", "user retry"),
        ("done", "running", "user rerun from a step"),
    ],
    # 'done' is not final: a user may rerun a finished workflow from one of its steps
    final=["cancelled"],
)

STEP_LIFECYCLE = Lifecycle(
    "step",
    states={
        "defined": "created, waiting for its parents",
        "ready": "parents satisfied and condition true; to be submitted",
        "submitting": "intent to submit recorded before calling JEDI (crash safety)",
        "submitted": "JEDI accepted the task, not running yet",
        "running": "JEDI task running, or sub-workflow body / loop iterating",
        "retrying": "waiting for JEDI to retry the task",
        "done": "all inputs processed",
        "finished": "partially processed",
        "failed": "task failed, broken or exhausted",
        "skipped": "not run: branch not taken, parent without output, or workflow finishing",
        "cancelled": "killed or dropped on user request",
    },
    transitions=[
        ("defined", "ready", "parents succeeded and condition true"),
        ("defined", "skipped", "condition false or a parent has no output"),
        ("defined", "cancelled", "workflow cancelled"),
        ("ready", "submitting", "submission intent recorded"),
        ("ready", "running", "sub-workflow body opened"),
        ("ready", "skipped", "workflow finishing"),
        ("ready", "cancelled", "workflow cancelled"),
        ("submitting", "submitted", "JEDI accepted the task"),
        ("submitting", "ready", "submission failed and will be tried again"),
        ("submitting", "failed", "JEDI refused the task"),
        ("submitting", "cancelled", "workflow cancelled"),
        ("submitted", "running", "JEDI task started"),
        ("submitted", "done", "task ended quickly"),
        ("submitted", "finished", "task ended quickly, partially"),
        ("submitted", "failed", "task failed before running"),
        ("submitted", "retrying", "JEDI retry"),
        ("submitted", "cancelled", "task killed"),
        ("running", "done", "task done / body done"),
        ("running", "finished", "task partially done / body partial"),
        ("running", "failed", "task failed / body failed"),
        ("running", "retrying", "JEDI retry"),
        ("running", "cancelled", "task killed"),
        ("retrying", "submitted", "JEDI took the retry"),
        ("retrying", "running", "retried task running"),
        ("retrying", "failed", "retry refused"),
        ("retrying", "cancelled", "task killed"),
        ("finished", "retrying", "user retry"),
        ("failed", "retrying", "user retry"),
        # retry and rerun-from (pandajedi_wf.control) reset a step and what depends on it, to run again
        ("done", "defined", "user rerun/retry: reset to run again"),
        ("finished", "defined", "user rerun/retry: reset to run again"),
        ("failed", "defined", "user rerun/retry: reset to run again as a new task"),
        ("cancelled", "defined", "user retry: reset to run again as a new task"),
        ("skipped", "defined", "user rerun/retry: condition and inputs decided again"),
        ("done", "running", "user rerun/retry: sub-workflow or loop body runs again"),
        ("finished", "running", "user rerun/retry: sub-workflow or loop body runs again"),
        ("failed", "running", "user rerun/retry: sub-workflow or loop body runs again"),
    ],
    # no step status is final: every ended step can be reset by a user retry or rerun
    final=[],
)

# workflow statuses the processor drives ('registered' is the intake's), and those in which a workflow has ended
# (only a command makes it due again: its check_after is NULL, out of the processor's due index)
WORKFLOW_PROCESSED = ("parsed", "running", "paused", "finishing", "cancelling")
WORKFLOW_ENDED = frozenset({"done", "finished", "failed", "cancelled"})

# statuses after which a step no longer changes unless someone retries it
STEP_ENDED = frozenset({"done", "finished", "failed", "skipped", "cancelled"})
STEP_ACTIVE = frozenset({"submitting", "submitted", "running", "retrying"})

# JEDI task status -> step status (FIELD_GUIDE §5); every JEDI status appears exactly once
jedi_status_to_step_status: dict[str, str] = {
    "registered": "submitted",
    "defined": "submitted",
    "assigned": "submitted",
    "ready": "submitted",
    "pending": "submitted",
    "topreprocess": "submitted",
    "preprocessing": "submitted",
    "staging": "submitted",
    "staged": "submitted",
    "rerefine": "submitted",
    "scouting": "running",
    "scouted": "running",
    "running": "running",
    "throttled": "running",
    "paused": "running",
    "prepared": "running",
    "passed": "running",
    "finishing": "running",
    "aborting": "running",
    "toabort": "running",
    "tobroken": "running",
    "toretry": "retrying",
    "toincexec": "retrying",
    "done": "done",
    "finished": "finished",
    "failed": "failed",
    "broken": "failed",
    "exhausted": "failed",
    "aborted": "cancelled",
}


def step_outcome(status: str | None) -> str | None:
    """How a condition sees a step: succeeded, failed, skipped, or None while it may still change."""
    if status in ("done", "finished"):
        return "succeeded"
    if status in ("failed", "cancelled"):
        return "failed"
    if status == "skipped":
        return "skipped"
    return None
