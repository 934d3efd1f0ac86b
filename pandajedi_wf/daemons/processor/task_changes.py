"""The JEDI task changes the wake-up has looked at, kept for its overlap window (``runner.Processor.wake``).

Kept in the order of their change time (``realModificationTime``): the changes a pass reads after the newest one kept
are all later than it, so appending them keeps the order, and what falls out of the window is a prefix. A pass then
costs what changed, not what is kept: after a burst (a creation pass submits thousands of tasks) the window holds
them all for its length.
"""

from __future__ import annotations

import datetime

from pandajedi_wf.taskbuffer.workflows import TaskChange


class KeptChanges:
    def __init__(self):
        self.by_task: dict[int, TaskChange] = {}  # in order of changed_at

    def __len__(self) -> int:
        return len(self.by_task)

    def get(self, task_id: int) -> TaskChange | None:
        return self.by_task.get(task_id)

    @property
    def newest(self) -> datetime.datetime | None:
        return next(reversed(self.by_task.values())).changed_at if self.by_task else None

    def drop_before(self, since: datetime.datetime) -> None:
        """Forget the changes before ``since`` (out of the window the next read covers)."""
        stale = []
        for task_id, change in self.by_task.items():
            if change.changed_at >= since:
                break
            stale.append(task_id)
        for task_id in stale:
            del self.by_task[task_id]

    def add_later(self, changes: dict[int, TaskChange]) -> None:
        """Changes later than every one kept (read after ``newest``); a task's earlier change is replaced."""
        for task_id, change in sorted(changes.items(), key=lambda item: item[1].changed_at):
            self.by_task.pop(task_id, None)
            self.by_task[task_id] = change

    def replace(self, changes: dict[int, TaskChange]) -> None:
        """The whole window read again (a late commit appeared in it)."""
        self.by_task = dict(sorted(changes.items(), key=lambda item: item[1].changed_at))

    def forget(self, task_ids) -> None:
        for task_id in task_ids:
            self.by_task.pop(task_id, None)
