"""One staging request per dataset whatever the tasks call it ('scope:name' or 'name'), each task served under its
own spelling: real upstream JEDI tasks (insertTaskParamsPanda + TaskRefiner), real PostgreSQL, the tape simulator
behind the DDM interface."""

from __future__ import annotations

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.daemons import data_carousel
from pandajedi_wf.daemons.common import CycleStats
from pandajedi_wf_dev.simulators.tape import SimDataset

from tests.carousel_db_fixtures import GB, file_statuses, make_tasks, requests, simulator, sql, wfdb  # noqa: F401


def test_two_spellings_of_one_dataset_make_one_request_and_both_tasks_get_their_files(jedi_taskbuffer, pg, wfdb):
    scoped, bare = "mc16:mc16.spell.RAW", "mc16.spell.RAW"
    t1, t2 = make_tasks(jedi_taskbuffer, pg, [{"name": "dc.spell.t1", "dataset": scoped, "n_files": 3}, {"name": "dc.spell.t2", "dataset": bare, "n_files": 3}])
    assert {name for (name,) in sql(pg, "SELECT datasetname FROM doma_panda.jedi_datasets WHERE type='input' AND jeditaskid IN (%s, %s)", t1, t2)} == {scoped, bare}
    sim = simulator([SimDataset(scoped, (GB,) * 3, ("TAPE_A",))])
    config = load_config({})
    for _ in range(20):
        message = data_carousel.cycle(wfdb, CycleStats(), sim, jedi_taskbuffer, now=sim.now, config=config, vo="wlcg")
        assert "error" not in message, message
        if file_statuses(pg, t1) == file_statuses(pg, t2) == {"pending": 3}:
            break
        sim.advance(300)
    (req,) = requests(pg)
    assert (req["dataset"], req["status"]) == (scoped, "done")
    assert sorted(t for (t,) in sql(pg, "SELECT jedi_task_id FROM doma_panda.jedi_dc_relations WHERE request_id=%s", req["request_id"])) == [t1, t2]
    assert file_statuses(pg, t1) == file_statuses(pg, t2) == {"pending": 3}  # each task's files, released under its own name
    assert len(sim.rules) == 1
    # the bytes on disk, summed from the rule's OK locks, are in the row (staged_size)
    assert sql(pg, "SELECT staged_files, staged_size FROM doma_panda.jedi_dc_requests WHERE request_id=%s", req["request_id"]) == [(3, 3 * GB)]
