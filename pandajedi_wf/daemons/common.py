"""One cycle of any of our agents: run it, never let it raise into JEDI, and leave a heartbeat behind."""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from dataclasses import dataclass, field
from typing import Callable

from pandajedi_wf.core.clock import utcnow
from pandajedi_wf.taskbuffer import agent_heartbeats
from pandajedi_wf.taskbuffer.connection import WfDatabase


@dataclass
class CycleStats:
    """What one cycle did; stored as the heartbeat's ``stats`` and printed by the benchmarks. Workers of one
    cycle add to it from their threads."""

    counters: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, key: str, value: int = 1) -> None:
        with self._lock:
            self.counters[key] = self.counters.get(key, 0) + value


def process_id() -> str:
    return f"{socket.getfqdn().split('.')[0]}-{os.getpid()}"


def run_cycle(agent: str, db: WfDatabase, cycle: Callable[[WfDatabase, CycleStats], str], log: logging.Logger | None = None) -> bool:
    """Run ``cycle(db, stats) -> message``; return True on success. Exceptions are logged, recorded, swallowed.

    A plugin that raises takes JEDI's whole process group down (FIELD_GUIDE §2), so nothing escapes here.
    """
    log = log or logging.getLogger(f"pandajedi_wf.{agent}")
    stats = CycleStats()
    start = utcnow()
    statements_before = db.statements
    try:
        message = cycle(db, stats) or ""
        status = "ok"
    except Exception as exc:  # the boundary with JEDI: record and carry on next cycle
        status = "failed"
        message = f"{type(exc).__name__}: {exc}"
        log.error(f"{agent} cycle failed: {message}\n{traceback.format_exc()}")
        try:
            db.reconnect(attempts=1)
        except Exception as reconnect_exc:
            log.error(f"{agent} cannot reconnect: {reconnect_exc}")
    stats.counters["db_statements"] = db.statements - statements_before
    end = utcnow()
    stats.counters["cycle_seconds"] = round((end - start).total_seconds(), 3)
    try:
        agent_heartbeats.record_cycle(db, agent, process_id(), socket.getfqdn(), start, end, status, message, stats.counters)
    except Exception as exc:
        log.error(f"{agent} cannot record its heartbeat: {exc}")
    log.info(f"{agent} cycle {status}: {message} {stats.counters}")
    return status == "ok"


def int_options(options: dict[str, str], names, minimum: dict[str, int] | None = None, prefix: str = "") -> dict[str, int]:
    """The integer ``names`` present in ``options`` (panda_jedi.cfg ``[watchdog] wf_processor_<prefix><name>``, the
    ``wf_processor_`` already removed); blank ones are left out, a non-integer or one below its minimum (default 1) is
    refused with the option's full name, so a typo is reported instead of silently defaulted."""
    values = {}
    for name in names:
        raw = options.get(f"{prefix}{name}")
        if raw is None or str(raw).strip() == "":
            continue
        key = f"panda_jedi.cfg [watchdog] wf_processor_{prefix}{name}"
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValueError(f"{key} must be an integer, got {raw!r}") from None
        if value < (minimum or {}).get(name, 1):
            raise ValueError(f"{key} must be positive, got {value}")
        values[name] = value
    return values


def log_failure(log: logging.Logger | None, what: str) -> None:
    """An exception a cycle contains (one workflow, one request) still leaves its traceback in JEDI's log; the
    user sees ``what`` where they look (an error dialog, the heartbeat)."""
    (log or logging.getLogger("pandajedi_wf")).error(f"{what}\n{traceback.format_exc()}")
