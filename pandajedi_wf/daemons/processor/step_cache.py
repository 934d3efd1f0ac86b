"""Step rows the processor keeps between passes, so a workflow it alone has touched is not read back again.

Every write to a workflow's steps is made by the processor holding the workflow's lease (user commands are
queued and run by it too), and a pass leaves the rows it wrote in memory exactly as it wrote them. So when this
process claims a workflow whose previous lease was its own last claim, released normally (the claim reports the
lease it replaced: owner gone, ``lock_time`` still our last claim time), nobody else can have written its steps
since, and the kept rows are the database's rows. Any other history (another processor, an expired lease, a
restart) finds no match and the rows are read from the database.

A claim that took over an expired lease may have run beside the lease's holder, so its rows are not kept; and the
holder's rows, kept with its own claim time, no longer match the lease it finds next time.

Only rows whose pass mirrored every write in memory are kept (the processor decides, see ``keep``); values that
belong to one pass (JEDI's view, decisions in progress, task parameters) are cleared before keeping
(``StepRow.end_pass``). The number of rows kept is bounded (the oldest entries make room); a workflow without kept
rows is simply read again.
"""

from __future__ import annotations

import datetime
import threading

from .step_row import StepRow


class StepRowCache:
    def __init__(self, max_rows: int = 600_000):
        self.max_rows = max_rows
        self._entries: dict[int, tuple[datetime.datetime, list[StepRow]]] = {}
        self._rows = 0
        self._lock = threading.Lock()

    def take(self, workflow_id: int, lease_replaced: tuple[datetime.datetime | None, str | None]) -> list[StepRow] | None:
        """The rows kept at our last claim of this workflow, if the lease our claim replaced was that claim's,
        released (owner NULL): then no one else wrote them. The entry is handed over (a pass owns its rows)."""
        with self._lock:
            entry = self._entries.pop(workflow_id, None)
            if entry is None:
                return None
            self._rows -= len(entry[1])
        claimed_at, rows = entry
        previous_time, previous_owner = lease_replaced
        if previous_owner is not None or previous_time != claimed_at:
            return None
        return rows

    def keep(self, workflow_id: int, claimed_at: datetime.datetime, rows: list[StepRow],
             stale_before: datetime.datetime | None = None) -> bool:
        """Keep the rows of a workflow this pass claimed at ``claimed_at`` and whose writes all went through.

        Past ``max_rows``, entries kept before ``stale_before`` make room, oldest first (a workflow another processor
        now handles, or one long gone); if that is not enough the new rows are not kept. Evicting fresh entries
        instead would, when a pass visits more workflows than fit, drop each entry just before its next use."""
        if len(rows) > self.max_rows:
            self.forget(workflow_id)
            return False
        for row in rows:
            row.end_pass()
        with self._lock:
            previous = self._entries.pop(workflow_id, None)
            if previous is not None:
                self._rows -= len(previous[1])
            while self._rows + len(rows) > self.max_rows and self._entries:
                oldest = next(iter(self._entries))  # (dicts keep insertion order: the oldest keep first)
                if stale_before is None or self._entries[oldest][0] >= stale_before:
                    return False
                self._rows -= len(self._entries.pop(oldest)[1])
            self._entries[workflow_id] = (claimed_at, rows)
            self._rows += len(rows)
        return True

    def forget(self, workflow_id: int) -> None:
        with self._lock:
            entry = self._entries.pop(workflow_id, None)
            if entry is not None:
                self._rows -= len(entry[1])

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._rows = 0

    @property
    def rows(self) -> int:
        return self._rows
