"""Deciding one workflow in memory: follow JEDI, start or drop held retries, run the engine, make a plan."""

from __future__ import annotations

import datetime

from pandajedi_wf.taskbuffer import workflows
from pandajedi_wf.workflow import STEP_LIFECYCLE, RunContext, StepRecord, Workflow, jedi_status_to_step_status, next_actions
from pandajedi_wf.workflow.lifecycles import STEP_ACTIVE

from . import junctions, retries
from .plan import Plan, apply_actions
from .step_row import StepRow, engine_status, needs_results


class Definitions:
    """Parsed definitions and the client's task templates by workflow id: they never change after submission, and
    parsing one costs more than deciding it. Bounded: past ``max_entries`` the cache starts again."""

    def __init__(self, max_entries: int = 50_000):
        self.max_entries = max_entries
        self._entries: dict[int, tuple[datetime.datetime, Workflow, dict | None]] = {}

    def known(self, workflow_ids) -> set[int]:
        """Which of these workflows need no definition read (the claim's rows skip the bulky column for them)."""
        if len(self._entries) > self.max_entries:
            self._entries.clear()
        return self._entries.keys() & set(workflow_ids)

    def of(self, db, wf: dict) -> tuple[Workflow, dict | None]:
        cached = self._entries.get(int(wf["workflow_id"]))
        if cached is None or cached[0] != wf["creation_time"]:  # (a recreated database may reuse an id)
            if "definition" not in wf:
                wf.update(workflows.load_documents(db, int(wf["workflow_id"])))
            cached = (wf["creation_time"], Workflow.from_dict(wf["definition"]), (wf.get("request") or {}).get("taskParams"))
            self._entries[int(wf["workflow_id"])] = cached
        return cached[1], cached[2]

    def clear(self) -> None:
        self._entries.clear()


def decide(db, wf: dict, rows: list[StepRow], definitions: Definitions, junction_results, stats, now: datetime.datetime,
           submissions: int | None = None) -> Plan:
    """Follow JEDI and run the engine for one workflow, in memory only; at most ``submissions`` new intents."""
    plan = Plan(wf)
    by_key: dict[str, StepRow] = {}
    for s in rows:  # (one loop: it runs for every step of every workflow of every pass)
        by_key[s.node_key] = s
        s.orig = status = s.status
        # 1. follow JEDI (a failed task gets its retry decision here, before the engine sees the step)
        task_status = s.jedi_status
        if task_status is not None and status in STEP_ACTIVE and not s.retry_pending:
            target = jedi_status_to_step_status.get(task_status)
            if target and target != status and STEP_LIFECYCLE.can(status, target):
                if retries.is_ending(s):
                    plan.move(s, target, retries.on_task_ended(plan, s, target, now))
                    stats.add("retry_decisions")
                else:
                    plan.move(s, target, f"JEDI task {s.jedi_task_id} is {task_status}")
                stats.add("step_transitions")
        # 1b. loops read their junction's results.json (held, with the reason, while it cannot be read)
        if needs_results(s):
            junctions.fetch(plan, s, junction_results)
    # 2. retries due, or dropped (once every step followed JEDI: a held step looks at its parents)
    for s in rows:
        if retries.is_held(s):
            retries.handle_held(plan, s, by_key, now)
    # 3. decide
    definition, templates = definitions.of(db, wf)
    status = wf["status"]
    records = {  # (positional: this runs for every step of every workflow of every pass)
        key: StepRecord(key, int(s.node_id or 0), engine_status(s, status), int(s.iteration or 0), s.scatter_index, s.jedi_task_id,
                        s.jedi_status, [], s.results, int(s.generation or 0))
        for key, s in by_key.items()
    }
    context = RunContext(
        out_ds=wf["out_ds"],
        user_name=wf["user_name"],
        vo=wf["vo"],
        workflow_id=plan.workflow_id,
        workflow_status=status,
        task_templates=templates,
        prod_source_label=wf["prod_source_label"] or "user",
    )
    apply_actions(plan, by_key, next_actions(definition, records, context), stats, submissions)
    return plan
