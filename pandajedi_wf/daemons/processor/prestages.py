"""Workflow-level pre-staging at a workflow's start: the datasets its later steps read become planned pre-stages.

For each workflow of the batch whose plan starts it (``parsed -> running``), ``placement.prestage`` turns the definition
into the datasets of its later steps, each with the estimated earliest start of the step that reads it first and the
need-by of its recall; they are written to JEDI_DC_PRESTAGES (``taskbuffer.staging_prestages``) before the batch's
plans, so a crash in between leaves them planned and the replayed start finds them (insert-if-absent: nothing twice).
The carousel takes them in (``daemons.carousel_prestages``): it asks DDM which are only on tape and queues those
behind the waiting tasks' requests. Pre-staging only saves time: a failure here is counted and logged, never stops
the batch (the steps then stage their inputs when they are submitted, as without it).
"""

from __future__ import annotations

import datetime

from pandajedi_wf.placement.prestage import CriticalPathError, PrestagePolicy, plan_prestages, steps_of_definition
from pandajedi_wf.taskbuffer import staging_prestages
from pandajedi_wf.taskbuffer.connection import WfDatabase
from pandajedi_wf.taskbuffer.staging_prestages import PlannedRow

from ..common import log_failure
from .decide import Definitions
from .plan import Plan
from .settings import ProcessorSettings

STARTS = ("parsed", "running")  # the workflow change that starts a workflow


def planned_rows(plan: Plan, definitions: Definitions, db: WfDatabase, now: datetime.datetime, policy: PrestagePolicy) -> list[PlannedRow]:
    """The pre-stages of a workflow this plan starts (none for any other plan)."""
    if plan.workflow_change != STARTS:
        return []
    definition, _ = definitions.of(db, plan.wf)
    steps = _steps_of(definition)
    if not any(step.inputs for step in steps):  # nothing read from outside the workflow: nothing to pre-stage
        return []
    return [PlannedRow(plan.workflow_id, p.dataset, p.step, p.ready_at, p.need_by) for p in plan_prestages(steps, now, policy)]


def _steps_of(definition) -> tuple:
    """The definition's plan steps, made once per parsed definition (the processor shares one among the workflows
    of the same content, as the engine's index is): thousands of workflows start in a creation pass."""
    found = definition.__dict__.get("_prestage_steps")
    if found is None:
        found = definition.__dict__["_prestage_steps"] = tuple(steps_of_definition(definition))
    return found


def policy_of(settings: ProcessorSettings) -> PrestagePolicy:
    """The plan's estimates from the operator's settings (panda_jedi.cfg ``[watchdog] wf_processor_prestage_*``)."""
    return PrestagePolicy(default_step_seconds=float(settings.prestage_step_seconds), tape_latency_seconds=float(settings.prestage_recall_seconds))


def plan_starts(db: WfDatabase, plans: list[Plan], definitions: Definitions, now: datetime.datetime, stats,
                settings: ProcessorSettings | None = None, log=None) -> None:
    """Write the pre-stages of the workflows the batch's plans start (module doc); nothing with ``prestage`` 0."""
    settings = settings or ProcessorSettings()
    if not settings.prestage:
        return
    policy = policy_of(settings)
    rows: list[PlannedRow] = []
    for plan in plans:
        try:
            rows += planned_rows(plan, definitions, db, now, policy)
        except (CriticalPathError, KeyError, ValueError) as exc:  # the engine refuses such a definition on its own
            stats.add("prestage_failures")
            log_failure(log, f"workflow {plan.workflow_id}: no pre-stages planned: {type(exc).__name__}: {exc}")
    if not rows:
        return
    try:
        with db.transaction():
            stats.add("prestages_planned", staging_prestages.plan(db, rows, now))
    except Exception as exc:  # the steps stage their inputs when submitted, as without pre-staging
        stats.add("prestage_failures")
        log_failure(log, f"pre-stages of workflows {sorted({r.workflow_id for r in rows})} not written: {type(exc).__name__}: {exc}")
