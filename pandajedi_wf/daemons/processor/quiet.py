"""Workflows decided with nothing to change, so that a pass does not walk them again while nothing changed.

A decision depends on the workflow's rows (written only by the processor holding its lease, as the step cache relies
on), its queued commands, the clock (a held retry falls due) and JEDI's statuses of the tasks its steps follow. When a
decision changed nothing, the processor keeps a ``Quiet`` note: the JEDI statuses it read and when the next held
retry falls due. Due again with its lease still the one of that claim, released (the same rule as ``step_cache``),
with no command queued and no retry due, the workflow's followed tasks are read in bulk with the batch's others while
the batch's rows are locked; if every status is what the note says, the engine would decide the same nothing again,
so the workflow only backs off: no lease, no rows read, no decision. A note is small (a few task ids), so every
active workflow can have one.
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass

from pandajedi_wf.workflow.lifecycles import STEP_ACTIVE

from .retries import is_held
from .step_row import needs_results


@dataclass(frozen=True, slots=True)
class Quiet:
    claimed_at: datetime.datetime
    tasks: tuple[tuple[int, str | None], ...]  # (JEDI task id, its status as read) of every task followed
    due: datetime.datetime | None  # the earliest held retry's due time: the workflow must be decided then

    def unchanged(self, states: dict[int, tuple[str | None, str | None]], now: datetime.datetime) -> bool:
        """Nothing the decision read has changed: no retry due, every followed task in the status it had."""
        if self.due is not None and self.due <= now:
            return False
        return all(states.get(task_id, (None, None))[0] == status for task_id, status in self.tasks)


class QuietBook:
    def __init__(self, max_entries: int = 1_000_000):
        self.max_entries = max_entries
        self._notes: dict[int, Quiet] = {}
        self._lock = threading.Lock()

    def take(self, workflow_id: int, lease_replaced: tuple[datetime.datetime | None, str | None]) -> Quiet | None:
        """The note of our last claim of this workflow, if the lease our claim replaced was that claim's, released."""
        with self._lock:
            note = self._notes.pop(workflow_id, None)
        previous_time, previous_owner = lease_replaced
        if note is None or previous_owner is not None or previous_time != note.claimed_at:
            return None
        return note

    def keep(self, workflow_id: int, note: Quiet) -> None:
        with self._lock:
            if len(self._notes) >= self.max_entries and workflow_id not in self._notes:
                return  # full: this workflow is simply decided again next time
            self._notes[workflow_id] = note

    def clear(self) -> None:
        with self._lock:
            self._notes.clear()

    def __len__(self) -> int:
        return len(self._notes)


def note_of(workflow_status: str, rows: list, now) -> Quiet | None:
    """What a decision that changed nothing depended on, or None where a pass must look again anyway: a cancelling
    workflow (its kills are repeated), a loop waiting for a junction's results, a step left ``submitting``."""
    if workflow_status == "cancelling":
        return None
    tasks, due = [], None
    for s in rows:
        if s.status == "submitting" or needs_results(s):
            return None
        held = is_held(s)
        if held:
            due = s.retry_after if due is None else min(due, s.retry_after)
        if s.jedi_task_id and (s.status in STEP_ACTIVE or held):
            tasks.append((int(s.jedi_task_id), s.jedi_status))
    return Quiet(now, tuple(tasks), due)
