"""Our subclass of upstream's AtlasProdWatchDog: its data-carousel provoking cannot release files our carousel holds.

Real: upstream's ``AtlasProdWatchDog.doActionToProvokeDCTasks`` (its lock, ``get_pending_dc_tasks_JEDI``,
``updateInputDatasetsStaged_JEDI``), the task registered through our refiner plugin and fed by upstream's
ContentsFeeder, PostgreSQL.  Simulated: JEDI's DDM, which answers ``get_rules_state`` as Rucio does for a dataset
without rules (all of none OK), the case where upstream's WatchDog releases every file though none is on disk.
"""

from __future__ import annotations

from tests.carousel_db_fixtures import N_FILES, file_statuses, jedi, sql, task_params, wfdb  # noqa: F401

OURS = "wlcg:managed:pandajedi_wf.jedi_agents.prod_watchdog:AtlasProdWatchDog"
UPSTREAMS = "wlcg:managed:pandajedi.jedidog.AtlasProdWatchDog:AtlasProdWatchDog"


def pending_for_an_hour(jedi, ds: str) -> int:
    """A production task with tape input, fed (``pending``, files ``staging``) and left an hour, as provoking wants."""
    jedi.tape_dataset(ds)
    tid = jedi.submit(dict(task_params(f"dc.dog.{ds.split('.')[-2]}", ds), cloud="DEV"))
    jedi.refine()
    jedi.feed()
    assert jedi.task(tid)["status"] == "pending" and file_statuses(jedi.pg, tid) == {"staging": N_FILES}
    sql(jedi.pg, "UPDATE doma_panda.jedi_tasks SET modificationtime=modificationtime - interval '61 minutes' WHERE jeditaskid=%s", tid)
    sql(jedi.pg, "CALL doma_panda.jedi_refresh_min_taskid_by_status()")
    return tid


class SeenPendingTasks:
    """The real task buffer, noting what ``get_pending_dc_tasks_JEDI`` answered (so the test knows the WatchDog got
    its lock and asked, whatever it then did)."""

    def __init__(self, task_buffer):
        self._task_buffer = task_buffer
        self.answers = []

    def get_pending_dc_tasks_JEDI(self, *args, **kwargs):
        self.answers.append(self._task_buffer.get_pending_dc_tasks_JEDI(*args, **kwargs))
        return self.answers[-1]

    def __getattr__(self, name):
        return getattr(self._task_buffer, name)


def provoke(mod_config: str, jedi, wfdb=None) -> list:
    """One ``doActionToProvokeDCTasks`` of the WatchDog a ``[watchdog] modConfig`` entry names, loaded by JEDI's
    factory as its WatchDog agent loads it; what upstream's pending-task read answered it."""
    from pandacommon.pandalogger.PandaLogger import PandaLogger
    from pandajedi.jedicore.FactoryBase import FactoryBase
    from pandajedi.jedicore.MsgWrapper import MsgWrapper

    logger = PandaLogger().getLogger("test_prod_watchdog")
    seen = SeenPendingTasks(jedi.task_buffer)
    factory = FactoryBase(["wlcg"], ["managed"], logger, mod_config)
    factory.initializeMods(seen, jedi.ddm_if)
    dog = factory.getImpl("wlcg", "managed", doRefresh=False)
    assert f"{type(dog).__module__}:{type(dog).__name__}" == mod_config.split(":", 2)[2]
    if wfdb is not None:
        dog.db = wfdb
    dog.doActionToProvokeDCTasks(MsgWrapper(logger))
    # its process lock lives 30 minutes: released here so that the next WatchDog of the test gets it at once
    jedi.task_buffer.unlockProcess_JEDI("wlcg", "managed", None, None, None, "AtlasProdWatchDog.doActionToProvokeDCT", dog.pid)
    return seen.answers


def test_our_watchdog_leaves_the_files_of_a_task_our_carousel_holds_while_upstreams_releases_them(jedi, wfdb):
    tid = pending_for_an_hour(jedi, "mc16:mc16.dog.RAW")

    assert provoke(OURS, jedi, wfdb) == [{tid: ["mc16:mc16.dog.RAW"]}]  # upstream's read found it ...
    assert file_statuses(jedi.pg, tid) == {"staging": N_FILES}  # no rule of ours has put them on disk: kept
    assert ("get_rules_state", "mc16:mc16.dog.RAW") not in jedi.ddm.calls  # ... and upstream's code never saw it

    assert provoke(UPSTREAMS, jedi) == [{tid: ["mc16:mc16.dog.RAW"]}]  # the same task under upstream's WatchDog: every file released, none on disk
    assert ("get_rules_state", "mc16:mc16.dog.RAW") in jedi.ddm.calls
    assert file_statuses(jedi.pg, tid) == {"pending": N_FILES}
