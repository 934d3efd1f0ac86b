"""The carousel agent on the real PostgreSQL harness, with upstream JEDI tasks and a simulated tape system."""

from __future__ import annotations

import json

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.daemons import data_carousel
from pandajedi_wf.daemons.common import CycleStats
from pandajedi_wf_dev.simulators.tape import SimDataset
from pandajedi_wf.taskbuffer import transitions

from tests.carousel_db_fixtures import GB, file_statuses, make_tasks, refine_staged, requests, simulator, sql, task_status, wfdb  # noqa: F401

CONFIG = load_config({"stuck_timeout_seconds": 3600})


def run(db, sim, tb, config=CONFIG, cycles=1, step=300.0, errors_ok=False):
    messages = []
    for _ in range(cycles):
        stats = CycleStats()
        messages.append(data_carousel.cycle(db, stats, sim, tb, now=sim.now, config=config, vo="wlcg"))
        assert errors_ok or "error" not in messages[-1], messages[-1]
        sim.advance(step)
    return messages


def test_shared_requests_release_files_as_they_arrive_resume_and_retire(jedi_taskbuffer, pg, wfdb):
    a, b = "mc16:mc16.flow.A.RAW", "mc16:mc16.flow.B.RAW"
    specs = [
        {"name": "dc.flow.t1", "dataset": a, "n_files": 6, "parked": True},  # parked by upstream (toStaging)
        {"name": "dc.flow.t2", "dataset": a, "n_files": 6, "priority": 1200},
        {"name": "dc.flow.t3", "dataset": b, "n_files": 4},
    ]
    t1, t2, t3 = make_tasks(jedi_taskbuffer, pg, specs)
    sim = simulator([SimDataset(a, (30 * GB,) * 6, ("TAPE_A",)), SimDataset(b, (GB,) * 4, ("TAPE_B",))])  # 300 s per file of a

    run(wfdb, sim, jedi_taskbuffer)

    reqs = {r["dataset"]: r for r in requests(pg)}
    assert set(reqs) == {a, b}  # one request per dataset, shared by t1 and t2
    assert reqs[a]["total_files"] == 6 and reqs[a]["status"] == "staging" and reqs[a]["rule_id"] in sim.rules
    relations = sql(pg, "SELECT request_id, jedi_task_id FROM doma_panda.jedi_dc_relations ORDER BY jedi_task_id")
    assert relations == [(reqs[a]["request_id"], t1), (reqs[a]["request_id"], t2), (reqs[b]["request_id"], t3)]
    assert sql(pg, "SELECT priority FROM doma_panda.jedi_dc_requests WHERE dataset=%s", a) == [(1200,)]
    assert [h["to_status"] for h in transitions.history(wfdb, "staging", reqs[a]["request_id"])] == ["queued", "submitting", "staging"]
    assert task_status(pg, t1) == "staging"  # resume command registered for TaskCommando ...
    run(wfdb, sim, jedi_taskbuffer)  # ... and not sent twice while pending
    jedi_taskbuffer.getTasksToExecCommand_JEDI("wlcg", "managed")  # what upstream's TaskCommando runs
    assert task_status(pg, t1) == "staged"  # resumed the native way once its rule existed
    assert len(sim.rules) == 2
    refine_staged(jedi_taskbuffer, pg, t1, specs[0])  # upstream's TaskRefiner registers it now, files in staging
    stored = json.loads(jedi_taskbuffer.getTaskParamsWithID_JEDI(t1))  # as our refiner plugin stored them
    assert stored["inputPreStaging"] is True and "toStaging" not in stored

    partial_seen = False
    for _ in range(30):
        run(wfdb, sim, jedi_taskbuffer, step=120.0)
        statuses = file_statuses(pg, t2)
        partial_seen |= statuses.get("pending", 0) > 0 and statuses.get("staging", 0) > 0
        if all(r["status"] == "done" for r in requests(pg)) and not statuses.get("staging"):
            break
    assert partial_seen, "files must be released one by one as they land, not per dataset"
    assert [r["status"] for r in requests(pg)] == ["done", "done"]
    for tid, n in ((t1, 6), (t2, 6), (t3, 4)):
        assert file_statuses(pg, tid) == {"pending": n}
    assert sql(pg, "SELECT COUNT(*) FROM doma_panda.jedi_dc_relations WHERE released_time IS NOT NULL") == [(3,)]

    sql(pg, "UPDATE doma_panda.jedi_tasks SET status='done' WHERE jeditaskid IN (%s, %s)", t1, t2)
    run(wfdb, sim, jedi_taskbuffer)
    by_ds = {r["dataset"]: r["status"] for r in requests(pg)}
    assert by_ds == {a: "retired", b: "done"}  # t3 still runs on b
    assert len(sim.rules) == 1  # a's rule deleted, its disk buffer freed


def test_a_later_task_joins_the_active_request(jedi_taskbuffer, pg, wfdb):
    a = "mc16:mc16.join.A.RAW"
    (t1,) = make_tasks(jedi_taskbuffer, pg, [{"name": "dc.join.t1", "dataset": a, "n_files": 3}])
    sim = simulator([SimDataset(a, (GB,) * 3, ("TAPE_A",))])
    run(wfdb, sim, jedi_taskbuffer)
    (t2,) = make_tasks(jedi_taskbuffer, pg, [{"name": "dc.join.t2", "dataset": a, "n_files": 3}])
    run(wfdb, sim, jedi_taskbuffer)
    (req,) = requests(pg)
    assert sorted(t for (t,) in sql(pg, "SELECT jedi_task_id FROM doma_panda.jedi_dc_relations WHERE request_id=%s", req["request_id"])) == [t1, t2]
    assert len(sim.rules) == 1
