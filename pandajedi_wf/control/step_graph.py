"""Which step rows a retry or a rerun touches: the downstream closure over node keys.

Step rows carry two kinds of dependency.  ``parent_keys`` link steps of the same body
(top level, one sub-workflow copy or one loop iteration).  The node key itself says
where a step lives: ``003/001`` is in the body of sub-workflow ``003``, ``004s1i2/001``
in iteration 2 of scatter copy 1 of loop ``004`` (see ``workflow.engine``).  Re-running
a step changes the outcome of the body holding it, hence of that body's container and
of everything downstream of the container; and iteration n+1 of a loop was decided by
iteration n, so later iterations cannot be kept once an earlier one runs again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

_HEAD = re.compile(r"(?P<container>.*?)(?:i(?P<iteration>\d+))?")
_INSTANCE = re.compile(r"(s\d+)?(i\d+)?$")


@dataclass(frozen=True)
class StepView:
    """What a command needs to know of one step row (a DB row dict or any object with these fields)."""

    node_key: str
    status: str
    parent_keys: tuple[str, ...] = ()
    jedi_task_id: int | None = None
    name: str | None = None
    jedi_status: str | None = None  # JEDI_Tasks.status when known: decides retry vs resubmission
    prev_status: str | None = None  # skipped with prev_status 'ready' = skipped because the workflow was finishing


def step_view(record: Any) -> StepView:
    """Accept a row dict, a ``StepView`` or an object with the same attribute names."""
    if isinstance(record, StepView):
        return record
    get = record.get if isinstance(record, dict) else (lambda name, default=None: getattr(record, name, default))
    key, status = get("node_key"), get("status")
    if not isinstance(key, str) or not key:
        raise ValueError(f"step record without a node_key: {record!r}")
    if not isinstance(status, str) or not status:
        raise ValueError(f"step {key}: record without a status")
    parents = get("parent_keys") or ()
    if isinstance(parents, str):
        raise ValueError(f"step {key}: parent_keys must be a list of node keys, got the string {parents!r}")
    task_id = get("jedi_task_id")
    if task_id is None:
        task_id = get("task_id")
    return StepView(
        node_key=key,
        status=status,
        parent_keys=tuple(parents),
        jedi_task_id=int(task_id) if task_id is not None else None,
        name=get("name"),
        jedi_status=get("jedi_status"),
        prev_status=get("prev_status"),
    )


def enclosing(node_key: str) -> tuple[str, int | None] | None:
    """(container key, loop iteration or None) of the body holding ``node_key``; None at top level."""
    if "/" not in node_key:
        return None
    head = node_key.rsplit("/", 1)[0]
    match = _HEAD.fullmatch(head)
    iteration = match.group("iteration")
    return match.group("container"), int(iteration) if iteration is not None else None


def node_path(node_key: str) -> str:
    """The node a step instance belongs to, without scatter and iteration marks: ``004s1i2/001`` -> ``004/001``."""
    return "/".join(_INSTANCE.sub("", segment) for segment in node_key.split("/"))


@dataclass
class StepGraph:
    """Index of one workflow's step rows by key, children and body membership."""

    steps: dict[str, StepView]
    children: dict[str, list[str]] = field(default_factory=dict)
    members: dict[str, list[tuple[str, int | None]]] = field(default_factory=dict)  # container -> (key, iteration)

    @classmethod
    def build(cls, records: Iterable[Any]) -> "StepGraph":
        steps: dict[str, StepView] = {}
        for record in records:
            view = step_view(record)
            if view.node_key in steps:
                raise ValueError(f"step {view.node_key} appears twice")
            steps[view.node_key] = view
        graph = cls(steps, {k: [] for k in steps}, {})
        for key, view in steps.items():
            for parent in view.parent_keys:
                if parent in graph.children:
                    graph.children[parent].append(key)
            where = enclosing(key)
            if where is not None:
                graph.members.setdefault(where[0], []).append((key, where[1]))
        return graph

    def is_container(self, key: str) -> bool:
        """A sub-workflow or loop instance: rows exist inside its body, and it never has a JEDI task."""
        return bool(self.members.get(key))

    def subtree(self, key: str) -> set[str]:
        """``key`` and every row nested in its body, at any depth."""
        found, todo = set(), [key]
        while todo:
            current = todo.pop()
            if current in found:
                continue
            found.add(current)
            todo.extend(member for member, _ in self.members.get(current, ()))
        return found

    def later_iterations(self, container: str, iteration: int) -> set[str]:
        """Rows of iterations after ``iteration`` of loop ``container`` (with everything nested in them)."""
        dropped: set[str] = set()
        for member, it in self.members.get(container, ()):
            if it is not None and it > iteration:
                dropped |= self.subtree(member)
        return dropped

    def first_iteration(self, container: str) -> int | None:
        iterations = [it for _, it in self.members.get(container, ()) if it is not None]
        return min(iterations) if iterations else None


@dataclass
class Closure:
    """Rows to reset, containers to re-open (their body runs again) and loop iterations to drop."""

    reset: set[str]
    reopen: set[str]
    drop: set[str]


def downstream_closure(graph: StepGraph, roots: Iterable[str]) -> Closure:
    """Everything whose outcome may change when ``roots`` run again.

    * children (through ``parent_keys``) of a reset row are reset;
    * a reset container runs its body again: the plain body or the first loop iteration is
      reset, later iterations are dropped;
    * the container enclosing a reset row is re-opened (its body is running again), and its
      own children are reset; in a loop, the iterations after the one holding the row are dropped.
    """
    reset: set[str] = set()
    reopen: set[str] = set()
    drop: set[str] = set()
    todo = [r for r in roots]
    while todo:
        key = todo.pop()
        if key in reset:
            continue
        reset.add(key)
        todo.extend(graph.children.get(key, ()))
        first = graph.first_iteration(key)
        for member, iteration in graph.members.get(key, ()):
            if iteration is None or iteration == first:
                todo.append(member)
        if first is not None:
            drop |= graph.later_iterations(key, first)
        where = enclosing(key)
        while where is not None:
            container, iteration = where
            if iteration is not None:
                drop |= graph.later_iterations(container, iteration)
            if container in reopen or container in reset:
                break
            reopen.add(container)
            todo.extend(graph.children.get(container, ()))
            where = enclosing(container)
    reset -= drop
    reopen -= reset | drop
    return Closure(reset, reopen, drop)
