"""A user's task commands (what ``pbook kill/finish/retry <reqID>`` sends through the server's task API) steer the
workflow: real PostgreSQL, upstream's sendCommandTaskPanda (the call task_api.kill/finish/retry makes) and its
command pick-up getTasksToExecCommand_JEDI; the grid simulator plays the pilots and TaskCommando's aftermath."""

from __future__ import annotations

import datetime


from wf_db_support import explain, jedi_tasks, new_grid, step_rows, workflow_row

DN = "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=jdoe/CN=123456/CN=Jane Doe"
OTHER = "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=mallory/CN=654321/CN=Mallory Evil"
CHAIN = """name: chain
steps:
  top:
    type: prun
    args: "--outputs a.txt"
    exec: "echo a > a.txt"
  middle:
    type: prun
    inDS: top/outDS
    args: "--outputs b.txt"
    exec: "cat %IN > b.txt"
  bottom:
    type: prun
    inDS: middle/outDS
    args: "--outputs c.txt"
    exec: "cat %IN > c.txt"
"""


def submit_chain(db, tmp_path, **kw):
    from pandajedi_wf.api import submit_workflow
    from pandajedi_wf_dev.devdb.task_templates import DEV_TEMPLATES

    spec = tmp_path / "chain.yaml"
    spec.write_text(CHAIN)
    result = submit_workflow(db, language="yaml", spec=str(spec), base_dir=str(tmp_path), out_ds="user.jdoe.cmd", user_name="Jane Doe",
                             user_dn=DN, vo="wlcg", task_templates=DEV_TEMPLATES, **kw)
    assert result.ok
    return result.workflow_id


class Clock:
    def __init__(self):
        from pandajedi_wf.core.clock import utcnow

        self.now = utcnow()

    def tick(self, minutes=2):
        self.now += datetime.timedelta(minutes=minutes)
        return self.now


def process(db, task_buffer, clock):
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    stats = CycleStats()
    workflow_processor.cycle_all(db, stats, task_buffer, now=clock.tick(), owner="intent-test")
    return stats.counters


def task_of(db, workflow_id, name):
    return int(next(r for r in step_rows(db, workflow_id).values() if r["name"] == name)["jedi_task_id"])


def user_command(task_buffer, task_id, command, dn=DN, qualifier=None):
    """What the PanDA server's task API does for pbook (task_api.kill/finish/retry)."""
    code, message = task_buffer.sendCommandTaskPanda(task_id, dn, False, command, properErrorCode=True, comQualifier=qualifier)
    assert code == 0, message


def commands_of(db, workflow_id):
    return db.query(f"SELECT command, requester, requester_role, status, message FROM {db.table('JEDI_WF_COMMANDS')} WHERE workflow_id=:w "
                    "ORDER BY command_id", {":w": workflow_id})


def commando(db, task_buffer):
    """Upstream's command pick-up (PRODSYS_COMM -> 'aborting'), then what TaskCommando and the PostProcessor do with a
    killed task's jobs, simulated: the task ends 'aborted'."""
    from pandajedi_wf_dev.simulators import grid_sql

    task_buffer.getTasksToExecCommand_JEDI("wlcg", "user")
    for task in grid_sql.tasks_in_status(db, "wlcg", ("aborting", "toabort")):
        with db.transaction():
            grid_sql.set_task_status(db, int(task["jeditaskid"]), "aborted", datetime.datetime.utcnow())


def run_until(db, task_buffer, grid, clock, workflow_id, predicate, rounds=20):
    for _ in range(rounds):
        process(db, task_buffer, clock)
        if predicate():
            return
        grid.tick(clock.now)
        commando(db, task_buffer)
    raise AssertionError("condition not reached\n" + explain(db, workflow_id) + f"\n{process(db, task_buffer, clock)}\n"
                         + str(db.query(f"SELECT * FROM {db.schema_deft}.PRODSYS_COMM")) + str(commands_of(db, workflow_id))
                         + str(workflow_row(db, workflow_id)["error_dialog"]))


def test_pbook_kill_of_a_task_cancels_the_whole_workflow_without_retries(db, jedi_taskbuffer, tmp_path):
    from pandajedi_wf_dev.simulators.grid import Fate

    workflow_id = submit_chain(db, tmp_path)
    clock = Clock()
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate(running_ticks=50))
    run_until(db, jedi_taskbuffer, grid, clock, workflow_id, lambda: any(t["status"] == "running" for t in jedi_tasks(db)))
    top = task_of(db, workflow_id, "top")
    user_command(jedi_taskbuffer, top, "kill")
    jedi_taskbuffer.getTasksToExecCommand_JEDI("wlcg", "user")  # TaskCommando's pick-up: 'aborting'
    run_until(db, jedi_taskbuffer, grid, clock, workflow_id, lambda: workflow_row(db, workflow_id)["status"] == "cancelled")
    assert [c[:4] for c in commands_of(db, workflow_id)] == [("kill", "Jane Doe", "owner", "done")]
    rows = step_rows(db, workflow_id)
    assert {r["name"]: r["status"] for r in rows.values()} == {"top": "cancelled", "middle": "cancelled", "bottom": "cancelled"}
    tasks = jedi_tasks(db)
    assert not [t for t in tasks if "_r" in t["taskname"].rsplit("_", 1)[-1]], tasks  # no '_r1' retry behind the user's back
    assert all(t["status"] in ("aborted", "broken") for t in tasks), tasks  # (a child of an aborted parent: JEDI breaks it)


def test_a_kill_by_someone_else_is_refused_and_recorded(db, jedi_taskbuffer, tmp_path):
    """The server lets a production role kill anyone's task; at workflow level ours checks again, and records it."""
    from pandajedi_wf_dev.simulators.grid import Fate

    workflow_id = submit_chain(db, tmp_path)
    clock = Clock()
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate(running_ticks=50))
    run_until(db, jedi_taskbuffer, grid, clock, workflow_id, lambda: any(t["status"] == "running" for t in jedi_tasks(db)))
    user_command(jedi_taskbuffer, task_of(db, workflow_id, "top"), "kill", dn=OTHER)
    jedi_taskbuffer.getTasksToExecCommand_JEDI("wlcg", "user")
    process(db, jedi_taskbuffer, clock)
    assert [c[:4] for c in commands_of(db, workflow_id)] == [("kill", "Mallory Evil", None, "refused")]
    assert workflow_row(db, workflow_id)["status"] == "running"


def test_pbook_finish_lets_the_workflow_end_without_new_steps(db, jedi_taskbuffer, tmp_path):
    from pandajedi_wf_dev.simulators.grid import Fate

    workflow_id = submit_chain(db, tmp_path)
    clock = Clock()
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate(running_ticks=3))
    run_until(db, jedi_taskbuffer, grid, clock, workflow_id, lambda: any(t["status"] == "running" for t in jedi_tasks(db)))
    user_command(jedi_taskbuffer, task_of(db, workflow_id, "top"), "finish", qualifier="soft")
    jedi_taskbuffer.getTasksToExecCommand_JEDI("wlcg", "user")  # -> 'finishing'; the simulator's PostProcessor ends it 'done'
    run_until(db, jedi_taskbuffer, grid, clock, workflow_id, lambda: workflow_row(db, workflow_id)["status"] in ("done", "finished"))
    assert [c[:4] for c in commands_of(db, workflow_id)] == [("finish", "Jane Doe", "owner", "done")]
    rows = {r["name"]: r["status"] for r in step_rows(db, workflow_id).values()}
    assert rows["top"] == "done" and rows.get("middle", "skipped") == "skipped" and "bottom" not in rows or rows["bottom"] == "skipped"
    assert not [t for t in jedi_tasks(db) if "_r" in t["taskname"].rsplit("_", 1)[-1]]


def test_pbook_retry_of_a_failed_task_revives_an_ended_workflow(db, jedi_taskbuffer, tmp_path):
    from pandajedi_wf_dev.simulators.grid import Fate

    workflow_id = submit_chain(db, tmp_path, retry_policy={"max_attempts": {"task_failure": 0}})
    clock = Clock()
    grid = new_grid(db, jedi_taskbuffer)
    grid.fate_of_run = lambda name, run: Fate(status="failed") if name.endswith("_middle") and run == 1 else Fate()
    run_until(db, jedi_taskbuffer, grid, clock, workflow_id, lambda: workflow_row(db, workflow_id)["status"] in ("failed", "finished"))
    middle = task_of(db, workflow_id, "middle")
    user_command(jedi_taskbuffer, middle, "retry")
    run_until(db, jedi_taskbuffer, grid, clock, workflow_id, lambda: workflow_row(db, workflow_id)["status"] == "done")
    assert [c[:4] for c in commands_of(db, workflow_id)] == [("retry", "Jane Doe", "owner", "done")]
    names = [t["taskname"] for t in jedi_tasks(db)]
    # middle: the same task, retried by its owner; bottom had been broken by JEDI when middle failed (a broken task
    # cannot be retried): the workflow retry resets it and it runs as a new task
    assert names == ["user.jdoe.cmd_001_top", "user.jdoe.cmd_002_middle", "user.jdoe.cmd_003_bottom", "user.jdoe.cmd_003_bottom_r1"], names
    assert task_of(db, workflow_id, "middle") == middle
