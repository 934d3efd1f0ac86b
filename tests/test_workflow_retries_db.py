"""Automatic step retries on real PostgreSQL: the processor, upstream insertTaskParamsPanda / TaskRefiner /
sendCommandTaskPanda / getTasksToExecCommand_JEDI, and the grid simulator playing the pilots and TaskCommando.

The processor's clock is driven explicitly, so backoff delays are checked to the second.
"""

from __future__ import annotations

import datetime


from wf_db_support import EXAMPLES, explain, new_grid, submit, workflow_row

SIMPLE_CHAIN = EXAMPLES / "native" / "chain.yaml"
SECOND = datetime.timedelta(seconds=1)


def cycle_at(db, task_buffer, now, owner="retry-test"):
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    stats = CycleStats()
    workflow_processor.cycle(db, stats, task_buffer, now=now, owner=owner)
    return stats.counters


def drive(db, task_buffer, grid, wf, now, until, minutes=1, rounds=60):
    """Cycle, check, tick, move the clock on; return the clock of the cycle after which ``until()`` held."""
    for _ in range(rounds):
        cycle_at(db, task_buffer, now)
        if until():
            return now
        grid.tick()
        now += datetime.timedelta(minutes=minutes)
    raise AssertionError("condition never reached\n" + explain(db, wf))


def steps_by_name(db, wf):
    rows = db.query_dicts(
        f"SELECT step_id, name, status, jedi_task_id, task_name, generation, attempt_nr, error_class, error_dialog, retry_after "
        f"FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w ORDER BY step_id",
        {":w": wf},
    )
    return {r["name"]: r for r in rows}


def step_history(db, step_id):
    return db.query_dicts(
        f"SELECT from_status, to_status, reason FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE entity_type='step' AND entity_id=:s "
        "ORDER BY transition_id",
        {":s": step_id},
    )


def deft_counts(db):
    return dict(db.query(f"SELECT taskName, COUNT(*) FROM {db.schema_deft}.T_TASK GROUP BY taskName"))


def prodsys_commands(db):
    return db.query(f"SELECT comm_task, comm_cmd FROM {db.schema_deft}.PRODSYS_COMM ORDER BY comm_task")


def jedi_takes_kills(db, task_buffer):
    """Upstream's command pick-up (real), then TaskCommando's kill, simulated: killed tasks end 'aborted'."""
    from pandajedi_wf_dev.simulators import grid_sql

    task_buffer.getTasksToExecCommand_JEDI("wlcg", "user")
    for task in grid_sql.tasks_in_status(db, "wlcg", ("aborting", "toabort")):
        with db.transaction():
            grid_sql.set_task_status(db, int(task["jeditaskid"]), "aborted", datetime.datetime.utcnow())


def test_a_task_failing_once_is_retried_by_jedi_after_its_backoff_and_the_workflow_ends_done(db, jedi_taskbuffer):
    from pandajedi_wf.api.queries import show_workflow
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf_dev.simulators.grid import Fate

    wf = submit(db, "yaml", SIMPLE_CHAIN, out_ds="user.dev.auto").workflow_id
    grid = new_grid(db, jedi_taskbuffer)
    grid.fate_of_run = lambda name, run: Fate("failed") if name.endswith("_001_top") and run == 1 else Fate()

    failed_at = drive(db, jedi_taskbuffer, grid, wf, utcnow(), lambda: steps_by_name(db, wf)["top"]["status"] == "failed")
    top = steps_by_name(db, wf)["top"]
    # default policy: one automatic retry of a task failure, 600 s after the failure was seen
    assert top["error_class"] == "task_failure" and top["retry_after"] == failed_at + 600 * SECOND, top
    # the child, submitted early to read its parent's outputs as they come (noWaitParent), is neither ended nor skipped
    assert steps_by_name(db, wf)["bottom"]["status"] in ("defined", "submitted")
    assert workflow_row(db, wf)["status"] == "running"

    cycle_at(db, jedi_taskbuffer, failed_at + 599 * SECOND)
    assert steps_by_name(db, wf)["top"]["status"] == "failed" and prodsys_commands(db) == []  # not yet due

    cycle_at(db, jedi_taskbuffer, failed_at + 600 * SECOND)
    top = steps_by_name(db, wf)["top"]
    assert top["status"] == "retrying" and top["retry_after"] is None
    assert prodsys_commands(db) == [(top["jedi_task_id"], "retry")]
    # JEDI has not picked the command up, so the task still says 'failed': the step must not fail again meanwhile
    cycle_at(db, jedi_taskbuffer, failed_at + 601 * SECOND)
    assert steps_by_name(db, wf)["top"]["status"] == "retrying"

    drive(db, jedi_taskbuffer, grid, wf, failed_at + 602 * SECOND, lambda: workflow_row(db, wf)["status"] in ("done", "failed"))
    assert workflow_row(db, wf)["status"] == "done", explain(db, wf)
    rows = steps_by_name(db, wf)
    assert rows["top"]["jedi_task_id"] == top["jedi_task_id"] and rows["top"]["generation"] == 0  # the same task, retried
    assert grid.runs[top["task_name"]] == 2
    assert all(n == 1 for n in deft_counts(db).values()) and len(deft_counts(db)) == 2
    chain = [(h["from_status"], h["to_status"]) for h in step_history(db, top["step_id"])]
    assert ("running", "failed") in chain and ("failed", "retrying") in chain and chain[-1][1] == "done", chain
    shown = show_workflow(db, wf)
    reasons = [h["why"] for h in shown["history"] if h["key"] == "001"]
    assert any("task_failure: automatic retry 1 of 1 in 600 s" in r for r in reasons), reasons
    assert any(r.startswith("automatic retry: JEDI retry of task") for r in reasons), reasons


def test_retries_stop_at_the_policy_maximum_and_the_workflow_fails_with_the_reason(db, jedi_taskbuffer):
    """A per-workflow policy (2 retries, 60 s doubling) overrides the defaults (1 retry, 600 s); a broken task
    cannot be retried by JEDI, so each retry is a new task with its own name."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf_dev.simulators.grid import Fate

    policy = {"max_attempts": {"task_failure": 2}, "backoff": {"base": 60, "factor": 2, "cap": 600}}
    wf = submit(db, "yaml", SIMPLE_CHAIN, out_ds="user.dev.maxed", retry_policy=policy).workflow_id
    assert workflow_row(db, wf)["retry_policy"] == policy
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate("broken") if "_001_top" in name else Fate())

    now = utcnow()
    delays = []
    for generation in (0, 1):
        seen = drive(db, jedi_taskbuffer, grid, wf, now, lambda: steps_by_name(db, wf)["top"]["retry_after"] is not None)
        top = steps_by_name(db, wf)["top"]
        assert top["status"] == "failed" and top["generation"] == generation, top
        delays.append((top["retry_after"] - seen).total_seconds())
        cycle_at(db, jedi_taskbuffer, top["retry_after"] - SECOND)
        assert steps_by_name(db, wf)["top"]["generation"] == generation  # not before its time
        now = top["retry_after"]
    assert delays == [60.0, 120.0]

    drive(db, jedi_taskbuffer, grid, wf, now, lambda: workflow_row(db, wf)["status"] in ("done", "failed"))
    assert workflow_row(db, wf)["status"] == "failed", explain(db, wf)
    rows = steps_by_name(db, wf)
    assert rows["top"]["task_name"] == "user.dev.maxed_001_top_r2" and rows["top"]["retry_after"] is None
    assert rows["bottom"]["status"] in ("failed", "skipped")  # (if submitted early, it broke with its parent)
    counts = deft_counts(db)
    assert sorted(n for n in counts if "_001_top" in n) == ["user.dev.maxed_001_top", "user.dev.maxed_001_top_r1", "user.dev.maxed_001_top_r2"]
    assert set(counts.values()) == {1}
    reasons = [h["reason"] for h in step_history(db, rows["top"]["step_id"])]
    assert sum(r.startswith("automatic retry: new JEDI task") for r in reasons) == 2, reasons
    assert "not retried: task_failure: all 2 automatic retries used" in reasons[-1], reasons


def auto_retries(db, step_id):
    return db.query(f"SELECT auto_retries FROM {db.table('JEDI_WF_STEPS')} WHERE step_id=:s", {":s": step_id})[0][0]


def test_the_retry_budget_is_a_column_and_a_user_retry_gives_it_back(db, jedi_taskbuffer):
    """The automatic retries made are JEDI_WF_STEPS.auto_retries, not words in the history: rewording every history
    row changes nothing. Once the policy's maximum is used the workflow fails; the user's retry command sets the count
    back to 0, so the step gets the policy's retries again."""
    from pandajedi_wf.api.control import command_workflow
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf_dev.simulators.grid import Fate

    policy = {"max_attempts": {"task_failure": 1}, "backoff": {"base": 60, "factor": 1, "cap": 60}}
    wf = submit(db, "yaml", SIMPLE_CHAIN, out_ds="user.dev.budget", retry_policy=policy).workflow_id
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate("broken") if "_001_top" in name else Fate())
    now = drive(db, jedi_taskbuffer, grid, wf, utcnow(), lambda: steps_by_name(db, wf)["top"]["retry_after"] is not None)
    top = steps_by_name(db, wf)["top"]
    assert auto_retries(db, top["step_id"]) == 0
    with db.transaction():  # what 1.2.0 counted by is gone: the count must not depend on it
        db.execute(f"UPDATE {db.table('JEDI_WF_TRANSITIONS')} SET reason='reworded' WHERE entity_type='step'", {})
    now = drive(db, jedi_taskbuffer, grid, wf, top["retry_after"], lambda: workflow_row(db, wf)["status"] in ("done", "failed"))
    assert workflow_row(db, wf)["status"] == "failed", explain(db, wf)
    assert auto_retries(db, top["step_id"]) == 1
    assert "all 1 automatic retries used" in step_history(db, top["step_id"])[-1]["reason"]

    answer = command_workflow(db, wf, "retry", None, "dev.user", None)
    assert answer["status"] == "queued", answer
    now = drive(db, jedi_taskbuffer, grid, wf, now + datetime.timedelta(minutes=1),
                lambda: steps_by_name(db, wf)["top"]["retry_after"] is not None and auto_retries(db, top["step_id"]) == 0)
    top = steps_by_name(db, wf)["top"]
    assert top["error_class"] == "task_failure"  # failed again, and the policy grants its retry again
    drive(db, jedi_taskbuffer, grid, wf, top["retry_after"], lambda: auto_retries(db, top["step_id"]) == 1)


def test_a_definition_error_is_never_retried(db, jedi_taskbuffer):
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf_dev.simulators.grid import Fate

    policy = {"max_attempts": {"task_failure": 3, "transient": 3}, "backoff": {"base": 0, "cap": 0}}
    wf = submit(db, "yaml", SIMPLE_CHAIN, out_ds="user.dev.defn", retry_policy=policy).workflow_id
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate("failed") if name.endswith("_001_top") else Fate())

    def tick_writing_jedi_diagnosis():
        """JEDI's PostProcessor writes why a task failed; here: its build step never succeeded."""
        type(grid).tick(grid)
        with db.transaction():
            db.execute(f"UPDATE {db.table('JEDI_Tasks')} SET errorDialog='No build jobs succeeded' WHERE status='failed'")

    grid.tick = tick_writing_jedi_diagnosis
    drive(db, jedi_taskbuffer, grid, wf, utcnow(), lambda: workflow_row(db, wf)["status"] in ("done", "failed"))
    assert workflow_row(db, wf)["status"] == "failed", explain(db, wf)
    top = steps_by_name(db, wf)["top"]
    assert top["error_class"] == "definition" and top["error_dialog"] == "No build jobs succeeded" and top["retry_after"] is None
    assert prodsys_commands(db) == [] and [n for n in deft_counts(db) if "_001_top" in n] == ["user.dev.defn_001_top"]
    assert "not retried: definition errors are never retried" in step_history(db, top["step_id"])[-1]["reason"]


def test_a_submission_jedi_refuses_for_now_is_retried_as_a_new_task(db, jedi_taskbuffer):
    """insertTaskParamsPanda code 10 (too many active tasks) is transient: default 120 s, then a new task name."""
    from pandajedi_wf.core.clock import utcnow

    class BusyOnce:
        def __init__(self, task_buffer):
            self.task_buffer, self.refused = task_buffer, 0

        def insertTaskParamsPanda(self, *args, **kwargs):
            if not self.refused:
                self.refused += 1
                return 10, "too many active tasks for the user"
            return self.task_buffer.insertTaskParamsPanda(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.task_buffer, name)

    busy = BusyOnce(jedi_taskbuffer)
    wf = submit(db, "yaml", SIMPLE_CHAIN, out_ds="user.dev.busy").workflow_id
    grid = new_grid(db, jedi_taskbuffer)
    now = utcnow()
    cycle_at(db, busy, now)
    top = steps_by_name(db, wf)["top"]
    assert top["status"] == "failed" and top["error_class"] == "transient" and top["retry_after"] == now + 120 * SECOND, top
    drive(db, busy, grid, wf, now + SECOND, lambda: workflow_row(db, wf)["status"] in ("done", "failed"))
    assert workflow_row(db, wf)["status"] == "done", explain(db, wf)
    assert sorted(deft_counts(db)) == ["user.dev.busy_001_top_r1", "user.dev.busy_002_bottom"]
    # the containers of each submission, registered once each (the first intent's without a look-up, the retry's with)
    data = db.query(f"SELECT name, status FROM {db.table('JEDI_WF_DATA')} WHERE workflow_id=:w ORDER BY name", {":w": wf})
    tasks = {name.rsplit("_", 1)[0] for name, _ in data}
    assert tasks == {"user.dev.busy_001_top", "user.dev.busy_001_top_r1", "user.dev.busy_002_bottom"}, data
    assert len({name for name, _ in data}) == len(data)


def test_a_kill_drops_a_pending_retry_and_a_pause_holds_it(db, jedi_taskbuffer):
    from pandajedi_wf.api.control import command_workflow
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf_dev.simulators.grid import Fate

    ids = [submit(db, "yaml", SIMPLE_CHAIN, out_ds=f"user.dev.hold{i}").workflow_id for i in range(2)]
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate("failed") if "_001_top" in name else Fate())
    held = lambda: all(steps_by_name(db, w)["top"]["retry_after"] is not None for w in ids)  # noqa: E731
    now = drive(db, jedi_taskbuffer, grid, ids[0], utcnow(), held)
    killed, paused = ids
    assert command_workflow(db, killed, "kill", None, "dev.user", None)["status"] == "queued"
    assert command_workflow(db, paused, "pause", None, "dev.user", None)["status"] == "queued"
    now += 700 * SECOND  # both retries are due
    cycle_at(db, jedi_taskbuffer, now)
    jedi_takes_kills(db, jedi_taskbuffer)
    cycle_at(db, jedi_taskbuffer, now + SECOND)

    assert workflow_row(db, killed)["status"] == "cancelled", explain(db, killed)
    top = steps_by_name(db, killed)["top"]
    assert top["status"] == "failed" and top["retry_after"] is None
    assert step_history(db, top["step_id"])[-1]["reason"] == "automatic retry dropped: workflow is cancelling"
    assert not [c for c in prodsys_commands(db) if c[1].startswith("retry")]
    assert workflow_row(db, paused)["status"] == "paused"
    assert steps_by_name(db, paused)["top"]["retry_after"] is not None  # kept until resumed

    assert command_workflow(db, paused, "resume", None, "dev.user", None)["status"] == "queued"
    cycle_at(db, jedi_taskbuffer, now + 2 * SECOND)
    top = steps_by_name(db, paused)["top"]
    assert top["status"] == "retrying" and (top["jedi_task_id"], "retry") in prodsys_commands(db)


def test_an_invalid_retry_policy_refuses_the_submission_and_stores_nothing(db):
    result = submit(db, "yaml", SIMPLE_CHAIN, out_ds="user.dev.badpolicy", retry_policy={"max_attempts": {"definition": 2}})
    assert not result.ok and result.workflow_id is None
    assert result.problems == [{"code": "retry_policy", "message": "retry_policy.max_attempts.definition: definition errors are never "
                                                                   "retried; remove the key or set 0"}]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_WF_WORKFLOWS')}")[0][0] == 0
