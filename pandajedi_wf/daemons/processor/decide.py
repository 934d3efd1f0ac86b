"""Deciding one workflow in memory: follow JEDI, start or drop held retries, run the engine, make a plan."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping

from pandajedi_wf.taskbuffer import workflows
from pandajedi_wf.workflow import STEP_LIFECYCLE, RunContext, StepRecord, Workflow, jedi_status_to_step_status, next_actions
from pandajedi_wf.workflow.lifecycles import STEP_ACTIVE

from . import junctions, retries
from .plan import Plan, apply_actions
from .step_row import StepRow, engine_status, needs_results


class Definitions:
    """Parsed definitions and the client's task templates by workflow id: they never change after submission, and
    parsing one costs more than deciding it. Stored once per distinct content (a user submits the same workflow over
    different inputs; the benchmark's thousands of chains are one), so memory follows the distinct definitions, not
    the workflows. Bounded: past ``max_entries`` workflows the cache starts again."""

    def __init__(self, max_entries: int = 200_000):
        self.max_entries = max_entries
        self._by_workflow: dict[int, tuple[datetime.datetime, str]] = {}  # id -> (creation time, content key)
        self._parsed: dict[str, tuple[Workflow, dict | None]] = {}  # content key -> (definition, templates)

    def known(self, workflow_ids) -> set[int]:
        """Which of these workflows need no definition read (the claim's rows skip the bulky column for them)."""
        if len(self._by_workflow) > self.max_entries:
            self.clear()
        return self._by_workflow.keys() & set(workflow_ids)

    def of(self, db, wf: dict) -> tuple[Workflow, dict | None]:
        workflow_id = int(wf["workflow_id"])
        known = self._by_workflow.get(workflow_id)
        if known is None or known[0] != wf["creation_time"]:  # (a recreated database may reuse an id)
            if "definition" not in wf:
                wf.update(workflows.load_documents(db, workflow_id))
            templates = (wf.get("request") or {}).get("taskParams")
            key = hashlib.sha256(json.dumps([wf["definition"], templates], sort_keys=True, default=str).encode()).hexdigest()
            if key not in self._parsed:
                self._parsed[key] = (Workflow.from_dict(wf["definition"]), templates)
            known = self._by_workflow[workflow_id] = (wf["creation_time"], key)
        return self._parsed[known[1]]

    def forget(self, workflow_id: int) -> None:
        """An ended workflow's entry (its parsed definition stays while another workflow shares it)."""
        self._by_workflow.pop(workflow_id, None)

    def clear(self) -> None:
        self._by_workflow.clear()
        self._parsed.clear()

    @property
    def distinct(self) -> int:
        return len(self._parsed)


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
        if s.step_type == "junction" and needs_results(s):
            junctions.fetch(plan, s, junction_results)
    # 2. retries due, or dropped (once every step followed JEDI: a held step looks at its parents)
    for s in rows:
        if s.retry_after is not None and retries.is_held(s):
            retries.handle_held(plan, s, by_key, now)
    # 3. decide
    definition, templates = definitions.of(db, wf)
    status = wf["status"]
    statuses = {key: engine_status(s, status) for key, s in by_key.items()}
    context = RunContext(
        out_ds=wf["out_ds"],
        user_name=wf["user_name"],
        vo=wf["vo"],
        workflow_id=plan.workflow_id,
        workflow_status=status,
        task_templates=templates,
        prod_source_label=wf["prod_source_label"] or "user",
    )
    apply_actions(plan, by_key, next_actions(definition, EngineRecords(by_key, statuses), context, statuses), stats, submissions)
    return plan


class EngineRecords(Mapping):
    """The rows as the engine's step records, each made when the engine asks for it: the walk reads every status
    (given apart) but a record only to name a step's task or read a junction's results, so a pass over 10,000
    workflows of 20 steps makes thousands of records, not 200,000."""

    __slots__ = ("_rows", "_statuses")

    def __init__(self, rows: dict[str, StepRow], statuses: dict[str, str]):
        self._rows, self._statuses = rows, statuses

    def __getitem__(self, key: str) -> StepRecord:
        s = self._rows[key]
        return StepRecord(key, int(s.node_id or 0), self._statuses[key], int(s.iteration or 0), s.scatter_index, s.jedi_task_id,
                          s.jedi_status, [], s.results, int(s.generation or 0))

    def __iter__(self):
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)
