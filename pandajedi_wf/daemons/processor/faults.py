"""Crash tests only: ``PANDAJEDI_WF_FAULT_POINT=<point>[:<n>]`` makes the process SIGKILL itself the n-th time (default
the first) it reaches that point, as a node failure or the OOM killer would; unset, ``fault_point`` does nothing."""

from __future__ import annotations

import os
import signal

FAULT_POINT_ENV = "PANDAJEDI_WF_FAULT_POINT"
FAULT_POINTS = (
    "batch_decided",  # a batch's decisions made, nothing of them written
    "write_transaction",  # inside the batch's write transaction, before its commit
    "jedi_accepted",  # JEDI took a task (new intent or crash repair), its answer not yet recorded
    "lease_release",  # everything written and submitted, the batch's leases not yet released
)
_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    wanted = os.environ.get(FAULT_POINT_ENV)
    if not wanted or wanted.partition(":")[0] != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(wanted.partition(":")[2] or 1):
        os.kill(os.getpid(), signal.SIGKILL)
