"""A task with tape input enters our carousel the way JEDI puts it there, and ends ``ready``.

Real: upstream ``insertTaskParamsPanda``; upstream's TaskRefiner with the refiner JEDI's factory loads from the test
panda_jedi.cfg (``[taskrefine] modConfig``, label ``managed``: our plugin ``jedi_agents.task_refiner`` over upstream's
GenTaskRefiner); upstream's ContentsFeeder; upstream's ``reactivatePendingTasks_JEDI`` (what its WatchDog runs) and
TaskCommando's command pick-up (``getTasksToExecCommand_JEDI``); our carousel cycle; PostgreSQL.  Simulated: JEDI's
DDM (``simulators.jedi_ddm``: the dataset's files, listed to the refiner and the feeder) and the tape system behind
our carousel's DDM interface (``simulators.tape``), which name the same files.  One wait is skipped: upstream refines a
resumed (``staged``) task once it has not moved for 10 minutes (``refine_staged`` dates it back).
"""

from __future__ import annotations

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.daemons import data_carousel
from pandajedi_wf.daemons.common import CycleStats

from tests.carousel_db_fixtures import N_FILES, UPSTREAM_ONLY_REFINER, date_back_staged, file_statuses, jedi, requests, simulator, sql, task_params, wfdb  # noqa: F401

CONFIG = load_config({"stuck_timeout_seconds": 3600})


def carousel_until_released(wfdb, sim, task_buffer, pg, tid, max_cycles=40) -> list[int]:
    """Carousel cycles every 120 simulated seconds until no file of ``tid`` is staging; the released count after each."""
    released = []
    for _ in range(max_cycles):
        message = data_carousel.cycle(wfdb, CycleStats(), sim, task_buffer, now=sim.now, config=CONFIG, vo="wlcg")
        assert "error" not in message, message
        sim.advance(120.0)
        statuses = file_statuses(pg, tid)
        released.append(statuses.get("pending", 0))
        if statuses and not statuses.get("staging"):
            return released
    raise AssertionError(f"files still staging after {max_cycles} cycles: {file_statuses(pg, tid)}")


def assert_released_file_by_file_then_ready(jedi, wfdb, sim, tid, released):
    assert released[-1] == N_FILES and released == sorted(released)
    assert any(0 < n < N_FILES for n in released), f"files must be released one by one as they land: {released}"
    (req,) = requests(jedi.pg)
    assert req["status"] == "done" and req["staged_files"] == N_FILES
    assert sql(jedi.pg, "SELECT released_time IS NOT NULL FROM doma_panda.jedi_dc_relations WHERE jedi_task_id=%s", tid) == [(True,)]
    assert jedi.task(tid)["status"] == "pending"  # on hold since its first feed, until upstream's WatchDog looks again
    jedi.watchdog_reactivates_pending()
    assert jedi.feed() == [tid]
    task = jedi.task(tid)
    assert task["status"] == "ready" and task["error"] is None, task
    assert file_statuses(jedi.pg, tid) == {"ready": N_FILES}


def test_a_task_asking_for_upstreams_carousel_is_staged_by_ours_file_by_file_and_ends_ready(jedi, wfdb, panda_home):
    """What ProdSys sends for upstream's carousel (``toStaging``, ``panda_data_carousel``): registered at once through
    our refiner plugin, its files fed as ``staging``, released one by one by our carousel, then ``ready``."""
    ds = "mc16:mc16.e2e.direct.RAW"
    sim = simulator([jedi.tape_dataset(ds)])
    params = dict(task_params("dc.e2e.direct", ds), toStaging=True, panda_data_carousel=True, cloud="DEV")
    del params["inputPreStaging"]
    tid = jedi.submit(params)

    assert jedi.refine() == [tid]
    task = jedi.task(tid)
    assert task["status"] == "defined", task  # not parked in staging: registered at once
    assert "IS=1" in task["split_rule"] and "FC=0" in task["split_rule"]  # file-level pre-staging, no iDDS stage-in request
    stored = jedi.stored_params(tid)
    assert stored["inputPreStaging"] is True and not {"toStaging", "panda_data_carousel"} & set(stored)
    log = (panda_home / "log" / "panda-TaskRefiner.log").read_text()
    assert "<class 'pandajedi_wf.jedi_agents.task_refiner.GenTaskRefiner'> is ready for wlcg:managed:any" in log  # from panda_jedi.cfg
    assert (
        f"< jediTaskID={tid} > pandajedi_wf carousel routing: inputPreStaging=True (the task asks for upstream's carousel "
        "(toStaging, panda_data_carousel); staged by ours); dropped toStaging, panda_data_carousel" in log
    )
    assert f"< jediTaskID={tid} > checking about data carousel" not in log  # upstream's carousel block skipped

    assert jedi.feed() == [tid]
    task = jedi.task(tid)
    assert task["status"] == "pending" and "inputs are staging from a tape" in task["error"], task
    assert file_statuses(jedi.pg, tid) == {"staging": N_FILES}

    released = carousel_until_released(wfdb, sim, jedi.task_buffer, jedi.pg, tid)
    assert_released_file_by_file_then_ready(jedi, wfdb, sim, tid, released)


def test_a_task_upstream_parked_for_to_staging_is_resumed_refined_and_fed_by_our_carousel(jedi, wfdb):
    """A task parked by upstream's refiner alone (the site before it named our plugin): ``staging``, splitRule NULL, no
    datasets.  Our carousel takes the dataset from its parameters, recalls it, resumes the task (``staged``), which
    upstream's refiner registers again (now through our plugin) and the feeder fills; the files are released."""
    ds = "mc16:mc16.e2e.parked.RAW"
    sim = simulator([jedi.tape_dataset(ds)])
    tid = jedi.submit(dict(task_params("dc.e2e.parked", ds), toStaging=True, cloud="DEV"))
    jedi.refine(mod_config=UPSTREAM_ONLY_REFINER)
    assert jedi.task(tid) == {"status": "staging", "split_rule": None, "error": "wait until staging is done"}
    assert sql(jedi.pg, "SELECT COUNT(*) FROM doma_panda.jedi_datasets WHERE jeditaskid=%s", tid) == [(0,)]

    message = data_carousel.cycle(wfdb, CycleStats(), sim, jedi.task_buffer, now=sim.now, config=CONFIG, vo="wlcg")
    assert "error" not in message, message
    (req,) = requests(jedi.pg)
    assert (req["dataset"], req["status"], req["total_files"]) == (ds, "staging", N_FILES) and req["rule_id"] in sim.rules
    jedi.task_buffer.getTasksToExecCommand_JEDI("wlcg", "managed")  # TaskCommando runs the carousel's resume
    assert jedi.task(tid)["status"] == "staged"

    date_back_staged(jedi.pg, tid)  # upstream's 10-minute wait before it refines a staged task, skipped
    assert jedi.refine() == [tid]
    task = jedi.task(tid)
    assert task["status"] == "defined" and "IS=1" in task["split_rule"], task
    assert "toStaging" not in jedi.stored_params(tid)
    assert jedi.feed() == [tid]
    assert file_statuses(jedi.pg, tid) == {"staging": N_FILES}

    released = carousel_until_released(wfdb, sim, jedi.task_buffer, jedi.pg, tid)
    assert_released_file_by_file_then_ready(jedi, wfdb, sim, tid, released)
