"""Choosing the tape to recall from: the one expected to deliver first, not a random one.

A tape's expected completion time for a dataset (``finish_seconds``) is its mount latency, plus the
bytes already committed there / the tape's throughput (measured, else the configured prior), plus the
dataset's own recall time, which is never shorter than its bring-online batches read in rounds over the
tape's drives (a 3-batch dataset on a 2-drive tape needs two batch reads back to back).  A fast but busy
tape and a slow idle one are so compared on the same scale.

The same clock sizes each tape's window (``byte_window``): a tape needs its bandwidth-delay product in
flight, i.e. enough bytes to cover the mount latency, one bring-online batch per drive and the time
until the agent's next cycle, divided by the release threshold (new work arrives only below it).  More
would only commit datasets to a tape early, hold disk buffer longer and delay stuck detection.

``rebalance`` re-runs the choice for recalls still waiting at the back of a tape queue when another
tape holding a replica runs dry, so every drive stays busy until the end of a campaign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from .config import CarouselConfig
from .state import Load

NO_LOAD = Load()


def throughput_of(tape: str, throughput: Mapping[str, float], config: CarouselConfig) -> float:
    measured = throughput.get(tape)
    return measured if measured and measured > 0 else config.tape(tape).expected_bytes_per_second


def expected_completion_seconds(tape: str, n_bytes: int, tapes: Mapping[str, Load], throughput: Mapping[str, float], config: CarouselConfig) -> float:
    return (tapes.get(tape, NO_LOAD).bytes + n_bytes) / throughput_of(tape, throughput, config)


def own_recall_seconds(tape: str, n_files: int, n_bytes: int, throughput: Mapping[str, float], config: CarouselConfig) -> float:
    """The dataset alone on the tape: its bytes at full speed, or its batches in rounds over the drives."""
    limits, rate = config.tape(tape), throughput_of(tape, throughput, config)
    if n_files <= 0:
        return n_bytes / rate
    batch = max(config.bring_online_batch_files, 1)
    rounds = math.ceil(math.ceil(n_files / batch) / limits.drives)
    per_batch = min(n_files, batch) * (n_bytes / n_files) / (rate / limits.drives)
    return max(n_bytes / rate, rounds * per_batch)


def finish_seconds(tape: str, n_files: int, n_bytes: int, tapes: Mapping[str, Load], throughput: Mapping[str, float], config: CarouselConfig) -> float:
    """Expected time until the dataset is on disk if sent to ``tape`` now."""
    ahead = tapes.get(tape, NO_LOAD).bytes / throughput_of(tape, throughput, config)
    return config.tape(tape).mount_seconds + ahead + own_recall_seconds(tape, n_files, n_bytes, throughput, config)


def rank_sources(
    sources: Iterable[str], n_bytes: int, tapes: Mapping[str, Load], throughput: Mapping[str, float], config: CarouselConfig, n_files: int = 0
) -> list[str]:
    """Usable sources, best (earliest expected completion) first; ties go to the tape with fewer files queued."""
    usable = {s for s in sources if config.tape_usable(s)}
    return sorted(usable, key=lambda s: (finish_seconds(s, n_files, n_bytes, tapes, throughput, config), tapes.get(s, NO_LOAD).files, s))


def fits_window(tape: str, n_files: int, n_bytes: int, config: CarouselConfig) -> bool:
    """Whether the dataset could ever be admitted on this tape (it is not larger than the window)."""
    limits = config.tape(tape)
    return n_files <= limits.max_files and n_bytes <= limits.max_bytes


def pipeline_delay_seconds(
    tape: str, mean_file_bytes: float, throughput: Mapping[str, float], config: CarouselConfig, files_in_flight: int | None = None
) -> float:
    """Time between a file entering the tape queue and the agent being able to refill behind it: mount
    latency + one bring-online batch read by one drive + one agent cycle.  A batch holds at most the files
    the tape has in flight (``files_in_flight``, when known)."""
    limits = config.tape(tape)
    per_drive = throughput_of(tape, throughput, config) / limits.drives
    batch = config.bring_online_batch_files if files_in_flight is None else min(config.bring_online_batch_files, files_in_flight)
    return limits.mount_seconds + batch * mean_file_bytes / per_drive + config.cycle_seconds


def byte_window(tape: str, mean_file_bytes: float, throughput: Mapping[str, float], config: CarouselConfig) -> float:
    """Bytes the tape should have in flight: its bandwidth-delay product over the release threshold, never
    above the configured ``max_bytes`` (which stays the hard limit)."""
    hard = config.tape(tape).max_bytes
    if not config.window_from_throughput:
        return hard
    bdp = throughput_of(tape, throughput, config) * pipeline_delay_seconds(tape, mean_file_bytes, throughput, config)
    return min(hard, bdp / config.release_threshold)


def mean_file_bytes(loads: Iterable[Load]) -> float:
    files = n_bytes = 0
    for load in loads:
        files += load.files
        n_bytes += load.bytes
    return n_bytes / files if files else 0.0


# ---- tail: move recalls that have not started to tapes running dry ------------------------------------


@dataclass(frozen=True)
class Recall:
    """An admitted recall as rebalancing sees it; ``queued_at`` orders a tape's FIFO."""

    request_id: int
    source: str
    sources: tuple[str, ...]
    n_files: int  # files not yet on disk
    n_bytes: int  # bytes not yet on disk
    queued_at: float
    movable: bool  # nothing landed yet and never moved: its files are only waiting in the tape queue


@dataclass(frozen=True)
class Move:
    request_id: int
    source: str
    target: str
    gain_seconds: float  # expected completion on the old tape minus on the new one


def _ahead(recalls: list[Recall]) -> dict[int, int]:
    """Bytes queued before each recall on its own tape (FIFO by ``queued_at``)."""
    ahead: dict[int, int] = {}
    per_tape: dict[str, int] = {}
    for r in sorted(recalls, key=lambda r: (r.queued_at, r.request_id)):
        ahead[r.request_id] = per_tape.get(r.source, 0)
        per_tape[r.source] = per_tape.get(r.source, 0) + r.n_bytes
    return ahead


def rebalance(recalls: Iterable[Recall], throughput: Mapping[str, float], config: CarouselConfig, *, limit: int | None = None) -> list[Move]:
    """Recalls to move, best gain first.  A recall moves only when (a) it is still at least one batch per
    drive deep in its tape's queue (no drive is reading it), (b) the target holds a replica, is usable and
    is below its release threshold, (c) the move keeps the target under every limit, and (d) it then
    completes at least one cycle earlier.  Each tape's remaining load is updated after every move."""
    recalls = list(recalls)
    limit = config.rebalance_per_cycle if limit is None else limit
    loads: dict[str, Load] = {}
    for r in recalls:
        loads[r.source] = loads.get(r.source, NO_LOAD).plus(r.n_files, r.n_bytes)
    mean = mean_file_bytes(loads.values())
    threshold = config.release_threshold
    moves: list[Move] = []
    while len(moves) < limit:
        ahead = _ahead(recalls)
        best: tuple[float, Recall, str] | None = None
        for r in recalls:
            if not r.movable:
                continue
            rate = throughput_of(r.source, throughput, config)
            in_drives = rate * (pipeline_delay_seconds(r.source, mean, throughput, config) - config.cycle_seconds)
            if ahead[r.request_id] <= in_drives:
                continue  # may already sit in a drive's batch
            finish_here = (ahead[r.request_id] + r.n_bytes) / rate  # already mounted and queued: no extra latency
            for target in r.sources:
                if target == r.source or not config.tape_usable(target):
                    continue
                limits, used = config.tape(target), loads.get(target, NO_LOAD)
                if used.files >= threshold * limits.max_files or used.bytes >= threshold * byte_window(target, mean, throughput, config):
                    continue
                if used.files + r.n_files > limits.max_files or used.bytes + r.n_bytes > limits.max_bytes:
                    continue
                finish_there = finish_seconds(target, r.n_files, r.n_bytes, loads, throughput, config)
                gain = finish_here - finish_there
                if gain > config.cycle_seconds and (best is None or gain > best[0]):
                    best = (gain, r, target)
        if best is None:
            break
        gain, r, target = best
        moves.append(Move(r.request_id, r.source, target, gain))
        loads[r.source] = loads[r.source].plus(-r.n_files, -r.n_bytes)
        loads[target] = loads.get(target, NO_LOAD).plus(r.n_files, r.n_bytes)
        recalls = [x for x in recalls if x.request_id != r.request_id] + [
            Recall(r.request_id, target, r.sources, r.n_files, r.n_bytes, float("inf"), False)
        ]
    return moves
