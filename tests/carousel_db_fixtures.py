"""Helpers for the carousel DB tests: real JEDI tasks with tape inputs, built through upstream PanDA.

Tasks are submitted with ``insertTaskParamsPanda`` and refined by upstream's TaskRefiner loaded by JEDI's factory from
the test panda_jedi.cfg, where label ``managed`` names our refiner plugin over upstream's GenTaskRefiner
(``pandajedi_wf.jedi_agents.task_refiner``): it registers the input dataset with the ``IS=1`` split rule.  A task
``parked`` in ``staging`` is one upstream's refiner alone (the site's configuration before it named our plugin) parked
there because its parameters say ``toStaging``: splitRule NULL, no datasets, as upstream leaves it.  One step is done in
SQL, on purpose and only this one: the files of a registered task are inserted in JEDI_Dataset_Contents as ``staging``,
exactly as upstream's ContentsFeeder's ``insertFilesForDataset_JEDI`` does for inputPreStaging (the end-to-end test
``tests/test_e2e_carousel_refine.py`` runs the real ContentsFeeder over a simulated JEDI DDM instead).
"""

from __future__ import annotations

import json
import re

import pytest

from pandajedi_wf_dev.simulators.tape import SimDataset, TapeEndpoint, TapeSimulator
from pandajedi_wf.taskbuffer.connection import WfDatabase

T0 = 1_750_000_000.0  # simulated epoch start
GB = 10**9
N_FILES = 5  # files of a dataset the JEDI agents see (``jedi``)


class RefinerDDM:
    """The DDMClient calls upstream's TaskRefiner makes for a task whose input dataset is only on tape."""

    def expandContainer(self, name, *args, **kwargs):
        return [name.rstrip("/")]

    def listDatasets(self, name, *args, **kwargs):
        return [name.rstrip("/")]

    def listDatasetReplicas(self, name, *args, **kwargs):
        return {}  # no online (disk) replica


def task_params(name: str, dataset: str, priority: int = 1000) -> dict:
    from pandajedi_wf_dev.devdb.task_templates import tape_task_params

    return tape_task_params(name, dataset, priority)


def sql(pg, statement: str, *args):
    conn = pg.connect("panda", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


# the site's [taskrefine] modConfig before it named our refiner plugin: upstream's refiner alone
UPSTREAM_ONLY_REFINER = "wlcg:any:pandajedi.jedirefine.GenTaskRefiner:GenTaskRefiner"


def make_tasks(task_buffer, pg, specs: list[dict]) -> list[int]:
    """Submit and refine one task per spec {name, dataset, n_files, priority?, parked?, status?, gshare?}; insert the
    files of the registered ones.  ``parked``: submitted with ``toStaging`` and refined by upstream's refiner alone."""
    from pandajedi_wf_dev.devdb.upstream_agents import LocalDDMInterface, refine_tasks

    ids = []
    for spec in specs:  # in order, so jediTaskIDs follow the specs
        parked = _parked(spec)
        params = dict(task_params(spec["name"], spec["dataset"], spec.get("priority", 1000)), **({"toStaging": True} if parked else {}))
        code, message = task_buffer.insertTaskParamsPanda(json.dumps(params), "dev.user", True, [], properErrorCode=True)
        assert code == 0, message
        ids.append(int(re.search(r"jediTaskID=(\d+)", message).group(1)))
        refine_tasks(task_buffer, "wlcg", "managed", LocalDDMInterface({"any": RefinerDDM()}), mod_config=UPSTREAM_ONLY_REFINER if parked else None)
    for tid, spec in zip(ids, specs):
        ((status, split_rule),) = sql(pg, "SELECT status, splitrule FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid)
        if _parked(spec):
            assert (status, split_rule) == ("staging", None), (status, split_rule)
            assert sql(pg, "SELECT COUNT(*) FROM doma_panda.jedi_datasets WHERE jeditaskid=%s", tid) == [(0,)]
            continue
        assert status == "defined" and "IS=1" in split_rule, (status, split_rule)
        insert_staging_files(pg, tid, spec)
        if "status" in spec:
            sql(pg, "UPDATE doma_panda.jedi_tasks SET status=%s WHERE jeditaskid=%s", spec["status"], tid)
        if "gshare" in spec:
            sql(pg, "UPDATE doma_panda.jedi_tasks SET gshare=%s WHERE jeditaskid=%s", spec["gshare"], tid)
    return ids


def _parked(spec: dict) -> bool:
    """``parked``, or ``status: staging``: a task waits in staging only the way upstream parks it (a registered task
    is never put back in staging by upstream, so the status is not written in SQL)."""
    return bool(spec.get("parked")) or spec.get("status") == "staging"


def insert_staging_files(pg, tid: int, spec: dict) -> None:
    """The files of the task's input dataset as ContentsFeeder inserts them for inputPreStaging (``staging``)."""
    ((dataset_id,),) = sql(pg, "SELECT datasetid FROM doma_panda.jedi_datasets WHERE jeditaskid=%s AND type='input'", tid)
    for i in range(spec["n_files"]):
        sql(
            pg,
            "INSERT INTO doma_panda.jedi_dataset_contents (jeditaskid, datasetid, fileid, creationdate, lfn, type, status, fsize, scope, "
            "attemptnr, maxattempt, keeptrack) VALUES (%s, %s, nextval('doma_panda.jedi_dataset_cont_fileid_seq'), now(), %s, 'input', "
            "'staging', %s, %s, 0, 3, 1)",
            tid,
            dataset_id,
            f"{spec['dataset']}.{i:06d}",
            spec.get("file_bytes", GB),
            spec["dataset"].split(":")[0],
        )
    sql(pg, "UPDATE doma_panda.jedi_datasets SET nfiles=%s WHERE jeditaskid=%s AND datasetid=%s", spec["n_files"], tid, dataset_id)


def date_back_staged(pg, tid: int) -> None:
    """A resumed (``staged``) task as upstream's TaskRefiner finds it 10 minutes later: getTasksToRefine_JEDI rescues
    registered/staged tasks untouched for 10 minutes; that wait is skipped by dating the task's modification back."""
    assert task_status(pg, tid) == "staged"
    sql(pg, "UPDATE doma_panda.jedi_tasks SET modificationtime=modificationtime - interval '11 minutes' WHERE jeditaskid=%s", tid)
    sql(pg, "CALL doma_panda.jedi_refresh_min_taskid_by_status()")  # what pg_cron runs


def refine_staged(task_buffer, pg, tid: int, spec: dict) -> None:
    """A parked task our carousel resumed (``staged``), refined again by upstream's TaskRefiner (our plugin for label
    managed) and its files inserted.  Upstream refines a staged task once it has not moved for 10 minutes
    (getTasksToRefine_JEDI's rescue of registered/staged tasks): that wait is skipped by dating its modification back."""
    from pandajedi_wf_dev.devdb.upstream_agents import LocalDDMInterface, refine_tasks

    date_back_staged(pg, tid)
    refine_tasks(task_buffer, "wlcg", "managed", LocalDDMInterface({"any": RefinerDDM()}))
    ((status, split_rule),) = sql(pg, "SELECT status, splitrule FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid)
    assert status == "defined" and "IS=1" in split_rule, (status, split_rule)
    insert_staging_files(pg, tid, spec)


def file_statuses(pg, tid: int) -> dict[str, int]:
    return dict(sql(pg, "SELECT status, COUNT(*) FROM doma_panda.jedi_dataset_contents WHERE jeditaskid=%s GROUP BY status", tid))


def task_status(pg, tid: int) -> str:
    return sql(pg, "SELECT status FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid)[0][0]


def requests(pg) -> list[dict]:
    rows = sql(pg, "SELECT request_id, dataset, status, source_rse, rule_id, total_files, staged_files, gshare FROM doma_panda.jedi_dc_requests ORDER BY request_id")
    keys = ("request_id", "dataset", "status", "source_rse", "rule_id", "total_files", "staged_files", "gshare")
    return [dict(zip(keys, row)) for row in rows]


def simulator(datasets: list[SimDataset], tapes=None, **kwargs) -> TapeSimulator:
    tapes = tapes or [TapeEndpoint("TAPE_A", 2, 100e6, 60), TapeEndpoint("TAPE_B", 2, 100e6, 60)]
    return TapeSimulator(tapes, datasets, start_time=T0, **kwargs)


@pytest.fixture
def wfdb(pg, clean_db):
    db = WfDatabase()
    yield db
    db.close()


@pytest.fixture
def jedi(jedi_taskbuffer, pg, wfdb):
    """Upstream's agents as tests drive them, over a simulated JEDI DDM that knows the tape dataset's files."""
    from pandajedi_wf_dev.simulators.jedi_ddm import InProcessDDMInterface, SimulatedDDMClient

    ddm = SimulatedDDMClient(wfdb)
    return _Jedi(jedi_taskbuffer, pg, ddm, InProcessDDMInterface({"any": ddm}))


class _Jedi:
    """Upstream's TaskRefiner, ContentsFeeder and WatchDog calls as the end-to-end tests drive them."""

    def __init__(self, task_buffer, pg, ddm, ddm_if):
        self.task_buffer, self.pg, self.ddm, self.ddm_if = task_buffer, pg, ddm, ddm_if

    def tape_dataset(self, name: str) -> SimDataset:
        """The dataset in JEDI's DDM catalogue and on the simulated tape, with the same file names."""
        self.ddm.register_dataset(name, lfns=[f"{name}.{i:06d}" for i in range(N_FILES)])
        return SimDataset(name, (30 * GB,) * N_FILES, ("TAPE_A",))  # 300 s per file on one drive: they land one by one

    def submit(self, params: dict) -> int:
        code, message = self.task_buffer.insertTaskParamsPanda(json.dumps(params), "dev.user", True, [], properErrorCode=True)
        assert code == 0, message
        return int(re.search(r"jediTaskID=(\d+)", message).group(1))

    def refine(self, mod_config: str | None = None) -> list[int]:
        from pandajedi_wf_dev.devdb.upstream_agents import refine_tasks

        return refine_tasks(self.task_buffer, "wlcg", "managed", self.ddm_if, mod_config=mod_config)

    def feed(self) -> list[int]:
        from pandajedi_wf_dev.devdb.upstream_agents import feed_contents

        self._refresh_min_task_ids()
        return feed_contents(self.task_buffer, "wlcg", "managed", self.ddm_if)

    def watchdog_reactivates_pending(self) -> None:
        """What upstream's WatchDog (TypicalWatchDogBase) runs each cycle: pending tasks untouched for waitForPending
        go back to their old status (updateInputFilesStaged_JEDI dates a task back a day, so it qualifies at once)."""
        from pandajedi.jediconfig import jedi_config

        self._refresh_min_task_ids()
        self.task_buffer.reactivatePendingTasks_JEDI("wlcg", "managed", jedi_config.watchdog.waitForPending, jedi_config.watchdog.timeoutForPending)

    def _refresh_min_task_ids(self) -> None:
        sql(self.pg, "CALL doma_panda.jedi_refresh_min_taskid_by_status()")  # what pg_cron runs

    def task(self, tid: int) -> dict:
        ((status, split_rule, error),) = sql(self.pg, "SELECT status, splitrule, errordialog FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid)
        return {"status": status, "split_rule": split_rule.split(",") if split_rule else None, "error": error}

    def stored_params(self, tid: int) -> dict:
        return json.loads(self.task_buffer.getTaskParamsWithID_JEDI(tid))
