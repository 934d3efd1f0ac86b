"""The data carousel cycle: intake -> retire -> admission and rule following (``carousel.cycle.run_cycle``) -> release.

- intake: JEDI tasks waiting for tape inputs (``taskbuffer.carousel_jedi``) get one ACTIVE request per dataset,
  shared by all tasks needing it (JEDI_DC_RELATIONS); sizes and candidate replicas come from one bulk
  ``ddm.list_tape_replicas`` call.  A concurrent insert for the same dataset loses on the unique index and is
  related to the winner's request instead.
- run_cycle: the core decides; ``DbBook`` writes every status change guarded and with its history.
- release: files that arrived move ``staging -> pending`` through upstream's ``updateInputFilesStaged_JEDI`` (per
  file, as they land, so jobs start before the whole dataset is on disk); tasks still in ``staging`` are resumed
  (``staging -> staged``) with ``sendCommandTaskPanda(..., "resume")`` as soon as their rule exists, as upstream's
  watchdog does, so TaskRefiner/ContentsFeeder register their files (as ``staging``) while the recall runs.
- pre-stages (``carousel_prestages``): a workflow's planned pre-stages become requests (admitted behind the tasks'
  ones) and are released when the workflow ends; a request no task and no unreleased pre-stage wants is retired.
- retire, before admission: a done request whose tasks all ended has its rule deleted at once (the disk buffer is
  freed now, and used by admission in this same cycle; the rule lifetime is only the backstop if the delete fails); a
  queued/staging request whose tasks all ended is cancelled (and its rule deleted), so it is not admitted.
- failed requests: the tasks still waiting on a request that failed for good are ended (``end_tasks_of_failed``).
An exception from the DDM adapter is contained to the dataset it concerns (recorded, the cycle goes on).

Concurrency: admission is a global decision, so the whole cycle runs under upstream's JEDI process lock
(``lockProcess_JEDI``, component ``JediWfCarousel.admit``, one key for all VOs, 10 min lifetime, released at the
end of the cycle); a process that does not get it skips the cycle.  Guarded UPDATEs remain as a second line.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel import task_routing
from pandajedi_wf.carousel.config import CarouselConfig, CarouselConfigError, load_config
from pandajedi_wf.carousel.rule_errors import PERMANENT, error_class
from pandajedi_wf.carousel.cycle import RequestRecord, retire, run_cycle
from .carousel_book import DbBook, active_requests
from pandajedi_wf.carousel.state import StagingRequest
from pandajedi_wf.core import jedi_statuses
from pandajedi_wf.ddm.adapter import DDMError, Replica, StagingDDM, canonical_dataset, failure_text, spellings, tape_replicas_or_note
from pandajedi_wf.taskbuffer import carousel_jedi, jedi_tasks, staging_prestages, staging_relations, staging_requests, tape_stats
from pandajedi_wf.taskbuffer.carousel_jedi import TaskNeed
from pandajedi_wf.taskbuffer.connection import WfDatabase

from . import carousel_prestages
from .common import CycleStats, process_id
from .jedi_calls import release_staged_files, set_error_dialog, task_command, task_command_answer

ACTOR = "pandajedi_wf.data_carousel"
LOCK_COMPONENT = "JediWfCarousel.admit"  # our own JEDI_Process_Lock component, never upstream's AtlasDataCarouselDog.*
LOCK_MINUTES = 10
RESUME_DN = "pandajedi_wf data carousel"


@dataclass
class _Notes:
    """What a cycle did beyond the core's report, for the heartbeat message."""

    errors: list[str] = field(default_factory=list)


def carousel_config(db: WfDatabase, vo: str | None, config: CarouselConfig | Mapping | str | None = None) -> CarouselConfig:
    """The validated config: the one given, else the CONFIG row (app pandajedi_wf, component data_carousel, key
    config); CarouselConfigError names the bad key."""
    if isinstance(config, CarouselConfig):
        return config
    if config is None:
        config = carousel_jedi.read_config_document(db, vo)
    return load_config(config)


# activities each DDM client has accepted (checked once per process and activity, at the first cycle)
_ACCEPTED_ACTIVITIES: "weakref.WeakKeyDictionary[StagingDDM, set[tuple[str, str]]]" = weakref.WeakKeyDictionary()


def check_rule_activity(ddm: StagingDDM, config: CarouselConfig, notes: _Notes) -> None:
    """The configured ``rule_activity`` must be one DDM's schema accepts, or every rule would be refused for good:
    asked once (``validate_activity``, which creates nothing) before the first cycle that would create rules. A
    refusal is a configuration error (CarouselConfigError, recorded by ``daemons.common.run_cycle``; no cycle runs
    until it is fixed); DDM unreachable only defers the check to the next cycle."""
    key = (config.rule_activity, config.default_destination)
    accepted = _ACCEPTED_ACTIVITIES.setdefault(ddm, set())
    if key in accepted:
        return
    try:
        ddm.validate_activity(config.rule_activity, config.default_destination)
    except DDMError as exc:
        if error_class(exc.kind) == PERMANENT:
            raise CarouselConfigError(f"carousel config: 'rule_activity' {config.rule_activity!r} is refused by DDM ({exc.kind}): {exc}") from exc
        notes.errors.append(f"rule_activity not checked yet: {exc}")
        return
    accepted.add(key)


# ---- intake -------------------------------------------------------------------------------------------------


def _scope(dataset: str) -> str | None:
    return dataset.split(":", 1)[0] if ":" in dataset else None


def _unavailable_request(dataset: str, tasks: list[TaskNeed], config: CarouselConfig, now: float) -> StagingRequest:
    lead = max(tasks, key=lambda t: (t.priority, -t.jedi_task_id))
    return StagingRequest(0, dataset, 0, 0, lead.user, lead.gshare, config.default_destination, task_priority=lead.priority, created_at=now)


def _unavailable_reason(dataset: str, replicas: list[Replica]) -> str:
    if not replicas:
        return "DDM knows no replica of the dataset (unknown to DDM, or nothing registered): nothing to recall from"
    seen = ", ".join(f"{r.rse} {r.n_files}/{r.total_files} files" for r in replicas)
    return f"no complete tape or disk replica in DDM ({seen}): nothing to recall from"


def request_for(dataset: str, tasks: list[TaskNeed], replicas: list[Replica], config: CarouselConfig, now: float) -> StagingRequest | None:
    """A new request from DDM's replicas: pin a complete disk replica if any, else recall from a complete tape one."""
    complete = [r for r in replicas if r.complete and r.total_files > 0]
    if not complete:
        return None
    disks = sorted(r.rse for r in complete if not r.is_tape)
    tapes = tuple(sorted(r.rse for r in complete if r.is_tape))
    sized = max(complete, key=lambda r: (r.total_files, r.n_bytes))
    lead = max(tasks, key=lambda t: (t.priority, -t.jedi_task_id))
    return StagingRequest(
        request_id=0,
        dataset=dataset,
        n_files=sized.total_files,
        n_bytes=sized.n_bytes,
        user=lead.user,
        gshare=lead.gshare,
        destination=disks[0] if disks else config.default_destination,
        sources=tapes,
        on_disk=bool(disks),
        task_priority=lead.priority,
        created_at=now,
    )


def intake(db: WfDatabase, ddm: StagingDDM, config: CarouselConfig, now: float, stats: CycleStats, notes: _Notes) -> None:
    """One request per dataset whatever the tasks call it: 'scope:name' and 'name' are the same dataset, so requests
    are keyed by the canonical 'scope:name' (``ddm.adapter.canonical_dataset``); JEDI calls keep each task's own
    spelling (``release`` looks the task's files up under both)."""
    needs = _containers_expanded(ddm, carousel_jedi.tasks_needing_staging(db), notes)
    if not needs:
        return
    # a (task, dataset) already served by an active request, or whose request failed for good (the task was told
    # in its errorDialog), is not requested again: a failed recall would otherwise be retried every cycle; unless the
    # task was retried (JEDI's retry) since it was told: then it waits for the dataset again (task_routing.staged_again)
    needing = [n.jedi_task_id for n in needs]
    related = {(tid, canonical_dataset(ds)) for tid, ds in staging_relations.datasets_of_tasks(db, needing, staging_requests.ACTIVE)}
    failed = [replace(f, dataset=canonical_dataset(f.dataset)) for f in carousel_jedi.failed_stagings(db, needing)]
    again = task_routing.staged_again(failed, carousel_jedi.attempt_start_times(db, sorted({f.jedi_task_id for f in failed})) if failed else {})
    related |= {(f.jedi_task_id, f.dataset) for f in failed} - set(again)
    wanted: dict[str, list[TaskNeed]] = {}
    for need in needs:
        for dataset in dict.fromkeys(canonical_dataset(d) for d in need.datasets):
            if (need.jedi_task_id, dataset) not in related:
                wanted.setdefault(dataset, []).append(need)
    if not wanted:
        return
    active = active_requests(db, wanted)
    new = sorted(d for d in wanted if d not in active)
    replicas = tape_replicas_or_note(ddm, new, notes.errors)  # on a failure the tasks stay waiting
    for dataset, tasks in sorted(wanted.items()):
        rec = active.get(dataset)
        task_ids = sorted({t.jedi_task_id for t in tasks})
        if rec is None:
            if dataset not in replicas:
                continue
            request = request_for(dataset, tasks, replicas[dataset], config, now)
            unavailable = request is None
            if unavailable:  # nothing to recall from: a request that fails at once, so its tasks are told why
                request = _unavailable_request(dataset, tasks, config, now)
            previous = [again[(tid, dataset)] for tid in task_ids if (tid, dataset) in again]
            request_id = staging_requests.insert(db, request, _scope(dataset), now, ACTOR, reason=_again_reason(previous))
            if request_id is not None and unavailable:
                staging_relations.add(db, request_id, task_ids, now)
                reason = _unavailable_reason(dataset, replicas[dataset])
                DbBook(db, now, ACTOR).save(staging_requests.get(db, request_id), lc.FAILED, error=reason, done_at=now)
                notes.errors.append(f"{dataset}: {reason}")
                stats.add("datasets_unavailable")
                continue
            if request_id is None:  # another process inserted it between our read and our insert
                rec = active_requests(db, [dataset]).get(dataset)
                if rec is None:
                    continue
                stats.add("requests_raced")
            else:
                stats.add("requests_created")
        if rec is not None:
            request_id = rec.request.request_id
            staging_requests.taken_by_tasks(db, request_id, max(t.priority for t in tasks), now)  # (a workflow's pre-stage too)
        stats.add("relations_added", staging_relations.add(db, request_id, task_ids, now))


def _containers_expanded(ddm: StagingDDM, needs: list[TaskNeed], notes: _Notes) -> list[TaskNeed]:
    """A parked task names its input in its parameters, containers included: each container is replaced by its
    datasets (a recall rule and its replicas are per dataset); an empty one stays as named (its request fails with
    DDM's answer and the task is told).  DDM failing leaves the parked tasks out of this cycle (a container taken for a
    dataset would find no replica and fail the task)."""
    names = sorted({name for need in needs if need.parked for name in need.datasets})
    if not names:
        return needs
    try:
        inside = ddm.expand_containers(names)
    except Exception as exc:  # the parked tasks are taken in again next cycle
        notes.errors.append(f"expand_containers: {failure_text(exc)}")
        return [need for need in needs if not need.parked]
    return [
        replace(need, datasets=tuple(dict.fromkeys(d for name in need.datasets for d in (inside.get(name) or [name])))) if need.parked else need
        for need in needs
    ]


def _again_reason(previous: list[task_routing.FailedStaging]) -> str | None:
    """The new request's first history line when retried tasks ask again for a dataset whose request failed."""
    if not previous:
        return None
    last = max(previous, key=lambda f: f.told_at or 0.0)
    tasks = ", ".join(str(t) for t in sorted({f.jedi_task_id for f in previous}))
    return f"retried task(s) {tasks} need the dataset again; request {last.request_id} failed: {last.error or 'no reason recorded'}"


# ---- release and retire -------------------------------------------------------------------------------------


def _task_statuses(db: WfDatabase, relations: Mapping[int, list[staging_relations.Relation]]) -> dict[int, str]:
    return jedi_tasks.task_statuses(db, [r.jedi_task_id for rels in relations.values() for r in rels])


def _alive(tid: int, statuses: Mapping[int, str]) -> bool:
    return tid in statuses and statuses[tid] not in jedi_statuses.ENDED


def _resume(task_buffer: Any, tid: int, stats: CycleStats, notes: _Notes) -> None:
    refused = task_command(task_buffer, tid, RESUME_DN, "resume", "pandajedi_wf data carousel: staging rule exists")
    if refused is None:
        stats.add("tasks_resumed")
    else:
        notes.errors.append(refused)


def release(db: WfDatabase, ddm: StagingDDM, task_buffer: Any, now: float, stats: CycleStats, notes: _Notes) -> None:
    """Resume waiting tasks and hand arrived files to them; let a task go once it has the whole dataset."""
    records = [r for r in staging_requests.records(db, [lc.STAGING, lc.SWITCHING, lc.DONE]) if r.rule_id]
    relations = staging_relations.of_requests(db, [r.request.request_id for r in records])
    statuses = _task_statuses(db, relations)
    for rec in records:
        tasks = [r.jedi_task_id for r in relations.get(rec.request.request_id, []) if not r.released and _alive(r.jedi_task_id, statuses)]
        for tid in tasks:
            if statuses[tid] == "staging":
                _resume(task_buffer, tid, stats, notes)
                statuses[tid] = "staged"
        if not tasks or rec.files_done == 0:
            continue
        waiting: dict[int, dict[str, int]] = {}
        for spelling in spellings(rec.request.dataset):  # each task names the dataset its own way
            for tid, files in carousel_jedi.staging_files(db, tasks, spelling).items():
                waiting.setdefault(tid, {}).update(files)
        if waiting:
            try:
                arrived = {f.name.split(":")[-1] for f in ddm.list_staged_files(rec.rule_id)}  # file names without scope
            except Exception as exc:  # contained to this request
                notes.errors.append(f"{rec.request.dataset}: {failure_text(exc)}")
                continue
            for tid, files in sorted(waiting.items()):
                ready = {lfn: (dataset_id, None) for lfn, dataset_id in files.items() if lfn.split(":")[-1] in arrived}
                if not ready:
                    continue
                moved = release_staged_files(task_buffer, tid, _scope(rec.request.dataset), ready)
                if moved is None:
                    notes.errors.append(f"updateInputFilesStaged_JEDI jediTaskID={tid} failed (see the JEDI log)")
                else:
                    stats.add("files_released", moved)
        if rec.status == lc.DONE:
            counts: dict[int, tuple[int, int]] = {}
            for spelling in spellings(rec.request.dataset):
                for tid, (total, still_staging) in carousel_jedi.file_counts(db, tasks, spelling).items():
                    before = counts.get(tid, (0, 0))
                    counts[tid] = (before[0] + total, before[1] + still_staging)
            for tid in tasks:
                total, still_staging = counts.get(tid, (0, 0))
                if total > 0 and still_staging == 0:
                    staging_relations.release(db, rec.request.request_id, tid, now)
                    stats.add("tasks_released")


def retire_unused(db: WfDatabase, book: DbBook, ddm: StagingDDM, stats: CycleStats, notes: _Notes) -> None:
    """Done requests whose tasks all ended are retired (rule deleted); unstarted or staging ones are cancelled."""
    records: list[RequestRecord] = book.records([lc.QUEUED, lc.STAGING, lc.DONE])
    relations = staging_relations.of_requests(db, [r.request.request_id for r in records])
    statuses = _task_statuses(db, relations)
    prestaged = staging_prestages.holding(db, [r.request.request_id for r in records])
    for rec in records:
        rels = relations.get(rec.request.request_id, [])
        held = prestaged.get(rec.request.request_id)
        if held or (held is None and not rels):
            continue  # a workflow's unreleased pre-stage wants it, or no relation yet (intake relates it next cycle)
        if any(_alive(r.jedi_task_id, statuses) for r in rels):
            continue  # still needed
        if rec.status == lc.DONE:
            try:
                retire(book, ddm, rec)
            except Exception as exc:  # contained to this request: still DONE, retired again next cycle
                notes.errors.append(f"{rec.request.dataset}: {failure_text(exc)}")
                continue
            stats.add("requests_retired")
            continue
        if rec.rule_id:
            try:
                ddm.delete_rule(rec.rule_id)
            except Exception as exc:  # contained to this request
                notes.errors.append(f"{rec.request.dataset}: {failure_text(exc)}")
                continue  # keep it staging; cancel once the rule is gone
        book.save(rec, lc.CANCELLED, error="all tasks needing the dataset ended")
        stats.add("requests_cancelled")


# Ending a task whose input can never be staged. Upstream's Data Carousel has no such path (DataCarousel.cancel_request
# and AtlasDataCarouselWatchDog only cancel the request and expire its rule: the task waits in 'staging' for ever), so
# we end it the way JEDI ends a task from outside: its errorDialog (updateTaskErrorDialogJEDI) says why, then a
# TaskCommando command through DEFT PRODSYS_COMM (sendCommandTaskPanda). Which command, by the task's JEDI status:
# a registered task (it has its JEDI datasets and files) is finished: TaskCommando -> passed, then the PostProcessor
# ends it 'failed' ("no file was successfully processed") or 'finished' (what it processed on the files that arrived
# is kept), both statuses in which the server accepts the user's `pbook retry` (jedi_statuses.RETRY_ACCEPTED); a task
# parked in 'staging' before registration has no files, so finishing it would end it 'done' (nFiles == nFilesFinished
# == 0): it is killed (-> aborting -> aborted; the user resubmits). An ending one is left.
_LEFT_TO_END = jedi_statuses.ENDED | jedi_statuses.ENDING | {"finishing", "prepared"}
_KILLED_WHEN = frozenset({"staging", "registered"})


def ending_command(task_status: str | None) -> str | None:
    """The JEDI command for a task still waiting on a request that failed for good (None: leave the task as it is)."""
    if task_status is None or task_status in _LEFT_TO_END:
        return None
    return "kill" if task_status in _KILLED_WHEN else "finish"


_COMMAND_REJECTED = 4  # sendCommandTaskPanda: not accepted in the task's status (it moved on by itself meanwhile)


def end_tasks_of_failed(db: WfDatabase, book: DbBook, task_buffer, now: float, stats: CycleStats, notes: _Notes) -> None:
    """Tasks waiting on a request that failed for good are told why, in their JEDI errorDialog (what pbook and the
    monitor show), and ended (``ending_command``); once per task: the relation is then released, so nothing is repeated
    every cycle. A task JEDI could not be reached for is taken again next cycle."""
    failed = book.records([lc.FAILED])
    relations = staging_relations.of_requests(db, [r.request.request_id for r in failed])
    waiting = {rel.jedi_task_id for rels in relations.values() for rel in rels if not rel.released}
    statuses = jedi_tasks.task_statuses(db, sorted(waiting)) if waiting else {}
    for rec in failed:
        for rel in relations.get(rec.request.request_id, []):
            if rel.released:
                continue
            tid = rel.jedi_task_id
            message = f"pandajedi_wf data carousel: staging of {rec.request.dataset} failed: {rec.error or 'no usable tape source'}"
            command = ending_command(statuses.get(tid))
            try:
                set_error_dialog(task_buffer, tid, message)
                if command is not None:
                    # the comment becomes the task's errorDialog when JEDI picks the command up: it carries the reason
                    comment = task_routing.ending_comment(rec.request.dataset, rec.error)
                    code, answer = task_command_answer(task_buffer, tid, RESUME_DN, command, comment)
                    if code not in (0, _COMMAND_REJECTED):
                        raise RuntimeError(f"sendCommandTaskPanda {command} answered {code}: {answer}")
                    stats.add(f"tasks_sent_{command}" if code == 0 else "tasks_ended_meanwhile")
            except Exception as exc:  # try again next cycle
                notes.errors.append(f"cannot end task {tid} after the staging failure: {exc}")
                continue
            staging_relations.release_told(db, rec.request.request_id, tid)  # on JEDI's clock: a retry is judged by it
            stats.add("tasks_told_of_failed_staging")


# ---- the cycle ----------------------------------------------------------------------------------------------


def _in_flight_tapes(book: DbBook) -> set[str]:
    return {rec.source for rec in book.records(lc.IN_FLIGHT) if rec.source}


def _follow_and_admit(db: WfDatabase, book: DbBook, ddm: StagingDDM, config: CarouselConfig, now: float, stats: CycleStats, notes: _Notes) -> None:
    before = tape_stats.load(db)
    throughput = {tape: s.throughput for tape, s in before.items() if s.throughput}
    busy, last = tape_stats.busy_since_last_cycle(before, _in_flight_tapes(book))
    report = run_cycle(config, book, ddm, now, throughput, elapsed=now - last if last else 0.0, busy_tapes=busy)
    tape_stats.save(db, before, throughput, _in_flight_tapes(book), now)
    for key in ("started", "pinned", "done", "switched", "failed", "requeued", "rule_retries", "extended", "rebalanced", "boosted", "reprioritised"):
        if getattr(report, key):
            stats.add(f"requests_{key}", getattr(report, key))
    for reason, n in report.held.items():
        stats.add(f"held_{reason}", n)
    notes.errors += report.errors


def cycle(
    db: WfDatabase,
    stats: CycleStats,
    ddm: StagingDDM,
    task_buffer: Any,
    now: float | None = None,
    config: CarouselConfig | Mapping | str | None = None,
    *,
    vo: str | None = None,
    pid: str | None = None,
) -> str:
    """One carousel pass at ``now`` (epoch seconds; default the wall clock).  Raises CarouselConfigError on a bad
    config before touching anything, so ``daemons.common.run_cycle`` records the precise error."""
    now = time.time() if now is None else float(now)
    config = carousel_config(db, vo, config)
    pid = pid or process_id()
    lock = {"vo": None, "prodSourceLabel": None, "cloud": None, "workqueue_id": None, "resource_name": None, "component": LOCK_COMPONENT, "pid": pid}
    if not task_buffer.lockProcess_JEDI(timeLimit=LOCK_MINUTES, **lock):
        stats.add("skipped_locked")
        return f"{LOCK_COMPONENT} is held by another process; cycle skipped"
    notes = _Notes()
    try:
        check_rule_activity(ddm, config, notes)
        book = DbBook(db, now, ACTOR)
        intake(db, ddm, config, now, stats, notes)
        carousel_prestages.take_in(db, ddm, config, now, stats, notes.errors)
        carousel_prestages.release(db, now, stats)
        retire_unused(db, book, ddm, stats, notes)  # before admission: the disk it frees is used this cycle
        _follow_and_admit(db, book, ddm, config, now, stats, notes)
        release(db, ddm, task_buffer, now, stats, notes)
        end_tasks_of_failed(db, book, task_buffer, now, stats, notes)
    finally:
        task_buffer.unlockProcess_JEDI(**lock)
    counts = staging_requests.counts_by_status(db)
    for status, n in counts.items():
        stats.add(f"requests_{status}_now", n)
    if notes.errors:
        stats.add("ddm_errors", len(notes.errors))
    message = f"staging requests by status: {dict(sorted(counts.items()))}"
    if notes.errors:
        message += f"; {len(notes.errors)} error(s): " + " | ".join(notes.errors[:10])
    return message

