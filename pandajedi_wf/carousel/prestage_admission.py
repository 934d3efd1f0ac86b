"""Admission of workflows' pre-stages: behind every request a waiting task needs, earliest need-by first, under the
same limits.

A pre-stage is a queued request no task waits on yet (``StagingRequest.need_by`` set: a workflow planned it when it
started, see ``placement.prestage``). ``admit_behind_tasks`` is pure and wraps ``admission.admit``:

1. the requests tasks wait on are admitted by ``admit`` exactly as if there were no pre-stage;
2. while one of them is held for lack of room (a tape above its threshold or full, the destination's disk buffer, the
   user's cap), no pre-stage starts: a pre-stage never takes room a waiting task could have next
   (``PRESTAGE_BEHIND_TASKS``). A task's request held for good (never fits, no usable source, destination excluded)
   holds nothing back: room would not help it;
3. a pre-stage whose need-by is more than ``config.prestage_lead_seconds`` away is not due yet (``PRESTAGE_NOT_DUE``):
   the disk buffer goes to what is needed soon;
4. the due pre-stages go one at a time through ``admit`` itself, over the load plus what step 1 and the pre-stages
   before it started (so the tape windows, buffer caps and user caps are the very same checks), taken from the share
   with the least bytes in flight per unit of weight (weighted fair share, as in ``admit``), inside a share the earliest
   need-by first. A pre-stage ``admit`` holds keeps ``admit``'s reason.
"""

from __future__ import annotations

from typing import Iterable

from .admission import DESTINATION_EXCLUDED, NEVER_FITS, NO_USABLE_SOURCE, Admission, Hold, Start, admit
from .config import CarouselConfig
from .state import CarouselLoad, Load, StagingRequest

PRESTAGE_BEHIND_TASKS = "prestage_behind_tasks"
PRESTAGE_NOT_DUE = "prestage_not_due"
HELD_FOR_GOOD = frozenset({NEVER_FITS, NO_USABLE_SOURCE, DESTINATION_EXCLUDED})  # more room would not start these


def is_prestage(request: StagingRequest) -> bool:
    return request.need_by is not None


def prestage_order_key(request: StagingRequest) -> tuple:
    """A pre-stage's place among the pre-stages of its share: earliest need-by, then oldest, then request id."""
    return (request.need_by, request.created_at, request.request_id)


def with_started(load: CarouselLoad, starts: Iterable[Start]) -> CarouselLoad:
    """``load`` plus what ``starts`` put in flight (a pin recalls nothing: it adds nothing, as in ``admit``)."""
    tapes, users, shares, buffers = dict(load.tapes), dict(load.users), dict(load.shares), dict(load.buffers)
    for start in starts:
        if start.source is None:
            continue
        r = start.request
        tapes[start.source] = tapes.get(start.source, Load()).plus(r.n_files, r.n_bytes)
        users[r.user] = users.get(r.user, Load()).plus(r.n_files, r.n_bytes)
        shares[r.gshare] = shares.get(r.gshare, 0) + r.n_bytes
        buffers[r.destination] = buffers.get(r.destination, 0) + r.n_bytes
    return CarouselLoad(tapes, users, shares, buffers, load.throughput)


def admit_behind_tasks(config: CarouselConfig, queued: Iterable[StagingRequest], load: CarouselLoad, now: float) -> Admission:
    """``admit`` for the requests tasks wait on, then the pre-stages behind them (module doc)."""
    queued = list(queued)
    prestages = [r for r in queued if is_prestage(r)]
    tasks = admit(config, [r for r in queued if not is_prestage(r)], load)
    if not prestages:
        return tasks
    starts, held = list(tasks.starts), list(tasks.held)
    waiting = [h for h in tasks.held if h.reason not in HELD_FOR_GOOD]
    if waiting:
        detail = f"{len(waiting)} request(s) of waiting tasks are held for room (first: {waiting[0].request.dataset}, {waiting[0].reason})"
        held += [Hold(r, PRESTAGE_BEHIND_TASKS, detail) for r in sorted(prestages, key=prestage_order_key)]
        return Admission(tuple(starts), tuple(held))

    due: dict[str, list[StagingRequest]] = {}
    for r in sorted(prestages, key=prestage_order_key):
        if r.need_by - now > config.prestage_lead_seconds:
            held.append(Hold(r, PRESTAGE_NOT_DUE, f"needed by {r.need_by:.0f}, more than {config.prestage_lead_seconds} s from now"))
        else:
            due.setdefault(r.gshare, []).append(r)
    current = with_started(load, starts)
    while due:
        share = min(due, key=lambda s: (current.shares.get(s, 0) / config.share_weight(s), s))
        r = due[share].pop(0)
        if not due[share]:
            del due[share]
        decision = admit(config, [r], current)
        starts += decision.starts
        held += decision.held
        current = with_started(current, decision.starts)
    return Admission(tuple(starts), tuple(held))
