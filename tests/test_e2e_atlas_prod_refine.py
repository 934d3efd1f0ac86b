"""The ATLAS production path into our carousel, on a real Rucio server: upstream's ``AtlasProdTaskRefiner`` through
our refiner plugin, upstream's ``AtlasDDMClient`` for the refiner and the feeder, our carousel's Rucio adapter.

Real: upstream JEDI configured by a ``panda_jedi.cfg`` whose ``[taskrefine] modConfig`` names our plugin for
atlas/managed (``pandajedi_wf.jedi_agents.task_refiner:AtlasProdTaskRefiner``, which JEDI's FactoryBase loads and our
module builds over upstream's ``pandajedi.jedirefine.AtlasProdTaskRefiner``), in a child process
(tests/atlas_jedi_child.py, label ``managed``); ``insertTaskParamsPanda`` with the production role, as ProdSys/DEFT
submit; Rucio 41.5.1 (``devdb.rucio_server``): the RAW dataset only on a TAPE RSE, our recall rule, its locks, the
transfers completed one by one through Rucio's own finisher; our carousel cycle with ``RucioStagingDDM``; PostgreSQL.

What the production refiner needs that a test database lacks, given as the real system has it: a JEDI work queue of
vo ``atlas`` for ``managed`` tasks (upstream's work-queue map is per VO and label; the seed has wlcg's); its
``getConfigValue`` lookups (event-service conversion, push of status changes) find no CONFIG rows and keep their
defaults, as on a fresh ATLAS deployment.  No CRIC/schedconfig entry is read before brokerage.

Where upstream's production refiner asks iDDS for a stage-in request at the first feed (``set_first_contents_feed``)
and ProdSys's ``toStaging`` parks the task for upstream's carousel, here the task is registered at once with
``IS=1`` and no first-feed request, the feeder inserts its files as ``staging``, our carousel recalls the dataset and
releases each file as its lock turns OK, and the task, its files all ready, goes to upstream's TaskBroker
(``assigning``: a production task chooses its nucleus there; brokerage is not run here).
"""

from __future__ import annotations

import time
import uuid

import pytest

from pandajedi_wf_dev.devdb import panda_home as panda_home_mod

from tests.carousel_db_fixtures import wfdb  # noqa: F401
from tests.test_e2e_atlas_user_refine import ATLAS_JEDI, DATA_SCOPE, TAPE, atlas_queue, atlas_rucio, run_atlas_jedi  # noqa: F401 (module fixtures)

PROD_JEDI = {**ATLAS_JEDI, "taskrefine": {"modConfig": "atlas:managed:pandajedi_wf.jedi_agents.task_refiner:AtlasProdTaskRefiner"}}
PROD_DN = "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=atlpilo1/CN=123457/CN=Robot: ATLAS Production"


@pytest.fixture(scope="module")
def prod_home(tmp_path_factory):
    return panda_home_mod.write_panda_home(tmp_path_factory.mktemp("atlas_prod_home"), vo="atlas", jedi_options=PROD_JEDI)


@pytest.fixture(scope="module")
def atlas_prod_work_queue(pg):
    """A JEDI work queue of vo atlas for managed (production) tasks."""
    yield from atlas_queue(pg, 102, "atlas_managed", "managed")


def prod_task_params(name: str, dataset: str) -> dict:
    """A reprocessing task as ProdSys defines one: production role, label managed, one RAW file per job, the RAW
    dataset read from tape (``toStaging``, which sends such a task to upstream's carousel)."""
    return {
        "taskName": name,
        "vo": "atlas",
        "prodSourceLabel": "managed",
        "taskType": "prod",
        "taskPriority": 900,
        "architecture": "x86_64-el9-gcc13-opt",
        "transUses": "Athena-24.0.1",
        "transHome": "Athena-24.0.1",
        "transPath": "Reco_tf.py",
        "processingType": "reprocessing",
        "campaign": "data18",
        "toStaging": True,
        "nFilesPerJob": 1,
        "ramCount": 2000,
        "log": {"type": "template", "param_type": "log", "value": f"{name}.log.${{SN}}.tgz", "dataset": f"{name}.log", "container": f"{name}.log"},
        "jobParameters": [
            {"type": "template", "param_type": "input", "value": "--inputBSFile=${IN}", "dataset": dataset, "expand": True},
            {"type": "template", "param_type": "output", "value": f"--outputAODFile={name}.AOD.${{SN}}.pool.root", "dataset": f"{name}.AOD"},
        ],
    }


def test_an_atlas_production_task_with_tape_input_is_staged_by_our_carousel_through_the_production_refiner(
    atlas_rucio, prod_home, atlas_prod_work_queue, pg, wfdb, jedi_taskbuffer, tmp_path_factory
):
    from pandajedi_wf.carousel.config import load_config
    from pandajedi_wf.daemons import data_carousel
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM

    tag = uuid.uuid4().hex[:8]
    dataset = f"{DATA_SCOPE}.00349111.physics_Main.daq.RAW.{tag}"
    files = atlas_rucio.add_dataset(DATA_SCOPE, dataset, [TAPE], n_files=3)
    did = f"{DATA_SCOPE}:{dataset}"
    name = f"{DATA_SCOPE}.00349111.physics_Main.recon.{tag}"
    first = run_atlas_jedi(prod_home, pg, atlas_rucio, {"reco": prod_task_params(name, did)}, tmp_path_factory.mktemp("atlas_prod_1"), label="managed", dn=PROD_DN)
    entry = first["tasks"]["reco"]
    assert entry["submit"][0] == 0, entry["submit"]
    tid = entry["jediTaskID"]
    assert "pandajedi_wf.jedi_agents.task_refiner.AtlasProdTaskRefiner'> is ready for atlas:managed:any" in first["logs"]
    assert f"< jediTaskID={tid} > pandajedi_wf carousel routing: inputPreStaging=True" in first["logs"]
    task = entry["task"]
    assert (task["taskType"], task["prodSourceLabel"]) == ("prod", "managed")
    assert task["status"] == "pending" and "inputs are staging from a tape" in task["errorDialog"], (task, first["logs"][-8000:])
    assert {"IS=1", "FC=0"} <= set(task["splitRule"].split(","))  # pre-staged by file, no iDDS stage-in request
    # the parameters stay as ProdSys sent them (upstream's production refiner never stores them back, unlike the generic
    # and analysis ones): our plugin routes the task again from them whenever JEDI refines it (a staged or rerefine task)
    assert entry["refined_params"]["toStaging"] is True and "inputPreStaging" not in entry["refined_params"]
    assert sorted(f[1] for f in entry["files"]) == sorted(f["name"] for f in files) and {f[6] for f in entry["files"]} == {"staging"}

    ddm = RucioStagingDDM(atlas_rucio.client())
    config = load_config({"stuck_timeout_seconds": 3600})

    def cycle():
        message = data_carousel.cycle(wfdb, CycleStats(), ddm, jedi_taskbuffer, now=time.time(), config=config, vo="atlas")
        assert "error" not in message, message

    cycle()
    ((request_id, status, rule_id),) = wfdb.query(f"SELECT request_id, status, rule_id FROM {wfdb.table('JEDI_DC_REQUESTS')} WHERE dataset=:d", {":d": did})
    assert status == "staging" and atlas_rucio.client().get_replication_rule(rule_id)["source_replica_expression"] == TAPE
    for n, rucio_file in enumerate(files, start=1):
        atlas_rucio.complete_transfers(rule_id, [rucio_file["name"]])
        cycle()
        released = wfdb.query(f"SELECT COUNT(*) FROM {wfdb.table('JEDI_Dataset_Contents')} WHERE jediTaskID=:t AND status=:s", {":t": tid, ":s": "pending"})
        assert released == [(n,)], n

    second = run_atlas_jedi(prod_home, pg, atlas_rucio, {}, tmp_path_factory.mktemp("atlas_prod_2"), report={"reco": tid}, reactivate=True, label="managed", dn=PROD_DN)
    task = second["tasks"]["reco"]["task"]
    # every file ready; the task handed to upstream's TaskBroker to choose its nucleus, as a production task without
    # a preassigned cloud is (ContentsFeeder -> 'assigning'; a wlcg task with a cloud goes 'ready': test_e2e_carousel_refine)
    assert (task["status"], task["errorDialog"]) == ("assigning", None), (task, second["logs"][-8000:])
    assert {f[6] for f in second["tasks"]["reco"]["files"]} == {"ready"}
