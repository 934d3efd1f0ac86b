"""Every pchain docs example family end to end: processor + real upstream submission and TaskRefiner + grid simulator.

One workflow per test on a clean database; the grid simulator plays what JEDI's later agents and the pilots do
(see ``pandajedi_wf_dev/simulators/grid.py``). Each test checks the outcome the engine promises, that every step became
exactly one JEDI task carrying the workflow id, and that the history chains every status change.

These run the documentation's own files (``DOCS_EXAMPLES``, tests/example_paths.py) and skip, naming the path, when
they are not here; the processor's own DB tests run our examples (tests/examples/) and need nothing outside.
"""

from __future__ import annotations

import re

import pytest

from wf_db_support import (
    DOCS_BACKGROUNDS,
    DOCS_EXAMPLES,
    DOCS_SIGNALS,
    EXAMPLES,
    TEMPLATES,
    by_name,
    check_tasks_and_history,
    explain,
    make_db,
    new_grid,
    run_until_quiet,
    step_rows,
    needs_docs_examples,
    submit,
)

DOCS = DOCS_EXAMPLES


def run(db, task_buffer, language, path, inputs=None, out_ds="user.dev.wf", fate=None, templates=TEMPLATES, max_rounds=40):
    base_dir = str(DOCS / "snakemake") if language == "snakemake" else str(path.parent)
    result = submit(db, language, path, inputs, out_ds=out_ds, templates=templates, base_dir=base_dir)
    assert result.ok, result.problems
    grid = new_grid(db, task_buffer, fate)
    status, _ = run_until_quiet(db, task_buffer, grid, result.workflow_id, max_rounds=max_rounds)
    return result.workflow_id, status, grid


@pytest.mark.parametrize(
    "language,path,inputs",
    [
        ("yaml", DOCS / "native_wfd" / "simple_chain.yaml", None),
        ("cwl", DOCS / "test.cwl", None),
        ("snakemake", DOCS / "snakemake" / "simple_chain" / "Snakefile", None),
    ],
    ids=["yaml", "cwl", "snakemake"],
)
@needs_docs_examples
def test_simple_chain_child_waits_for_parent_output_then_both_done(db, jedi_taskbuffer, language, path, inputs):
    from pandajedi_wf_dev.simulators.grid import Fate

    slow_top = lambda name: Fate(running_ticks=3) if name.endswith("_top") else Fate()  # noqa: E731
    wf_id, status, grid = run(db, jedi_taskbuffer, language, path, inputs, out_ds=f"user.dev.chain{language}", fate=slow_top)

    assert status == "done", explain(db, wf_id)
    steps = by_name(step_rows(db, wf_id))
    assert [s["status"] for s in steps["top"] + steps["bottom"]] == ["done", "done"]
    submitted = check_tasks_and_history(db, wf_id, f"user.dev.chain{language}")
    assert len(submitted) == 2
    # bottom reads top's output as it comes (noWaitParent): JEDI's TaskRefiner linked it to its parent and held
    # it pending until top had written files; the simulated DDM answered from top's real output rows
    top, bottom = steps["top"][0], steps["bottom"][0]
    (parent_tid,) = db.query(f"SELECT parent_tid FROM {db.table('JEDI_Tasks')} WHERE jediTaskID=:t", {":t": bottom["jedi_task_id"]})[0]
    assert parent_tid == top["jedi_task_id"]
    bottom_events = [e[2] for e in grid.events if e[0] == bottom["jedi_task_id"]]
    assert bottom_events[0] == "pending" and bottom_events[-2:] == ["running", "done"], bottom_events
    top_done = grid.events.index((top["jedi_task_id"], top["task_name"], "done"))
    assert grid.events.index((bottom["jedi_task_id"], bottom["task_name"], "done")) > top_done
    assert ("expandContainer", f"{top['task_name']}_{'seed.txt' if language != 'yaml' else 'intermediate.txt'}/") in grid.ddm.calls


@needs_docs_examples
def test_sig_bg_comb_fan_in_waits_for_all_parents(db, jedi_taskbuffer):
    wf_id, status, grid = run(db, jedi_taskbuffer, "cwl", DOCS / "sig_bg_comb.cwl", {"signal": DOCS_SIGNALS[0], "background": DOCS_BACKGROUNDS[0]},
                              out_ds="user.dev.sbc")

    assert status == "done", explain(db, wf_id)
    steps = by_name(step_rows(db, wf_id))
    assert set(steps) == {"make_signal", "make_background_1", "premix", "generate_some", "make_background_2", "combine"}
    check_tasks_and_history(db, wf_id, "user.dev.sbc")
    ended = {name: i for i, (_, name, st) in enumerate(grid.events) if st == "done"}
    started = {name: i for i, (_, name, st) in enumerate(grid.events) if st == "running"}
    combine = steps["combine"][0]["task_name"]
    for parent in ("premix", "make_background_2"):  # fan-in without noWaitParent: submitted after both ended
        assert started[combine] > ended[steps[parent][0]["task_name"]]
    # --secondaryDSs became real inputs: upstream's TaskRefiner registered each parent container as a secondary of
    # the primary input (type input, masterID = the primary's datasetID, its own stream, files per job np=<n>)
    inputs = db.query_dicts(
        f"SELECT t.taskName, d.datasetID, d.datasetName, d.type, d.masterID, d.streamName, d.attributes FROM {db.table('JEDI_Datasets')} d "
        f"JOIN {db.table('JEDI_Tasks')} t ON t.jediTaskID=d.jediTaskID WHERE d.type IN ('input', 'pseudo_input') ORDER BY d.datasetID")
    def rows_of(step):
        return [r for r in inputs if r["taskname"] == steps[step][0]["task_name"]]
    primary, secondary = rows_of("premix")
    assert (primary["streamname"], primary["masterid"], primary["datasetname"]) == ("IN", None, "user.dev.sbc_001_make_signal_def.zip/")
    assert secondary["type"] == "input" and secondary["masterid"] == primary["datasetid"]
    assert (secondary["streamname"], secondary["datasetname"], secondary["attributes"]) == ("IN2", "user.dev.sbc_002_make_background_1_xyz.pool/", "np=2")
    combine_rows = rows_of("combine")
    assert [(r["streamname"], r["datasetname"], r["attributes"]) for r in combine_rows[1:]] == [
        ("IN2", "user.dev.sbc_003_premix_klm.root/", "np=2"), ("IN3", "user.dev.sbc_005_make_background_2_ooo.root/", "np=5")]
    assert all(r["masterid"] == combine_rows[0]["datasetid"] for r in combine_rows[1:])


@needs_docs_examples
def test_merge_many_scatters_sub_workflows_and_merges(db, jedi_taskbuffer):
    wf_id, status, _ = run(db, jedi_taskbuffer, "cwl", DOCS / "merge_many.cwl", {"signals": DOCS_SIGNALS, "backgrounds": DOCS_BACKGROUNDS},
                           out_ds="user.dev.mm")

    assert status == "done", explain(db, wf_id)
    rows = step_rows(db, wf_id)
    submitted = check_tasks_and_history(db, wf_id, "user.dev.mm")
    assert len(submitted) == 2 * 6 + 1
    assert rows["007s0"]["status"] == rows["007s1"]["status"] == "done"  # the two scattered sub-workflows
    assert rows["007s1/006"]["task_name"] == "user.dev.mm_006_combine_s1"
    merge = rows["008"]
    params = db.query(f"SELECT task_params FROM {db.table('JEDI_WF_STEPS')} WHERE step_id=:s", {":s": merge["step_id"]})[0][0]
    assert "user.dev.mm_006_combine_s0_aaa.root/,user.dev.mm_006_combine_s1_aaa.root/" in str(params)


@needs_docs_examples
def test_nested_sub_workflow_yaml(db, jedi_taskbuffer):
    wf_id, status, _ = run(db, jedi_taskbuffer, "yaml", DOCS / "native_wfd" / "nested_workflow_sig_bg_comb_wfd.yaml", out_ds="user.dev.nest")

    assert status == "done", explain(db, wf_id)
    rows = step_rows(db, wf_id)
    assert rows["008"]["step_type"] not in ("prun", "junction") and rows["008"]["jedi_task_id"] is None
    assert all(r["status"] == "done" for r in rows.values())
    assert len(check_tasks_and_history(db, wf_id, "user.dev.nest")) == sum(1 for k in rows if k != "008")


@needs_docs_examples
def test_cond_parent_succeeds_takes_ok_branch(db, jedi_taskbuffer):
    wf_id, status, _ = run(db, jedi_taskbuffer, "cwl", DOCS / "cond.cwl", out_ds="user.dev.condok")

    assert status == "done", explain(db, wf_id)
    steps = by_name(step_rows(db, wf_id))
    assert steps["bottom_OK"][0]["status"] == "done"
    assert steps["bottom_NG"][0]["status"] == "skipped" and steps["bottom_NG"][0]["jedi_task_id"] is None
    check_tasks_and_history(db, wf_id, "user.dev.condok")


@needs_docs_examples
def test_cond_parent_fails_takes_ng_branch_with_the_normal_templates(db, jedi_taskbuffer):
    """top fails with no output: bottom_OK is skipped and bottom_NG runs on top's (empty) output container. The engine
    gives bottom_NG allowEmptyInput (upstream TaskRefinerBase turns it into the task's split rule), so JEDI's
    ContentsFeeder rule, played by the simulator, finishes it instead of breaking it. top's failure was handled by
    the branch written for it, so the workflow ends ``done``."""
    from pandajedi_wf_dev.simulators.grid import Fate

    fate = lambda name: Fate("failed") if name.endswith("_top") else Fate()  # noqa: E731
    wf_id, status, _ = run(db, jedi_taskbuffer, "cwl", DOCS / "cond.cwl", out_ds="user.dev.condng", fate=fate)

    assert status == "done", explain(db, wf_id)
    steps = by_name(step_rows(db, wf_id))
    assert [steps[n][0]["status"] for n in ("top", "bottom_OK", "bottom_NG")] == ["failed", "skipped", "done"]
    assert steps["bottom_OK"][0]["jedi_task_id"] is None
    ng_task = steps["bottom_NG"][0]["jedi_task_id"]
    task = jedi_taskbuffer.getTaskWithID_JEDI(ng_task)[1]
    assert task.allowEmptyInput() and task.status == "done"
    (split_rule,) = db.query(f"SELECT splitRule FROM {db.table('JEDI_Tasks')} WHERE jediTaskID=:t", {":t": ng_task})[0]
    assert "AE=1" in split_rule.split(","), split_rule
    reason = db.query(f"SELECT reason FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE workflow_id=:w AND entity_type='workflow' AND to_status='done'",
                      {":w": wf_id})
    assert reason and "failure of 'top' handled by 'bottom_NG'" in reason[0][0]
    check_tasks_and_history(db, wf_id, "user.dev.condng")


def _loop_fate(iterations: int, junction: str = "checkpoint"):
    """Junction results.json: continue with new loop parameters until ``iterations`` iterations have run."""
    from pandajedi_wf_dev.simulators.grid import Fate

    def fate(name: str):
        found = re.search(rf"_{junction}(?:_s\d+)*\.(\d+)$", name)
        if not found:
            return Fate()
        i = int(found.group(1))
        return Fate(results={"to_continue": i < iterations, "param_xxx": 1000 + i})

    return fate


@needs_docs_examples
def test_loop_iterates_as_the_junction_asks(db, jedi_taskbuffer):
    wf_id, status, _ = run(db, jedi_taskbuffer, "cwl", DOCS / "loop.cwl", out_ds="user.dev.loop", fate=_loop_fate(3))

    assert status == "done", explain(db, wf_id)
    rows = step_rows(db, wf_id)
    tops = sorted(r["task_name"] for r in rows.values() if r["name"] == "inner_work_top")
    assert tops == [f"user.dev.loop_002_inner_work_top.{i}" for i in (1, 2, 3)]
    assert sorted(r["iteration"] for r in rows.values() if r["name"] == "checkpoint") == [1, 2, 3]
    check_tasks_and_history(db, wf_id, "user.dev.loop")
    # the loop parameter the junction returned reached the next iteration's command line
    params = {r["task_name"]: db.query(f"SELECT task_params FROM {db.table('JEDI_WF_STEPS')} WHERE step_id=:s", {":s": r["step_id"]})[0][0]
              for r in rows.values() if r["name"] == "inner_work_top"}
    assert "123" in str(params["user.dev.loop_002_inner_work_top.1"]) and "1001" in str(params["user.dev.loop_002_inner_work_top.2"])
    end = next(r for r in rows.values() if r["name"] == "work_end")
    end_params = db.query(f"SELECT task_params FROM {db.table('JEDI_WF_STEPS')} WHERE step_id=:s", {":s": end["step_id"]})[0][0]
    assert "user.dev.loop_003_inner_work_bottom.3_results.root/" in str(end_params)


@needs_docs_examples
def test_multi_loop_runs_one_loop_per_signal(db, jedi_taskbuffer):
    wf_id, status, _ = run(db, jedi_taskbuffer, "cwl", DOCS / "multi_loop.cwl", {"signals": DOCS_SIGNALS}, out_ds="user.dev.mloop",
                           fate=_loop_fate(2))

    assert status == "done", explain(db, wf_id)
    rows = step_rows(db, wf_id)
    checkpoints = sorted(r["task_name"] for r in rows.values() if r["name"] == "checkpoint")
    assert checkpoints == [f"user.dev.mloop_003_checkpoint_s{k}.{i}" for k in (0, 1) for i in (1, 2)]
    check_tasks_and_history(db, wf_id, "user.dev.mloop")


@needs_docs_examples
def test_sequential_loop_scatters_inside_each_iteration(db, jedi_taskbuffer):
    """sequential_loop.cwl: a loop whose body scatters loop_main over the sliced loop parameters; the junction
    sends new parameter lists for the next iteration, and each iteration runs one core task per slice."""
    from pandajedi_wf_dev.simulators.grid import Fate

    def fate(name: str):
        found = re.search(r"_checkpoint\.(\d+)$", name)
        if not found:
            return Fate()
        i = int(found.group(1))
        return Fate(results={"to_continue": i < 2, "param_xxx": [7, 8, 9], "param_yyy": [0.1, 0.2, 0.3]})

    wf_id, status, _ = run(db, jedi_taskbuffer, "cwl", DOCS / "sequential_loop.cwl", {"signal": DOCS_SIGNALS[0]},
                           out_ds="user.dev.sloop", fate=fate)

    assert status == "done", explain(db, wf_id)
    rows = step_rows(db, wf_id)
    cores = sorted(r["task_name"] for r in rows.values() if r["name"] == "core")
    # iteration 1 scatters over the 2 default slices, iteration 2 over the 3 the junction sent
    assert [n for n in cores if n.endswith(".1")] and len([n for n in cores if n.endswith(".1")]) == 2, cores
    assert len([n for n in cores if n.endswith(".2")]) == 3, cores
    checkpoints = sorted(r["task_name"] for r in rows.values() if r["name"] == "checkpoint")
    assert checkpoints == ["user.dev.sloop_003_checkpoint.1", "user.dev.sloop_003_checkpoint.2"], checkpoints
    check_tasks_and_history(db, wf_id, "user.dev.sloop")


class SlowResults:
    """results.json not readable for the first ``misses`` attempts (Rucio lagging), then what the grid wrote."""

    def __init__(self, grid, misses):
        self.grid, self.misses, self.attempts = grid, misses, 0

    def fetch(self, task_id, task_name):
        from pandajedi_wf.ddm.junction_results import JunctionResultsError

        self.attempts += 1
        if self.attempts <= self.misses:
            raise JunctionResultsError(f"{task_name}_results.json/ not in Rucio yet")
        return self.grid.fetch(task_id, task_name)


def test_loop_waits_for_unreadable_junction_results_instead_of_stopping(db, jedi_taskbuffer):
    result = submit(db, "cwl", EXAMPLES / "iterate.cwl", None, out_ds="user.dev.jwait", templates=TEMPLATES, base_dir=str(EXAMPLES))
    grid = new_grid(db, jedi_taskbuffer, _loop_fate(2, junction="decide"))
    reader = SlowResults(grid, misses=3)

    status, _ = run_until_quiet(db, jedi_taskbuffer, grid, result.workflow_id, junction_results=reader)

    assert status == "done", explain(db, result.workflow_id)
    decisions = sorted(r["task_name"] for r in step_rows(db, result.workflow_id).values() if r["name"] == "decide")
    assert [c.rsplit("_", 1)[1] for c in decisions] == ["decide.1", "decide.2"]  # the loop did not stop at 1
    notes = db.query(f"SELECT reason FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE workflow_id=:w AND from_status=to_status "
                     "AND reason LIKE 'waiting for results.json%'", {":w": result.workflow_id})
    assert len(notes) == 1 and "not in Rucio yet" in notes[0][0]  # one note per distinct reason, not one per cycle
