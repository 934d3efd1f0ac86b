"""Plain records the carousel policies read: a queued staging request and the current load."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Load:
    """Files and bytes counted against a window (a tape, a user)."""

    files: int = 0
    bytes: int = 0

    def plus(self, files: int, n_bytes: int) -> Load:
        return Load(self.files + files, self.bytes + n_bytes)


@dataclass(frozen=True)
class StagingRequest:
    """One dataset to bring from tape to a destination disk, as admission sees it."""

    request_id: int
    dataset: str
    n_files: int
    n_bytes: int
    user: str
    gshare: str
    destination: str
    sources: tuple[str, ...] = ()  # candidate tape RSEs holding a complete replica
    on_disk: bool = False  # a complete disk replica exists: pin it, recall nothing
    task_priority: int = 1000
    created_at: float = 0.0  # seconds since the epoch
    share_rank: int = 999  # JEDI global-share rank (1 = first); breaks fair-share ties
    need_by: float | None = None  # a workflow's pre-stage no task waits on yet: when its recall should start (epoch)


@dataclass(frozen=True)
class CarouselLoad:
    """What is already committed, summed from the requests in flight (see ``cycle.current_load``)."""

    tapes: Mapping[str, Load] = field(default_factory=dict)  # files/bytes not yet on disk, per source tape
    users: Mapping[str, Load] = field(default_factory=dict)  # same, per user
    shares: Mapping[str, int] = field(default_factory=dict)  # bytes not yet on disk, per global share
    buffers: Mapping[str, int] = field(default_factory=dict)  # bytes reserved per destination (in flight + done)
    throughput: Mapping[str, float] = field(default_factory=dict)  # measured bytes/s per tape
