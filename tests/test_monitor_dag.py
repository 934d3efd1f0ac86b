"""The drawn DAG (monitor/dag.py) and the carousel plots (monitor/plots.py) as pure functions."""

import datetime

from pandajedi_wf.monitor import dag, page, plots

N = [0]


def step(key, parents=(), status="done", name=None, **kw):
    N[0] += 1
    return {"step_id": N[0], "node_key": key, "name": name or key, "status": status, "parents": list(parents), "step_type": "prun",
            "jedi_task_id": None, "jedi_status": None, "error_dialog": None, **kw}


def scatter_workflow(width=2000):
    """001 -> 002 scattered over ``width`` copies (each a sub-workflow of two steps) -> 003 merge."""
    steps = [step("001")]
    for k in range(width):
        steps.append(step(f"002s{k}", ["001"], status="running" if k % 7 == 0 else "done", name="sim"))
        steps.append(step(f"002s{k}/001", [], name="gen"))
        steps.append(step(f"002s{k}/002", [f"002s{k}/001"], name="reco"))
    steps.append(step("003", [f"002s{k}" for k in range(width)], status="defined", name="merge"))
    return steps


def test_templates_drop_scatter_and_iteration_marks():
    assert dag.template_of("004s1i2/001s3") == "004/001"
    assert dag.template_of("007") == "007"
    assert dag.aggregate_status(["done", "running", "failed"]) == "failed"
    assert dag.aggregate_status(["done", "skipped"]) == "done"


def test_six_thousand_steps_of_a_wide_scatter_are_a_few_nodes():
    steps = scatter_workflow()
    layout = dag.build(steps)
    assert len(steps) == 6002
    ids = [n["id"] for n in layout["nodes"]]
    # the scattered body is opened (it fits the budget): its two templates, each standing for 2,000 copies
    assert ids == ["001", "002/001", "002/002", "003"]
    assert [(e["source"], e["target"]) for e in layout["edges"]] == [("001", "002/001"), ("002/001", "002/002"), ("002/002", "003")]
    body = {n["id"]: n for n in layout["nodes"]}["002/001"]
    assert body["n_steps"] == 2000 and body["counts"] == {"done": 2000}
    assert [f["id"] for f in layout["frames"]] == ["002"] and layout["frames"][0]["copies"] == 2000
    closed = dag.build(steps, opened=[])
    sim = {n["id"]: n for n in closed["nodes"]}["002"]
    assert [n["id"] for n in closed["nodes"]] == ["001", "002", "003"]
    assert sim["status"] == "running" and sim["counts"] == {"running": 286, "done": 1714} and sim["inner_counts"] == {"done": 4000}
    assert len(closed["step_node"]) == 6002 and closed["step_node"][steps[2]["step_id"]] == "002"
    svg = page.dag_svg(closed, "https://bigpanda.example/task/{task_id}/")
    assert svg.count('<g class="node"') == 3 and svg.count('<path class="edge') == 2 and "×2000" in svg


def test_loop_iterations_are_one_node_and_layers_follow_edges():
    steps = [step("001"), step("002", ["001"], status="running", step_type="workflow")]
    for i in (1, 2, 3):
        steps += [step(f"002i{i}/001", [], status="done" if i < 3 else "running"), step(f"002i{i}/002", [f"002i{i}/001"], status="done" if i < 3 else "defined")]
    steps.append(step("003", ["002"], status="defined", condition={"op": "ok"}))
    layout = dag.build(steps)
    nodes = {n["id"]: n for n in layout["nodes"]}
    assert set(nodes) == {"001", "002/001", "002/002", "003"}
    assert nodes["002/001"]["counts"] == {"done": 2, "running": 1} and nodes["002/001"]["status"] == "running"
    assert [nodes[k]["layer"] for k in ("001", "002/001", "002/002", "003")] == [0, 1, 2, 3]
    assert {(e["source"], e["target"]): e["conditional"] for e in layout["edges"]}[("002/002", "003")] is True


def test_carousel_series_from_request_intervals():
    now = datetime.datetime(2025, 6, 1, 12, 0)
    rows = [
        {"source_rse": "TAPE_A", "destination_rse": "DISK", "status": "done", "total_files": 10, "dataset_size": 3600 * 10**6,
         "start_time": now - datetime.timedelta(hours=3), "end_time": now - datetime.timedelta(hours=2), "modification_time": now - datetime.timedelta(hours=2)},
        {"source_rse": "TAPE_A", "destination_rse": "DISK", "status": "staging", "total_files": 5, "dataset_size": 10**9,
         "start_time": now - datetime.timedelta(minutes=50), "end_time": None, "modification_time": now},
    ]
    s = plots.series(rows, now, hours=4, points=4)
    assert s["files"]["TAPE_A"] == [0, 10, 0, 5]
    assert s["throughput"]["TAPE_A"] == [0, 10**6, 0, 0]
    assert s["buffer"]["DISK"] == [0, 3600 * 10**6, 3600 * 10**6, 3600 * 10**6 + 10**9]
    svg = plots.line_chart("files", s["times"], s["files"], str, {"TAPE_A": 8})
    assert svg.count("<polyline") == 1 and 'class="limit"' in svg and "TAPE_A: 5.0 (limit 8)" in svg


def test_a_switched_request_counts_on_each_tape_for_its_time_there():
    now = datetime.datetime(2025, 6, 1, 12, 0)
    h = lambda n: now - datetime.timedelta(hours=n)  # noqa: E731
    switched = {"request_id": 7, "dataset": "mc16:x.RAW", "source_rse": "TAPE_B", "destination_rse": "DISK", "status": "done", "total_files": 4,
                "dataset_size": 4 * 3600 * 10**6, "start_time": h(4), "end_time": h(1), "modification_time": h(1), "n_source_switches": 1,
                "tried_sources": {"tried": ["TAPE_A", "TAPE_B"]}}
    assert plots.tape_segments(switched, [h(2)], h(1)) == [("TAPE_A", h(4), h(2)), ("TAPE_B", h(2), h(1))]
    # history and list disagree (no switch recorded): all on the current tape, as before
    assert plots.tape_segments(switched, [], h(1)) == [("TAPE_B", h(4), h(1))]
    assert plots.tape_segments(dict(switched, tried_sources={"tried": ["TAPE_A", "TAPE_C"]}), [h(2)], h(1)) == [("TAPE_B", h(4), h(1))]
    s = plots.series([switched], now, hours=4, points=4, switches={7: [h(2)]})
    assert s["files"] == {"TAPE_A": [4, 4, 0, 0], "TAPE_B": [0, 0, 4, 0]}
    assert s["throughput"] == {"TAPE_B": [0, 0, 4 * 10**6, 0]}  # its bytes over its hour on the tape that delivered them
    events = [  # oldest first, as the history is read
        {"request_id": 9, "from_status": "submitting", "to_status": "queued", "reason": "rule refused: quota", "transition_time": h(9)},
        {"request_id": 7, "from_status": None, "to_status": "queued", "reason": "a task needs the dataset from tape", "transition_time": h(5)},
        {"request_id": 7, "from_status": "staging", "to_status": "switching", "reason": "no new file for 2h00m", "transition_time": h(2)},
    ]
    listed = plots.switch_events([switched], events, since=h(4))
    assert [(e["request_id"], e["status"], e["from_tape"], e["to_tape"], e["reason"]) for e in listed] == [
        (7, "switching", "TAPE_A", "TAPE_B", "no new file for 2h00m")]  # creation left out, request 9's re-queue before the period
    assert [e["status"] for e in plots.switch_events([switched], events, since=h(10))] == ["switching", "queued"]
