"""Admission: which queued staging requests start this cycle, and from which tape.

One pure function, ``admit``.  Rules, in the order they are applied:

1. Pin-only requests (a complete disk replica exists) start first: they recall nothing, so they use
   no tape window, no disk buffer and no user quota.
2. The other requests are served share by share, always from the share with the least bytes in flight
   per unit of weight (weighted max-min fairness; ties by JEDI share rank).  Inside a share: task
   priority (high first), then age (old first), where a long recall counts as older by its duration on
   its fastest source, up to ``longest_first_max_lead_seconds`` (longest-processing-time first: the
   campaign's tail is then made of short recalls that balance across tapes).  The trade-off is bounded:
   a request is only ever overtaken, within its share and priority, by requests at most that lead
   younger than it; shares and priorities are untouched.
3. A request starts only on its best source (earliest expected completion, see ``source_choice``),
   counting on each tape what is in flight AND what requests earlier in this order are waiting for
   there (list scheduling: a request does not wait behind a backlog for a fast tape when a slower idle
   tape would deliver it sooner), and
   only if that tape was below ``release_threshold`` of its limits (file count, and bytes against its
   bandwidth-delay window) when the cycle began (hysteresis), it has less than that window in flight
   now, and the request still fits under both hard limits, the destination's disk buffer and the
   user's caps.  Otherwise it is held with a reason.  No hard limit is ever exceeded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable

from .config import CarouselConfig
from .source_choice import NO_LOAD, byte_window, fits_window, mean_file_bytes, rank_sources, throughput_of
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


def recall_lead_seconds(request: StagingRequest, throughput, config: CarouselConfig) -> float:
    """How much older a request counts for its length: its recall time on its fastest usable source, capped."""
    cap = config.longest_first_max_lead_seconds
    rates = [throughput_of(s, throughput, config) for s in request.sources if config.tape_usable(s)]
    if not cap or not rates or request.on_disk:
        return 0.0
    return min(float(cap), request.n_bytes / max(rates))


def queue_order_key(request: StagingRequest, throughput, config: CarouselConfig) -> tuple:
    """A request's place in the queue inside its share: priority, then age (a long recall counting older)."""
    return (-request.task_priority, request.created_at - recall_lead_seconds(request, throughput, config), request.request_id)


class _Books:
    """Running totals during one admission pass (the loads plus what this pass started)."""

    def __init__(self, config: CarouselConfig, load: CarouselLoad, requests: Iterable[StagingRequest]):
        self.config = config
        self.tapes = dict(load.tapes)
        self.users = dict(load.users)
        self.buffers = dict(load.buffers)
        self.shares = dict(load.shares)
        self.throughput = load.throughput
        self.committed = dict(load.tapes)  # in flight + waiting for the tape, for source choice
        threshold = config.release_threshold
        requests = list(requests)
        candidates = {s for r in requests for s in r.sources}
        mean = mean_file_bytes(list(load.tapes.values()) + [Load(r.n_files, r.n_bytes) for r in requests])
        self.windows = {tape: byte_window(tape, mean, self.throughput, config) for tape in candidates}
        self.open_tapes = set()
        for tape in candidates:
            limits, used = config.tape(tape), self.tapes.get(tape, NO_LOAD)
            if used.files < threshold * limits.max_files and used.bytes < threshold * self.windows[tape]:
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
        ranked = rank_sources(r.sources, r.n_bytes, self.committed, self.throughput, config, r.n_files)
        if not ranked:
            return NO_USABLE_SOURCE, f"no active, non-excluded tape among {list(r.sources)}", None
        ranked = [s for s in ranked if fits_window(s, r.n_files, r.n_bytes, config)]
        if not ranked:
            return NEVER_FITS, f"{r.n_files} files / {r.n_bytes} bytes exceed the window of every source tape", None
        best = ranked[0]
        self.committed[best] = self.committed.get(best, NO_LOAD).plus(r.n_files, r.n_bytes)  # started or waiting for it
        if best not in self.open_tapes:
            return TAPE_ABOVE_THRESHOLD, f"best source {best} is above {config.release_threshold:.0%} of a limit", None
        limits, used = config.tape(best), self.tapes.get(best, NO_LOAD)
        if used.files + r.n_files > limits.max_files or used.bytes + r.n_bytes > limits.max_bytes:
            return TAPE_FULL, f"best source {best} has {used.files} files / {used.bytes} bytes in flight", None
        if used.bytes >= self.windows[best]:
            return TAPE_FULL, f"best source {best} has its bandwidth-delay window ({self.windows[best]:.0f} bytes) in flight", None
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
    for r in sorted(queued, key=lambda r: queue_order_key(r, load.throughput, config)):
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
