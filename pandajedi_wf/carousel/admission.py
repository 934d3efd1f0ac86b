"""Admission: which queued staging requests start this cycle, and from which tape.

One pure function, ``admit``.  Rules, in the order they are applied:

1. Pin-only requests (a complete disk replica exists) start first: they recall nothing, so they use
   no tape window, no disk buffer and no user quota.
2. The other requests are served share by share, always from the share with the least bytes in flight
   per unit of weight (weighted max-min fairness; ties by JEDI share rank).  Inside a share: task
   priority (high first), then age (old first).
3. A request starts only on its best source (earliest expected completion, see ``source_choice``), and
   only if that tape was below ``release_threshold`` of both its limits when the cycle began
   (hysteresis) and the request still fits under both limits, the destination's disk buffer and the
   user's caps.  Otherwise it is held with a reason.  No limit is ever exceeded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable

from .config import CarouselConfig
from .source_choice import NO_LOAD, fits_window, rank_sources
from .state import CarouselLoad, Load, StagingRequest

# reasons a request is held back this cycle
DESTINATION_EXCLUDED = "destination_excluded"
NO_USABLE_SOURCE = "no_usable_source"
NEVER_FITS = "never_fits"  # larger than a window/buffer/cap: needs an operator (or a bigger limit)
TAPE_ABOVE_THRESHOLD = "tape_above_threshold"
TAPE_FULL = "tape_full"
DISK_BUFFER_FULL = "disk_buffer_full"
USER_CAP = "user_cap"


@dataclass(frozen=True)
class Start:
    request: StagingRequest
    source: str | None  # tape RSE to recall from; None means pin the disk replica


@dataclass(frozen=True)
class Hold:
    request: StagingRequest
    reason: str
    detail: str


@dataclass(frozen=True)
class Admission:
    starts: tuple[Start, ...]
    held: tuple[Hold, ...]


def _priority_key(request: StagingRequest) -> tuple:
    return (-request.task_priority, request.created_at, request.request_id)


class _Books:
    """Running totals during one admission pass (the loads plus what this pass started)."""

    def __init__(self, config: CarouselConfig, load: CarouselLoad, requests: Iterable[StagingRequest]):
        self.config = config
        self.tapes = dict(load.tapes)
        self.users = dict(load.users)
        self.buffers = dict(load.buffers)
        self.shares = dict(load.shares)
        self.throughput = load.throughput
        threshold = config.release_threshold
        candidates = {s for r in requests for s in r.sources}
        self.open_tapes = set()
        for tape in candidates:
            limits, used = config.tape(tape), self.tapes.get(tape, NO_LOAD)
            if used.files < threshold * limits.max_files and used.bytes < threshold * limits.max_bytes:
                self.open_tapes.add(tape)

    def refusal(self, r: StagingRequest) -> tuple[str, str, str | None]:
        """(reason, detail, source): reason empty when the request can start on ``source``."""
        config = self.config
        if r.destination in config.excluded_destinations:
            return DESTINATION_EXCLUDED, f"destination {r.destination} is excluded", None
        cap = config.disk_buffer_bytes(r.destination)
        if cap is not None:
            if r.n_bytes > cap:
                return NEVER_FITS, f"{r.n_bytes} bytes exceed the disk buffer of {r.destination} ({cap})", None
            if self.buffers.get(r.destination, 0) + r.n_bytes > cap:
                return DISK_BUFFER_FULL, f"{r.destination} has {self.buffers.get(r.destination, 0)} of {cap} bytes reserved", None
        user = self.users.get(r.user, NO_LOAD)
        for used, need, cap, unit in ((user.bytes, r.n_bytes, config.user_max_bytes, "bytes"), (user.files, r.n_files, config.user_max_files, "files")):
            if cap is None:
                continue
            if need > cap:
                return NEVER_FITS, f"{need} {unit} exceed the per-user cap ({cap})", None
            if used + need > cap:
                return USER_CAP, f"user {r.user} has {used} of {cap} {unit} in flight", None
        ranked = rank_sources(r.sources, r.n_bytes, self.tapes, self.throughput, config)
        if not ranked:
            return NO_USABLE_SOURCE, f"no active, non-excluded tape among {list(r.sources)}", None
        ranked = [s for s in ranked if fits_window(s, r.n_files, r.n_bytes, config)]
        if not ranked:
            return NEVER_FITS, f"{r.n_files} files / {r.n_bytes} bytes exceed the window of every source tape", None
        best = ranked[0]
        if best not in self.open_tapes:
            return TAPE_ABOVE_THRESHOLD, f"best source {best} is above {config.release_threshold:.0%} of a limit", None
        limits, used = config.tape(best), self.tapes.get(best, NO_LOAD)
        if used.files + r.n_files > limits.max_files or used.bytes + r.n_bytes > limits.max_bytes:
            return TAPE_FULL, f"best source {best} has {used.files} files / {used.bytes} bytes in flight", None
        return "", "", best

    def take(self, r: StagingRequest, source: str) -> None:
        self.tapes[source] = self.tapes.get(source, NO_LOAD).plus(r.n_files, r.n_bytes)
        self.users[r.user] = self.users.get(r.user, NO_LOAD).plus(r.n_files, r.n_bytes)
        self.buffers[r.destination] = self.buffers.get(r.destination, 0) + r.n_bytes
        self.shares[r.gshare] = self.shares.get(r.gshare, 0) + r.n_bytes


def admit(config: CarouselConfig, queued: Iterable[StagingRequest], load: CarouselLoad) -> Admission:
    """Decide which queued requests start now (with their source) and why the others wait."""
    queued = list(queued)
    starts: list[Start] = []
    held: list[Hold] = []

    to_recall = []
    for r in sorted(queued, key=_priority_key):
        if not r.on_disk:
            to_recall.append(r)
        elif r.destination in config.excluded_destinations:
            held.append(Hold(r, DESTINATION_EXCLUDED, f"destination {r.destination} is excluded"))
        else:
            starts.append(Start(r, None))

    books = _Books(config, load, to_recall)
    by_share: dict[str, deque[StagingRequest]] = {}
    rank: dict[str, int] = {}
    for r in to_recall:  # already in priority order
        by_share.setdefault(r.gshare, deque()).append(r)
        rank[r.gshare] = min(rank.get(r.gshare, r.share_rank), r.share_rank)

    while by_share:
        share = min(by_share, key=lambda s: (books.shares.get(s, 0) / config.share_weight(s), rank[s], s))
        r = by_share[share].popleft()
        if not by_share[share]:
            del by_share[share]
        reason, detail, source = books.refusal(r)
        if reason:
            held.append(Hold(r, reason, detail))
        else:
            books.take(r, source)
            starts.append(Start(r, source))
    return Admission(tuple(starts), tuple(held))
