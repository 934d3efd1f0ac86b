"""Run one cycle of upstream JEDI agents inside this process, as JediMaster's children would.

JediMaster forks agents that talk to the DB through an IPC proxy; tests and the demo
want the same upstream code synchronously and observable. These functions build the
agent objects the way their ``launcher`` does and run one pass of their worker threads
in the calling thread. Import only after ``panda_home.activate()``.
"""

from __future__ import annotations

import threading

from pandajedi.jedicore import ThreadUtils
from pandajedi.jedicore.ThreadUtils import ListWithLock, ThreadPool


def make_zombie_cleaner_harmless() -> None:
    """``JediKnight.__init__`` starts a non-daemon ZombieCleaner thread that loops forever,
    which would keep a test process alive after the tests end: make it a daemon thread."""
    cls = ThreadUtils.ZombieCleaner
    if getattr(cls, "_pandajedi_wf_daemon", False):
        return
    original_init = cls.__init__

    def daemon_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.daemon = True

    cls.__init__ = daemon_init
    cls._pandajedi_wf_daemon = True



# upstream's statements PostgreSQL 16+ accepts but 15 (Debian 12's, our test cluster) refuses: a subquery in FROM
# without an alias. Each is given one, on a PostgreSQL older than 16 only; nothing else of the statement changes.
_UNALIASED_SUBQUERIES = {
    # metrics_module.get_task_failure_metrics, which retryTask_JEDI runs first (TaskCommando's retry)
    ") /* JediDBProxy.get_task_failure_metrics */": ") tab_metrics /* JediDBProxy.get_task_failure_metrics */",
}


def accept_postgres16_sql() -> None:
    """Let upstream's ``WrappedCursor`` run, on the test cluster's PostgreSQL 15, the few statements of upstream 1.0.4
    written for Oracle and PostgreSQL 16+ that need an alias on 15 (``_UNALIASED_SUBQUERIES``); without it every
    ``retryTask_JEDI`` aborts its transaction there. Idempotent."""
    from pandaserver.taskbuffer.WrappedCursor import WrappedCursor

    if getattr(WrappedCursor, "_pandajedi_wf_pg16_sql", False):
        return
    original = WrappedCursor.execute

    def execute(self, sql, varDict=None, cur=None):
        if self.backend == "postgres" and self.conn.server_version < 160000:
            for tail, aliased in _UNALIASED_SUBQUERIES.items():
                if sql.endswith(tail):
                    sql = sql[: -len(tail)] + aliased
        return original(self, sql, varDict, cur)

    WrappedCursor.execute = execute
    WrappedCursor._pandajedi_wf_pg16_sql = True


class LocalDDMInterface:
    """What ``DDMInterface`` hands to agents, without forking a DDM process: the same
    client class per VO as ``[ddm] modConfig`` (``GenDDMClient`` for wlcg), in-process."""

    def __init__(self, clients: dict[str, object] | None = None):
        if clients is None:
            from pandajedi.jediddm.GenDDMClient import GenDDMClient

            clients = {"any": GenDDMClient(None)}
        self.clients = dict(clients)

    def getInterface(self, vo, group=None):
        return self.clients.get(vo, self.clients.get("any"))


_refiner_lock = threading.Lock()


def refine_tasks(task_buffer, vo: str, prod_source_label: str, ddm_if=None, mod_config: str | None = None) -> list[int]:
    """One TaskRefiner cycle for ``vo``/``prod_source_label``: tasks in DEFT T_TASK become
    JEDI tasks (``defined``, or ``staging``/``pending``/``tobroken`` as upstream decides).
    ``mod_config``: another ``[taskrefine] modConfig`` than panda_jedi.cfg's (e.g. a site's before it named our
    refiner plugin). Returns the jediTaskIDs that were picked up."""
    make_zombie_cleaner_harmless()
    from pandajedi.jediorder.TaskRefiner import TaskRefiner, TaskRefinerThread
    from pandaserver.taskbuffer.DataCarousel import DataCarouselInterface

    ddm_if = ddm_if if ddm_if is not None else LocalDDMInterface()
    with _refiner_lock:
        refiner = TaskRefiner(None, task_buffer, ddm_if, vo, prod_source_label)
        if mod_config is not None:
            refiner.modConfig = mod_config
        refiner.initializeMods(task_buffer, ddm_if)
        tasks = task_buffer.getTasksToRefine_JEDI(vo, prod_source_label)
        if tasks is None:
            raise RuntimeError(f"getTasksToRefine_JEDI({vo!r}, {prod_source_label!r}) failed: see the JEDI logs in $PANDA_HOME/log")
        worker = TaskRefinerThread(
            ListWithLock(list(tasks)), ThreadPool(), task_buffer, ddm_if, refiner, task_buffer.getWorkQueueMap(), DataCarouselInterface(task_buffer)
        )
        worker.runImpl()
    return [row[0] for row in tasks]


def feed_contents(task_buffer, vo: str, prod_source_label: str, ddm_if) -> list[int]:
    """One ContentsFeeder pass, as its agent runs one (ContentsFeeder.start's loop body, its worker in this thread): the
    files of the tasks' input datasets from DDM into JEDI_Dataset_Contents. Returns the jediTaskIDs fed. JEDI's
    query reads JEDI_AUX_Status_MinTaskID: refresh it first (what pg_cron runs)."""
    import os

    from pandajedi.jediorder.ContentsFeeder import ContentsFeederThread

    make_zombie_cleaner_harmless()
    datasets = task_buffer.getDatasetsToFeedContents_JEDI(vo, prod_source_label)
    if datasets is None:
        raise RuntimeError(f"getDatasetsToFeedContents_JEDI({vo!r}, {prod_source_label!r}) failed: see the JEDI logs in $PANDA_HOME/log")
    ContentsFeederThread(ListWithLock(list(datasets)), ThreadPool(), task_buffer, ddm_if, f"pandajedi_wf-dev-{os.getpid()}-con").runImpl()
    return [task_id for task_id, _ in datasets]


def execute_task_commands(task_buffer, vo: str, prod_source_label: str, ddm_if=None) -> list[tuple[int, str]]:
    """One TaskCommando cycle, as its agent runs one (TaskCommando.start's loop body, its worker in this thread): the
    commands in DEFT PRODSYS_COMM are picked up (``getTasksToExecCommand_JEDI``: ``finishing``, ``toretry``, ...) and
    executed (kill/finish: no jobs left -> ``toabort``/``passed``; retry: ``retryTask_JEDI``). Returns (jediTaskID,
    command) of each command executed."""
    import os

    from pandajedi.jediorder.TaskCommando import TaskCommandoThread

    make_zombie_cleaner_harmless()
    accept_postgres16_sql()
    commands = task_buffer.getTasksToExecCommand_JEDI(vo, prod_source_label)
    if commands is None:
        raise RuntimeError(f"getTasksToExecCommand_JEDI({vo!r}, {prod_source_label!r}) failed: see the JEDI logs in $PANDA_HOME/log")
    ddm_if = ddm_if if ddm_if is not None else LocalDDMInterface()
    TaskCommandoThread(ListWithLock(list(commands)), ThreadPool(), task_buffer, ddm_if, f"pandajedi_wf-dev-{os.getpid()}-dog").runImpl()
    return [(task_id, command["command"]) for task_id, command in commands]


def post_process(task_buffer, vo: str, prod_source_label: str, ddm_if=None) -> list[int]:
    """One PostProcessor pass, as its agent runs one (PostProcessor.start's loop body, its worker in this thread): tasks
    ``passed``/``toabort``/``prepared``/... are ended ``done``/``finished``/``failed``/``aborted`` by the post-processor
    JEDI's factory loads from ``[postprocessor] modConfig``. JEDI's query reads JEDI_AUX_Status_MinTaskID: refresh it
    first (what pg_cron runs). Returns the jediTaskIDs post-processed."""
    from pandajedi.jediconfig import jedi_config
    from pandajedi.jediorder.PostProcessor import PostProcessor, PostProcessorThread

    make_zombie_cleaner_harmless()
    ddm_if = ddm_if if ddm_if is not None else LocalDDMInterface()
    factory = PostProcessor(None, task_buffer, ddm_if, vo, prod_source_label)
    factory.initializeMods(task_buffer, ddm_if)
    targets = task_buffer.prepareTasksToBeFinished_JEDI(vo, prod_source_label, jedi_config.postprocessor.nTasks, pid=factory.pid)
    tasks = task_buffer.getTasksToBeFinished_JEDI(vo, prod_source_label, factory.pid, jedi_config.postprocessor.nTasks, target_tasks=targets)
    if tasks is None:
        raise RuntimeError(f"getTasksToBeFinished_JEDI({vo!r}, {prod_source_label!r}) failed: see the JEDI logs in $PANDA_HOME/log")
    PostProcessorThread(ListWithLock(list(tasks)), ThreadPool(), task_buffer, ddm_if, factory).runImpl()
    return [task.jediTaskID for task in tasks]
