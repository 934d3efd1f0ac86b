"""Incremental live updates (monitor/live.py) and what the workflow page draws of the critical path, conditions,
skipped branches and staging (monitor/snapshot.py, dag.py, page.py): pure, no database."""

import datetime

from pandajedi_wf.monitor import dag, page, snapshot
from pandajedi_wf.monitor.live import LiveVersions
from pandajedi_wf.workflow.critical_path import timings_from_step_rows

NOW = datetime.datetime(2026, 12, 3, 12, 0)


def test_a_poll_gets_only_what_changed_after_its_cursor():
    v = LiveVersions(epoch="e1")
    state = {k: ("defined", None) for k in range(2000)}
    cursor, changed = v.advance(7, state, None)
    assert changed is None and cursor == "e1.1"  # no cursor: everything
    same, changed = v.advance(7, dict(state), cursor)
    assert (same, changed) == (cursor, [])  # nothing moved: nothing sent, the cursor stays
    state[42] = ("running", "running")
    later, changed = v.advance(7, dict(state), cursor)
    assert changed == [42] and later == "e1.2"
    state[43] = ("submitted", None)
    newest, changed = v.advance(7, dict(state), later)
    assert changed == [43]
    # a page still at the first cursor missed both changes and gets both
    assert v.advance(7, dict(state), cursor)[1] == [42, 43]
    # a step that disappeared (a rerun reset the body) is named too; the page then redraws
    del state[43]
    assert v.advance(7, dict(state), newest)[1] == [43]


def test_cursors_of_another_server_or_the_future_or_garbage_get_everything():
    v = LiveVersions(epoch="mine")
    cursor, _ = v.advance(1, {1: ("a",)}, None)
    for foreign in ("other.1", "mine.99", "mine.x", "nonsense", "", None):
        assert v.advance(1, {1: ("a",)}, foreign)[1] is None, foreign
    assert v.advance(1, {1: ("a",)}, cursor)[1] == []


def test_workflows_asked_least_recently_are_forgotten_and_then_resynced_in_full():
    v = LiveVersions(max_workflows=2, epoch="e")
    c1, _ = v.advance(1, {1: ("a",)}, None)
    v.advance(2, {1: ("a",)}, None)
    v.advance(3, {1: ("a",)}, None)  # evicts workflow 1
    assert v.advance(1, {1: ("a",)}, c1)[1] is None
    assert v.advance(3, {1: ("a",)}, "e.1")[1] == []


def rows_of_a_scatter():
    """001 done (600 s) -> 002 scattered over two sub-workflow copies (each gen -> reco) -> 003 merge, conditional."""
    t0 = NOW - datetime.timedelta(hours=2)

    def row(step_id, key, parents, status, started=None, ended=None, step_type="prun", **kw):
        return {"step_id": step_id, "node_key": key, "name": key.split("/")[-1], "parent_keys": parents, "status": status, "step_type": step_type,
                "submit_intent_time": started, "status_change_time": ended or t0, "jedi_task_id": None, "jedi_status": None, "error_dialog": None, **kw}

    return [
        row(1, "001", [], "done", t0, t0 + datetime.timedelta(seconds=600)),
        row(2, "002s0", ["001"], "running", step_type="workflow"),
        row(3, "002s0/001", [], "done", t0, t0 + datetime.timedelta(seconds=900)),
        row(4, "002s0/002", ["002s0/001"], "running", NOW - datetime.timedelta(seconds=100)),
        row(5, "002s1", ["001"], "running", step_type="workflow"),
        row(6, "002s1/001", [], "running", NOW - datetime.timedelta(seconds=300)),
        row(7, "002s1/002", ["002s1/001"], "defined"),
        row(8, "003", ["002s0", "002s1"], "defined", condition={"kind": "and", "args": [{"kind": "succeeded", "param": "opt_inDS", "parents": [2]},
                                                                                       {"kind": "failed", "param": "opt_inDS2", "index": 1}]}),
        row(9, "004", ["001"], "skipped"),
    ]


def test_critical_summary_from_step_rows_uses_the_processors_times_and_like_steps_as_estimates():
    rows = rows_of_a_scatter()
    timings = {t.key: t for t in timings_from_step_rows(rows)}
    assert timings["001"].duration == 600 and timings["002s0/001"].duration == 900 and timings["002s1/001"].started is not None
    summary, critical, slack = snapshot.critical_summary(rows, NOW)
    # gen estimated from the ended gen copy (900 s): 600 s left in copy 1; reco from prun steps (median 750 s);
    # merge 750 s: 600 + 750 + 750 through copy 1 beats 650 + 750 through copy 0
    assert summary["remaining_seconds"] == 2100 and summary["known"] and summary["unknown"] == 0
    assert critical == {"002s1", "002s1/001", "002s1/002", "003"}
    assert summary["templates"] == ["002", "002/001", "002/002", "003"] and summary["eta"] == "2026-12-03 12:35:00"
    assert slack["002s0/002"] == 2100 - (650 + 750)


def test_the_dag_marks_critical_nodes_edges_and_frames_and_shows_conditions_and_skip_reasons():
    rows = rows_of_a_scatter()
    detail = snapshot.workflow_detail({"workflow_id": 5, "status": "running"}, rows, [], NOW, step_limit=2000, history_limit=10,
                                      skip_reasons={9: "condition self.opt_inDS is false"})
    by_key = {s["node_key"]: s for s in detail["steps"]}
    assert by_key["003"]["condition_text"] == "self.opt_inDS && !self.opt_inDS2[1]"
    assert by_key["004"]["skip_reason"] == "condition self.opt_inDS is false"
    for s in detail["steps"]:
        s["condition"] = next(r.get("condition") for r in rows if r["step_id"] == s["step_id"])
    _, critical, _ = snapshot.critical_summary(rows, NOW)
    layout = dag.build(detail["steps"], critical=critical)
    nodes = {n["id"]: n for n in layout["nodes"]}
    assert {k for k, n in nodes.items() if n["critical"]} == {"002/001", "002/002", "003"}
    assert {(e["source"], e["target"]) for e in layout["edges"] if e["critical"]} == {("002/001", "002/002"), ("002/002", "003")}
    assert [f["id"] for f in layout["frames"] if f["critical"]] == ["002"]
    assert nodes["004"]["skip_reasons"] == ["condition self.opt_inDS is false"]
    svg = page.dag_svg(layout, None)
    assert svg.count('class="node crit"') == 3 and svg.count('crit" data-source') == 2 and 'class="frame crit"' in svg
    assert "when self.opt_inDS &amp;&amp; !self.opt_inDS2[1]" in svg  # the condition on the edge into the step
    assert "skipped, as:</text>" in svg and ">condition self.opt_inDS is false</text>" in svg  # the reason in the skipped box
    closed = dag.build(detail["steps"], opened=[], critical=critical)
    assert {n["id"] for n in closed["nodes"] if n["critical"]} == {"002", "003"} and not closed["frames"]


def test_condition_text_reads_what_the_engine_stored():
    assert snapshot.condition_text(None) is None
    assert snapshot.condition_text({"kind": "succeeded", "param": "x"}) == "self.x"
    assert snapshot.condition_text({"kind": "or", "args": [{"kind": "failed", "param": "a"}, {"kind": "not", "args": [
        {"kind": "and", "args": [{"kind": "succeeded", "param": "b"}, {"kind": "succeeded", "param": "c"}]}]}]}) == "!self.a || !((self.b && self.c))"
    assert snapshot.condition_text({"what": 1}) == "(unreadable condition)"


def test_critical_text_says_what_is_known():
    assert page.critical_text({"error": "steps depend on each other in a cycle: a -> a"}).startswith("critical path unknown")
    assert "not known yet: 3 step(s)" in page.critical_text({"error": None, "n_critical": 0, "unknown": 3})
    assert page.critical_text({"error": None, "n_critical": 0, "unknown": 0}) == "nothing left to run"
    text = page.critical_text({"error": None, "n_critical": 4, "remaining": "35m", "eta": "2026-12-03 12:35:00", "unknown": 1, "overdue": ["002s0/002"]})
    assert "estimated remaining <b>35m</b>" in text and "at least" in text and "002s0/002" in text


def test_staging_progress_of_a_step_task():
    rows = [{"step_id": 4, "jedi_task_id": 77, "released_time": None, "request_id": 3, "dataset": "mc16:a.RAW", "status": "staging",
             "source_rse": "TAPE_A", "destination_rse": "DISK_X", "total_files": 10, "staged_files": 4, "dataset_size": 10 * 10**9,
             "staged_size": 3 * 10**9, "n_source_switches": 1, "last_progress_time": NOW - datetime.timedelta(hours=2), "start_time": None,
             "end_time": None, "error_dialog": None}]
    panel = snapshot.staging_panel(rows, {4: "002s0/002"}, NOW)
    (entry,) = panel[4]
    assert (entry["files_staged"], entry["files_total"], entry["fraction"], entry["idle_seconds"]) == (4, 10, 0.3, 7200.0)
    assert page.staging_section({}) == '<section class="wide" id="staging-section" hidden></section>'
    html = page.staging_section({"4": panel[4]})
    assert 'data-request="3"' in html and "4 / 10 files" in html and "3.0 GB / 10.0 GB" in html and "(2h00m ago)" in html
    assert "TAPE_A → DISK_X · 1 switch(es)" in html
