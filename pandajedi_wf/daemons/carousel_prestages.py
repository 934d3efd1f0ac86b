"""The carousel's side of workflow-level pre-staging: take in the pre-stages workflows planned, release them when done.

- take in: each pre-stage the workflow processor planned (``taskbuffer.staging_prestages``) becomes a queued request
  with a need-by (``StagingRequest.need_by``; admitted behind every waiting task's request, see
  ``carousel.prestage_admission``), or joins the active request of its dataset, or needs nothing (a complete disk
  replica: nothing to recall; no complete replica: left to the step's own staging, which tells its task why). Sizes
  and tapes come from one bulk ``ddm.list_tape_replicas`` call, as for the tasks' intake. A crash between a request's
  insert and the pre-stage's record is harmless: next cycle the pre-stage finds the active request and joins it.
- release: the pre-stages of workflows that ended (or are being cancelled or finished) are released, so is one whose
  reading step was skipped, and one whose request a task of its own workflow now waits on (the step took it over: the request then lives as long as its
  tasks need it). A request no task and no unreleased pre-stage wants is retired or cancelled by
  ``data_carousel.retire_unused`` as any other.

When the step is submitted, its JEDI task is related to the pre-stage's request by the tasks' intake like to any active
request (the data may already be on disk), and the request becomes the task's (``staging_requests.taken_by_tasks``).
"""

from __future__ import annotations

import datetime
from typing import Iterable

from pandajedi_wf.carousel.config import CarouselConfig
from pandajedi_wf.carousel.state import StagingRequest
from pandajedi_wf.ddm.adapter import Replica, StagingDDM, canonical_dataset, tape_replicas_or_note
from pandajedi_wf.taskbuffer import staging_prestages, staging_requests
from pandajedi_wf.taskbuffer.connection import WfDatabase
from pandajedi_wf.taskbuffer.staging_prestages import Prestage
from pandajedi_wf.taskbuffer.staging_requests import to_epoch, to_timestamp

from .carousel_book import active_requests
from .common import CycleStats

ACTOR = "pandajedi_wf.data_carousel"
PRESTAGE_PRIORITY = 0  # below any task's: a task that takes the request over raises it to its own
TAKE_PER_CYCLE = 1000


def recall_need_by(need_by: datetime.datetime, n_bytes: int, tapes: Iterable[str], config: CarouselConfig) -> float:
    """The planned need-by (epoch), earlier by the time the dataset's bytes take at its fastest tape's expected rate:
    the workflow planned it before the size was known."""
    rates = [config.tape(t).expected_bytes_per_second for t in tapes if config.tape_usable(t)]
    return to_epoch(need_by) - (n_bytes / max(rates) if rates and n_bytes > 0 else 0.0)


def request_of(dataset: str, prestages: list[Prestage], replicas: list[Replica], config: CarouselConfig, now: float) -> tuple[str, StagingRequest | None]:
    """(outcome, request to insert): a recall from the complete tape replicas, for the pre-stage needed first."""
    complete = [r for r in replicas if r.complete and r.total_files > 0]
    if not complete:
        return staging_prestages.UNAVAILABLE, None
    if any(not r.is_tape for r in complete):
        return staging_prestages.ON_DISK, None
    tapes = tuple(sorted(r.rse for r in complete))
    sized = max(complete, key=lambda r: (r.total_files, r.n_bytes))
    first = min(prestages, key=lambda p: (p.need_by_time, p.workflow_id))
    return staging_prestages.REQUESTED, StagingRequest(
        request_id=0,
        dataset=dataset,
        n_files=sized.total_files,
        n_bytes=sized.n_bytes,
        user=first.user,
        gshare=first.gshare or "",
        destination=config.default_destination,
        sources=tapes,
        task_priority=PRESTAGE_PRIORITY,
        created_at=now,
        need_by=recall_need_by(first.need_by_time, sized.n_bytes, tapes, config),
    )


def take_in(db: WfDatabase, ddm: StagingDDM, config: CarouselConfig, now: float, stats: CycleStats, errors: list[str]) -> None:
    """Make or join a request for each pre-stage not taken in yet (module doc)."""
    prestages = staging_prestages.untaken(db, TAKE_PER_CYCLE)
    if not prestages:
        return
    by_dataset: dict[str, list[Prestage]] = {}
    for p in prestages:
        by_dataset.setdefault(canonical_dataset(p.dataset), []).append(p)
    active = active_requests(db, by_dataset)
    new = sorted(d for d in by_dataset if d not in active)
    replicas = tape_replicas_or_note(ddm, new, errors, "list_tape_replicas (pre-stages)")
    taken_at = to_timestamp(now)
    for dataset, rows in sorted(by_dataset.items()):
        rec, outcome = active.get(dataset), staging_prestages.SHARED
        if rec is None:
            if dataset not in replicas:
                continue
            outcome, request = request_of(dataset, rows, replicas[dataset], config, now)
            if request is not None:
                request_id = staging_requests.insert(db, request, dataset.split(":", 1)[0], now, ACTOR)
                if request_id is None:  # another process inserted it between our read and our insert
                    rec, outcome = active_requests(db, [dataset]).get(dataset), staging_prestages.SHARED
                    if rec is None:
                        continue
                else:
                    stats.add("prestage_requests_created")
        if rec is not None:
            request_id = rec.request.request_id
            if rec.request.need_by is not None:
                staging_requests.need_by_earlier(db, request_id, min(recall_need_by(p.need_by_time, rec.request.n_bytes, rec.request.sources, config)
                                                                     for p in rows), now)
        elif outcome != staging_prestages.REQUESTED:
            request_id = None
        for p in rows:
            if staging_prestages.take(db, p.workflow_id, p.dataset, request_id, outcome, taken_at):
                stats.add(f"prestages_{outcome}")


def release(db: WfDatabase, now: float, stats: CycleStats) -> None:
    """Release the pre-stages of the workflows that no longer need them, those whose reading step was skipped, and those
    a task of their workflow took over."""
    stats.add("prestages_released", staging_prestages.release_ended(db, to_timestamp(now)))
    stats.add("prestages_handed_over", staging_prestages.release_handed_over(db, to_timestamp(now)))
    stats.add("prestages_skipped", staging_prestages.release_skipped(db, to_timestamp(now)))
