"""A stored definition the processor cannot turn into a task ends the workflow ``failed`` with the reason, once,
instead of an error on every pass (issue 11 item 10). Validation refuses such a definition at intake now, so the test
stores it as an earlier version of the package could have (a valid submission whose stored definition is then
replaced by the broken one), which is also what a definition problem found only at run time looks like."""

from __future__ import annotations

import datetime


from wf_db_support import jedi_tasks, new_grid, step_rows, workflow_row
from example_workflows import TWO_STEP_CHAIN as CHAIN



def broken_definition(tmp_path) -> dict:
    from pandajedi_wf.workflow import validate_workflow

    (tmp_path / "chain.yaml").write_text(CHAIN)
    definition = validate_workflow("yaml", str(tmp_path / "chain.yaml"), None, str(tmp_path), None).workflow.to_dict()
    bottom = next(n for n in definition["nodes"] if n["name"] == "bottom")
    next(i for i in bottom["inputs"] if i["name"] == "opt_exec")["default"] = ["cat", "%IN"]  # a list where text belongs
    return definition


def test_an_unrunnable_step_fails_the_workflow_with_the_reason_and_kills_what_runs(db, jedi_taskbuffer, tmp_path):
    from pandajedi_wf.api import submit_workflow
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf_dev.devdb.task_templates import DEV_TEMPLATES
    from pandajedi_wf_dev.simulators.grid import Fate

    from pandajedi_wf.taskbuffer.connection import json_text

    broken = broken_definition(tmp_path)
    result = submit_workflow(db, language="yaml", spec=str(tmp_path / "chain.yaml"), base_dir=str(tmp_path), out_ds="user.dev.broken",
                             user_name="dev.user", user_dn="dev.user", vo="wlcg", task_templates=DEV_TEMPLATES)
    workflow_id = result.workflow_id
    db.execute(f"UPDATE {db.table('JEDI_WF_WORKFLOWS')} SET definition=:d WHERE workflow_id=:w", {":d": json_text(broken), ":w": workflow_id})
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate(running_ticks=30))
    now = utcnow()
    counters = {}
    for _ in range(6):
        now += datetime.timedelta(minutes=2)
        stats = CycleStats()
        workflow_processor.cycle(db, stats, jedi_taskbuffer, now=now, owner="definition-test")
        for key, value in stats.counters.items():
            counters[key] = counters.get(key, 0) + value
        if workflow_row(db, workflow_id)["status"] == "failed":
            break
        grid.tick(now)
    wf = workflow_row(db, workflow_id)
    assert wf["status"] == "failed", (wf, counters)
    assert wf["error_dialog"].startswith("definition error:") and "bottom" in wf["error_dialog"] and "opt_exec" in wf["error_dialog"] \
        or "exec" in wf["error_dialog"], wf["error_dialog"]
    assert counters.get("definition_failures") == 1, (wf["error_dialog"], counters)
    rows = {r["name"]: r for r in step_rows(db, workflow_id).values()}
    assert all(r["status"] in ("cancelled", "done") for r in rows.values()), rows
    history = db.query(f"SELECT to_status, reason FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE workflow_id=:w AND entity_type='workflow' "
                       "ORDER BY transition_id", {":w": workflow_id})
    assert history[-1][0] == "failed" and history[-1][1].startswith("definition error:")
    # the top task was running: it is killed with the workflow
    if rows["top"]["jedi_task_id"]:
        from pandajedi_wf.taskbuffer import jedi_tasks as jedi

        assert jedi.queued_task_commands(db, [int(rows["top"]["jedi_task_id"])]) or \
            [t for t in jedi_tasks(db) if t["status"] in ("done", "aborted", "finished")]
    # and a later pass leaves it alone: nothing is claimed, no new error
    workflow_processor.cycle(db, CycleStats(), jedi_taskbuffer, now=now + datetime.timedelta(minutes=5), owner="definition-test")
    assert workflow_row(db, workflow_id)["error_dialog"] == wf["error_dialog"]


def test_a_workflow_that_breaks_the_processor_leaves_its_error_with_the_user_and_its_traceback_in_the_log(db, jedi_taskbuffer, tmp_path,
                                                                                                          caplog):
    """Not a definition error the processor knows (a stored definition that is not even a workflow): the workflow keeps
    its status with the error where the user looks, the other workflows go on, and JEDI's log gets the traceback."""
    import logging

    from pandajedi_wf.api import submit_workflow
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    (tmp_path / "chain.yaml").write_text(CHAIN)
    from pandajedi_wf_dev.devdb.task_templates import DEV_TEMPLATES

    ids = [submit_workflow(db, language="yaml", spec=str(tmp_path / "chain.yaml"), base_dir=str(tmp_path), out_ds=f"user.dev.b{i}",
                           user_name="dev.user", vo="wlcg", task_templates=DEV_TEMPLATES).workflow_id for i in range(2)]
    db.execute(f"UPDATE {db.table('JEDI_WF_WORKFLOWS')} SET definition=:d WHERE workflow_id=:w", {":d": '{"nodes": 7}', ":w": ids[0]})
    log = logging.getLogger("pandajedi_wf.test_processor_log")
    with caplog.at_level(logging.ERROR, logger=log.name):
        workflow_processor.cycle(db, CycleStats(), jedi_taskbuffer, now=utcnow() + datetime.timedelta(minutes=1), owner="log-test", log=log)
    broken, fine = workflow_row(db, ids[0]), workflow_row(db, ids[1])
    assert broken["status"] == "parsed" and broken["error_dialog"].startswith("processor error at "), broken
    assert fine["status"] == "running" and fine["error_dialog"] is None
    (record,) = [r for r in caplog.records if r.name == log.name]
    assert f"workflow {ids[0]}: processor error" in record.getMessage() and "Traceback (most recent call last)" in record.getMessage()


def test_a_workflow_without_task_templates_is_refused_at_submission(db, tmp_path):
    from pandajedi_wf.api import submit_workflow

    (tmp_path / "chain.yaml").write_text(CHAIN)
    result = submit_workflow(db, language="yaml", spec=str(tmp_path / "chain.yaml"), base_dir=str(tmp_path), out_ds="user.dev.t",
                             user_name="dev.user", vo="wlcg")
    assert not result.ok and result.problems[0]["code"] == "templates" and result.workflow_id is None
    assert db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_WF_WORKFLOWS')}") == [(0,)]
