"""The workflow processor on a real PostgreSQL, submitting real JEDI tasks through upstream code.

Tasks are created by upstream's insertTaskParamsPanda and defined by upstream's TaskRefiner; the grid simulator
then plays the pilots (moves JEDI_Tasks rows, writes output files).
"""


import pytest

from wf_db_support import EXAMPLES, SIGNALS, TEMPLATES, run_until_quiet


def submit(db, language, spec, **kw):
    from pandajedi_wf.api import submit_workflow

    kw.setdefault("out_ds", "user.dev.wf")
    return submit_workflow(db, language=language, spec=str(spec), user_name="dev.user", user_dn="dev.user", vo="wlcg",
                           task_templates=TEMPLATES, **kw)


def step_rows(db, workflow_id):
    return {r["name"]: r for r in db.query_dicts(
        f"SELECT name, node_key, status, jedi_task_id, task_name FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w", {":w": workflow_id})}


def test_simple_chain_runs_to_done_through_real_jedi_tasks(db, jedi_taskbuffer):
    from pandajedi_wf_dev.simulators.grid import GridSimulator

    result = submit(db, "yaml", EXAMPLES / "native" / "chain.yaml", out_ds="user.dev.chain")
    assert result.ok, result.problems
    grid = GridSimulator(db, jedi_taskbuffer)
    grid.register_dataset(SIGNALS[0])  # the input of tests/examples/native/chain.yaml

    status, rounds = run_until_quiet(db, jedi_taskbuffer, grid, result.workflow_id)

    rows = step_rows(db, result.workflow_id)
    wf = db.query_dicts(f"SELECT status, error_dialog FROM {db.table('JEDI_WF_WORKFLOWS')} WHERE workflow_id=:w", {":w": result.workflow_id})
    tasks = db.query(f"SELECT jediTaskID, taskName, status, errorDialog FROM {db.table('JEDI_Tasks')}")
    assert status == "done", (wf, rows, tasks, rounds)
    rows = step_rows(db, result.workflow_id)
    assert rows and all(r["status"] == "done" for r in rows.values())
    # every step ran as its own JEDI task, named <outDS>_<NNN>_<step>
    task_status = dict(db.query(f"SELECT taskName, status FROM {db.table('JEDI_Tasks')}"))
    for r in rows.values():
        assert r["task_name"].startswith("user.dev.chain_")
        assert task_status[r["task_name"]] == "done"
    # the child was submitted only after its parent existed in JEDI
    history = db.query_dicts(f"SELECT entity_id, to_status, reason FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE workflow_id=:w ORDER BY transition_id",
                             {":w": result.workflow_id})
    assert any(h["to_status"] == "done" for h in history)


def test_data_rows_follow_the_steps_that_write_them(db, jedi_taskbuffer):
    from pandajedi_wf_dev.simulators.grid import Fate
    from wf_db_support import new_grid

    result = submit(db, "yaml", EXAMPLES / "native" / "chain.yaml", out_ds="user.dev.data")
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate(status="failed") if name.endswith("_bottom") else Fate())
    status, _ = run_until_quiet(db, jedi_taskbuffer, grid, result.workflow_id)

    data = {r["name"]: r for r in db.query_dicts(
        f"SELECT d.name, d.data_type, d.status, s.name AS step FROM {db.table('JEDI_WF_DATA')} d "
        f"JOIN {db.table('JEDI_WF_STEPS')} s ON s.step_id=d.producer_step_id WHERE d.workflow_id=:w", {":w": result.workflow_id})}
    assert data["user.dev.data_001_top_numbers.txt/"] == {
        "name": "user.dev.data_001_top_numbers.txt/", "data_type": "numbers.txt", "status": "complete", "step": "top"}
    assert data["user.dev.data_002_bottom_counts.root/"]["status"] == "failed"
    assert len(data) == 2


def test_processor_settings_from_panda_jedi_cfg_options():
    from pandajedi_wf.daemons.workflow_processor import ProcessorSettings

    settings = ProcessorSettings.from_options({"batch_size": "50", "recheck_seconds": "0", "unrelated": "x"})
    assert (settings.batch_size, settings.recheck_seconds, settings.lease_seconds) == (50, 0, 600)
    with pytest.raises(ValueError, match="wf_processor_lease_seconds must be an integer"):
        ProcessorSettings.from_options({"lease_seconds": "ten"})
    with pytest.raises(ValueError, match="wf_processor_batch_size must be positive"):
        ProcessorSettings.from_options({"batch_size": "0"})
    settings = ProcessorSettings.from_options({"workers": "3", "cached_steps": "0"})
    assert (settings.workers, settings.cached_steps) == (3, 0)  # 0 turns keeping rows off
    with pytest.raises(ValueError, match="wf_processor_workers must be positive"):
        ProcessorSettings.from_options({"workers": "0"})
