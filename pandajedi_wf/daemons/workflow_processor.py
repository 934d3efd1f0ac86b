"""The workflow processor cycle: claim due workflows, follow their JEDI tasks, decide, write, submit.

Order inside one workflow, chosen for crash safety:
 1. JEDI task statuses are read in bulk for the whole claimed batch and mapped onto steps;
 2. steps left in ``submitting`` by a crash are reconciled with DEFT (adopt the task or submit again);
 3. the pure engine (``workflow.next_actions``) decides; its actions are written in one transaction, where a
    submission is only an *intent* (step ``submitting`` with its exact task parameters);
 4. after that commit JEDI is called, and the answer is recorded. A crash between 3 and 4 is repaired by 2.
At most ``max_submissions_per_workflow`` JEDI calls per workflow and pass, repairs (2) and new intents (3) together:
a ready step beyond the cap is left ready (no intent) for the next pass, which comes at once.
A step whose task fails is judged by ``step_retries`` in 3, before the engine sees it: held for an automatic retry
(the engine sees it ``retrying``), or left ended; a retry that is due is part of the same plan and write.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
import signal
import threading
import time
from dataclasses import dataclass, field

from pandajedi_wf.core import jedi_statuses
from pandajedi_wf.core.clock import utcnow
from pandajedi_wf.taskbuffer import commands, jedi_tasks, steps, transitions, workflow_data, workflows
from pandajedi_wf.taskbuffer.connection import WfDatabase
from pandajedi_wf.taskbuffer.transitions import TransitionRecord
from pandajedi_wf.workflow import (
    STEP_LIFECYCLE,
    WORKFLOW_LIFECYCLE,
    CancelStep,
    CreateStep,
    MakeReady,
    RunContext,
    SetStepStatus,
    SetWorkflowStatus,
    Skip,
    StepRecord,
    SubmitStep,
    Workflow,
    jedi_status_to_step_status,
    next_actions,
)
from pandajedi_wf.workflow.taskparams import output_containers
from pandajedi_wf.workflow.errors import StepDefinitionError
from pandajedi_wf.workflow.lifecycles import STEP_ACTIVE, STEP_ENDED

from . import junction_wait, step_retries, user_intents
from .common import CycleStats, int_options, log_failure, process_id
from .step_cache import CREATED_DEFAULTS, StepRowCache
from .jedi_submission import SubmissionOutcome, deft_user_name, submit_task
from .workflow_commands import execute_queued, kill_tasks, send_task_command

ACTIVE_WORKFLOW_STATUSES = ("parsed", "running", "paused", "finishing", "cancelling")
NOTHING_DUE = "no workflow due"

# Crash tests only: ``PANDAJEDI_WF_FAULT_POINT=<point>[:<n>]`` makes the process SIGKILL itself the n-th time (default
# the first) it reaches that point, as a node failure or the OOM killer would; unset, ``fault_point`` does nothing.
FAULT_POINT_ENV = "PANDAJEDI_WF_FAULT_POINT"
FAULT_POINTS = (
    "batch_decided",  # a batch's decisions made, nothing of them written
    "write_transaction",  # inside the batch's write transaction, before its commit
    "jedi_accepted",  # JEDI took a task (new intent or crash repair), its answer not yet recorded
    "lease_release",  # everything written and submitted, the batch's leases not yet released
)
_fault_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    wanted = os.environ.get(FAULT_POINT_ENV)
    if not wanted or wanted.partition(":")[0] != name:
        return
    _fault_hits[name] = _fault_hits.get(name, 0) + 1
    if _fault_hits[name] >= int(wanted.partition(":")[2] or 1):
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class ProcessorSettings:
    """Operator knobs, read from ``panda_jedi.cfg [watchdog] wf_processor_<name>`` by the JEDI plugin."""

    batch_size: int = 500  # workflows claimed per statement round (a cycle claims one batch)
    lease_seconds: int = 600  # how long a claim protects a workflow from other processors
    recheck_seconds: int = 60  # back-off of a workflow in which nothing moved
    max_submissions_per_workflow: int = 200  # JEDI submissions per workflow and cycle
    pass_seconds: int = 50  # a JEDI cycle goes batch after batch for at most this long (keep it below the period)
    workers: int = 2  # batches processed at once, each on its own DB connection (one decides while another waits)
    cached_steps: int = 300_000  # step rows kept in memory between passes (see step_cache); 0 reads every pass

    @classmethod
    def from_options(cls, options: dict[str, str]) -> "ProcessorSettings":
        """Settings from ``name -> text`` (unknown names ignored); a value that is not a positive integer is refused
        with the option's name, so a typo in panda_jedi.cfg is reported instead of silently defaulted."""
        names = ("batch_size", "lease_seconds", "recheck_seconds", "max_submissions_per_workflow", "pass_seconds", "workers", "cached_steps")
        return cls(**int_options(options, names, minimum={"recheck_seconds": 0, "cached_steps": 0}))


_DEFINITION_CACHE_SIZE = 50_000
# parsed definitions and the client's task templates by workflow id: they never change after submission
_definitions: dict[int, tuple[datetime.datetime, Workflow, dict | None]] = {}
# step rows this process wrote, kept between passes (see step_cache for why that is safe)
_step_rows = StepRowCache()


@dataclass
class _Plan:
    """Everything one workflow's decisions change in this cycle, kept in memory until the batch is written.

    Steps are the row dicts loaded at the start of the cycle (``orig`` = status read then) or new dicts for steps
    created now; only the first and the last status of a step reach the database, every step between goes to
    the history.
    """

    wf: dict
    history: list[tuple[str, object, str | None, str, str]] = field(default_factory=list)
    touched: dict[str, dict] = field(default_factory=dict)
    created: list[dict] = field(default_factory=list)
    workflow_change: tuple[str, str] | None = None
    deferred: int = 0  # ready steps left without an intent: the workflow's submission cap was reached this pass
    results: list[tuple[dict, dict | None]] = field(default_factory=list)
    dialogs: list[tuple[dict, str]] = field(default_factory=list)  # error_dialog of steps whose status stays
    to_kill: list[int] = field(default_factory=list)
    marks: dict[str, steps.RetryMark] = field(default_factory=dict)  # retry decisions to record, by node key
    jedi_retries: list[tuple[int, dict]] = field(default_factory=list)  # (task id, step): JEDI 'retry' after commit
    written_alone: bool = False  # the batch's transaction failed and this plan was written again on its own

    @property
    def mirrored(self) -> bool:
        """Whether the rows in memory are what the database holds once this plan is written: not after retry
        decisions, kills or a second write attempt, whose effects the rows do not all carry."""
        return not (self.marks or self.jedi_retries or self.to_kill or self.written_alone)

    @property
    def workflow_id(self) -> int:
        return int(self.wf["workflow_id"])

    def move(self, s: dict, target: str, reason: str) -> None:
        self.history.append(("step", s, s["status"], target, reason))
        self.touched[s["node_key"]] = s
        s["status"] = target

    def note(self, s: dict, reason: str) -> None:
        """A decision about a step that leaves its status as it is (history only)."""
        self.history.append(("step", s, s["status"], s["status"], reason))
        self.touched[s["node_key"]] = s

    def move_workflow(self, target: str, reason: str) -> None:
        WORKFLOW_LIFECYCLE.check(self.wf["status"], target)
        self.history.append(("workflow", None, self.wf["status"], target, reason))
        first = self.workflow_change[0] if self.workflow_change else self.wf["status"]
        self.workflow_change = (first, target)
        self.wf["status"] = target

    def submissions(self) -> list[dict]:
        steps_now = {s["node_key"]: s for s in self.created} | self.touched  # a new step may also have moved
        return [s for s in steps_now.values() if s["status"] == "submitting"]


def cycle(
    db: WfDatabase,
    stats: CycleStats,
    task_buffer,
    now: datetime.datetime | None = None,
    owner: str | None = None,
    settings: ProcessorSettings | None = None,
    junction_results=None,
    wake: bool = True,
    log=None,
) -> str:
    """One batch of due workflows; returns a one-line summary for the heartbeat.

    Reads are one statement per kind per 500 workflows; decisions are made in memory; all writes of the batch go
    in one transaction of grouped statements (falling back to one transaction per workflow if a row moved under
    us); then JEDI is called for each step whose intent was committed, and the answers are written in bulk.
    """
    settings = settings or ProcessorSettings()
    now = now or utcnow()
    owner = owner or process_id()
    if wake:
        stats.add("workflows_woken", workflows.wake_on_task_changes(db, now))
    leases = workflows.claim_due_leases(db, ACTIVE_WORKFLOW_STATUSES, owner, now, settings.lease_seconds, settings.batch_size)
    claimed = list(leases)
    stats.add("workflows_claimed", len(claimed))
    if not claimed:
        return NOTHING_DUE
    if len(_definitions) > _DEFINITION_CACHE_SIZE:
        _definitions.clear()
    rows = workflows.load(db, claimed, skip_definition=_definitions.keys() & set(claimed))
    for workflow_id, queued in commands.queued_for(db, claimed).items():
        rows[workflow_id]["queued_commands"] = queued
    step_rows = {w: kept for w in claimed if (kept := _step_rows.take(w, leases[w])) is not None}
    stats.add("step_rows_kept", sum(len(r) for r in step_rows.values()))
    step_rows.update(steps.load_for_workflows(db, [w for w in claimed if w not in step_rows], light=True))
    _read_jedi(db, {w: rows[w]["status"] for w in claimed}, step_rows)

    errors: dict[int, str] = {}
    definition_errors: dict[int, str] = {}  # workflows ended failed because their definition cannot run
    moved: set[int] = set()
    unsure: set[int] = set()  # workflows whose rows in memory may differ from the database after this batch
    plans: list[_Plan] = []
    for workflow_id in claimed:
        wf = rows[workflow_id]
        try:
            changed, repaired = _rare_paths(db, wf, step_rows, task_buffer, now, owner, stats, settings.max_submissions_per_workflow)
            if changed:
                moved.add(workflow_id)
                unsure.add(workflow_id)
            plan = _decide(db, wf, step_rows[workflow_id], junction_results, stats, now, settings.max_submissions_per_workflow - repaired)
        except StepDefinitionError as exc:  # the stored definition cannot run: trying again each pass cannot help
            reason = f"definition error: {exc}"
            plan = _definition_failure(wf, step_rows[workflow_id], reason)
            if plan is None:
                errors[workflow_id] = f"processor error at {now:%Y-%m-%d %H:%M:%S}: {exc}"
                continue
            stats.add("definition_failures")
            definition_errors[workflow_id] = reason
        except Exception as exc:  # one bad workflow must not stop the others: record it where the user looks
            errors[workflow_id] = f"processor error at {now:%Y-%m-%d %H:%M:%S}: {type(exc).__name__}: {exc}"
            log_failure(log, f"workflow {workflow_id}: {errors[workflow_id]}")
            continue
        if plan.deferred:  # the rest of its ready steps go in the next pass
            moved.add(workflow_id)
        if plan.history:
            plans.append(plan)
    fault_point("batch_decided")
    written = _write(db, plans, owner, now, stats, errors, log)
    unsure.update(p.workflow_id for p in plans if not p.mirrored)
    moved.update(p.workflow_id for p in written)
    _send_retries(db, written, task_buffer, owner, now, stats, errors)
    unsure |= _submit(db, written, task_buffer, owner, now, stats, errors, settings)
    _kill(task_buffer, written, errors)
    if settings.cached_steps:
        _step_rows.max_rows = settings.cached_steps
        created = {p.workflow_id: p.created for p in written}
        for workflow_id in claimed:
            # a claim that took over an expired lease may have run beside its holder: what it holds is not kept
            if workflow_id not in errors and workflow_id not in unsure and leases[workflow_id][1] is None \
                    and rows[workflow_id]["status"] in ACTIVE_WORKFLOW_STATUSES:  # (an ended one is not claimed again)
                _step_rows.keep(workflow_id, now, step_rows[workflow_id] + [dict(CREATED_DEFAULTS) | s for s in created.get(workflow_id, ())])
    if errors:
        stats.add("workflow_errors", len(errors))
        workflows.set_errors(db, sorted(errors.items()), now)
    written_ids = {p.workflow_id for p in written}
    if written_ids & set(definition_errors):
        workflows.set_errors(db, sorted((w, e) for w, e in definition_errors.items() if w in written_ids), now)
    fault_point("lease_release")
    # a workflow that moved may move again at once (a chain advances one cycle per link): due right after this
    # pass's clock, so the next pass takes it but this pass (``cycle_all``) does not; the others back off, but no
    # longer than until their first held step's retry is due
    workflows.release(db, sorted(moved), owner, now + datetime.timedelta(microseconds=1))
    # (never due again within this pass, even without back-off: the pass would claim it over and over)
    recheck = now + max(datetime.timedelta(seconds=settings.recheck_seconds), datetime.timedelta(microseconds=1))
    by_time: dict[datetime.datetime, list[int]] = {}
    for workflow_id in claimed:
        if workflow_id not in moved:
            due = [s["retry_after"] for s in step_rows[workflow_id] if step_retries.is_held(s) and s["retry_after"] > now]
            by_time.setdefault(min([recheck, *due]), []).append(workflow_id)
    for check_after, ids in sorted(by_time.items()):
        workflows.release(db, ids, owner, check_after)
    return f"advanced {len(claimed) - len(errors)} workflows ({len(written)} changed), {len(errors)} with errors"


def cycle_all(
    db: WfDatabase,
    stats: CycleStats,
    task_buffer,
    now: datetime.datetime | None = None,
    owner: str | None = None,
    settings: ProcessorSettings | None = None,
    junction_results=None,
    log=None,
) -> str:
    """Batch after batch until no workflow is due at ``now`` or ``settings.pass_seconds`` are spent.

    One batch per JEDI period would leave a workflow unvisited for (active workflows / batch size) periods; a pass
    visits every due workflow once, and a processor copy running beside this one simply takes other batches.
    ``settings.workers`` batches go at once, each on its own connection: while one worker waits for the database
    or for JEDI, another decides, so the pass uses the database server's CPU and the processor's together.
    """
    with collector_paused():
        return _pass(db, stats, task_buffer, now or utcnow(), owner or process_id(), settings or ProcessorSettings(), junction_results, log)


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector off for the pass; after it, what is still alive is frozen out of its view.

    A pass builds and drops hundreds of thousands of short-lived, acyclic rows and records (reference counting frees
    them), while the parsed definitions of every active workflow stay alive for the next pass: each full collection
    walked all of them again (about 40% of a creation pass, and 2.5 s after each pass over 10,000 workflows). So
    the collector is off during the pass, and at its end the survivors go to the permanent generation
    (``gc.freeze``), where collections no longer visit them; acyclic ones are still freed by reference counting.
    Every ``_THAW_SECONDS`` the permanent generation is thawed and fully collected once, after a pass, so cyclic
    garbage frozen there is not kept for ever.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if time.monotonic() - _thawed[0] > _THAW_SECONDS:
            gc.unfreeze()
            gc.collect()  # the one full collection per _THAW_SECONDS (2.5 s over 10,000 workflows' definitions)
            _thawed[0] = time.monotonic()
        gc.freeze()
        if was_enabled:
            gc.enable()


_THAW_SECONDS = 3600
_thawed = [time.monotonic()]


def _pass(db: WfDatabase, stats: CycleStats, task_buffer, now, owner: str, settings: ProcessorSettings, junction_results, log=None) -> str:
    started = time.monotonic()
    stats.add("workflows_woken", workflows.wake_on_task_changes(db, now))
    stats.add("task_retries_read", user_intents.queue_for_retried(db, now, stats))  # pbook retry of an ended step's task
    summaries: list[str] = []

    def work(worker_db: WfDatabase) -> None:
        while True:
            summary = cycle(worker_db, stats, task_buffer, now=now, owner=owner, settings=settings, junction_results=junction_results,
                            wake=False, log=log)
            if summary == NOTHING_DUE:
                return
            summaries.append(summary)
            stats.add("batches")
            if time.monotonic() - started > settings.pass_seconds:
                stats.add("passes_cut_short")
                return

    connections = [db, *db.siblings(settings.workers - 1)]
    if len(connections) == 1:
        work(db)
    else:
        failures: list[BaseException] = []

        def guarded(worker_db: WfDatabase) -> None:
            try:
                work(worker_db)
            except BaseException as exc:  # handed to the caller after the join (run_cycle records it)
                failures.append(exc)
                with contextlib.suppress(Exception):
                    worker_db.reconnect(attempts=1)

        threads = [threading.Thread(target=guarded, args=(c,), name=f"wf-processor-{i}") for i, c in enumerate(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
    return f"{len(summaries)} batches: " + "; ".join(summaries[-3:]) if summaries else NOTHING_DUE


def _read_jedi(db, workflow_status: dict[int, str], step_rows: dict[int, list[dict]]) -> None:
    """JEDI's view of the batch, in bulk: status and errorDialog of every task followed (active steps, steps of a
    cancelling workflow, steps held for a retry); whether a retry we asked for is still waiting in PRODSYS_COMM; and,
    for steps whose task just failed, how many automatic retries they already had."""
    followed = [
        s
        for workflow_id, wf_steps in step_rows.items()
        for s in wf_steps
        if s["jedi_task_id"] and (s["status"] in STEP_ACTIVE or workflow_status[workflow_id] == "cancelling" or step_retries.is_held(s))
    ]
    states = jedi_tasks.task_states(db, [int(s["jedi_task_id"]) for s in followed])
    for wf_steps in step_rows.values():
        for s in wf_steps:
            s["jedi_status"], s["jedi_dialog"] = states.get(int(s["jedi_task_id"]), (None, None)) if s["jedi_task_id"] else (None, None)
    asked = [s for s in followed if step_retries.retry_not_taken(s, "retry")]
    if asked:
        queued = jedi_tasks.queued_task_commands(db, [int(s["jedi_task_id"]) for s in asked])
        for s in asked:
            s["retry_pending"] = step_retries.retry_not_taken(s, queued.get(int(s["jedi_task_id"])))
    ending = [int(s["step_id"]) for s in followed if step_retries.is_ending(s)]
    if ending:
        made = steps.automatic_retries_made(db, ending)
        for s in followed:
            s["retries_made"] = made.get(int(s["step_id"]), 0)


def _rare_paths(db, wf: dict, step_rows: dict[int, list[dict]], task_buffer, now, owner, stats, cap: int) -> tuple[bool, int]:
    """Crash repair, user commands and repeated kills: rare, so done one workflow at a time with their own writes.

    Returns (whether anything changed, how many intents the crash repair finished). At most ``cap`` intents are
    repaired per pass (each costs a DEFT lookup and maybe a JEDI call); the others stay ``submitting`` for the next.
    """
    workflow_id = int(wf["workflow_id"])
    changed = False
    stranded = [s for s in step_rows[workflow_id] if s["status"] == "submitting"][:cap]
    if stranded:
        params = steps.task_params_of(db, [int(s["step_id"]) for s in stranded])
        for s in stranded:
            s["task_params"] = params.get(int(s["step_id"]))
            _finish_submission(db, wf, s, task_buffer, now, owner, stats, reconcile=True)
        stats.add("intents_repaired", len(stranded))
        changed = True
    user_intents.queue_for_claimed(db, wf, step_rows[workflow_id], now, stats)  # pbook kill/finish/retry of its tasks
    if wf.get("queued_commands") and execute_queued(db, wf, step_rows[workflow_id], wf["queued_commands"], task_buffer, now, owner, stats):
        changed = True
        step_rows[workflow_id] = steps.load_for_workflows(db, [workflow_id], light=True)[workflow_id]
        _read_jedi(db, {workflow_id: wf["status"]}, {workflow_id: step_rows[workflow_id]})
    if wf["status"] == "cancelling":
        alive = [int(s["jedi_task_id"]) for s in step_rows[workflow_id]
                 if s["status"] == "cancelled" and s["jedi_task_id"] and s.get("jedi_status") not in jedi_statuses.ENDED]
        if alive:
            stats.add("kills_repeated", len(alive))
            kill_tasks(task_buffer, wf, alive)
    return changed, len(stranded)


def _decide(db, wf: dict, step_rows: list[dict], junction_results, stats, now=None, submissions: int | None = None) -> _Plan:
    """Follow JEDI and run the engine for one workflow, in memory only; at most ``submissions`` new intents."""
    workflow_id = int(wf["workflow_id"])
    now = now or utcnow()
    plan = _Plan(wf)
    by_key = {}
    for s in step_rows:  # (one loop: it runs for every step of every workflow of every cycle)
        by_key[s["node_key"]] = s
        s["orig"] = status = s["status"]
        # 1. follow JEDI (a failed task gets its retry decision here, before the engine sees the step)
        task_status = s.get("jedi_status")
        if task_status is not None and status in STEP_ACTIVE and not s.get("retry_pending"):
            target = jedi_status_to_step_status.get(task_status)
            if target and target != status and STEP_LIFECYCLE.can(status, target):
                if step_retries.is_ending(s):
                    plan.move(s, target, step_retries.on_task_ended(plan, s, target, int(s.get("retries_made") or 0), now))
                    stats.add("retry_decisions")
                else:
                    plan.move(s, target, f"JEDI task {s['jedi_task_id']} is {task_status}")
                stats.add("step_transitions")
        # 1b. loops read their junction's results.json (held, with the reason, while it cannot be read)
        if junction_wait.needs_results(s):
            junction_wait.fetch(plan, s, junction_results)
    # 2. retries due, or dropped (once every step followed JEDI: a held step looks at its parents)
    for s in step_rows:
        if step_retries.is_held(s):
            step_retries.handle_held(plan, s, by_key, now)
    # 3. decide
    cached = _definitions.get(workflow_id)
    if cached is None or cached[0] != wf["creation_time"]:  # (a recreated database may reuse an id)
        if "definition" not in wf:
            wf.update(workflows.load_documents(db, workflow_id))
        cached = (wf["creation_time"], Workflow.from_dict(wf["definition"]), (wf.get("request") or {}).get("taskParams"))
        _definitions[workflow_id] = cached
    _, definition, templates = cached
    status = wf["status"]
    records = {  # (positional: this runs for every step of every workflow of every cycle)
        key: StepRecord(
            key, int(s["node_id"] or 0), _engine_status(s, status), int(s["iteration"] or 0), s["scatter_index"], s["jedi_task_id"],
            s.get("jedi_status"), [], s["results"], int(s.get("generation") or 0),
        )
        for key, s in by_key.items()
    }
    context = RunContext(
        out_ds=wf["out_ds"],
        user_name=wf["user_name"],
        vo=wf["vo"],
        workflow_id=workflow_id,
        workflow_status=status,
        task_templates=templates,
        prod_source_label=wf["prod_source_label"] or "user",
    )
    _plan_actions(plan, by_key, next_actions(definition, records, context), stats, submissions)
    return plan


def _engine_status(s: dict, workflow_status: str) -> str:
    """The status the engine decides on. A task DEFT accepted but TaskRefiner has not yet put in JEDI_Tasks cannot
    be named as ``parentTaskName`` (insertTaskParamsPanda looks the parent up there and refuses the child), so
    until then its step counts as still ``submitting`` and no child starts early on it. A step held for an
    automatic retry counts as ``retrying``: its children wait and the workflow does not end."""
    if s["status"] == "submitted" and s.get("jedi_status") is None:
        return "submitting"
    if junction_wait.needs_results(s):
        return "running"
    return step_retries.engine_status(s, workflow_status) or s["status"]


def _plan_actions(plan: _Plan, by_key: dict[str, dict], actions, stats, submissions: int | None = None) -> None:
    """The engine's actions as changes of the in-memory rows, each checked against the lifecycle tables.

    Only ``submissions`` SubmitStep actions become intents (None: all); a step beyond them stays ``ready``, and the
    engine submits it again in a later pass (nothing the engine decided after it depends on ``submitting``: both
    statuses are active and neither is an outcome)."""
    workflow_id = plan.workflow_id
    budget = submissions
    for action in actions:
        if isinstance(action, CreateStep):
            s = {"step_id": None, "workflow_id": workflow_id, "node_key": action.node_key, "node_id": action.node_id, "name": action.name,
                 "step_type": action.type, "status": "defined", "orig": None, "iteration": action.iteration,
                 "scatter_index": action.scatter_index, "parent_keys": list(action.parents), "task_name": action.task_name,
                 "jedi_task_id": None}
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
                raise StepDefinitionError(f"step {s['name']!r} has no task parameters: the workflow was stored without task "
                                          "templates (the pchain client's taskParams, or pandajedi-wf submit --templates)", s["name"])
            if budget is not None:
                if budget <= 0:
                    plan.deferred += 1
                    stats.add("submissions_deferred")
                    continue
                budget -= 1
            STEP_LIFECYCLE.check(s["status"], "submitting")
            s.update(task_name=action.task_name, task_params=action.task_params)
            plan.move(s, "submitting", f"submitting JEDI task {action.task_name}")
            stats.add("step_transitions")
        else:
            s = by_key[action.node_key]
            if isinstance(action, CancelStep) and s.get("jedi_task_id") and s["status"] in STEP_ACTIVE:
                plan.to_kill.append(int(s["jedi_task_id"]))
            target = action.status if isinstance(action, SetStepStatus) else {MakeReady: "ready", Skip: "skipped", CancelStep: "cancelled"}.get(type(action))
            if target is None or target == s["status"]:
                continue
            STEP_LIFECYCLE.check(s["status"], target)
            plan.move(s, target, action.reason)
            if target == "failed" and s.get("step_id"):  # the engine's reason (e.g. a scatter over the cap) where users look
                plan.dialogs.append((s, action.reason))
            stats.add("step_transitions")


def _write(db: WfDatabase, plans: list[_Plan], owner: str, now, stats, errors: dict[int, str], log=None) -> list[_Plan]:
    """All plans in one transaction; if that fails (a row moved under us), each plan in its own."""
    if not plans:
        return []
    try:
        with db.transaction():
            _write_plans(db, plans, owner, now)
        return plans
    except Exception:
        stats.add("batch_write_fallbacks")
    written = []
    for plan in plans:
        plan.written_alone = True
        try:
            with db.transaction():
                _write_plans(db, [plan], owner, now)
            written.append(plan)
        except Exception as exc:
            errors[plan.workflow_id] = f"changes not written, retried next cycle: {type(exc).__name__}: {exc}"
            log_failure(log, f"workflow {plan.workflow_id}: {errors[plan.workflow_id]}")
            for s in plan.created:
                s["step_id"] = None
    return written


def _write_plans(db: WfDatabase, plans: list[_Plan], owner: str, now) -> None:
    created = [s for p in plans for s in p.created]
    for s, step_id in zip(created, db.next_ids(steps.SEQUENCE, len(created))):
        s["step_id"] = step_id
    steps.insert_many(db, created, now)
    touched = [s for p in plans for s in p.touched.values() if s["orig"] is not None]
    # automatic retries as new tasks first: the engine may already have moved them on from 'defined'
    steps.reset_for_retry_grouped(db, step_retries.reset_changes(touched), now)
    base = step_retries.base_status
    intents = [(int(s["step_id"]), base(s), s["task_name"], s["task_params"]) for s in touched if s["status"] == "submitting"]
    moves = [steps.StatusChange(int(s["step_id"]), base(s), s["status"]) for s in touched if s["status"] not in ("submitting", base(s))]
    # the rows in memory stay what the database will hold (kept between passes, see step_cache)
    for s in created:
        s["attempt_nr"] = 1 if s["status"] == "submitting" else 0
    for s in touched:
        if s["status"] != base(s):
            s["prev_status"] = base(s)
            if s["status"] == "submitting":
                s["attempt_nr"] = int(s.get("attempt_nr") or 0) + 1
    steps.change_status_grouped(db, moves, now)
    steps.record_submit_intents(db, intents, now)
    steps.set_results_many(db, [(int(s["step_id"]), r) for p in plans for s, r in p.results], now)
    steps.set_error_dialogs(db, [(int(s["step_id"]), text) for p in plans for s, text in p.dialogs], now)
    steps.set_retry_marks(db, [m for p in plans for m in p.marks.values()], now)
    # JEDI_WF_DATA: the containers each submitted step will write, and the outcome of the steps that ended
    workflow_data.register_many(
        db,
        [(p.workflow_id, int(s["step_id"]), name, kind) for p in plans for s in p.submissions() for name, kind in output_containers(s.get("task_params"))],
        now,
    )
    workflow_data.follow_producers(db, [(int(s["workflow_id"]), int(s["step_id"]), s["status"]) for s in touched], now)
    lost = workflows.change_status_grouped(db, [(p.workflow_id, *p.workflow_change) for p in plans if p.workflow_change], now)
    if lost:
        raise RuntimeError(f"workflows {lost} changed status under the processor")
    transitions.record(
        db,
        [
            TransitionRecord(kind, p.workflow_id if kind == "workflow" else int(s["step_id"]), p.workflow_id, old, new, reason, owner, now)
            for p in plans
            for kind, s, old, new, reason in p.history
        ],
    )
    fault_point("write_transaction")


def _send_retries(db: WfDatabase, plans: list[_Plan], task_buffer, owner, now, stats, errors: dict[int, str]) -> None:
    """JEDI 'retry' for the automatic retries just committed (step ``retrying``). A refused command ends the step
    ``failed`` at once, with JEDI's answer: waiting would hold the workflow for a retry that will never run."""
    refused: list[tuple[_Plan, dict, str]] = []
    for plan in plans:
        for task_id, s in plan.jedi_retries:
            comment = f"pandajedi_wf workflow {plan.workflow_id}: automatic retry of step {s['name']} ({s.get('error_class')})"
            failures = send_task_command(task_buffer, plan.wf, task_id, "retry", comment)
            stats.add("jedi_retries")
            if failures:
                refused.append((plan, s, "; ".join(failures)))
    for plan, s, message in refused:
        try:
            with db.transaction():
                steps.change_status(db, [steps.StatusChange(int(s["step_id"]), "retrying", "failed", message)], now)
                transitions.record(db, [TransitionRecord("step", int(s["step_id"]), plan.workflow_id, "retrying", "failed",
                                                         f"automatic retry not taken: {message}", owner, now)])
            s["status"] = "failed"
            stats.add("step_transitions")
        except steps.StaleStepStatus:
            errors[plan.workflow_id] = f"step {s['name']}: {message}"


def _refusal_decisions(db, refused: list[tuple[dict, "_Plan", SubmissionOutcome]], now) -> dict[int, tuple[steps.RetryMark, str]]:
    """Retry decisions for steps JEDI refused to take: step id -> (mark, history reason)."""
    if not refused:
        return {}
    made = steps.automatic_retries_made(db, [int(s["step_id"]) for s, _, _ in refused])
    return {
        int(s["step_id"]): step_retries.on_submission_refused(plan, s, answer.message, answer.refusal_code, made.get(int(s["step_id"]), 0), now)
        for s, plan, answer in refused
    }


def _submit(db: WfDatabase, plans: list[_Plan], task_buffer, owner, now, stats, errors: dict[int, str], settings) -> set[int]:
    """Call JEDI for every committed intent; write the answers in bulk. Returns the workflows whose rows in memory
    may now differ from the database (a refusal's retry decision, a step another processor recorded)."""
    accepted: list[tuple[int, int]] = []
    refused: list[tuple[dict, _Plan, SubmissionOutcome]] = []
    history: list[TransitionRecord] = []
    for plan in plans:
        for s in plan.submissions()[: settings.max_submissions_per_workflow]:
            outcome = submit_task(task_buffer, s["task_params"], plan.wf["user_dn"] or plan.wf["user_name"])
            stats.add("jedi_submissions")
            if outcome.transient:
                errors[plan.workflow_id] = f"step {s['name']}: {outcome.message} (will try again)"
            elif outcome.accepted:
                fault_point("jedi_accepted")
                accepted.append((int(s["step_id"]), outcome.jedi_task_id))
                history.append(TransitionRecord("step", int(s["step_id"]), plan.workflow_id, "submitting", "submitted", outcome.message, owner, now))
                s.update(status="submitted", prev_status="submitting", jedi_task_id=outcome.jedi_task_id)
            else:
                refused.append((s, plan, outcome))
    unsure = {plan.workflow_id for _, plan, _ in refused}
    decisions = _refusal_decisions(db, refused, now)
    for s, plan, _ in refused:
        reason = decisions[int(s["step_id"])][1]
        history.append(TransitionRecord("step", int(s["step_id"]), plan.workflow_id, "submitting", "failed", reason, owner, now))
        s["status"] = "failed"
    if not history:
        return unsure
    try:
        with db.transaction():
            steps.record_submitted_many(db, accepted, now)
            for s, plan, answer in refused:
                steps.change_status(db, [steps.StatusChange(int(s["step_id"]), "submitting", "failed", answer.message)], now)
            steps.set_retry_marks(db, [mark for mark, _ in decisions.values()], now)
            transitions.record(db, history)
        stats.add("step_transitions", len(history))
        return unsure
    except steps.StaleStepStatus:
        stats.add("batch_write_fallbacks")
    unsure.update(record.workflow_id for record in history)
    # some step was recorded by another processor meanwhile (possible only once a lease expired): write the rest
    # one by one; a step already moved on is left as the other processor wrote it
    outcome = {int(s["step_id"]): ("failed", answer.message) for s, _, answer in refused} | {i: ("submitted", t) for i, t in accepted}
    for record in history:
        target, value = outcome[record.entity_id]
        try:
            with db.transaction():
                if target == "submitted":
                    steps.record_submitted(db, record.entity_id, value, now)
                else:
                    steps.change_status(db, [steps.StatusChange(record.entity_id, "submitting", "failed", value)], now)
                    steps.set_retry_marks(db, [decisions[record.entity_id][0]], now)
                transitions.record(db, [record])
            stats.add("step_transitions")
        except steps.StaleStepStatus:
            stats.add("submissions_recorded_elsewhere")
    return unsure


def _definition_failure(wf: dict, step_rows: list[dict], reason: str) -> _Plan | None:
    """The workflow ends ``failed`` with the definition error as its reason: steps not ended are cancelled and their
    live tasks killed, as for a kill. None where the workflow's state has no way to ``failed`` (paused: the error is
    recorded and the workflow waits for its user)."""
    if not WORKFLOW_LIFECYCLE.can(wf["status"], "failed"):
        return None
    plan = _Plan(wf)
    for s in step_rows:  # decisions made before the error are dropped: the rows go back to what the database holds
        s["status"] = s.get("orig", s["status"])
        if s["status"] not in STEP_ENDED and STEP_LIFECYCLE.can(s["status"], "cancelled"):
            if s["jedi_task_id"] and s.get("jedi_status") not in jedi_statuses.ENDED:
                plan.to_kill.append(int(s["jedi_task_id"]))
            plan.move(s, "cancelled", reason)
    plan.move_workflow("failed", reason)
    return plan


def _kill(task_buffer, plans: list[_Plan], errors: dict[int, str]) -> None:
    """Cancelled steps whose JEDI tasks still live: kill them now that the cancellation is committed."""
    for plan in plans:
        if plan.to_kill:
            failures = kill_tasks(task_buffer, plan.wf, plan.to_kill)
            if failures:
                errors[plan.workflow_id] = "; ".join(failures)


def _finish_submission(db, wf, s, task_buffer, now, owner, stats, reconcile: bool) -> None:
    """Call JEDI for a step whose intent is recorded (or adopt the task a previous attempt already created)."""
    workflow_id = int(wf["workflow_id"])
    task_id = None
    if reconcile:  # DEFT holds the name upstream wrote (the cleaned DN), not our user_name
        user = deft_user_name(wf["user_dn"] or wf["user_name"])
        task_id = jedi_tasks.find_submitted_task(db, wf["vo"], wf["prod_source_label"] or "user", user, s["task_name"])
        message = f"adopted JEDI task {task_id} found in DEFT after an interrupted submission" if task_id else None
    if task_id is None:
        outcome = submit_task(task_buffer, s["task_params"], wf["user_dn"] or wf["user_name"])
        stats.add("jedi_submissions")
        if outcome.transient:
            workflows.set_error(db, workflow_id, f"step {s['name']}: {outcome.message} (will try again)", now)
            return
        if not outcome.accepted:
            ((mark, reason),) = _refusal_decisions(db, [(s, _Plan(wf), outcome)], now).values()
            with db.transaction():
                steps.change_status(db, [steps.StatusChange(s["step_id"], "submitting", "failed", outcome.message)], now)
                steps.set_retry_marks(db, [mark], now)
                transitions.record(db, [TransitionRecord("step", s["step_id"], workflow_id, "submitting", "failed", reason, owner, now)])
            s["status"] = "failed"
            stats.add("step_transitions")
            return
        task_id, message = outcome.jedi_task_id, outcome.message
        fault_point("jedi_accepted")
    with db.transaction():
        steps.record_submitted(db, s["step_id"], task_id, now)
        transitions.record(db, [TransitionRecord("step", s["step_id"], workflow_id, "submitting", "submitted", message, owner, now)])
    s.update(status="submitted", jedi_task_id=task_id)
    stats.add("step_transitions")
