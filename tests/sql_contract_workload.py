"""Calls that run the taskbuffer statements the DB tests named in tests/test_taskbuffer_sql_contract.py do not run.

Not collected by the suite (no ``test_`` prefix in its name): the contract test runs it with the capture plugin after
those tests, so every statement text of pandajedi_wf/taskbuffer is seen with real binds on the real database. A new
statement no DB test runs gets its call here.
"""

from __future__ import annotations

import datetime

import pytest


@pytest.fixture
def db(clean_db):
    from wf_db_support import make_db

    database = make_db()
    yield database
    database.close()


def test_workflow_and_step_statements(db, jedi_taskbuffer, tmp_path):
    from example_workflows import TWO_STEP_CHAIN
    from wf_db_support import new_grid, run_until_quiet, step_rows, submit

    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.taskbuffer import commands, jedi_tasks, steps, upstream_workflows, workflows

    spec = tmp_path / "chain.yaml"
    spec.write_text(TWO_STEP_CHAIN)
    workflow_id = submit(db, "yaml", spec, out_ds="user.dev.contract").workflow_id
    status, _ = run_until_quiet(db, jedi_taskbuffer, new_grid(db, jedi_taskbuffer), workflow_id)
    assert status == "done"
    rows = step_rows(db, workflow_id)
    step_ids = sorted(int(r["step_id"]) for r in rows.values())
    task_ids = sorted(int(r["jedi_task_id"]) for r in rows.values() if r["jedi_task_id"])
    now = utcnow()

    assert workflows.load_documents(db, workflow_id)["definition"]
    command_id = commands.queue(db, workflow_id, "pause", None, "operator:contract", None, now)
    assert commands.get(db, command_id)["status"] == "queued"
    assert upstream_workflows.statuses(db, [workflow_id]) == {}  # submitted by the API: no upstream row
    assert set(jedi_tasks.input_progress(db, task_ids)) <= set(task_ids)
    steps.set_results_many(db, [(step_ids[0], {"contract": True})], now)
    steps.set_error_dialogs(db, [(step_ids[-1], "waiting for the contract test")], now)
    steps.delete(db, [step_ids[-1] + 1_000_000])  # no such step: the statement runs, nothing goes


def test_a_task_waiting_in_staging_before_its_datasets_are_registered(db, pg, jedi_taskbuffer):
    """The carousel reads the dataset names off the task parameters (JEDI_TaskParams) then."""
    from carousel_db_fixtures import make_tasks, sql

    from pandajedi_wf.taskbuffer import carousel_jedi

    (task_id,) = make_tasks(jedi_taskbuffer, pg, [{"name": "user.dev.contract.staging", "dataset": "mc23_dev:contract.RAW",
                                                   "n_files": 1, "status": "staging"}])
    sql(pg, "DELETE FROM doma_panda.jedi_dataset_contents WHERE jeditaskid=%s", task_id)
    sql(pg, "DELETE FROM doma_panda.jedi_datasets WHERE jeditaskid=%s", task_id)
    (need,) = carousel_jedi.tasks_needing_staging(db)
    assert need.jedi_task_id == task_id and need.datasets == ("mc23_dev:contract.RAW",)


def test_monitor_statements(db):
    """The monitor's reads over empty tables: each statement runs once."""
    from pandajedi_wf.taskbuffer import monitoring

    now = datetime.datetime(2030, 1, 1)
    assert monitoring.workflow(db, 1) is None
    assert monitoring.workflow_steps(db, 1, 10) == [] and monitoring.workflow_history(db, 1, 10) == []
    assert monitoring.tape_throughput(db, 10) == [] and monitoring.troubled_requests(db, now, 10) == []
    assert monitoring.dag_steps(db, 1, 10) == [] and monitoring.skip_reasons(db, 1, 10) == {} and monitoring.staging_of_workflow(db, 1, 10) == []
    assert monitoring.workflow_live(db, 1) is None and monitoring.workflow_definition(db, 1) is None and monitoring.workflow_of_task(db, 1) is None
    assert monitoring.latest_commands(db, 1, 5) == [] and monitoring.request_intervals(db, now, 10) == []
    assert monitoring.request_events(db, [1, 2], ["switching", "failed"]) == []
    assert monitoring.find_workflows(db, 10, user_name="dev.user", status="running", name_part="a_b%") == []
    assert monitoring.prestages_of_workflow(db, 1, 10) == [] and monitoring.prestage_requests(db, now, 10) == []
