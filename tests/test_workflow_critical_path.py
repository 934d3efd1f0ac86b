"""The critical path of what remains of a workflow (workflow/critical_path.py): pure, checked by hand on the shapes
the engine writes (chains, fan-in, scatter of a sub-workflow, loops, skipped branches) and against a brute force that
walks every path of many random DAGs."""

import datetime
import itertools
import random

import pytest

from pandajedi_wf.workflow.critical_path import (
    CriticalPathError,
    StepTiming,
    container_of,
    critical_path,
    effective_parents,
    estimates,
    of_step_rows,
    template_of,
    timings_from_step_rows,
    topological_order,
)

NOW = datetime.datetime(2026, 12, 3, 12, 0, 0)


def ago(seconds):
    return NOW - datetime.timedelta(seconds=seconds)


def t(key, parents=(), status="defined", **kw):
    return StepTiming(key, tuple(parents), status, **kw)


def test_a_chain_counts_what_is_left_of_the_running_step_and_the_whole_of_the_waiting_ones():
    cp = critical_path([
        t("001", status="done", duration=100),
        t("002", ["001"], "running", started=ago(30), estimate=100),
        t("003", ["002"], estimate=50),
    ], NOW)
    assert cp.remaining == pytest.approx(120)
    assert cp.own == {"001": 0, "002": pytest.approx(70), "003": 50}
    assert cp.critical == ("002", "003")  # the done step is history, not part of what remains
    assert cp.edges == (("002", "003"),)
    assert cp.known and cp.unknown == () and cp.overdue == ()
    assert cp.slack["003"] == 0


def test_parallel_branches_the_longer_is_critical_and_the_shorter_has_slack():
    cp = critical_path([
        t("a", estimate=10),
        t("b", ["a"], estimate=5),
        t("c", ["a"], estimate=40),
        t("d", ["b", "c"], estimate=1),
    ], NOW)
    assert cp.remaining == 51
    assert cp.critical == ("a", "c", "d")
    assert set(cp.edges) == {("a", "c"), ("c", "d")}
    assert cp.through["b"] == 16 and cp.slack["b"] == 35 and cp.slack["c"] == 0


def test_ties_are_all_critical():
    cp = critical_path([t("a", estimate=3), t("b", estimate=3), t("c", ["a", "b"], estimate=1)], NOW)
    assert cp.critical == ("a", "b", "c") and set(cp.edges) == {("a", "c"), ("b", "c")}


def test_a_skipped_branch_costs_nothing_and_is_never_critical():
    cp = critical_path([
        t("001", status="done", duration=60),
        t("002", ["001"], "skipped", estimate=10_000),  # condition false: never runs, whatever it would have cost
        t("003", ["001"], "running", started=ago(10), estimate=40),
        t("004", ["002", "003"], estimate=20),
    ], NOW)
    assert cp.own["002"] == 0 and "002" not in cp.critical
    assert cp.remaining == pytest.approx(50)
    assert cp.critical == ("003", "004") and cp.edges == (("003", "004"),)


def test_a_scatter_of_a_sub_workflow_counts_through_the_copies_bodies():
    steps = [t("001", status="done", duration=10)]
    for k, (first, second) in enumerate([(30, 10), (5, 90), (20, 20)]):
        steps.append(t(f"002s{k}", ["001"], "running", step_type="workflow", started=ago(1)))  # container: no estimate needed
        steps.append(t(f"002s{k}/001", [], "running", started=ago(0), estimate=first))
        steps.append(t(f"002s{k}/002", [f"002s{k}/001"], estimate=second))
    steps.append(t("003", [f"002s{k}" for k in range(3)], estimate=7))
    cp = critical_path(steps, NOW)
    assert cp.remaining == 102  # 5 + 90 + 7 through the second copy
    assert cp.containers == {"002s0", "002s1", "002s2"}
    assert cp.own["002s1"] == 0 and cp.unknown == ()  # a container with its body listed is its body
    assert cp.critical == ("002s1", "002s1/001", "002s1/002", "003")
    assert set(cp.edges) == {("002s1", "002s1/001"), ("002s1/001", "002s1/002"), ("002s1/002", "003")}
    assert cp.slack["002s0/002"] == 102 - 47


def test_a_container_whose_body_is_not_written_yet_costs_its_estimate():
    cp = critical_path([t("001", status="done", duration=10), t("002", ["001"], step_type="workflow", estimate=300), t("003", ["002"], estimate=5)], NOW)
    assert cp.remaining == 305 and cp.critical == ("002", "003")


def test_a_loop_counts_the_iteration_running_now_and_not_the_ended_ones():
    cp = critical_path([
        t("001", status="done", duration=5),
        t("002", ["001"], "running", step_type="workflow"),
        t("002i0/001", [], "done", duration=50),
        t("002i0/002", ["002i0/001"], "done", duration=60),
        t("002i1/001", [], "running", started=ago(20), estimate=50),
        t("002i1/002", ["002i1/001"], estimate=60),
        t("003", ["002"], estimate=10),
    ], NOW)
    assert container_of("002i1/001", {"002"}) == "002"
    assert cp.remaining == pytest.approx(30 + 60 + 10)
    assert cp.critical == ("002", "002i1/001", "002i1/002", "003")


def test_a_nested_body_inside_a_scattered_loop():
    keys = {"004s1", "004s1i2/001", "004s1i2/001s0", "004s1i2/001s0/001"}
    assert container_of("004s1i2/001", keys) == "004s1" and container_of("004s1i2/001s0/001", keys) == "004s1i2/001s0"
    parents = effective_parents({"004s1": [], "004s1i2/001": [], "004s1i2/001s0": [], "004s1i2/001s0/001": [], "005": ["004s1"]})
    assert parents["004s1i2/001s0/001"] == ["004s1i2/001s0"]
    assert parents["005"] == ["004s1", "004s1i2/001", "004s1i2/001s0", "004s1i2/001s0/001"]  # after the whole nested body


def test_overdue_and_unknown_steps_are_named_and_make_the_answer_a_lower_bound():
    cp = critical_path([
        t("a", status="running", started=ago(500), estimate=100),
        t("b", ["a"], estimate=None),
        t("c", ["b"], estimate=30),
    ], NOW)
    assert cp.overdue == ("a",) and cp.own["a"] == 60  # still running: about to end, it still holds b and c up
    assert cp.unknown == ("b",) and not cp.known
    assert cp.remaining == 90 and cp.critical == ("a", "b", "c")
    alone = critical_path([t("a", status="running", started=ago(500), estimate=100)], NOW, overdue_seconds=5)
    assert alone.remaining == 5 and alone.critical == ("a",)


def test_nothing_left_means_no_critical_path():
    assert critical_path([], NOW).remaining == 0
    done = critical_path([t("a", status="done", duration=4), t("b", ["a"], "failed", duration=2)], NOW)
    assert done.remaining == 0 and done.critical == () and done.edges == ()
    unknown = critical_path([t("a")], NOW)
    assert unknown.critical == () and unknown.unknown == ("a",)


def test_a_waiting_step_submitted_without_a_start_time_costs_its_whole_estimate():
    assert critical_path([t("a", status="submitted", estimate=80)], NOW).remaining == 80


def test_cycles_duplicates_and_negative_times_are_refused():
    with pytest.raises(CriticalPathError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        critical_path([t("a", ["b"], estimate=1), t("b", ["a"], estimate=1), t("c", ["a"], estimate=1)], NOW)
    with pytest.raises(CriticalPathError, match="cycle: x -> x"):
        critical_path([t("x", ["x"], estimate=1)], NOW)
    with pytest.raises(CriticalPathError, match="listed twice"):
        critical_path([t("a", estimate=1), t("a", estimate=2)], NOW)
    with pytest.raises(CriticalPathError, match="negative"):
        critical_path([t("a", estimate=-1)], NOW)
    with pytest.raises(CriticalPathError, match="cycle"):
        topological_order({"p": ["q"], "q": ["r"], "r": ["p"], "s": []})


def test_parents_missing_from_a_truncated_list_are_ignored():
    cp = critical_path([t("b", ["gone"], estimate=4)], NOW)
    assert cp.remaining == 4 and cp.critical == ("b",)


def test_estimates_from_copies_then_step_type_then_defaults():
    steps = [
        t("001s0", status="done", step_type="prun", duration=100),
        t("001s1", status="done", step_type="prun", duration=300),
        t("001s2", status="finished", step_type="prun", duration=200),
        t("001s3", status="failed", step_type="prun", duration=1),  # a failure says nothing about how long a run takes
        t("001s4", status="running", step_type="prun", started=ago(10)),
        t("002", ["001s0"], step_type="prun"),
        t("003", step_type="phpo"),
        t("004", step_type="junction"),
        t("005", step_type="prun", estimate=7),
    ]
    found = estimates(steps, defaults={"phpo": 3600})
    assert found == {"001s4": 200, "002": 200, "003": 3600, "004": None, "005": 7}
    assert template_of("001s4") == "001" and template_of("004s1i2/001s3") == "004/001"


@pytest.mark.parametrize("seed", range(250))
def test_against_every_path_of_a_random_dag(seed):
    """Remaining time, longest path through each step, critical set and tight edges agree with a brute force over
    every source-to-sink path, on random DAGs with ended, running and waiting steps."""
    rng = random.Random(seed)
    n = rng.randint(1, 8)
    keys = [f"n{i}" for i in range(n)]
    parents = {k: [p for p in keys[:i] if rng.random() < 0.35] for i, k in enumerate(keys)}
    steps = []
    for k in keys:
        status = rng.choice(["done", "skipped", "running", "defined", "ready", "failed"])
        estimate = rng.choice([None, 0, 5, 10, 20, 40])
        steps.append(t(k, parents[k], status, estimate=estimate, started=ago(rng.choice([0, 3, 15, 50])) if status == "running" else None))
    rng.shuffle(steps)
    cp = critical_path(steps, NOW)

    own = {}
    for s in steps:
        if s.status in ("done", "skipped", "failed") or s.estimate is None:
            own[s.key] = 0.0
        elif s.status == "running":
            ran = (NOW - s.started).total_seconds()
            own[s.key] = max(s.estimate - ran, 0.0) if ran <= s.estimate else 60.0
        else:
            own[s.key] = float(s.estimate)
    children = {k: [c for c in keys if k in parents[c]] for k in keys}

    def paths_from(k):
        if not children[k]:
            yield [k]
        for c in children[k]:
            for rest in paths_from(c):
                yield [k] + rest

    paths = [p for s in keys if not parents[s] for p in paths_from(s)]
    best = {k: max(sum(own[x] for x in p) for p in paths if k in p) for k in keys}
    remaining = max(best.values())
    assert cp.own == pytest.approx(own)
    assert cp.through == pytest.approx(best)
    assert cp.remaining == pytest.approx(remaining)
    live = {s.key for s in steps if s.status not in ("done", "skipped", "failed")}
    expected = {k for k in live if remaining > 0 and best[k] == pytest.approx(remaining)}
    assert set(cp.critical) == expected
    tight = set()
    for p in paths:
        if sum(own[x] for x in p) == pytest.approx(remaining) and remaining > 0:
            tight |= {(a, b) for a, b in itertools.pairwise(p) if a in expected and b in expected}
    assert set(cp.edges) == tight
    order = {k: i for i, k in enumerate(cp.critical)}
    assert all(order[a] < order[b] for a, b in cp.edges)


def test_step_rows_as_the_processor_writes_them():
    """submit_intent_time and status_change_time of JEDI_WF_STEPS give durations and starts; estimates fill the rest."""
    rows = [
        {"node_key": "001", "parent_keys": [], "status": "done", "step_type": "prun", "submit_intent_time": ago(1000), "status_change_time": ago(400)},
        {"node_key": "002", "parent_keys": ["001"], "status": "running", "step_type": "prun", "submit_intent_time": ago(100), "status_change_time": ago(50)},
        {"node_key": "003", "parent_keys": ["002", None], "status": "defined", "step_type": "prun", "submit_intent_time": None, "status_change_time": ago(900)},
        {"node_key": "004", "parent_keys": ["001"], "status": "skipped", "step_type": "prun", "submit_intent_time": None, "status_change_time": ago(400)},
    ]
    timings = {t.key: t for t in timings_from_step_rows(rows)}
    assert timings["001"].duration == 600 and timings["001"].started is None
    assert timings["002"].started == ago(100) and timings["002"].duration is None
    assert timings["003"].parents == ("002",) and timings["004"].duration is None  # never submitted: no measured time
    cp = of_step_rows(rows, NOW)
    assert cp.own == {"001": 0, "002": 500, "003": 600, "004": 0} and cp.remaining == 1100 and cp.critical == ("002", "003")
    assert of_step_rows(rows, NOW, defaults={"prun": 5}).remaining == 1100  # measured like steps come before defaults
