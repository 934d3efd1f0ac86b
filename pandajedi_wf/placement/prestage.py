"""Workflow-level pre-staging: which tape-resident inputs of a workflow's later steps to recall when it starts, and by when.

Pure (plain data in, plain data out; no clock read, no I/O). The workflow processor gathers the steps from the
definition and asks DDM which inputs are on tape only (``daemons/processor/prestages.py``); the carousel admits the
requests behind every request a waiting task needs, in ``need_by`` order (``carousel/admission.prestage_order``).

A step's *earliest start* is the workflow's start plus the longest chain of estimated step durations leading to it
(its ancestors, with the nesting rules of ``workflow.critical_path``: a body step follows its sub-workflow, scatter or
loop container, a step depending on a container follows the container's whole body; a container costs nothing
itself). A step without an estimate costs ``PrestagePolicy.default_step_seconds``.

For each tape-resident input of a *later* step (one with at least one leaf step among its ancestors: a step that can
start when the workflow starts is submitted at once and its inputs go through the carousel's ordinary intake), the
plan says: the dataset, ``ready_at`` = the step's earliest start (when the data should be on disk), ``need_by`` =
``ready_at`` minus the estimated staging time (when the recall should start; it may lie before the workflow's start:
the request is already late and sorts first), and the steps that read it. A dataset read by several steps is
recalled once, for the one that needs it first; a dataset a step starting at once also reads is left to that step's
ordinary staging (the later step's task attaches to the same request).

Loops: the next iterations of a loop are not steps yet (the engine draws them one by one), so a loop's body costs
one iteration and an input of a loop body is needed by the *first* iteration; a step after a loop is therefore
estimated early, which only makes its recall early. Scatter: the copies are not steps yet either; the scatter step
(or its body) is listed once and each of its tape inputs is needed when its first copy may start.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from pandajedi_wf.workflow.critical_path import CriticalPathError, container_of, effective_parents, topological_order
from pandajedi_wf.workflow.model import Workflow
from pandajedi_wf.workflow.step_params import TAKES_STEP_OUTPUT

__all__ = ["CriticalPathError", "PlannedStep", "Prestage", "PrestagePolicy", "StepInput", "earliest_starts",
           "plan_prestages", "staging_seconds", "steps_of_definition"]


@dataclass(frozen=True)
class StepInput:
    """An input dataset of a step that no parent step makes (named in the definition or its workflow's inputs)."""

    dataset: str
    on_tape: bool  # only on tape: it needs a recall before the step's jobs can read it
    bytes: int = 0
    files: int = 0
    stage_seconds: float | None = None  # the caller's own estimate of its recall time (else the policy's)


@dataclass(frozen=True)
class PlannedStep:
    """One step of the definition. ``key`` uses the engine's ``/``-nesting (``007/001`` is in the body of ``007``)."""

    key: str
    parents: tuple[str, ...] = ()
    inputs: tuple[StepInput, ...] = ()
    duration: float | None = None  # estimated seconds of one run (``critical_path.estimates``); None: unknown
    container: bool = False  # a sub-workflow, scatter or loop step whose body is listed: it costs nothing itself


@dataclass(frozen=True)
class PrestagePolicy:
    default_step_seconds: float = 3600.0  # a step without an estimate
    tape_latency_seconds: float = 3600.0  # mount, seek and the queue in front of the tape
    bytes_per_second: float = 100e6  # recall throughput one request gets


@dataclass(frozen=True)
class Prestage:
    dataset: str
    need_by: datetime.datetime  # when the recall should start: ready_at - stage_seconds
    ready_at: datetime.datetime  # the first reading step's estimated earliest start
    step: str  # the step that reads it first
    steps: tuple[str, ...]  # every step reading it, first reader first
    stage_seconds: float
    bytes: int = 0
    files: int = 0


def staging_seconds(item: StepInput, policy: PrestagePolicy = PrestagePolicy()) -> float:
    """Estimated recall time of one dataset: the caller's estimate, else latency plus bytes at the policy's rate."""
    if item.stage_seconds is not None:
        return max(float(item.stage_seconds), 0.0)
    rate = policy.bytes_per_second if policy.bytes_per_second > 0 else 1.0
    return policy.tape_latency_seconds + max(item.bytes, 0) / rate


def _checked(steps: Iterable[PlannedStep]) -> dict[str, PlannedStep]:
    by_key: dict[str, PlannedStep] = {}
    for s in steps:
        if s.key in by_key:
            raise CriticalPathError(f"step {s.key!r} is listed twice")
        if s.duration is not None and s.duration < 0:
            raise CriticalPathError(f"step {s.key!r} has a negative duration")
        by_key[s.key] = s
    return by_key


def _cost(step: PlannedStep, containers: frozenset[str], policy: PrestagePolicy) -> float:
    if step.container or step.key in containers:
        return 0.0
    return float(step.duration) if step.duration is not None else policy.default_step_seconds


def earliest_starts(steps: Iterable[PlannedStep], policy: PrestagePolicy = PrestagePolicy()) -> dict[str, float]:
    """Seconds from the workflow's start to the earliest start of each step (raises ``CriticalPathError`` on a cycle)."""
    by_key = _checked(steps)
    keys = frozenset(by_key)
    containers = frozenset(c for c in (container_of(k, keys) for k in keys) if c is not None)
    parents = effective_parents({k: s.parents for k, s in by_key.items()})
    start: dict[str, float] = {}
    for key in topological_order(parents):
        start[key] = max((start[p] + _cost(by_key[p], containers, policy) for p in parents[key]), default=0.0)
    return start


def _later_steps(by_key: dict[str, PlannedStep], parents: dict[str, list[str]], order: list[str],
                 containers: frozenset[str]) -> set[str]:
    """Steps with a leaf step among their ancestors: they wait for a run, not only for the workflow's start."""
    later: set[str] = set()
    for key in order:
        if any(p in later or not (by_key[p].container or p in containers) for p in parents[key]):
            later.add(key)
    return later


def plan_prestages(steps: Iterable[PlannedStep], start: datetime.datetime,
                   policy: PrestagePolicy = PrestagePolicy()) -> list[Prestage]:
    """The recalls to request when the workflow starts at ``start``, earliest ``need_by`` first (module doc)."""
    by_key = _checked(steps)
    keys = frozenset(by_key)
    containers = frozenset(c for c in (container_of(k, keys) for k in keys) if c is not None)
    parents = effective_parents({k: s.parents for k, s in by_key.items()})
    order = topological_order(parents)
    offset = earliest_starts(by_key.values(), policy)
    later = _later_steps(by_key, parents, order, containers)

    at_once = {i.dataset for k in order if k not in later for i in by_key[k].inputs if i.on_tape}
    found: dict[str, tuple[float, str, StepInput, list[tuple[float, str]]]] = {}
    for key in order:
        if key not in later:
            continue
        for item in by_key[key].inputs:
            if not item.on_tape or item.dataset in at_once:
                continue
            at = offset[key]
            if item.dataset not in found:
                found[item.dataset] = (at, key, item, [(at, key)])
                continue
            first_at, first_key, first_item, readers = found[item.dataset]
            readers.append((at, key))
            if (at, key) < (first_at, first_key):
                found[item.dataset] = (at, key, item, readers)

    plan = []
    for dataset, (at, key, item, readers) in found.items():
        stage = staging_seconds(item, policy)
        ready_at = start + datetime.timedelta(seconds=at)
        plan.append(Prestage(
            dataset=dataset,
            need_by=ready_at - datetime.timedelta(seconds=stage),
            ready_at=ready_at,
            step=key,
            steps=tuple(k for _, k in sorted(set(readers))),
            stage_seconds=stage,
            bytes=max(item.bytes, 0),
            files=max(item.files, 0),
        ))
    plan.sort(key=lambda p: (p.need_by, p.dataset))
    return plan


def _datasets(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, str) and v]


def steps_of_definition(workflow: Workflow, durations: Mapping[str, float] | None = None,
                        bytes_of: Mapping[str, int] | None = None) -> list[PlannedStep]:
    """A parsed definition as ``PlannedStep``s: keys as the engine's (``007/001`` in the body of ``007``, without scatter
    or iteration marks), parents, and as inputs the datasets a step reads that no step makes (literal values and the
    values given to the workflow, through sub-workflow inputs; a loop's first iteration). Whether an input is only on
    tape is DDM's to say: each is listed ``on_tape`` (a candidate) and the carousel finds out when it takes it in.
    ``durations`` gives the estimate of a step type (``prun``, ...), ``bytes_of`` a dataset's size when known."""
    found: list[PlannedStep] = []
    _walk_body(workflow, "", workflow.inputs, durations or {}, bytes_of or {}, found)
    return found


def _walk_body(body: Workflow, prefix: str, values: Mapping[str, Any], durations: Mapping[str, float], bytes_of: Mapping[str, int],
               found: list[PlannedStep]) -> None:
    """One body's steps into ``found``, its sub-workflows' after their node. (A module function, not a closure that
    calls itself: such a closure is a reference cycle holding every step it made, which the processor, running its
    pass with the cyclic collector off, would keep until its hourly collection.)"""
    tag = {n.id: f"{prefix}{n.id:03d}" for n in body.nodes}
    for node in body.nodes:
        resolved: dict[str, Any] = {}
        for inp in node.inputs.values():
            if not inp.sources:
                resolved[inp.name] = inp.default
                continue
            outer = [values.get(src) for src, parent in zip(inp.sources, inp.parents or [None] * len(inp.sources)) if parent is None]
            flat = [d for v in outer for d in (v if isinstance(v, list) else [v])]
            resolved[inp.name] = flat if inp.is_list or len(flat) != 1 else flat[0]
        key = tag[node.id]
        parents = tuple(tag[p] for p in node.parents if p in tag)
        if node.sub_workflow is not None:
            found.append(PlannedStep(key, parents, container=True))
            _walk_body(node.sub_workflow, f"{key}/", {**node.sub_workflow.inputs, **{k: v for k, v in resolved.items() if v is not None}},
                       durations, bytes_of, found)
            continue
        names = dict.fromkeys(d for name in sorted(TAKES_STEP_OUTPUT) for d in _datasets(resolved.get(name)))
        inputs = tuple(StepInput(d, True, int(bytes_of.get(d, 0))) for d in names)
        found.append(PlannedStep(key, parents, inputs, durations.get(node.type)))
