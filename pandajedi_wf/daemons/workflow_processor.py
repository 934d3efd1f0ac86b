"""The workflow processor's JEDI cycle: one ``Processor`` per process, driven by the WatchDog plugin.

The work is in ``daemons.processor`` (see its package docstring); this module holds the process's processor, whose
caches live as long as the JEDI process, and the two calls the plugin and the tools make.
"""

from __future__ import annotations

from .processor import ACTIVE_WORKFLOW_STATUSES, NOTHING_DUE, Processor, ProcessorSettings, collector_paused
from .processor.faults import FAULT_POINT_ENV, FAULT_POINTS

PROCESSOR = Processor()


def cycle(db, stats, task_buffer, now=None, owner=None, settings: ProcessorSettings | None = None, junction_results=None,
          wake: bool = True, log=None) -> str:
    """One batch of due workflows (``Processor.cycle``)."""
    return PROCESSOR.cycle(db, stats, task_buffer, now=now, owner=owner, settings=settings, junction_results=junction_results,
                           wake=wake, log=log)


def cycle_all(db, stats, task_buffer, now=None, owner=None, settings: ProcessorSettings | None = None, junction_results=None,
              log=None) -> str:
    """Every due workflow, batch after batch, within ``settings.pass_seconds`` (``Processor.run_pass``)."""
    return PROCESSOR.run_pass(db, stats, task_buffer, now=now, owner=owner, settings=settings, junction_results=junction_results,
                              log=log)


__all__ = ["ACTIVE_WORKFLOW_STATUSES", "FAULT_POINTS", "FAULT_POINT_ENV", "NOTHING_DUE", "PROCESSOR", "ProcessorSettings",
           "collector_paused", "cycle", "cycle_all"]
