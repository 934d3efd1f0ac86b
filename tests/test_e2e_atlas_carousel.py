"""The ATLAS analysis path into our carousel, on a real Rucio server: upstream's ``AtlasAnalTaskRefiner`` through our
refiner plugin, upstream's ``AtlasDDMClient`` for the feeder, our carousel's Rucio adapter for the recall.

Real: upstream JEDI configured by a ``panda_jedi.cfg`` whose ``[taskrefine] modConfig`` names our plugin for atlas/user
(``pandajedi_wf.jedi_agents.task_refiner:AtlasAnalTaskRefiner``) and ``wf_carousel_prestaging_users`` names alice, in
a child process (tests/atlas_jedi_child.py); ``insertTaskParamsPanda`` as the server calls it for a user; Rucio 41.5.1
(``devdb.rucio_server``): the dataset only on a TAPE RSE, our recall rule, its locks, the transfers completed one by
one through Rucio's own finisher; our carousel cycle with ``RucioStagingDDM``; PostgreSQL.  Without FTS the transfers
are finished by setting Rucio's requests DONE (README, "What is real and what is simulated").

Where upstream's own carousel breaks such a task (``test_e2e_atlas_user_refine``: ``tobroken`` without its CONFIG),
here the refiner registers it at once with ``IS=1``, the feeder inserts its files as ``staging``, our carousel
recalls the dataset with one Rucio rule for both tasks and releases each file as its lock turns OK, and the tasks
end ``ready``.
"""

from __future__ import annotations

import time
import uuid

import pytest

from pandajedi_wf_dev.devdb import panda_home as panda_home_mod

from tests.carousel_db_fixtures import wfdb  # noqa: F401
from tests.test_e2e_atlas_user_refine import (  # noqa: F401 (module fixtures)
    ATLAS_JEDI,
    DATA_SCOPE,
    TAPE,
    USER_NAME,
    atlas_rucio,
    atlas_work_queue,
    run_atlas_jedi,
    step_task_params,
)

ROUTED_JEDI = {
    **ATLAS_JEDI,
    "taskrefine": {
        "modConfig": "atlas:user:pandajedi_wf.jedi_agents.task_refiner:AtlasAnalTaskRefiner",
        "wf_carousel_prestaging_users": USER_NAME,
    },
}


@pytest.fixture(scope="module")
def routed_home(tmp_path_factory):
    return panda_home_mod.write_panda_home(tmp_path_factory.mktemp("atlas_routed_home"), vo="atlas", jedi_options=ROUTED_JEDI)


def test_atlas_analysis_tasks_with_tape_input_are_staged_by_our_carousel_through_rucio(atlas_rucio, routed_home, atlas_work_queue, pg, wfdb, jedi_taskbuffer, tmp_path_factory):
    from pandajedi_wf.carousel.config import load_config
    from pandajedi_wf.daemons import data_carousel
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM

    tag = uuid.uuid4().hex[:8]
    dataset = f"{DATA_SCOPE}.00349000.physics_Main.daq.RAW.{tag}"
    files = atlas_rucio.add_dataset(DATA_SCOPE, dataset, [TAPE], n_files=3)
    did = f"{DATA_SCOPE}:{dataset}"
    tasks = {
        "asked": dict(step_task_params(f"user.alice.{tag}.wf_001_ana", did, workflow_id=4343), inputPreStaging=True),
        "policy": step_task_params(f"user.alice.{tag}.wf_002_ana", did, workflow_id=4343),  # alice is in our policy
    }
    first = run_atlas_jedi(routed_home, pg, atlas_rucio, tasks, tmp_path_factory.mktemp("atlas_routed_1"))
    ids = {key: entry["jediTaskID"] for key, entry in first["tasks"].items()}
    assert "pandajedi_wf.jedi_agents.task_refiner.AtlasAnalTaskRefiner'> is ready for atlas:user:any" in first["logs"]
    for key, entry in first["tasks"].items():
        task = entry["task"]
        assert task["status"] == "pending" and "inputs are staging from a tape" in task["errorDialog"], (key, task, first["logs"][-6000:])
        assert {"IS=1", "FC=0"} <= set(task["splitRule"].split(","))  # file-level pre-staging, no iDDS stage-in request
        assert entry["refined_params"]["inputPreStaging"] is True
        assert sorted(f[1] for f in entry["files"]) == sorted(f["name"] for f in files) and {f[6] for f in entry["files"]} == {"staging"}
    assert "to prestage, submitting data carousel requests" not in first["logs"]  # upstream's carousel never ran
    assert f"< jediTaskID={ids['policy']} > pandajedi_wf carousel routing: inputPreStaging=True (an analysis task of a user pre-staged by our policy)" in first["logs"]

    ddm = RucioStagingDDM(atlas_rucio.client())
    config = load_config({"stuck_timeout_seconds": 3600})

    def cycle():
        message = data_carousel.cycle(wfdb, CycleStats(), ddm, jedi_taskbuffer, now=time.time(), config=config, vo="atlas")
        assert "error" not in message, message

    def released(tid):
        return wfdb.query(
            f"SELECT COUNT(*) FROM {wfdb.table('JEDI_Dataset_Contents')} WHERE jediTaskID=:t AND status=:s", {":t": tid, ":s": "pending"}
        )[0][0]

    cycle()
    ((request_id, status, rule_id, source),) = wfdb.query(
        f"SELECT request_id, status, rule_id, source_rse FROM {wfdb.table('JEDI_DC_REQUESTS')} WHERE dataset=:d", {":d": did}
    )
    assert (status, source) == ("staging", TAPE) and rule_id
    rule = atlas_rucio.client().get_replication_rule(rule_id)
    assert (rule["state"], rule["locks_replicating_cnt"], rule["source_replica_expression"]) == ("REPLICATING", 3, TAPE)
    assert sorted(r for (r,) in wfdb.query(f"SELECT jedi_task_id FROM {wfdb.table('JEDI_DC_RELATIONS')} WHERE request_id=:r", {":r": request_id})) == sorted(ids.values())

    for n, rucio_file in enumerate(files, start=1):  # Rucio finishes one transfer; our next cycle hands that file over
        atlas_rucio.complete_transfers(rule_id, [rucio_file["name"]])
        cycle()
        assert [released(tid) for tid in ids.values()] == [n, n], n
    assert wfdb.query(f"SELECT status FROM {wfdb.table('JEDI_DC_REQUESTS')} WHERE request_id=:r", {":r": request_id}) == [("done",)]

    second = run_atlas_jedi(routed_home, pg, atlas_rucio, {}, tmp_path_factory.mktemp("atlas_routed_2"), report=ids, reactivate=True)
    for key, entry in second["tasks"].items():
        assert entry["task"]["status"] == "ready", (key, entry["task"], second["logs"][-6000:])
        assert {f[6] for f in entry["files"]} == {"ready"}
