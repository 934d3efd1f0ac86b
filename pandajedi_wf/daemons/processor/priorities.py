"""Critical-path priority of the tasks a pass submits (``control.priority`` decides; this gathers its inputs).

Only a workflow submitting a step while another of its steps is live needs it: with one live step, that step is the
critical path and keeps the user's bound, so chains (most workflows) cost no read. For the others, one read per batch
gives the steps' times, the critical path comes from ``workflow.critical_path``, and each submitted step's
``currentPriority`` goes into its task parameters before the intent is written (a crash repair sends the same),
with the reason in the step's history.
"""

from __future__ import annotations

import datetime

from pandajedi_wf.control.priority import USER_TASK_PRIORITY, PriorityPolicy, step_priority
from pandajedi_wf.taskbuffer import steps
from pandajedi_wf.workflow.critical_path import CriticalPathError, of_step_rows
from pandajedi_wf.workflow.lifecycles import STEP_ACTIVE

from .plan import Plan
from .step_row import StepRow


def apply(db, plans: list[Plan], step_rows: dict[int, list[StepRow]], now: datetime.datetime, stats,
          policy: PriorityPolicy = PriorityPolicy()) -> None:
    wanting = {}
    for plan in plans:
        submitting = plan.submissions()
        if not submitting:
            continue
        kept = step_rows.get(plan.workflow_id, ())
        if sum(1 for s in kept if s.status in STEP_ACTIVE) + sum(1 for s in plan.created if s.status in STEP_ACTIVE) > 1:
            wanting[plan.workflow_id] = (plan, {s.node_key: s for s in kept} | {s.node_key: s for s in plan.created}, submitting)
    if not wanting:
        return
    times = steps.times_of(db, sorted(wanting))
    for workflow_id, (plan, rows, submitting) in wanting.items():
        now_submitting = {s.node_key for s in submitting}
        timed = [
            {"node_key": key, "parent_keys": s.parent_keys, "status": s.status, "step_type": s.step_type,
             "submit_intent_time": now if key in now_submitting else times[workflow_id].get(key, (None, None))[0],
             "status_change_time": times[workflow_id].get(key, (None, None))[1]}
            for key, s in rows.items()
        ]
        try:
            path = of_step_rows(timed, now)
        except CriticalPathError:  # (the engine never writes a cycle) the tasks go with the user's bound
            continue
        why_of = {}
        for s in submitting:
            priority, why_of[id(s)] = step_priority(USER_TASK_PRIORITY, path.slack.get(s.node_key), path.known, policy)
            s.task_params = {**s.task_params, "currentPriority": priority}
            stats.add("priorities_set")
        plan.explain_submissions(why_of)
