"""A task whose input staging failed for good, retried the JEDI way, is staged again by our carousel and ends ``ready``.

Real: upstream ``insertTaskParamsPanda``; upstream's TaskRefiner with our refiner plugin (label ``managed``, from the
test panda_jedi.cfg) and ContentsFeeder; the carousel's ending of the task (errorDialog, ``finish`` through
``sendCommandTaskPanda``); upstream's TaskCommando (``getTasksToExecCommand_JEDI`` + ``TaskCommandoThread``: the finish,
then the user's ``retry`` through ``retryTask_JEDI``) and PostProcessor (``GenPostProcessor``: ``passed`` -> ``failed``),
one pass each (``devdb.upstream_agents``); our carousel cycle; PostgreSQL.  Simulated: JEDI's DDM and the tape system
(``simulators.jedi_ddm``, ``simulators.tape``), whose rule creation is refused for good (``RSEWriteBlocked``) until the
operator unblocks the RSE.  Upstream 1.0.4's ``retryTask_JEDI`` reads a derived table without alias, which
PostgreSQL 16+ and Oracle accept and the test cluster's PostgreSQL 15 does not: the harness gives it one
(``upstream_agents.accept_postgres16_sql``).  One wait is skipped: the feeder looks at a mutable (pre-staged) dataset
of a running task once an hour (``[confeeder] checkInterval``), dated back here.
"""

from __future__ import annotations

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.daemons import data_carousel
from pandajedi_wf.daemons.common import CycleStats
from pandajedi_wf.taskbuffer import transitions
from pandajedi_wf_dev.devdb import upstream_agents

from tests.carousel_db_fixtures import N_FILES, file_statuses, jedi, requests, simulator, sql, task_params, wfdb  # noqa: F401
from tests.test_carousel_db_rule_errors import refuse
from tests.test_e2e_carousel_refine import carousel_until_released

CONFIG = load_config({"stuck_timeout_seconds": 3600})
DN = "dev.user"


def carousel(wfdb, sim, jedi) -> str:
    message = data_carousel.cycle(wfdb, CycleStats(), sim, jedi.task_buffer, now=sim.now, config=CONFIG, vo="wlcg")
    sim.advance(120.0)
    return message


def task_row(jedi, tid) -> dict:
    ((status, error, attempt),) = sql(jedi.pg, "SELECT status, errordialog, attemptnr FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid)
    return {"status": status, "error": error, "attempt": attempt}


def feeder_wait_skipped(jedi, tid) -> None:
    """The feeder looks again at a mutable (pre-staged) dataset of a task in ``ready``/``running`` every ``[confeeder]
    checkInterval`` (5 minutes in the test cfg) and at a task 10 minutes after its last lock: both waits skipped by
    dating the dataset's last check and the task's last lock back."""
    sql(jedi.pg, "UPDATE doma_panda.jedi_datasets SET statechecktime=statechecktime - interval '11 minutes' WHERE jeditaskid=%s AND statechecktime IS NOT NULL", tid)
    sql(jedi.pg, "UPDATE doma_panda.jedi_tasks SET lockedtime=lockedtime - interval '11 minutes' WHERE jeditaskid=%s AND lockedtime IS NOT NULL", tid)


def commando(jedi) -> list[tuple[int, str]]:
    return upstream_agents.execute_task_commands(jedi.task_buffer, "wlcg", "managed", jedi.ddm_if)


def post_process(jedi) -> list[int]:
    sql(jedi.pg, "CALL doma_panda.jedi_refresh_min_taskid_by_status()")  # what pg_cron runs
    return upstream_agents.post_process(jedi.task_buffer, "wlcg", "managed", jedi.ddm_if)


def fed_task_refused_for_good(jedi, tag: str):
    """A task refined and fed from tape dataset ``mc16:mc16.e2e.<tag>.RAW``, over a simulator whose destination
    refuses writes (DDM's answer is permanent): ``(dataset, task id, simulator, its own rule creation)``, the last to
    put back when the operator unblocks the RSE."""
    ds = f"mc16:mc16.e2e.{tag}.RAW"
    on_tape = jedi.tape_dataset(ds)
    tid = jedi.submit(dict(task_params(f"dc.e2e.{tag}", ds), cloud="DEV"))
    assert jedi.refine() == [tid] and jedi.feed() == [tid]
    sim = simulator([on_tape])
    unblocked = sim.create_staging_rule
    refuse(sim, "RSEWriteBlocked", {ds})
    return ds, tid, sim, unblocked


def test_a_task_retried_after_its_staging_failed_for_good_is_staged_again_and_ends_ready(jedi, wfdb):
    ds, tid, sim, unblocked = fed_task_refused_for_good(jedi, "retried")
    assert file_statuses(jedi.pg, tid) == {"staging": N_FILES}

    # the request fails for good; the task is told in its errorDialog and finished the JEDI way
    assert "refused for good by DDM (RSEWriteBlocked)" in carousel(wfdb, sim, jedi)
    (failed,) = requests(jedi.pg)
    assert failed["status"] == "failed"
    reason = task_row(jedi, tid)["error"]
    assert reason.startswith(f"pandajedi_wf data carousel: staging of {ds} failed: rule refused for good by DDM (RSEWriteBlocked)")
    assert commando(jedi) == [(tid, "finish")] and task_row(jedi, tid)["status"] == "passed"
    assert post_process(jedi) == [tid]
    ended = task_row(jedi, tid)
    assert (ended["status"], ended["attempt"]) == ("failed", 0) and "failed since no file was successfully processed" in ended["error"]
    assert ended["error"].startswith(reason[:100])  # the reason survives JEDI's pick-up (it makes the command's comment the errorDialog)
    assert file_statuses(jedi.pg, tid) == {"staging": N_FILES}  # finishing leaves the unstaged files as they were

    # told once: while nobody retries the task, the carousel asks for the dataset no more
    sim.create_staging_rule = unblocked  # the operator unblocks the RSE
    carousel(wfdb, sim, jedi)
    assert len(requests(jedi.pg)) == 1

    # the user's `pbook retry`: the server registers the command, TaskCommando runs upstream's retryTask_JEDI
    code, answer = jedi.task_buffer.sendCommandTaskPanda(tid, DN, True, "retry", properErrorCode=True)
    assert code == 0, answer
    assert commando(jedi) == [(tid, "retry")]
    retried = task_row(jedi, tid)
    assert (retried["status"], retried["attempt"], retried["error"]) == ("ready", 1, None)
    assert file_statuses(jedi.pg, tid) == {"staging": N_FILES}  # a retry releases no unstaged file (no 'staged' qualifier)

    # our carousel takes the retried task again: a new request, whose history starts with the failure it follows
    released = carousel_until_released(wfdb, sim, jedi.task_buffer, jedi.pg, tid)
    assert released[-1] == N_FILES and any(0 < n < N_FILES for n in released), released
    first, again = requests(jedi.pg)
    assert (first["request_id"], first["status"]) == (failed["request_id"], "failed")  # the failure stays on record
    assert (again["dataset"], again["status"], again["staged_files"]) == (ds, "done", N_FILES)
    history = transitions.history(wfdb, "staging", again["request_id"])
    assert history[0]["to_status"] == "queued" and history[0]["reason"].startswith(
        f"retried task(s) {tid} need the dataset again; request {failed['request_id']} failed: rule refused for good by DDM (RSEWriteBlocked)"
    )
    assert sql(jedi.pg, "SELECT released_time IS NOT NULL FROM doma_panda.jedi_dc_relations WHERE request_id=%s AND jedi_task_id=%s", again["request_id"], tid) == [(True,)]

    # the retried task runs on: the feeder's next look at its mutable (pre-staged) dataset makes the files ready
    feeder_wait_skipped(jedi, tid)
    assert jedi.feed() == [tid]
    assert task_row(jedi, tid)["status"] == "ready" and file_statuses(jedi.pg, tid) == {"ready": N_FILES}


def test_a_task_told_of_a_failure_but_not_retried_is_not_staged_again(jedi, wfdb):
    """The finish the carousel sent is still on its way (PRODSYS_COMM), then done: the task's attempt started before
    it was told, so no request is made for it, whatever its status meanwhile."""
    _, tid, sim, unblocked = fed_task_refused_for_good(jedi, "notretried")
    carousel(wfdb, sim, jedi)
    sim.create_staging_rule = unblocked
    carousel(wfdb, sim, jedi)  # the finish not picked up yet: the task still pending with files staging
    assert task_row(jedi, tid)["status"] == "pending" and len(requests(jedi.pg)) == 1
    commando(jedi)
    carousel(wfdb, sim, jedi)  # passed, not ended yet
    post_process(jedi)
    carousel(wfdb, sim, jedi)  # failed
    assert task_row(jedi, tid)["status"] == "failed" and len(requests(jedi.pg)) == 1


def test_a_parked_task_whose_staging_failed_is_killed_and_upstream_accepts_no_retry_of_it(jedi, wfdb):
    """A task parked before registration has no files: finishing it would end it ``done``, so the carousel kills it
    (TaskCommando -> ``toabort``, PostProcessor -> ``aborted``); the server then refuses a retry (only ``finished``
    and ``failed`` tasks are retried): the user resubmits, and the new task is staged by our carousel."""
    from tests.carousel_db_fixtures import UPSTREAM_ONLY_REFINER

    ds = "mc16:mc16.e2e.parkedfailed.RAW"
    on_tape = jedi.tape_dataset(ds)
    tid = jedi.submit(dict(task_params("dc.e2e.parkedfailed", ds), toStaging=True, cloud="DEV"))
    jedi.refine(mod_config=UPSTREAM_ONLY_REFINER)
    assert task_row(jedi, tid)["status"] == "staging"
    sim = simulator([on_tape])
    refuse(sim, "RSEWriteBlocked", {ds})
    carousel(wfdb, sim, jedi)
    assert commando(jedi) == [(tid, "kill")] and post_process(jedi) == [tid]
    ended = task_row(jedi, tid)
    assert ended["status"] == "aborted" and ended["error"].startswith(f"pandajedi_wf data carousel: staging of {ds} failed: rule refused for good")
    code, answer = jedi.task_buffer.sendCommandTaskPanda(tid, DN, True, "retry", properErrorCode=True)
    assert code != 0 and "aborted" in str(answer), (code, answer)
