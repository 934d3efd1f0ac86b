"""A task reading a container as one master dataset (prun's default): upstream's refiner registers the container as
the master input and its datasets as ``in_constituent`` rows; our carousel recalls dataset by dataset (a Rucio rule
and its replicas are per dataset) and releases each arrived file into the container's master dataset.

Real: insertTaskParamsPanda, upstream's TaskRefiner with our refiner plugin (label managed, from panda_jedi.cfg),
PostgreSQL.  Simulated: JEDI's DDM answers for the container (two datasets) and the tape system; the files are
inserted as ContentsFeeder inserts them for inputPreStaging (``staging``), into the container's master dataset.
"""

from __future__ import annotations

import json
import re

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.daemons import data_carousel
from pandajedi_wf.daemons.common import CycleStats
from pandajedi_wf_dev.simulators.tape import SimDataset

from tests.carousel_db_fixtures import GB, RefinerDDM, file_statuses, requests, simulator, sql, task_params, wfdb  # noqa: F401

CONTAINER = "mc16:mc16.cont.RAW/"
DATASETS = ("mc16:mc16.cont.RAW.ds1", "mc16:mc16.cont.RAW.ds2")


class ContainerDDM(RefinerDDM):
    """JEDI's DDM for a container of two datasets, none on disk."""

    def expandContainer(self, name, *args, **kwargs):
        return list(DATASETS) if name == CONTAINER else super().expandContainer(name)

    def listDatasets(self, name, *args, **kwargs):
        return [name]  # the container itself: read as one master dataset, its datasets become in_constituent rows


def insert_container_files(pg, tid: int, master_id: int) -> None:
    """The files of both datasets (three of 30 GB each, named as the tape names them) in the container's master
    dataset ``master_id``, as ContentsFeeder inserts them for inputPreStaging (``staging``)."""
    for dataset in DATASETS:
        for i in range(3):
            sql(
                pg,
                "INSERT INTO doma_panda.jedi_dataset_contents (jeditaskid, datasetid, fileid, creationdate, lfn, type, status, fsize, scope, "
                "attemptnr, maxattempt, keeptrack) VALUES (%s, %s, nextval('doma_panda.jedi_dataset_cont_fileid_seq'), now(), %s, 'input', "
                "'staging', %s, 'mc16', 0, 3, 1)",
                tid, master_id, f"{dataset}.{i:06d}", 30 * GB,
            )


def test_a_container_is_recalled_dataset_by_dataset_and_its_files_released_into_the_master(jedi_taskbuffer, pg, wfdb):
    from pandajedi_wf_dev.devdb.upstream_agents import LocalDDMInterface, refine_tasks

    params = task_params("dc.cont.t1", CONTAINER)
    params["jobParameters"][1]["expand"] = False
    code, message = jedi_taskbuffer.insertTaskParamsPanda(json.dumps(params), "dev.user", True, [], properErrorCode=True)
    assert code == 0, message
    tid = int(re.search(r"jediTaskID=(\d+)", message).group(1))
    refine_tasks(jedi_taskbuffer, "wlcg", "managed", LocalDDMInterface({"any": ContainerDDM()}))
    rows = sql(pg, "SELECT datasetid, datasetname, type, containername FROM doma_panda.jedi_datasets WHERE jeditaskid=%s AND type IN ('input', 'in_constituent') ORDER BY datasetid", tid)
    assert [(name, kind, container) for _, name, kind, container in rows] == [
        (CONTAINER, "input", CONTAINER), (DATASETS[0], "in_constituent", CONTAINER), (DATASETS[1], "in_constituent", CONTAINER)
    ]
    insert_container_files(pg, tid, rows[0][0])
    sim = simulator([SimDataset(DATASETS[0], (30 * GB,) * 3, ("TAPE_A",)), SimDataset(DATASETS[1], (30 * GB,) * 3, ("TAPE_B",))])
    config = load_config({"stuck_timeout_seconds": 3600})

    released_while_other_staging = False
    for _ in range(40):
        message = data_carousel.cycle(wfdb, CycleStats(), sim, jedi_taskbuffer, now=sim.now, config=config, vo="wlcg")
        assert "error" not in message, message
        sim.advance(120.0)
        reqs = {r["dataset"]: r for r in requests(pg)}
        statuses = file_statuses(pg, tid)
        released_while_other_staging |= 0 < statuses.get("pending", 0) < 6
        if statuses == {"pending": 6}:
            break
    assert set(reqs) == set(DATASETS)  # one request per dataset of the container, none for the container
    assert {(r["source_rse"], r["total_files"]) for r in reqs.values()} == {("TAPE_A", 3), ("TAPE_B", 3)}
    assert file_statuses(pg, tid) == {"pending": 6} and released_while_other_staging
    data_carousel.cycle(wfdb, CycleStats(), sim, jedi_taskbuffer, now=sim.now, config=config, vo="wlcg")
    assert sql(pg, "SELECT COUNT(*) FROM doma_panda.jedi_dc_relations WHERE jedi_task_id=%s AND released_time IS NOT NULL", tid) == [(2,)]
