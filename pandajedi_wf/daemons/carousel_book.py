"""The carousel's RequestBook over JEDI_DC_REQUESTS (the JEDI agent's book; the benchmark uses MemoryBook).

All SQL is in ``taskbuffer.staging_requests``; this class only binds the cycle's clock and actor to it, so the
core's ``run_cycle`` runs unchanged against the database. It is I/O glue, so it sits with the daemon that uses it,
above both the pure carousel core and the taskbuffer.
"""

from __future__ import annotations

from typing import Iterable

from pandajedi_wf.ddm.adapter import canonical_dataset, spellings
from pandajedi_wf.taskbuffer import staging_requests
from pandajedi_wf.taskbuffer.connection import WfDatabase

from pandajedi_wf.carousel.cycle import RequestBook, RequestRecord


class DbBook(RequestBook):
    def __init__(self, db: WfDatabase, now: float, actor: str):
        self.db = db
        self.now = now
        self.actor = actor

    def records(self, statuses: Iterable[str]) -> list[RequestRecord]:
        return staging_requests.records(self.db, statuses)

    def save(self, record: RequestRecord, status: str, **changes) -> RequestRecord:
        return staging_requests.save(self.db, record, status, changes, self.now, self.actor)


def active_requests(db: WfDatabase, datasets: Iterable[str]) -> dict[str, RequestRecord]:
    """The active request of each canonical dataset name, whichever spelling its row was stored under."""
    found = staging_requests.active_by_dataset(db, [spelling for d in datasets for spelling in spellings(d)])
    return {canonical_dataset(name): rec for name, rec in found.items()}
