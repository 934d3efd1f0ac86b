"""The data carousel cycle: admit queued staging requests, follow rules, release files and tasks."""

from __future__ import annotations

from pandajedi_wf.taskbuffer.connection import WfDatabase

from .common import CycleStats


def cycle(db: WfDatabase, stats: CycleStats) -> str:
    rows = db.query(f"SELECT status, COUNT(*) FROM {db.table('JEDI_DC_REQUESTS')} GROUP BY status")
    counts = {status: int(n) for status, n in rows}
    for status, n in counts.items():
        stats.add(f"requests_{status}", n)
    return f"staging requests by status: {counts}"
