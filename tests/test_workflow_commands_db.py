"""Workflow commands end to end: the pandajedi-wf command line -> JEDI_WF_COMMANDS -> the processor -> JEDI.

Real PostgreSQL, real upstream insertTaskParamsPanda / TaskRefiner / sendCommandTaskPanda; the grid simulator
plays the pilots. The CLI is called through its ``main`` with the DB-backed client, as a user would run it.
"""

import io
import json


from wf_db_support import BACKGROUNDS, EXAMPLES, SIGNALS, explain, jedi_tasks, new_grid, run_until_quiet, step_rows, submit, workflow_row

SIMPLE_CHAIN = EXAMPLES / "native" / "chain.yaml"


def cli(db, *argv):
    from pandajedi_wf.api.db_client import DbWorkflowClient
    from pandajedi_wf.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), client_factory=lambda: DbWorkflowClient(db), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def cycle(db, task_buffer, now_offset_minutes=0):
    import datetime

    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    stats = CycleStats()
    workflow_processor.cycle(db, stats, task_buffer, now=utcnow() + datetime.timedelta(minutes=now_offset_minutes), owner="cmd-test")
    return stats.counters


def jedi_commando(task_buffer, db):
    """Upstream's command pick-up (PRODSYS_COMM -> task 'aborting'), then what TaskCommando and the PostProcessor
    would do with a killed task's jobs, simulated: the task ends 'aborted'."""
    from pandajedi_wf_dev.simulators import grid_sql

    task_buffer.getTasksToExecCommand_JEDI("wlcg", "user")
    for task in grid_sql.tasks_in_status(db, "wlcg", ("aborting", "toabort")):
        with db.transaction():
            grid_sql.set_task_status(db, int(task["jeditaskid"]), "aborted", __import__("datetime").datetime.utcnow())


def prodsys_commands(db):
    return db.query(f"SELECT comm_task, comm_cmd FROM {db.schema_deft}.PRODSYS_COMM ORDER BY comm_task")


def test_non_owner_is_refused_and_nothing_changes(db, jedi_taskbuffer):
    wf = submit(db, "yaml", SIMPLE_CHAIN, out_ds="user.dev.refuse").workflow_id
    cycle(db, jedi_taskbuffer)
    before = (workflow_row(db, wf)["status"], {k: r["status"] for k, r in step_rows(db, wf).items()})

    from pandajedi_wf.api.control import command_workflow

    # what our server endpoint does for a verified identity that does not own the workflow
    answer = command_workflow(db, wf, "kill", None, "/DC=ch/DC=cern/OU=Users/CN=mallory/CN=123/CN=Mallory Evil", [])

    assert answer["status"] == "refused", answer
    assert "permission denied" in answer["message"] and "Mallory Evil" in answer["message"]
    assert (workflow_row(db, wf)["status"], {k: r["status"] for k, r in step_rows(db, wf).items()}) == before
    (command,) = db.query_dicts(f"SELECT command, status, message FROM {db.table('JEDI_WF_COMMANDS')} WHERE workflow_id=:w", {":w": wf})
    assert command["status"] == "refused" and "only the owner" in command["message"]
    cycle(db, jedi_taskbuffer)  # the refused command is never executed later
    assert prodsys_commands(db) == []


def test_owner_kill_mid_run_cancels_steps_and_kills_their_tasks(db, jedi_taskbuffer):
    from pandajedi_wf_dev.simulators.grid import Fate

    wf = submit(db, "yaml", SIMPLE_CHAIN, out_ds="user.dev.kill").workflow_id
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate(running_ticks=10))
    cycle(db, jedi_taskbuffer)
    grid.tick()
    grid.tick()  # 'top' is running in JEDI
    cycle(db, jedi_taskbuffer)
    running = {r["name"]: r for r in step_rows(db, wf).values()}
    assert running["top"]["status"] in ("running", "submitted") and running["top"]["jedi_task_id"]

    code, out, err = cli(db, "--json", "kill", str(wf))
    assert code == 0, err
    assert json.loads(out)["status"] == "queued"

    cycle(db, jedi_taskbuffer)
    assert [t for t, cmd in prodsys_commands(db) if cmd == "kill"] == [running["top"]["jedi_task_id"]]
    # 'bottom' was submitted moments ago and JEDI does not know it yet: the workflow waits, repeating the kill,
    # until JEDI has the task (refined in the next grid tick) and then sees it aborted
    assert workflow_row(db, wf)["status"] == "cancelling"
    for _ in range(3):
        grid.tick()
        jedi_commando(jedi_taskbuffer, db)
        cycle(db, jedi_taskbuffer)
    assert workflow_row(db, wf)["status"] == "cancelled", explain(db, wf)
    rows = step_rows(db, wf)
    assert all(r["status"] == "cancelled" for r in rows.values()), rows
    # no task of the workflow can run any more: each was killed, or (never started) ended with its parent
    task_status = {int(t["jeditaskid"]): t["status"] for t in jedi_tasks(db)}
    assert task_status[running["top"]["jedi_task_id"]] == "aborted"
    assert task_status[running["bottom"]["jedi_task_id"]] in ("aborted", "broken"), explain(db, wf)
    (command,) = db.query_dicts(f"SELECT status FROM {db.table('JEDI_WF_COMMANDS')} WHERE workflow_id=:w", {":w": wf})
    assert command["status"] == "done"


def test_pause_holds_new_submissions_and_resume_finishes_the_workflow(db, jedi_taskbuffer):
    wf = submit(db, "yaml", SIMPLE_CHAIN, out_ds="user.dev.pause").workflow_id
    grid = new_grid(db, jedi_taskbuffer)
    cycle(db, jedi_taskbuffer)
    assert cli(db, "pause", str(wf))[0] == 0
    cycle(db, jedi_taskbuffer)
    assert workflow_row(db, wf)["status"] == "paused"
    for _ in range(6):  # 'top' ends in JEDI meanwhile, but nothing new is submitted
        grid.tick()
        cycle(db, jedi_taskbuffer)
    rows = {r["name"]: r for r in step_rows(db, wf).values()}
    assert rows["top"]["status"] == "done"
    assert rows["bottom"]["jedi_task_id"] is None, rows

    assert cli(db, "resume", str(wf))[0] == 0
    status, _ = run_until_quiet(db, jedi_taskbuffer, grid, wf)
    assert status == "done"


def test_retry_of_a_broken_step_submits_a_new_task_and_the_workflow_completes(db, jedi_taskbuffer):
    from pandajedi_wf_dev.simulators.grid import Fate

    def fate(task_name):
        return Fate(status="broken") if task_name.endswith("_001_top") else Fate()

    # no automatic retry here: the user's command is what brings the step back
    wf = submit(db, "yaml", SIMPLE_CHAIN, out_ds="user.dev.retry", retry_policy={"max_attempts": {"task_failure": 0}}).workflow_id
    grid = new_grid(db, jedi_taskbuffer, fate=fate)
    status, _ = run_until_quiet(db, jedi_taskbuffer, grid, wf)
    assert status == "failed"

    code, out, err = cli(db, "retry", str(wf))
    assert code == 0, (out, err)
    status, _ = run_until_quiet(db, jedi_taskbuffer, grid, wf)

    assert status == "done", explain(db, wf) + "\n" + str(db.query_dicts(f"SELECT * FROM {db.table('JEDI_WF_COMMANDS')}"))
    rows = {r["name"]: r for r in step_rows(db, wf).values()}
    assert rows["top"]["task_name"] == "user.dev.retry_001_top_r1"
    assert rows["bottom"]["status"] == "done"
    code, out, _ = cli(db, "--json", "show", str(wf))
    shown = json.loads(out)
    assert any(h["to"] == "defined" and "retry" in h["why"] for h in shown["history"])


def test_show_by_task_and_list(db, jedi_taskbuffer):
    wf = submit(db, "yaml", SIMPLE_CHAIN, out_ds="user.dev.show").workflow_id
    cycle(db, jedi_taskbuffer)
    task_id = next(r["jedi_task_id"] for r in step_rows(db, wf).values() if r["jedi_task_id"])

    code, out, _ = cli(db, "--json", "show", "--task", str(task_id))
    assert code == 0 and json.loads(out)["workflow_id"] == wf
    code, out, _ = cli(db, "list", "--user", "dev.user")
    assert code == 0 and str(wf) in out and "running" in out
    code, out, err = cli(db, "show", "999999")
    assert code == 3 and "999999" in (out + err)


def test_finish_lets_running_steps_end_and_submits_nothing_new(db, jedi_taskbuffer):
    from pandajedi_wf_dev.simulators.grid import Fate

    wf = submit(db, "cwl", EXAMPLES / "overlay.cwl", out_ds="user.dev.finish", inputs={"signal": SIGNALS[0], "background": BACKGROUNDS[0]}).workflow_id
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate(running_ticks=3))
    cycle(db, jedi_taskbuffer)
    grid.tick()
    cycle(db, jedi_taskbuffer)
    running_before = {r["name"] for r in step_rows(db, wf).values() if r["jedi_task_id"]}
    assert running_before and "reconstruct" not in running_before

    code, out, err = cli(db, "finish", str(wf))
    assert code == 0, (out, err)
    status, _ = run_until_quiet(db, jedi_taskbuffer, grid, wf)

    rows = {r["name"]: r for r in step_rows(db, wf).values()}
    assert status == "finished", explain(db, wf)
    # what ran before the finish ended normally; nothing was submitted after it
    assert {n for n, r in rows.items() if r["jedi_task_id"]} == running_before
    assert all(rows[n]["status"] == "done" for n in running_before)
    assert rows["reconstruct"]["status"] == "skipped" and rows["reconstruct"]["jedi_task_id"] is None


def test_rerun_from_a_step_runs_it_and_everything_downstream_again(db, jedi_taskbuffer):
    wf = submit(db, "cwl", EXAMPLES / "chain.cwl", out_ds="user.dev.rerun").workflow_id
    grid = new_grid(db, jedi_taskbuffer)
    assert run_until_quiet(db, jedi_taskbuffer, grid, wf)[0] == "done"
    first = {r["name"]: r["task_name"] for r in step_rows(db, wf).values()}

    code, out, err = cli(db, "rerun-from", str(wf), "bottom")
    assert code == 0, (out, err)
    status, _ = run_until_quiet(db, jedi_taskbuffer, grid, wf)

    assert status == "done", explain(db, wf)
    rows = {r["name"]: r for r in step_rows(db, wf).values()}
    assert rows["top"]["task_name"] == first["top"]  # upstream of the rerun point: untouched
    assert rows["bottom"]["task_name"] == first["bottom"] + "_r1"  # a new JEDI task for the rerun step
    assert {t["taskname"] for t in jedi_tasks(db)} >= {first["top"], first["bottom"], first["bottom"] + "_r1"}
    history = db.query_dicts(f"SELECT to_status, reason FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE entity_type='workflow' "
                             "AND entity_id=:w ORDER BY transition_id", {":w": wf})
    assert [h["to_status"] for h in history][-3:] == ["done", "running", "done"]
    assert "rerun" in history[-2]["reason"]


def test_cli_submit_with_a_retry_policy_and_a_refused_policy(db, tmp_path):
    from pandajedi_wf_dev.devdb.task_templates import DEV_TEMPLATES

    (tmp_path / "templates.json").write_text(json.dumps(DEV_TEMPLATES))
    (tmp_path / "policy.json").write_text(json.dumps({"max_attempts": {"task_failure": 3}, "backoff": {"base": 30, "cap": 600}}))
    (tmp_path / "bad.json").write_text(json.dumps({"max_attempts": {"definition": 2}}))
    base = ["--json", "submit", str(SIMPLE_CHAIN), "--outDS", "user.dev.cli", "--templates", str(tmp_path / "templates.json"),
            "--owner", "dev.user", "--vo", "wlcg"]

    code, out, err = cli(db, *base, "--retry-policy", str(tmp_path / "policy.json"))
    assert code == 0, (out, err)
    wf = json.loads(out)["workflow_id"]
    assert workflow_row(db, wf)["retry_policy"]["max_attempts"]["task_failure"] == 3

    code, out, err = cli(db, *base, "--retry-policy", str(tmp_path / "bad.json"))
    assert code == 4
    assert "definition errors are never retried" in out + err
    assert db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_WF_WORKFLOWS')}") == [(1,)]
