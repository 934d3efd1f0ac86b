"""A staging request DDM refuses for good ends its tasks the JEDI way; transient refusals back off in the database.

Real upstream JEDI tasks (insertTaskParamsPanda + TaskRefiner), real PostgreSQL, the tape simulator behind the DDM
interface with its rule creation made to fail.
"""

from __future__ import annotations

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.daemons import data_carousel
from pandajedi_wf.daemons.common import CycleStats, run_cycle
from pandajedi_wf.ddm.adapter import DDMError
from pandajedi_wf_dev.simulators.tape import SimDataset
from pandajedi_wf.taskbuffer import agent_heartbeats, staging_requests, transitions

from tests.carousel_db_fixtures import GB, make_tasks, requests, simulator, sql, task_status, wfdb  # noqa: F401

CONFIG = load_config({"stuck_timeout_seconds": 3600, "rule_retry_base_seconds": 600, "rule_max_attempts": 3})


def carousel(db, sim, tb):
    return data_carousel.cycle(db, CycleStats(), sim, tb, now=sim.now, config=CONFIG, vo="wlcg")


def refuse(sim, kind, datasets):
    create = sim.create_staging_rule

    def create_staging_rule(dataset, *args, **kwargs):
        if dataset in datasets:
            raise DDMError(f"add_replication_rule {dataset} -> DISK: {kind}: refused", kind)
        return create(dataset, *args, **kwargs)

    sim.create_staging_rule = create_staging_rule


def test_permanent_refusal_fails_the_request_and_ends_its_tasks(jedi_taskbuffer, pg, wfdb):
    blocked, fine = "mc16:mc16.blocked.RAW", "mc16:mc16.fine.RAW"
    waiting, running, other = make_tasks(jedi_taskbuffer, pg, [
        {"name": "dc.blocked.t1", "dataset": blocked, "n_files": 2, "parked": True},
        {"name": "dc.blocked.t2", "dataset": blocked, "n_files": 2, "status": "running"},
        {"name": "dc.fine.t3", "dataset": fine, "n_files": 2, "parked": True},
    ])
    sim = simulator([SimDataset(blocked, (GB,) * 2, ("TAPE_A",)), SimDataset(fine, (GB,) * 2, ("TAPE_B",))])
    refuse(sim, "RSEWriteBlocked", {blocked})

    message = carousel(wfdb, sim, jedi_taskbuffer)

    reqs = {r["dataset"]: r for r in requests(pg)}
    assert reqs[fine]["status"] == "staging"  # the other request went on in the same cycle
    assert reqs[blocked]["status"] == "failed" and "refused for good by DDM (RSEWriteBlocked)" in message
    history = transitions.history(wfdb, "staging", reqs[blocked]["request_id"])
    assert [(h["from_status"], h["to_status"]) for h in history] == [(None, "queued"), ("queued", "submitting"), ("submitting", "failed")]
    assert "RSEWriteBlocked" in history[-1]["reason"]
    for tid in (waiting, running):
        ((dialog,),) = sql(pg, "SELECT errordialog FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid)
        assert dialog.startswith(f"pandajedi_wf data carousel: staging of {blocked} failed: rule refused for good by DDM (RSEWriteBlocked)")
    commands = dict(sql(pg, "SELECT comm_task, comm_cmd FROM doma_deft.prodsys_comm WHERE comm_task IN (%s, %s)", waiting, running))
    assert commands == {waiting: "kill", running: "finish"}  # nothing processed: killed; running on arrived files: finished
    assert task_status(pg, other) == "staging"  # not related to the failed request: untouched

    jedi_taskbuffer.getTasksToExecCommand_JEDI("wlcg", "managed")  # what upstream's TaskCommando runs
    assert (task_status(pg, waiting), task_status(pg, running)) == ("aborting", "finishing")

    # once: the relations are released, a later cycle neither writes nor sends anything more, nor stages again
    sql(pg, "UPDATE doma_panda.jedi_tasks SET errordialog='seen' WHERE jeditaskid=%s", waiting)
    sql(pg, "DELETE FROM doma_deft.prodsys_comm")
    carousel(wfdb, sim, jedi_taskbuffer)
    assert sql(pg, "SELECT errordialog FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", waiting) == [("seen",)]
    assert sql(pg, "SELECT comm_task FROM doma_deft.prodsys_comm") == []
    assert len(requests(pg)) == 2


def test_transient_refusal_backs_off_across_cycles_and_gives_up_after_the_last_attempt(jedi_taskbuffer, pg, wfdb):
    ds = "mc16:mc16.quota.RAW"
    (tid,) = make_tasks(jedi_taskbuffer, pg, [{"name": "dc.quota.t1", "dataset": ds, "n_files": 2, "parked": True}])
    sim = simulator([SimDataset(ds, (GB,) * 2, ("TAPE_A",))])
    calls = []
    create = sim.create_staging_rule

    def over_quota(dataset, *args, **kwargs):
        calls.append(sim.now)
        raise DDMError(f"add_replication_rule {dataset}: RSEOverQuota: full", "RSEOverQuota")

    sim.create_staging_rule = over_quota
    start = sim.now
    carousel(wfdb, sim, jedi_taskbuffer)
    (req,) = requests(pg)
    rec = staging_requests.get(wfdb, req["request_id"])  # the attempt and its back-off are in the row
    assert (rec.status, rec.rule_attempts, rec.retry_after) == ("queued", 1, start + 600)
    for _ in range(6):  # every 300 s: DDM is asked only when the back-off is over (600 s, then 1200 s)
        sim.advance(300)
        carousel(wfdb, sim, jedi_taskbuffer)
    assert calls == [start, start + 600, start + 1800]
    (req,) = requests(pg)
    assert req["status"] == "failed"
    assert sql(pg, "SELECT comm_cmd FROM doma_deft.prodsys_comm WHERE comm_task=%s", tid) == [("kill",)]
    sim.create_staging_rule = create


def test_an_adapter_bug_is_recorded_on_its_request_and_the_cycle_succeeds(jedi_taskbuffer, pg, wfdb):
    bad, good = "mc16:mc16.bug.RAW", "mc16:mc16.nobug.RAW"
    make_tasks(jedi_taskbuffer, pg, [{"name": "dc.bug.t1", "dataset": bad, "n_files": 1}, {"name": "dc.bug.t2", "dataset": good, "n_files": 1}])
    sim = simulator([SimDataset(bad, (GB,), ("TAPE_A",)), SimDataset(good, (GB,), ("TAPE_A",))])
    create = sim.create_staging_rule

    def buggy(dataset, *args, **kwargs):
        if dataset == bad:
            return [][0]  # what the Rucio adapter did with an empty answer
        return create(dataset, *args, **kwargs)

    sim.create_staging_rule = buggy
    assert run_cycle("wf_carousel", wfdb, lambda db, stats: data_carousel.cycle(db, stats, sim, jedi_taskbuffer, now=sim.now, config=CONFIG, vo="wlcg"))
    (beat,) = agent_heartbeats.list_heartbeats(wfdb, "wf_carousel")
    assert beat["last_status"] == "ok" and "unexpected IndexError from the DDM adapter" in beat["last_message"]
    statuses = {r["dataset"]: r["status"] for r in requests(pg)}
    assert statuses == {bad: "queued", good: "staging"}
    ((error,),) = sql(pg, "SELECT error_dialog FROM doma_panda.jedi_dc_requests WHERE dataset=%s", bad)
    assert "IndexError" in error and "attempt 1 of 3" in error


def test_a_dataset_ddm_has_no_replica_of_fails_its_request_at_once_and_its_task_is_told(jedi_taskbuffer, pg, wfdb):
    unknown = "mc16:mc16.unknown.RAW"
    (tid,) = make_tasks(jedi_taskbuffer, pg, [{"name": "dc.unknown.t1", "dataset": unknown, "n_files": 2}])
    sim = simulator([])  # DDM knows no replica of it

    message = carousel(wfdb, sim, jedi_taskbuffer)

    (req,) = requests(pg)
    assert (req["dataset"], req["status"]) == (unknown, "failed") and "DDM knows no replica of the dataset" in message
    history = transitions.history(wfdb, "staging", req["request_id"])
    assert [(h["from_status"], h["to_status"]) for h in history] == [(None, "queued"), ("queued", "failed")]
    ((dialog,),) = sql(pg, "SELECT errordialog FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid)
    assert dialog.startswith(f"pandajedi_wf data carousel: staging of {unknown} failed: DDM knows no replica of the dataset")
    assert sql(pg, "SELECT comm_cmd FROM doma_deft.prodsys_comm WHERE comm_task=%s", tid) == [("finish",)]  # registered: finish
    carousel(wfdb, sim, jedi_taskbuffer)  # told once; not requested again
    assert len(requests(pg)) == 1 and sql(pg, "SELECT COUNT(*) FROM doma_deft.prodsys_comm WHERE comm_task=%s", tid) == [(1,)]
