"""The processor object: what it keeps between passes, one batch (``cycle``), and a pass of batches (``run_pass``).

Order inside one batch, chosen for crash safety:
 1. JEDI task statuses are read in bulk for the whole claimed batch and mapped onto steps (``reading``);
 2. steps left in ``submitting`` by a crash are reconciled with DEFT (adopt the task or submit again), user commands
    run (``repairs``);
 3. the pure engine decides each workflow (``decide``); its actions become a ``Plan``; all plans of the batch are
    written in one transaction (``writer``), where a submission is only an *intent* (step ``submitting`` with its
    exact task parameters);
 4. after that commit JEDI is called, and its answers are recorded (``outcomes``). A crash between 3 and 4 is
    repaired by 2.
At most ``max_submissions_per_workflow`` JEDI calls per workflow and pass, repairs (2) and new intents (3) together:
a ready step beyond the cap is left ready (no intent) for the next pass, which comes at once.
"""

from __future__ import annotations

import datetime
import time

from pandajedi_wf.core.clock import utcnow
from pandajedi_wf.taskbuffer import commands, jedi_tasks, workflows
from pandajedi_wf.taskbuffer.connection import WfDatabase
from pandajedi_wf.workflow.errors import StepDefinitionError
from pandajedi_wf.workflow.lifecycles import WORKFLOW_ENDED, WORKFLOW_PROCESSED

from ..common import CycleStats, log_failure, process_id
from . import placement, prestages, priorities, repairs, retries, user_intents, writer
from .commands import kill_tasks
from .decide import Definitions, decide
from .faults import fault_point
from .plan import Plan, definition_failure
from .quiet import Quiet, QuietBook, note_of
from .reading import load_rows, read_jedi
from .settings import ProcessorSettings
from .step_cache import StepRowCache
from .task_changes import KeptChanges
from .submission import send_retries, submit_intents
from .workers import collector_paused, in_workers

ACTIVE_WORKFLOW_STATUSES = WORKFLOW_PROCESSED
NOTHING_DUE = "no workflow due"


class Processor:
    """What one JEDI process keeps between passes: parsed definitions, the step rows it alone wrote, notes of the
    workflows whose last decision changed nothing, and how far it has read JEDI's task changes."""

    def __init__(self):
        self.definitions = Definitions()
        self.step_rows = StepRowCache()
        self.quiet = QuietBook()
        self.wake_since: datetime.datetime | None = None
        self.seen_changes = KeptChanges()  # the changes looked at, in the overlap window

    def forget(self) -> None:
        self.definitions.clear()
        self.step_rows.clear()
        self.quiet.clear()
        self.wake_since = None
        self.seen_changes = KeptChanges()

    def wake(self, db: WfDatabase, now: datetime.datetime, settings: ProcessorSettings, stats: CycleStats) -> None:
        """Make due the backing-off workflows whose tasks changed since JEDI's changes were last read here.

        The first wake of a process reads back ``recheck_seconds`` (an older change's workflow is due by its back-off
        anyway); later ones from the newest change seen, less ``wake_overlap_seconds`` for JEDI transactions that
        commit after a later one. A change (task, realModificationTime) already looked at in that overlap is not
        looked at again, unless its workflow was held by a processor then; and the overlap is only read again when
        an index count says a change committed late has appeared in it."""
        overlap = datetime.timedelta(seconds=settings.wake_overlap_seconds)
        since = self.wake_since or now - datetime.timedelta(seconds=settings.recheck_seconds) - overlap
        seen = self.seen_changes
        seen.drop_before(since)
        fresh, window = self._changes_since(db, since)
        woken, held = workflows.wake_for_tasks(db, now, fresh) if fresh else (0, set())
        if window is not None:  # the whole window was read again
            seen.replace({task_id: change for task_id, change in window.items() if task_id not in held})
        else:
            seen.add_later({task_id: change for task_id, change in fresh.items() if task_id not in held})
        seen.forget(held)  # its holder may have read JEDI before the change: looked at again next time
        newest = max([change.changed_at for change in fresh.values()] + ([seen.newest] if len(seen) else []), default=None)
        if newest is not None:
            self.wake_since = max(since, newest - overlap)
        stats.add("workflows_woken", woken)
        stats.add("task_changes_read", len(fresh))

    def _changes_since(self, db: WfDatabase, since: datetime.datetime) -> tuple[dict[int, workflows.TaskChange], dict | None]:
        """(changes not looked at yet, the whole window when it had to be read again, else None). Read: the changes
        after the newest one kept, and an index count of the window up to it, which differs from what is kept when a
        change committed late (then the whole window is read again). Nothing new costs the two index reads."""
        seen = self.seen_changes
        if not len(seen):
            window = workflows.changed_tasks(db, since)
            return window, window
        newest = seen.newest
        newer = workflows.changed_tasks(db, newest, after=True)
        moved = sum(1 for task_id in newer if seen.get(task_id) is not None)  # kept ones whose task changed again
        if workflows.count_changed(db, since, newest) != len(seen) - moved:
            window = workflows.changed_tasks(db, since)
            return {task_id: change for task_id, change in window.items() if seen.get(task_id) != change}, window
        return newer, None

    def cycle(self, db: WfDatabase, stats: CycleStats, task_buffer, now: datetime.datetime | None = None, owner: str | None = None,
              settings: ProcessorSettings | None = None, junction_results=None, wake: bool = True, log=None) -> str:
        """One batch of due workflows; returns a one-line summary for the heartbeat.

        Reads are one statement per kind per 500 workflows; decisions are made in memory; all writes of the batch go
        in one transaction of grouped statements (falling back to one transaction per workflow if a row moved under
        us); then JEDI is called for each step whose intent was committed, and the answers are written in bulk.
        """
        settings = settings or ProcessorSettings()
        now = now or utcnow()
        owner = owner or process_id()
        if wake:
            self.wake(db, now, settings, stats)
        with db.transaction():  # the due rows stay locked while the quiet ones are told apart
            leases = workflows.lock_due(db, ACTIVE_WORKFLOW_STATUSES, now, settings.lease_seconds, settings.batch_size)
            queued = commands.queued_for(db, list(leases))
            quiet, states_read = self._still_quiet(db, [w for w in leases if w not in queued], leases, now)
            # nothing changed since a decision that changed nothing: not decided again, not even leased (lock_time
            # stays that decision's claim, which its note and its kept rows are keyed on)
            workflows.back_off(db, _back_off_times(quiet, now, settings))
            claimed = [w for w in leases if w not in quiet]
            workflows.lease(db, claimed, owner, now)
        claimed_all = list(leases)
        stats.add("workflows_claimed", len(claimed_all))
        stats.add("decisions_skipped", len(quiet))
        if not claimed_all:
            return NOTHING_DUE
        for workflow_id, note in quiet.items():
            self.quiet.keep(workflow_id, note)
        rows = workflows.load(db, claimed, skip_definition=self.definitions.known(claimed))
        for workflow_id, commands_queued in queued.items():
            rows[workflow_id]["queued_commands"] = commands_queued
        step_rows = {w: kept for w in claimed if (kept := self.step_rows.take(w, leases[w])) is not None}
        stats.add("step_rows_kept", sum(len(r) for r in step_rows.values()))
        step_rows.update(load_rows(db, [w for w in claimed if w not in step_rows]))
        read_jedi(db, {w: rows[w]["status"] for w in claimed}, step_rows, states_read)

        errors: dict[int, str] = {}
        definition_errors: dict[int, str] = {}  # workflows ended failed because their definition cannot run
        moved: set[int] = set()
        unsure: set[int] = set()  # workflows whose rows in memory may differ from the database after this batch
        plans: list[Plan] = []
        for workflow_id in claimed:
            wf = rows[workflow_id]
            try:
                changed, repaired = repairs.run(db, wf, step_rows, task_buffer, now, owner, stats, settings.max_submissions_per_workflow, errors)
                if changed:
                    moved.add(workflow_id)
                    unsure.add(workflow_id)
                plan = decide(db, wf, step_rows[workflow_id], self.definitions, junction_results, stats, now,
                              settings.max_submissions_per_workflow - repaired)
            except StepDefinitionError as exc:  # the stored definition cannot run: trying again each pass cannot help
                reason = f"definition error: {exc}"
                plan = definition_failure(wf, step_rows[workflow_id], reason)
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
        priorities.apply(db, plans, step_rows, now, stats)
        placement.apply(db, plans, step_rows, now, stats)  # includedSite from the workflow's data and the sites' load
        prestages.plan_starts(db, plans, self.definitions, now, stats, settings, log)  # before the plans: a replayed start finds them
        fault_point("batch_decided")
        written = writer.write(db, plans, owner, now, stats, errors, log)
        unsure.update(p.workflow_id for p in plans if not p.mirrored)
        moved.update(p.workflow_id for p in written)
        unsure |= send_retries(db, written, task_buffer, owner, now, stats)
        unsure |= submit_intents(db, written, task_buffer, owner, now, stats, errors, settings.max_submissions_per_workflow)
        for plan in written:  # cancelled steps whose tasks still live: killed now that the cancellation is committed
            if plan.to_kill and (failures := kill_tasks(task_buffer, plan.wf, plan.to_kill)):
                errors[plan.workflow_id] = "; ".join(failures)
        decided_changes = {p.workflow_id for p in plans} | moved
        created = {p.workflow_id: p.created for p in written}
        if settings.cached_steps:
            self.step_rows.max_rows = settings.cached_steps
        stale_before = now - datetime.timedelta(seconds=2 * max(settings.recheck_seconds, settings.lease_seconds))
        for workflow_id in claimed:
            status = rows[workflow_id]["status"]
            if status not in ACTIVE_WORKFLOW_STATUSES:  # ended: not claimed again without a command
                self.definitions.forget(workflow_id)
                continue
            # a claim that took over an expired lease may have run beside its holder: what it holds is not kept
            if workflow_id in errors or workflow_id in unsure or leases[workflow_id][1] is not None:
                continue
            if workflow_id not in decided_changes and (note := note_of(status, step_rows[workflow_id], now)):
                self.quiet.keep(workflow_id, note)
            if settings.cached_steps:
                self.step_rows.keep(workflow_id, now, step_rows[workflow_id] + created.get(workflow_id, []), stale_before)
        if errors:
            stats.add("workflow_errors", len(errors))
            workflows.set_errors(db, sorted(errors.items()), now)
        written_ids = {p.workflow_id for p in written}
        if written_ids & set(definition_errors):
            workflows.set_errors(db, sorted((w, e) for w, e in definition_errors.items() if w in written_ids), now)
        fault_point("lease_release")
        # one seen ended is released due at once too: the release reads the row's status, which another processor may
        # have made running again meanwhile (out of the queue only if it really ended)
        ended = {w for w in claimed if rows[w]["status"] in WORKFLOW_ENDED}
        _release(db, claimed, moved | ended, step_rows, owner, now, settings)
        return f"advanced {len(claimed_all) - len(errors)} workflows ({len(written)} changed), {len(errors)} with errors"

    def _still_quiet(self, db: WfDatabase, candidates: list[int], leases, now) -> tuple[dict[int, Quiet], dict]:
        """Of the claimed workflows without a queued command, those whose last decision changed nothing and for
        which nothing has changed since: no retry due, every followed task in the status it had (one read for the
        batch). Their rows are not even read. Returns them and the task states read (the others' JEDI view)."""
        notes = {w: note for w in candidates if (note := self.quiet.take(w, leases[w])) is not None}
        if not notes:
            return {}, {}
        states = jedi_tasks.task_states(db, sorted({task_id for note in notes.values() for task_id, _ in note.tasks}))
        return {w: note for w, note in notes.items() if note.unchanged(states, now)}, states

    def run_pass(self, db: WfDatabase, stats: CycleStats, task_buffer, now: datetime.datetime | None = None, owner: str | None = None,
                 settings: ProcessorSettings | None = None, junction_results=None, log=None) -> str:
        """Batch after batch until no workflow is due at ``now`` or ``settings.pass_seconds`` are spent.

        One batch per JEDI period would leave a workflow unvisited for (active workflows / batch size) periods; a pass
        visits every due workflow once, and a processor copy running beside this one simply takes other batches.
        ``settings.workers`` batches go at once, each on its own connection: while one worker waits for the database
        or for JEDI, another decides, so the pass uses the database server's CPU and the processor's together.
        """
        now, owner, settings = now or utcnow(), owner or process_id(), settings or ProcessorSettings()
        with collector_paused():
            started = time.monotonic()
            self.wake(db, now, settings, stats)
            stats.add("task_retries_read", user_intents.queue_for_retried(db, now, stats))  # pbook retry of an ended step's task
            summaries: list[str] = []

            def work(worker_db: WfDatabase) -> None:
                while True:
                    summary = self.cycle(worker_db, stats, task_buffer, now=now, owner=owner, settings=settings,
                                         junction_results=junction_results, wake=False, log=log)
                    if summary == NOTHING_DUE:
                        return
                    summaries.append(summary)
                    stats.add("batches")
                    if time.monotonic() - started > settings.pass_seconds:
                        stats.add("passes_cut_short")
                        return

            in_workers(db, settings.workers, work)
            return f"{len(summaries)} batches: " + "; ".join(summaries[-3:]) if summaries else NOTHING_DUE


def _recheck(now: datetime.datetime, settings: ProcessorSettings) -> datetime.datetime:
    """When a workflow in which nothing moved is due again (never within this pass, even without back-off: the pass
    would claim it over and over)."""
    return now + max(datetime.timedelta(seconds=settings.recheck_seconds), datetime.timedelta(microseconds=1))


def _back_off_times(quiet: dict[int, Quiet], now, settings: ProcessorSettings) -> dict[datetime.datetime, list[int]]:
    """Quiet workflows back off like any in which nothing moved: until the recheck, or their first held retry."""
    recheck = _recheck(now, settings)
    by_time: dict[datetime.datetime, list[int]] = {}
    for workflow_id, note in quiet.items():
        by_time.setdefault(min(recheck, note.due or recheck), []).append(workflow_id)
    return by_time


def _release(db: WfDatabase, claimed: list[int], moved: set[int], step_rows, owner: str, now, settings: ProcessorSettings) -> None:
    """A workflow that moved may move again at once (a chain advances one pass per link): due right after this
    pass's clock, so the next pass takes it but this pass (``run_pass``) does not; the others back off, but no
    longer than until their first held step's retry is due. One whose row says it ended leaves the queue whatever
    time it is given (``workflows.release`` reads the row's status itself)."""
    workflows.release(db, sorted(moved), owner, now + datetime.timedelta(microseconds=1))
    recheck = _recheck(now, settings)
    by_time: dict[datetime.datetime, list[int]] = {}
    for workflow_id in claimed:
        if workflow_id not in moved:
            due = [s.retry_after for s in step_rows[workflow_id] if retries.is_held(s) and s.retry_after > now]
            by_time.setdefault(min([recheck, *due]), []).append(workflow_id)
    for check_after, ids in sorted(by_time.items()):
        workflows.release(db, ids, owner, check_after)
