"""Incremental live updates: which steps changed since the version a page already shows.

The server keeps, per workflow it was asked about, the state it last saw of each step (status, JEDI task and its
status, error, skip reason) and the version at which each one last changed. A page holds a cursor
``<epoch>.<version>``; a poll answers only the steps changed after that version, so a 2,000-step page that watches one
task move receives that one step. The versions are the server's own counter, not database times, so no clock skew
between processors, JEDI and the monitor can hide a change. A cursor from another server process (another epoch), or
from a workflow evicted from the bounded memory, gets everything once and then increments again.

Pure bookkeeping (no I/O); ``collect.workflow_live`` feeds it the rows it reads.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Hashable, Mapping

_EPOCHS = itertools.count(1)


@dataclass
class _Seen:
    version: int = 0
    state: dict[Hashable, tuple] = field(default_factory=dict)
    changed_at: dict[Hashable, int] = field(default_factory=dict)


class LiveVersions:
    """Versions of what the pages of up to ``max_workflows`` workflows show (least recently asked ones forgotten)."""

    def __init__(self, max_workflows: int = 256, epoch: str | None = None):
        self.max_workflows = max_workflows
        self.epoch = epoch or f"{os.getpid():x}{int(time.time()):x}{next(_EPOCHS)}"
        self._seen: OrderedDict[int, _Seen] = OrderedDict()

    def advance(self, workflow_id: int, state: Mapping[Hashable, tuple], since: str | None) -> tuple[str, list[Hashable] | None]:
        """Record ``state`` (item -> comparable tuple) as the workflow's current one; return the new cursor and the
        items changed (or gone) after ``since``, or None when the caller must take everything (no or foreign cursor)."""
        seen = self._seen.pop(workflow_id, None) or _Seen()
        self._seen[workflow_id] = seen
        while len(self._seen) > self.max_workflows:
            self._seen.popitem(last=False)
        fresh = not seen.state and seen.version == 0
        changed = [k for k, v in state.items() if seen.state.get(k) != v]
        gone = [k for k in seen.state if k not in state]
        if changed or gone or fresh:
            seen.version += 1
            for k in changed + gone:
                seen.changed_at[k] = seen.version
            for k in gone:
                seen.state.pop(k, None)
            seen.state.update({k: state[k] for k in changed})
        cursor = f"{self.epoch}.{seen.version}"
        asked = self._version_of(since)
        if asked is None or fresh or asked > seen.version:
            return cursor, None
        return cursor, sorted((k for k, v in seen.changed_at.items() if v > asked), key=str)

    def _version_of(self, since: str | None) -> int | None:
        if not since or "." not in since:
            return None
        epoch, _, version = since.rpartition(".")
        if epoch != self.epoch or not version.isdigit():
            return None
        return int(version)
