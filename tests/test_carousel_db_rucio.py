"""The JEDI agent's carousel cycle (``daemons.data_carousel.cycle``) on the real PostgreSQL with upstream JEDI tasks
(insertTaskParamsPanda + TaskRefiner), staging through a real Rucio server: the rule is made in Rucio, the tape
simulator's drives land the files through Rucio's conveyor-finisher (``RucioTape``), and the carousel reads the
locks from Rucio and releases each file to the task as it lands."""

from __future__ import annotations

import time
import uuid

import pytest
from rucio.common.exception import RuleNotFound

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.daemons import data_carousel
from pandajedi_wf.daemons.common import CycleStats
from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM
from pandajedi_wf_dev.simulators.tape import RucioTape, SimDataset, TapeEndpoint

from tests.carousel_db_fixtures import file_statuses, make_tasks, requests, sql, wfdb  # noqa: F401

SIZES = (2_000_000, 3_000_000, 4_000_000)  # one drive at 1 MB/s after a 10 s mount: land at 12, 15, 19 s


def staged_task(rucio_server, jedi_taskbuffer, pg, tape_holds_files: bool = True):
    """A tape and a disk RSE, a dataset on the tape in Rucio, an upstream JEDI task reading it, and the simulated
    drive in front of Rucio (``tape_holds_files=False``: Rucio lists the replica, the drive finds nothing)."""
    tag = uuid.uuid4().hex[:8].upper()
    tape, disk = rucio_server.add_rse(f"DB_{tag}_TAPE", "TAPE"), rucio_server.add_rse(f"DB_{tag}_DATADISK", "DISK")
    rucio_server.add_distance(tape, disk)
    scope = f"jedi{tag[:5].lower()}"
    rucio_server.add_scope(scope)
    name = f"{scope}.00123.physics_Main.RAW"
    dataset = f"{scope}:{name}"
    # the names JEDI gives the task's files (tests/carousel_db_fixtures.insert_staging_files), as Rucio knows them
    rucio_server.add_dataset(scope, name, [tape], lfns=[f"{name}.{i:06d}" for i in range(len(SIZES))], file_sizes=list(SIZES))
    (tid,) = make_tasks(jedi_taskbuffer, pg, [{"name": f"dc.rucio.{tag}", "dataset": dataset, "n_files": len(SIZES)}])
    drive = RucioTape(rucio_server, RucioStagingDDM(rucio_server.client()), [TapeEndpoint(tape, 1, 1e6, 10.0)],
                      [SimDataset(dataset, SIZES, (tape,) if tape_holds_files else ())], start_time=time.time())
    config = load_config({"default_destination": disk, "tapes": {tape: {"expected_bytes_per_second": 1e6, "drives": 1}}, "cycle_seconds": 5})
    return tid, dataset, tape, disk, drive, config


def test_a_jedi_task_is_staged_through_rucio_and_gets_its_files_one_by_one(rucio_server, jedi_taskbuffer, pg, wfdb):
    tid, dataset, tape, disk, drive, config = staged_task(rucio_server, jedi_taskbuffer, pg)
    partial = False
    for _ in range(12):
        message = data_carousel.cycle(wfdb, CycleStats(), drive, jedi_taskbuffer, now=drive.now, config=config, vo="wlcg")
        assert "error" not in message, message
        statuses = file_statuses(pg, tid)
        partial |= bool(statuses.get("pending")) and bool(statuses.get("staging"))
        if statuses == {"pending": len(SIZES)}:
            break
        drive.advance(4)
    assert partial, "files are released as they land, before the rule is OK"
    assert file_statuses(pg, tid) == {"pending": len(SIZES)}
    (req,) = requests(pg)
    assert (req["dataset"], req["status"], req["source_rse"], req["staged_files"]) == (dataset, "done", tape, len(SIZES))
    assert sql(pg, "SELECT staged_size, destination_rse FROM doma_panda.jedi_dc_requests WHERE request_id=%s", req["request_id"]) == [(sum(SIZES), disk)]
    rule = rucio_server.client().get_replication_rule(req["rule_id"])
    assert (rule["state"], rule["locks_ok_cnt"], rule["rse_expression"], rule["source_replica_expression"]) == ("OK", 3, disk, tape)


def test_a_tape_answering_no_sources_fails_the_request_and_the_task_is_told_the_jedi_way(rucio_server, jedi_taskbuffer, pg, wfdb):
    tid, dataset, tape, disk, drive, config = staged_task(rucio_server, jedi_taskbuffer, pg, tape_holds_files=False)
    for _ in range(4):
        data_carousel.cycle(wfdb, CycleStats(), drive, jedi_taskbuffer, now=drive.now, config=config, vo="wlcg")
        if requests(pg)[0]["status"] == "failed":
            break
        drive.advance(4)
    (req,) = requests(pg)
    assert req["status"] == "failed"
    ((error,),) = sql(pg, "SELECT error_dialog FROM doma_panda.jedi_dc_requests WHERE request_id=%s", req["request_id"])
    assert f"NO_SOURCES on {tape}" in error and f"no usable source left (NO_SOURCES from {tape})" in error
    ((dialog,),) = sql(pg, "SELECT errordialog FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid)
    assert dialog.startswith(f"pandajedi_wf data carousel: staging of {dataset} failed:") and "NO_SOURCES" in dialog
    assert sql(pg, "SELECT comm_cmd FROM doma_deft.prodsys_comm WHERE comm_task=%s", tid) == [("finish",)]  # registered: finish
    with pytest.raises(RuleNotFound):  # released with lifetime 0 and removed by the judge-cleaner's pass
        rucio_server.client().get_replication_rule(req["rule_id"])
