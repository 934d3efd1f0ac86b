"""A task parked in ``staging`` by upstream's refiner whose parameters name a container: our carousel expands the
container to its datasets through its DDM interface and recalls each; the task, resumed and refined again, gets every
file of the container.

Real: insertTaskParamsPanda; upstream's TaskRefiner alone parking the task (``toStaging``: splitRule NULL, no
JEDI_Datasets), then, once resumed, through our refiner plugin (label managed); TaskCommando's pick-up of the resume;
PostgreSQL.  Simulated: JEDI's DDM answers for the container (tests/test_carousel_db_containers.ContainerDDM) and the
tape system behind our carousel's DDM interface, which knows the container's datasets
(``TapeSimulator.containers``; ``RucioStagingDDM.expand_containers`` on the real Rucio server:
tests/test_carousel_rucio_containers.py); the registered task's files are inserted as ContentsFeeder inserts them
for inputPreStaging (``staging``).  One wait is skipped: upstream refines a resumed task 10 minutes later.
"""

from __future__ import annotations

import json
import re

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.daemons import data_carousel
from pandajedi_wf.daemons.common import CycleStats
from pandajedi_wf.ddm.adapter import DDMError
from pandajedi_wf_dev.simulators.tape import SimDataset

from tests.carousel_db_fixtures import GB, UPSTREAM_ONLY_REFINER, date_back_staged, file_statuses, requests, simulator, sql, task_params, wfdb  # noqa: F401
from tests.test_carousel_db_containers import CONTAINER, DATASETS, ContainerDDM, insert_container_files

CONFIG = load_config({"stuck_timeout_seconds": 3600})


def parked_container_task(task_buffer, pg) -> int:
    from pandajedi_wf_dev.devdb.upstream_agents import LocalDDMInterface, refine_tasks

    params = dict(task_params("dc.parked.cont", CONTAINER), toStaging=True)
    params["jobParameters"][1]["expand"] = False  # read as one master dataset (prun's default)
    code, message = task_buffer.insertTaskParamsPanda(json.dumps(params), "dev.user", True, [], properErrorCode=True)
    assert code == 0, message
    tid = int(re.search(r"jediTaskID=(\d+)", message).group(1))
    refine_tasks(task_buffer, "wlcg", "managed", LocalDDMInterface({"any": ContainerDDM()}), mod_config=UPSTREAM_ONLY_REFINER)
    assert sql(pg, "SELECT status, splitrule FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid) == [("staging", None)]
    assert sql(pg, "SELECT COUNT(*) FROM doma_panda.jedi_datasets WHERE jeditaskid=%s", tid) == [(0,)]
    return tid


def container_on_tape():
    sim = simulator([SimDataset(DATASETS[0], (30 * GB,) * 3, ("TAPE_A",)), SimDataset(DATASETS[1], (30 * GB,) * 3, ("TAPE_B",))])
    sim.containers = {CONTAINER: list(DATASETS)}
    return sim


def test_a_parked_tasks_container_is_recalled_dataset_by_dataset_and_the_task_gets_all_its_files(jedi_taskbuffer, pg, wfdb):
    from pandajedi_wf_dev.devdb.upstream_agents import LocalDDMInterface, refine_tasks

    tid = parked_container_task(jedi_taskbuffer, pg)
    sim = container_on_tape()

    message = data_carousel.cycle(wfdb, CycleStats(), sim, jedi_taskbuffer, now=sim.now, config=CONFIG, vo="wlcg")
    assert "error" not in message, message
    reqs = {r["dataset"]: r for r in requests(pg)}
    assert set(reqs) == set(DATASETS)  # one request per dataset of the container, none for the container itself
    assert {(r["status"], r["source_rse"], r["total_files"]) for r in reqs.values()} == {("staging", "TAPE_A", 3), ("staging", "TAPE_B", 3)}
    assert sorted(sql(pg, "SELECT request_id FROM doma_panda.jedi_dc_relations WHERE jedi_task_id=%s", tid)) == sorted((r["request_id"],) for r in reqs.values())

    jedi_taskbuffer.getTasksToExecCommand_JEDI("wlcg", "managed")  # TaskCommando runs the carousel's resume
    date_back_staged(pg, tid)
    refine_tasks(jedi_taskbuffer, "wlcg", "managed", LocalDDMInterface({"any": ContainerDDM()}))  # now through our plugin
    rows = sql(pg, "SELECT datasetid, datasetname, type FROM doma_panda.jedi_datasets WHERE jeditaskid=%s AND type IN ('input', 'in_constituent') ORDER BY datasetid", tid)
    assert [(name, kind) for _, name, kind in rows] == [(CONTAINER, "input"), (DATASETS[0], "in_constituent"), (DATASETS[1], "in_constituent")]
    assert "IS=1" in sql(pg, "SELECT splitrule FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid)[0][0]
    insert_container_files(pg, tid, rows[0][0])  # ContentsFeeder's insert for inputPreStaging

    for _ in range(40):
        message = data_carousel.cycle(wfdb, CycleStats(), sim, jedi_taskbuffer, now=sim.now, config=CONFIG, vo="wlcg")
        assert "error" not in message, message
        sim.advance(120.0)
        if file_statuses(pg, tid) == {"pending": 6}:
            break
    assert file_statuses(pg, tid) == {"pending": 6}
    assert {r["dataset"]: r["status"] for r in requests(pg)} == {DATASETS[0]: "done", DATASETS[1]: "done"}  # no new request


def test_a_parked_task_is_left_for_the_next_cycle_when_ddm_cannot_expand_its_container(jedi_taskbuffer, pg, wfdb):
    tid = parked_container_task(jedi_taskbuffer, pg)
    sim = container_on_tape()

    def unavailable(names):
        raise DDMError("list_content: Rucio unavailable (ConnectionError)", "ConnectionError")

    sim.expand_containers = unavailable
    message = data_carousel.cycle(wfdb, CycleStats(), sim, jedi_taskbuffer, now=sim.now, config=CONFIG, vo="wlcg")
    assert "expand_containers: list_content: Rucio unavailable" in message
    assert requests(pg) == [] and sql(pg, "SELECT status FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid) == [("staging",)]
    del sim.expand_containers
    data_carousel.cycle(wfdb, CycleStats(), sim, jedi_taskbuffer, now=sim.now, config=CONFIG, vo="wlcg")
    assert sorted(r["dataset"] for r in requests(pg)) == sorted(DATASETS)
