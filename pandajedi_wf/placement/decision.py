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

The answer keeps the candidates of least cost (ties all kept, in upstream's order, so upstream's weights still choose
among them); it keeps all of upstream's candidates when there is nothing to follow (no parents, or every candidate
costs the same). It never adds a site upstream rejected: when the storage holding the most input serves none of the
candidates, the reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Placement:
    chosen: tuple[str, ...]  # candidates to keep, in upstream's order
    moved: Mapping[str, int]  # candidate -> bytes that move if it runs there
    restricted: bool  # fewer candidates kept than upstream gave
    reason: str
    best_storage: str | None = None  # the storage holding (or about to hold) most of the input


def _moved_to(storage: str, parents: Sequence[ParentOutput]) -> Fraction:
    total = Fraction(0)
    for p in parents:
        total += sum(b for s, b in p.bytes_at.items() if s != storage)
        pending = p.pending_bytes
        if pending:
            total += pending
            if storage in p.writing_at:
                total -= Fraction(pending, len(p.writing_at))
    return total


def bytes_to_move(storage: str, parents: Sequence[ParentOutput]) -> int:
    """Bytes of all ``parents``' output (finished, and expected from running ones) that must reach ``storage``."""
    return round(_moved_to(storage, parents))


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


def decide(candidates: Mapping[str, str], parents: Sequence[ParentOutput]) -> Placement:
    """``candidates``: upstream's candidate name -> the storage it reads from (ordered as upstream gave them)."""
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
    least = min(moved.values())
    chosen = tuple(n for n in names if moved[n] == least)
    if len(chosen) == len(names):
        return Placement(names, moved, False, f"every candidate moves {moved[names[0]]} B of parents {ids}: upstream's candidates kept", best)
    worst = max(moved.values())
    reason = f"follows the data of parents {ids}: {','.join(chosen)} moves {moved[chosen[0]]} B, the others up to {worst} B"
    if best not in {candidates[n] for n in names}:
        reason += f"; {best} holds most input but serves none of upstream's candidates"
    return Placement(chosen, moved, True, reason, best)


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
