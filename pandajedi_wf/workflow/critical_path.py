"""How long a workflow still needs, and which steps decide it: the critical path of what remains.

Pure (plain data in, plain data out, no clock read, no I/O), so the monitor draws it and the workflow processor can
use the same answer to raise the priority of the tasks that hold the workflow up (a step with no ``slack``).

A step costs what is left of its own run:

- an ended step (done, finished, failed, skipped, cancelled) costs nothing: a skipped branch never delays anything;
- a step whose clock runs (submitting, submitted, running, retrying since ``started``) costs its ``estimate`` minus
  the time it has run; past its estimate it is *overdue* and costs ``overdue_seconds`` (it has not ended, so it still
  holds up what follows it: about to end, not already over);
- a step still waiting (defined, ready) costs its whole ``estimate``;
- a sub-workflow, scatter or loop step whose body steps are listed costs nothing itself: its body is drawn from it
  (every body step follows it) and what depends on it follows its whole body;
- a live step without an estimate costs 0 and is listed in ``unknown``: the remaining time is then a lower bound.

The longest path ending at a step (``head``) plus the longest starting there (``tail``) minus its own cost is the
remaining length of the longest path *through* it; the largest of those is the workflow's remaining time, and the
live steps whose path is that long are the critical ones. ``slack`` says how much later a step may end without
delaying the workflow. A loop's next iterations are not steps yet, so the answer covers the iteration running now.

Node keys are the engine's (``workflow/engine.py``): ``/``-separated segments, a scatter copy adds ``s<k>`` to its
segment and a loop iteration ``i<n>``; ``template_of`` drops both, ``container_of`` finds the enclosing step.
"""

from __future__ import annotations

import datetime
import re
import statistics
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

from .lifecycles import STEP_ACTIVE, STEP_ENDED

EPSILON = 1e-6  # seconds: two path lengths this close are the same length
SUCCEEDED = frozenset({"done", "finished"})  # ended steps whose measured time is a fair estimate for their like

_SEGMENT = re.compile(r"^(?P<tag>[^/]*?)(?:s\d+)?(?:i\d+)?$")
_LOOP_ITERATION = re.compile(r"i\d+$")


class CriticalPathError(ValueError):
    """The steps do not form a DAG (the engine never writes a cycle; the error names one)."""


@dataclass(frozen=True)
class StepTiming:
    """What the critical path needs of one step. Times in seconds; ``started`` is naive UTC like ``now``."""

    key: str
    parents: tuple[str, ...] = ()
    status: str = "defined"
    step_type: str | None = None
    duration: float | None = None  # measured: how long an ended step took (submission to end)
    started: datetime.datetime | None = None  # when a live step's clock started (its submission)
    estimate: float | None = None  # how long it is expected to take in all


@dataclass(frozen=True)
class CriticalPath:
    remaining: float  # seconds the workflow still needs, as far as the estimates go
    through: Mapping[str, float]  # remaining length of the longest path through each step
    slack: Mapping[str, float]  # remaining - through: how much a step may slip without delaying the workflow
    own: Mapping[str, float]  # what is left of each step's own run
    critical: tuple[str, ...]  # live steps on a longest path, parents before children
    edges: tuple[tuple[str, str], ...]  # (parent, child) links of a longest path between critical steps
    unknown: tuple[str, ...] = ()  # live steps without an estimate (counted as 0)
    overdue: tuple[str, ...] = ()  # running past their estimate (counted as ``overdue_seconds``)
    containers: frozenset[str] = field(default_factory=frozenset)  # steps standing for a listed body

    @property
    def known(self) -> bool:
        """True when every live step had an estimate: ``remaining`` is an estimate, not only a lower bound."""
        return not self.unknown


def template_of(node_key: str) -> str:
    """The definition node of a step: its key without scatter and iteration marks (``004s1i2/001s3`` -> ``004/001``)."""
    return "/".join(_SEGMENT.match(seg).group("tag") for seg in node_key.split("/"))


def container_of(node_key: str, keys: set[str] | frozenset[str]) -> str | None:
    """The sub-workflow, scatter or loop step whose body holds ``node_key`` (``007s0/001`` -> ``007s0``,
    ``004s1i2/001`` -> ``004s1``), when that step is among ``keys``."""
    if "/" not in node_key:
        return None
    outer = node_key.rsplit("/", 1)[0]
    for candidate in (outer, _LOOP_ITERATION.sub("", outer)):
        if candidate in keys:
            return candidate
    return None


def effective_parents(declared: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Each step's parents with what nesting implies: a body step follows its container, a step depending on a
    container follows the container's whole body. Parents naming no listed step (a truncated list) are dropped."""
    keys = frozenset(declared)
    container = {k: container_of(k, keys) for k in keys}
    body: dict[str, set[str]] = {}
    for key in keys:
        outer = container[key]
        while outer is not None:
            body.setdefault(outer, set()).add(key)
            outer = container[outer]
    found: dict[str, list[str]] = {}
    for key, parents in declared.items():
        named = {p for p in parents if isinstance(p, str) and p in keys}
        implied = {container[key]} - {None}
        for p in named:
            implied |= body.get(p, set())
        found[key] = sorted(named | (implied - {key}))  # a step naming itself stays: that is a cycle
    return found


def topological_order(parents: Mapping[str, Iterable[str]]) -> list[str]:
    """Parents before children (ties by key); raises ``CriticalPathError`` naming a cycle."""
    children: dict[str, list[str]] = {k: [] for k in parents}
    waiting = {k: 0 for k in parents}
    for key, ps in parents.items():
        for p in set(ps):
            if p in children:
                children[p].append(key)
                waiting[key] += 1
    ready = sorted(k for k, n in waiting.items() if n == 0)
    order: list[str] = []
    while ready:
        key = ready.pop(0)
        order.append(key)
        for child in sorted(children[key]):
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
        ready.sort()
    if len(order) < len(waiting):
        raise CriticalPathError(f"steps depend on each other in a cycle: {' -> '.join(_a_cycle(parents, set(order)))}")
    return order


def _a_cycle(parents: Mapping[str, Iterable[str]], placed: set[str]) -> list[str]:
    """One cycle among the steps ``topological_order`` could not place (walk parents until a key repeats)."""
    key = min(k for k in parents if k not in placed)
    seen: list[str] = []
    while key not in seen:
        seen.append(key)
        key = min(p for p in parents[key] if p in parents and p not in placed)
    cycle = seen[seen.index(key):] + [key]
    return list(reversed(cycle))


def estimates(steps: Iterable[StepTiming], defaults: Mapping[str, float] | None = None) -> dict[str, float | None]:
    """Expected duration of each step that has not ended, from what its like took in this workflow.

    In order: the median measured duration of the ended, succeeded copies of the same definition node (scatter copies,
    earlier loop iterations, an earlier attempt), then of the succeeded steps of the same step type, then
    ``defaults[step_type]``; else None (unknown). A step that carries its own ``estimate`` keeps it.
    """
    steps = list(steps)
    by_template: dict[str, list[float]] = {}
    by_type: dict[str, list[float]] = {}
    for s in steps:
        if s.status in SUCCEEDED and s.duration is not None and s.duration >= 0:
            by_template.setdefault(template_of(s.key), []).append(float(s.duration))
            if s.step_type:
                by_type.setdefault(s.step_type, []).append(float(s.duration))
    found: dict[str, float | None] = {}
    for s in steps:
        if s.status in STEP_ENDED:
            continue
        if s.estimate is not None:
            found[s.key] = float(s.estimate)
        elif template_of(s.key) in by_template:
            found[s.key] = statistics.median(by_template[template_of(s.key)])
        elif s.step_type in by_type:
            found[s.key] = statistics.median(by_type[s.step_type])
        elif defaults and s.step_type in defaults:
            found[s.key] = float(defaults[s.step_type])
        else:
            found[s.key] = None
    return found


def critical_path(steps: Iterable[StepTiming], now: datetime.datetime, overdue_seconds: float = 60.0) -> CriticalPath:
    """The remaining time of the longest path through each step and the steps on the longest one (module doc)."""
    steps = list(steps)
    by_key: dict[str, StepTiming] = {}
    for s in steps:
        if s.key in by_key:
            raise CriticalPathError(f"step {s.key!r} is listed twice")
        if s.duration is not None and s.duration < 0 or s.estimate is not None and s.estimate < 0:
            raise CriticalPathError(f"step {s.key!r} has a negative duration or estimate")
        by_key[s.key] = s
    parents = effective_parents({s.key: s.parents for s in steps})
    order = topological_order(parents)
    keys = frozenset(by_key)
    containers = frozenset(c for c in (container_of(k, keys) for k in keys) if c is not None)

    own: dict[str, float] = {}
    unknown: list[str] = []
    overdue: list[str] = []
    for key in order:
        s = by_key[key]
        if s.status in STEP_ENDED or key in containers:
            own[key] = 0.0
        elif s.estimate is None:
            own[key] = 0.0
            unknown.append(key)
        elif s.status in STEP_ACTIVE and s.started is not None:
            ran = max((now - s.started).total_seconds(), 0.0)
            own[key] = max(s.estimate - ran, 0.0)
            if ran > s.estimate:
                own[key] = float(overdue_seconds)
                overdue.append(key)
        else:
            own[key] = float(s.estimate)

    children: dict[str, list[str]] = {k: [] for k in order}
    for key in order:
        for p in parents[key]:
            children[p].append(key)
    head: dict[str, float] = {}
    for key in order:
        head[key] = own[key] + max((head[p] for p in parents[key]), default=0.0)
    tail: dict[str, float] = {}
    for key in reversed(order):
        tail[key] = own[key] + max((tail[c] for c in children[key]), default=0.0)
    through = {k: head[k] + tail[k] - own[k] for k in order}
    remaining = max(through.values(), default=0.0)

    def live(key: str) -> bool:
        return by_key[key].status not in STEP_ENDED

    critical = tuple(k for k in order if remaining > EPSILON and live(k) and through[k] >= remaining - EPSILON) if remaining > EPSILON else ()
    on_path = set(critical)
    edges = tuple(
        (p, k) for k in critical for p in parents[k] if p in on_path and abs(head[p] + own[k] - head[k]) <= EPSILON
    )
    return CriticalPath(
        remaining=remaining,
        through=through,
        slack={k: max(remaining - through[k], 0.0) for k in order},
        own=own,
        critical=critical,
        edges=edges,
        unknown=tuple(unknown),
        overdue=tuple(overdue),
        containers=containers,
    )


def timings_from_step_rows(rows: Iterable[Mapping]) -> list[StepTiming]:
    """JEDI_WF_STEPS rows (as dicts: node_key, parent_keys, status, step_type, submit_intent_time, status_change_time)
    -> ``StepTiming``: a step's time runs from its submission to its last status change once ended; the processor
    writes both, so both come from one clock."""
    out = []
    for r in rows:
        started, changed, status = r.get("submit_intent_time"), r.get("status_change_time"), r["status"]
        took = (changed - started).total_seconds() if status in STEP_ENDED and started and changed and changed >= started else None
        out.append(StepTiming(r["node_key"], tuple(p for p in (r.get("parent_keys") or []) if isinstance(p, str)), status,
                              r.get("step_type"), took, started if status in STEP_ACTIVE else None))
    return out


def of_step_rows(rows: Iterable[Mapping], now: datetime.datetime, defaults: Mapping[str, float] | None = None) -> CriticalPath:
    """The critical path of a workflow's step rows, each step not ended estimated by ``estimates`` (what the monitor
    shows; what the processor would use to raise the priority of the tasks with no slack)."""
    timings = timings_from_step_rows(rows)
    guessed = estimates(timings, defaults)
    return critical_path([replace(t, estimate=guessed.get(t.key)) for t in timings], now)
