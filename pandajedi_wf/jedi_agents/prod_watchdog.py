"""Upstream's ATLAS production WatchDog, unable to release the tape files our carousel still holds.

``AtlasProdWatchDog.doAction`` always runs ``doActionToProvokeDCTasks``: every ``pending`` production task with
``IS=1`` untouched for an hour gets all its ``staging`` files released (``updateInputDatasetsStaged_JEDI``) as soon as
every Rucio rule on its inputs is OK, whoever made them, and also when there is no rule at all.  For a task our carousel
stages that would hand jobs files not on disk yet.  This subclass (a ``[watchdog] modConfig`` entry in place of
upstream's) runs upstream's code unchanged except that the pending tasks it is given leave out those our carousel holds
(``taskbuffer.carousel_jedi.held_by_our_carousel``, ``carousel.task_routing.provokable``).  Everything else the
production WatchDog does is upstream's.
"""

from __future__ import annotations

from pandajedi.jedidog.AtlasProdWatchDog import AtlasProdWatchDog as UpstreamAtlasProdWatchDog

from pandajedi_wf.carousel.task_routing import provokable
from pandajedi_wf.taskbuffer import carousel_jedi
from pandajedi_wf.taskbuffer.connection import WfDatabase


class _PendingTasksWithoutOurs:
    """The task buffer as ``doActionToProvokeDCTasks`` sees it: its pending data-carousel tasks minus ours."""

    def __init__(self, task_buffer, db: WfDatabase):
        self._task_buffer = task_buffer
        self._db = db

    def get_pending_dc_tasks_JEDI(self, *args, **kwargs):
        pending = self._task_buffer.get_pending_dc_tasks_JEDI(*args, **kwargs)
        if not pending:
            return pending
        return provokable(pending, carousel_jedi.held_by_our_carousel(self._db, list(pending)))

    def __getattr__(self, name):
        return getattr(self._task_buffer, name)


class AtlasProdWatchDog(UpstreamAtlasProdWatchDog):
    db: WfDatabase | None = None

    def doActionToProvokeDCTasks(self, gTmpLog):
        if self.db is None:
            self.db = WfDatabase()
        task_buffer = self.taskBufferIF
        self.taskBufferIF = _PendingTasksWithoutOurs(task_buffer, self.db)
        try:
            return UpstreamAtlasProdWatchDog.doActionToProvokeDCTasks(self, gTmpLog)
        finally:
            self.taskBufferIF = task_buffer
