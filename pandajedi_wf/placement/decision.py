"""Which of upstream's candidate sites a workflow task should run at: the one its parents' outputs reach cheapest.

Inputs are what the broker plugin found: upstream's candidates (each named with the storage it reads from) and, for
every parent task of the task in its workflow, the bytes of its finished output per storage and, while it still runs
(a child started early, noWaitParent), the storages its jobs write to.

Cost of a candidate = bytes that must move to its storage:
  * a finished output file elsewhere moves whole;
  * a running parent will write more; we take that remainder as large as what it wrote so far (at least one byte,
    so that an empty running parent still pulls its child towards where it runs), spread evenly over the storages it
    writes to; the share written at the candidate's storage does not move.
Fan-in falls out of the sum: the candidate that minimises the bytes of all parents together wins.

Without load figures the answer keeps the candidates of least cost in bytes (ties all kept, in upstream's order, so
upstream's weights still choose among them). With load figures (``SiteLoad`` per candidate) the cost is the expected
completion of the step there (``expected_completion``: the moved bytes over the site's WAN, each source's at its
link's measured rate where the network matrix has one, overlapped with the wait for its slots, plus the run time);
the candidates expected to end within ``slack`` of the best are the good ones, and of those the answer keeps the ones
moving the least: following the data never sends a step to a site whose queue it would wait on longer than the data
would take to move elsewhere, and a transfer that would not make the step end sooner is not made.
Either way it keeps all of upstream's candidates when there is nothing to follow (no parents, or every candidate
costs the same). It never adds a site upstream rejected: when the storage holding the most input serves none of the
candidates, the reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Callable, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class ParentOutput:
    task_id: int
    running: bool
    bytes_at: Mapping[str, int] = field(default_factory=dict)  # storage -> bytes of finished output files there
    writing_at: frozenset[str] = frozenset()  # storages its jobs write to (what a running parent still adds)

    def __post_init__(self):
        bad = {s: b for s, b in self.bytes_at.items() if b is None or b < 0}
        if bad:
            raise ValueError(f"parent task {self.task_id}: bytes per storage must be >= 0, got {bad}")

    @property
    def finished_bytes(self) -> int:
        return sum(self.bytes_at.values())

    @property
    def pending_bytes(self) -> int:
        """What a running parent is still expected to write (0 for an ended parent)."""
        if not self.running or not self.writing_at:
            return 0
        return max(self.finished_bytes, 1)


DEFAULT_WAN_BYTES_PER_SECOND = 125e6  # 1 Gb/s: a site whose link speed nobody recorded
DEFAULT_SLACK = 0.1  # candidates expected to end within 10 % of the best are the good ones


@dataclass(frozen=True)
class SiteLoad:
    """What a site's queue looks like now, as far as placement uses it."""

    name: str  # the PanDA queue
    storage: str  # the storage it reads from and writes to
    slots: int  # job slots it offers (observed: at least the jobs it runs now)
    running: int = 0
    queued: int = 0  # jobs waiting for a slot there (activated, assigned)
    wan_bytes_per_second: float = DEFAULT_WAN_BYTES_PER_SECOND  # ingress to its storage from a source not measured
    inbound_bytes: int = 0  # bytes already on their way to its storage, ahead of ours on the link
    job_seconds: float | None = None  # how long its jobs run (recent walltime); None: as long as the step's own
    # source storage -> measured rate from it to this site's storage (the network matrix's FTS throughput)
    link_bytes_per_second: Mapping[str, float] = field(default_factory=dict, hash=False)

    def __post_init__(self):
        if (self.slots < 0 or self.running < 0 or self.queued < 0 or self.inbound_bytes < 0 or self.wan_bytes_per_second <= 0
            or self.job_seconds is not None and self.job_seconds < 0
            or any(not rate or rate <= 0 for rate in self.link_bytes_per_second.values())):
            raise ValueError(f"site {self.name}: slots, jobs and inbound bytes must be >= 0 and the WAN and link rates > 0, got {self}")

    def rate_from(self, source: str) -> float:
        """Bytes per second from ``source`` to this site's storage: the link's measured rate, else the WAN rate."""
        return self.link_bytes_per_second.get(source) or self.wan_bytes_per_second


@dataclass(frozen=True)
class StepWork:
    """The step to place: how many jobs and how long one runs (an estimate)."""

    n_jobs: int = 1
    job_seconds: float = 3600.0

    def __post_init__(self):
        if self.n_jobs < 1 or self.job_seconds < 0:
            raise ValueError(f"a step has at least one job of >= 0 s, got {self}")


@dataclass(frozen=True)
class Placement:
    chosen: tuple[str, ...]  # candidates to keep, in upstream's order
    moved: Mapping[str, int]  # candidate -> bytes that move if it runs there
    restricted: bool  # fewer candidates kept than upstream gave
    reason: str
    best_storage: str | None = None  # the storage holding (or about to hold) most of the input
    completion: Mapping[str, float] = field(default_factory=dict)  # candidate -> expected seconds (with load figures)


def moved_from(storage: str, parents: Sequence[ParentOutput]) -> dict[str, Fraction]:
    """Source storage -> bytes of ``parents``' output that must come from it to ``storage`` (a running parent's
    remainder is spread evenly over the storages it writes to; the share written at ``storage`` does not move)."""
    by_source: dict[str, Fraction] = {}
    for p in parents:
        for s, b in p.bytes_at.items():
            if s != storage and b:
                by_source[s] = by_source.get(s, Fraction(0)) + b
        pending = p.pending_bytes
        if pending:
            for s in p.writing_at:
                if s != storage:
                    by_source[s] = by_source.get(s, Fraction(0)) + Fraction(pending, len(p.writing_at))
    return by_source


def _moved_to(storage: str, parents: Sequence[ParentOutput]) -> Fraction:
    return sum(moved_from(storage, parents).values(), Fraction(0))


def bytes_to_move(storage: str, parents: Sequence[ParentOutput]) -> int:
    """Bytes of all ``parents``' output (finished, and expected from running ones) that must reach ``storage``."""
    return round(_moved_to(storage, parents))


def transfer_seconds(site: SiteLoad, moved: float | Mapping[str, float]) -> float:
    """Until the step's input is at ``site``: the bytes ahead of it on the site's link, then its own. ``moved``: the
    bytes, or the bytes per source storage (``moved_from``), each source's at its link's measured rate
    (``SiteLoad.rate_from``); the sources share the site's ingress, so their times add up."""
    by_source = moved if isinstance(moved, Mapping) else {None: moved}
    by_rate: dict[float, Fraction] = {}
    for source, n_bytes in by_source.items():
        if n_bytes > 0:
            rate = site.wan_bytes_per_second if source is None else site.rate_from(source)
            by_rate[rate] = by_rate.get(rate, Fraction(0)) + Fraction(n_bytes)
    if not by_rate:
        return 0.0
    by_rate[site.wan_bytes_per_second] = by_rate.get(site.wan_bytes_per_second, Fraction(0)) + site.inbound_bytes
    return sum(float(n_bytes) / rate for rate, n_bytes in by_rate.items())


def queue_seconds(site: SiteLoad, work: StepWork) -> float:
    """Until the step's last job gets a slot: the jobs already waiting go first, on the slots free now and then on
    every slot as the jobs there end (a fluid estimate: the site's slots turn over once per its jobs' walltime, the
    step's own job time where the site's is not known)."""
    free = max(0, site.slots - site.running)
    overflow = site.queued + work.n_jobs - free
    if overflow <= 0:
        return 0.0
    if site.slots <= 0:
        return float("inf")
    turnover = site.job_seconds if site.job_seconds is not None else work.job_seconds
    return overflow / site.slots * turnover


def expected_completion(site: SiteLoad, parents: Sequence[ParentOutput], work: StepWork) -> float:
    """Seconds until the step would be done at ``site``: its input moves while its jobs wait for slots (a job starts
    when both are there), then it runs."""
    return max(transfer_seconds(site, moved_from(site.storage, parents)), queue_seconds(site, work)) + work.job_seconds


def within_slack(completion: Mapping[str, float], slack: float) -> set[str]:
    """The names expected to finish no later than ``slack`` (a fraction) after the best one."""
    finite = [c for c in completion.values() if c != float("inf")]
    if not finite:
        return set(completion)
    limit = min(finite) * (1 + slack)
    return {n for n, c in completion.items() if c <= limit}


def _best_storage(parents: Sequence[ParentOutput]) -> str | None:
    held: dict[str, Fraction] = {}
    for p in parents:
        for s, b in p.bytes_at.items():
            held[s] = held.get(s, Fraction(0)) + b
        for s in p.writing_at:
            held[s] = held.get(s, Fraction(0)) + Fraction(p.pending_bytes, len(p.writing_at))
    held = {s: b for s, b in held.items() if b > 0}
    if not held:
        return None
    return min(held, key=lambda s: (-held[s], s))


def decide(candidates: Mapping[str, str], parents: Sequence[ParentOutput], loads: Mapping[str, SiteLoad] | None = None,
           work: StepWork = StepWork(), slack: float = DEFAULT_SLACK) -> Placement:
    """``candidates``: upstream's candidate name -> the storage it reads from (ordered as upstream gave them);
    ``loads``: candidate name -> its load figures (a candidate without them is taken as idle with one free slot
    per job: the data decides there); none at all: bytes alone decide."""
    names = tuple(candidates)
    if not names:
        return Placement((), {}, False, "upstream left no candidate")
    if not parents:
        return Placement(names, {n: 0 for n in names}, False, "no parent outputs to follow: upstream's candidates kept")
    moved = {n: bytes_to_move(candidates[n], parents) for n in names}  # whole bytes: what is compared is what is said
    best = _best_storage(parents)
    ids = ",".join(str(p.task_id) for p in parents)
    if best is None:
        return Placement(names, moved, False, f"parents {ids} have no output yet and run nowhere: upstream's candidates kept", None)
    if len(set(moved.values())) == 1:
        return Placement(names, moved, False, f"every candidate moves {moved[names[0]]} B of parents {ids}: upstream's candidates kept", best)
    completion: dict[str, float] = {}
    if loads is None:
        least = min(moved.values())
        chosen = tuple(n for n in names if moved[n] == least)
        reason = f"follows the data of parents {ids}: {','.join(chosen)} moves {moved[chosen[0]]} B, the others up to {max(moved.values())} B"
    else:
        for n in names:
            site = loads.get(n) or SiteLoad(n, candidates[n], slots=work.n_jobs)
            completion[n] = expected_completion(replace(site, storage=candidates[n]), parents, work)
        keep = within_slack(completion, slack)
        least = min(moved[n] for n in keep)
        chosen = tuple(n for n in names if n in keep and moved[n] == least)
        if len(chosen) == len(names):
            return Placement(names, moved, False, f"every candidate is expected to end within {slack:.0%} of the best "
                             f"({_hours(min(completion.values()))}) with parents {ids}: upstream's candidates kept", best, completion)
        first = min(chosen, key=lambda n: (completion[n], moved[n]))
        reason = (f"follows the data of parents {ids} and the sites' load: {','.join(chosen)} moves {moved[first]} B and is "
                  f"expected to end in {_hours(completion[first])}, within {slack:.0%} of the best "
                  f"({_hours(min(completion.values()))}); the others move up to {max(moved.values())} B or end up to "
                  f"{_hours(max(completion.values()))}")
    if best not in {candidates[n] for n in names}:
        reason += f"; {best} holds most input but serves none of upstream's candidates"
    return Placement(chosen, moved, True, reason, best, completion)


def _hours(seconds: float) -> str:
    return "never (no slot)" if seconds == float("inf") else f"{seconds / 3600:.2f} h"


def parents_at_storages(
    rows: Iterable[tuple[int, bool, Mapping[str, int]]], storage_of: Callable[[str], str]
) -> list[ParentOutput]:
    """``(task id, ended, bytes per site of its output datasets)`` -> ``ParentOutput`` per parent, sites mapped to
    the storage they write to (two queues of one storage pool their bytes). A parent that has not ended still writes
    to every storage of its output datasets."""
    parents = []
    for task_id, ended, bytes_at_site in rows:
        held: dict[str, int] = {}
        for site, size in bytes_at_site.items():
            storage = storage_of(site)
            held[storage] = held.get(storage, 0) + int(size)
        writing = frozenset(held) if not ended else frozenset()
        parents.append(ParentOutput(int(task_id), running=not ended, bytes_at={s: b for s, b in held.items() if b}, writing_at=writing))
    return parents


def steering_parameters(placement: Placement) -> dict:
    """Task parameters that carry a placement to JEDI where the job brokerage is not the seam (a production task's
    nucleus is chosen by the task broker before any job broker runs): ``includedSite`` of the chosen candidates."""
    if not placement.restricted:
        return {}
    return {"includedSite": list(placement.chosen)}
