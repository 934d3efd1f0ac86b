"""Workflow-level pre-staging plan (placement/prestage.py): pure, checked by hand on the shapes a definition has
(chain, fan-in, fan-out, scatter, loops, nested sub-workflows, steps starting at once) and against a brute force that
walks every path of many random DAGs."""

import datetime
import itertools
import random

import pytest

from pandajedi_wf.placement.prestage import (
    CriticalPathError,
    PlannedStep,
    Prestage,
    PrestagePolicy,
    StepInput,
    earliest_starts,
    plan_prestages,
    staging_seconds,
)

START = datetime.datetime(2026, 12, 3, 12, 0, 0)
POLICY = PrestagePolicy(default_step_seconds=1000, tape_latency_seconds=100, bytes_per_second=10)


def at(seconds):
    return START + datetime.timedelta(seconds=seconds)


def s(key, parents=(), inputs=(), duration=None, container=False):
    return PlannedStep(key, tuple(parents), tuple(inputs), duration, container)


def tape(name, nbytes=0, files=0, stage_seconds=None):
    return StepInput(name, True, nbytes, files, stage_seconds)


def disk(name):
    return StepInput(name, False, 500)


def by_dataset(plan):
    return {p.dataset: p for p in plan}


def test_staging_time_is_latency_plus_bytes_at_the_rate_or_the_callers_estimate():
    assert staging_seconds(tape("d", 1000), POLICY) == 100 + 100
    assert staging_seconds(tape("d", 1000, stage_seconds=7), POLICY) == 7
    assert staging_seconds(tape("d", -5), POLICY) == 100  # a nonsense size counts as nothing
    assert staging_seconds(tape("d", 10), PrestagePolicy(tape_latency_seconds=0, bytes_per_second=0)) == 10


def test_a_chain_recalls_the_later_steps_input_by_its_earliest_start_minus_the_staging_time():
    plan = plan_prestages([
        s("001", inputs=[tape("raw.first", 10)], duration=3000),
        s("002", ["001"], duration=2000),
        s("003", ["002"], inputs=[tape("raw.third", 1000, files=4)], duration=10),
    ], START, POLICY)
    # the root's input goes through the carousel's ordinary intake when 001 is submitted at once
    assert plan == [Prestage("raw.third", need_by=at(5000 - 200), ready_at=at(5000), step="003", steps=("003",),
                             stage_seconds=200, bytes=1000, files=4)]


def test_inputs_already_on_disk_are_not_recalled():
    assert plan_prestages([s("a", duration=5), s("b", ["a"], inputs=[disk("on.disk")])], START, POLICY) == []


def test_fan_in_waits_for_the_slowest_parent():
    plan = plan_prestages([
        s("a", duration=100),
        s("b", duration=900),
        s("c", ["a"], duration=50),
        s("join", ["b", "c"], inputs=[tape("raw", stage_seconds=300)]),
    ], START, POLICY)
    assert [(p.dataset, p.ready_at, p.need_by) for p in plan] == [("raw", at(900), at(600))]


def test_fan_out_each_child_gets_its_own_need_by_and_the_plan_is_ordered_by_it():
    plan = plan_prestages([
        s("a", duration=100),
        s("slow", ["a"], duration=5000),
        s("late", ["slow"], inputs=[tape("x.late", stage_seconds=10)]),
        s("early", ["a"], inputs=[tape("x.early", stage_seconds=10)]),
        s("urgent", ["a"], inputs=[tape("x.urgent", stage_seconds=1000)]),
    ], START, POLICY)
    assert [(p.dataset, p.need_by) for p in plan] == [
        ("x.urgent", at(100 - 1000)),  # already late when the workflow starts: it sorts first
        ("x.early", at(90)),
        ("x.late", at(5090)),
    ]


def test_a_dataset_read_by_several_later_steps_is_recalled_once_for_the_first_reader():
    plan = plan_prestages([
        s("a", duration=100),
        s("b", ["a"], duration=400, inputs=[tape("shared", stage_seconds=50)]),
        s("c", ["b"], inputs=[tape("shared", stage_seconds=50)]),
        s("d", ["a"], inputs=[tape("shared", stage_seconds=50)]),
    ], START, POLICY)
    assert len(plan) == 1
    assert plan[0].step == "b" and plan[0].steps == ("b", "d", "c") and plan[0].ready_at == at(100)


def test_a_dataset_a_starting_step_also_reads_is_left_to_the_ordinary_staging():
    plan = plan_prestages([
        s("a", inputs=[tape("shared")], duration=100),
        s("b", ["a"], inputs=[tape("shared"), tape("own", stage_seconds=1)]),
    ], START, POLICY)
    assert [p.dataset for p in plan] == ["own"]


def test_steps_that_start_with_the_workflow_are_never_pre_staged():
    plan = plan_prestages([
        s("a", inputs=[tape("x")], duration=100),
        s("b", inputs=[tape("y")], duration=100),
        s("sub", container=True),
        s("sub/001", inputs=[tape("z")]),  # body of a container that itself starts at once
    ], START, POLICY)
    assert plan == []


def test_a_step_without_an_estimate_costs_the_policys_default():
    plan = plan_prestages([
        s("a"),  # unknown
        s("b", ["a"], duration=7),
        s("c", ["b"], inputs=[tape("raw", stage_seconds=0)]),
    ], START, POLICY)
    assert plan[0].ready_at == at(1000 + 7) and plan[0].need_by == plan[0].ready_at


def test_scatter_each_tape_input_of_the_scattered_step_is_needed_when_the_first_copy_may_start():
    # 002 scatters over three datasets (its copies 002s0.. are not steps yet): one recall each, all with one need_by
    plan = plan_prestages([
        s("001", duration=600),
        s("002", ["001"], inputs=[tape(f"raw.{k}", 100) for k in range(3)], duration=60),
        s("003", ["002"]),
    ], START, POLICY)
    assert [p.dataset for p in plan] == ["raw.0", "raw.1", "raw.2"]
    assert {p.need_by for p in plan} == {at(600 - 110)}
    assert {p.step for p in plan} == {"002"}


def test_scatter_of_a_sub_workflow_its_body_follows_the_container_and_what_follows_waits_for_the_whole_body():
    plan = plan_prestages([
        s("001", duration=100),
        s("002", ["001"], container=True),  # a scattered sub-workflow: costs nothing itself
        s("002/001", inputs=[tape("body.first", stage_seconds=10)], duration=300),
        s("002/002", ["002/001"], inputs=[tape("body.second", stage_seconds=10)], duration=200),
        s("003", ["002"], inputs=[tape("after", stage_seconds=10)]),
    ], START, POLICY)
    got = {p.dataset: p.ready_at for p in plan}
    assert got == {"body.first": at(100), "body.second": at(400), "after": at(600)}


def test_a_loop_input_is_needed_by_the_first_iteration_and_a_step_after_the_loop_counts_one_iteration():
    plan = plan_prestages([
        s("001", duration=100),
        s("loop", ["001"], container=True),
        s("loop/001", inputs=[tape("calib", stage_seconds=50)], duration=1000),
        s("loop/002", ["loop/001"], duration=500),
        s("after", ["loop"], inputs=[tape("final", stage_seconds=50)]),
    ], START, POLICY)
    got = by_dataset(plan)
    assert got["calib"].ready_at == at(100) and got["calib"].need_by == at(50)
    assert got["final"].ready_at == at(100 + 1000 + 500)  # one iteration: early, which only makes the recall early


def test_a_loop_whose_body_reads_the_same_dataset_in_each_step_recalls_it_once_for_the_first():
    plan = plan_prestages([
        s("001", duration=10),
        s("loop", ["001"], container=True),
        s("loop/001", inputs=[tape("same", stage_seconds=1)], duration=20),
        s("loop/002", ["loop/001"], inputs=[tape("same", stage_seconds=1)]),
    ], START, POLICY)
    assert len(plan) == 1 and plan[0].step == "loop/001" and plan[0].steps == ("loop/001", "loop/002")


def test_nested_sub_workflows_follow_every_level():
    plan = plan_prestages([
        s("a", duration=10),
        s("outer", ["a"], container=True),
        s("outer/x", duration=20),
        s("outer/inner", ["outer/x"], container=True),
        s("outer/inner/y", inputs=[tape("deep", stage_seconds=0)], duration=30),
        s("z", ["outer"], inputs=[tape("end", stage_seconds=0)]),
    ], START, POLICY)
    assert {p.dataset: p.ready_at for p in plan} == {"deep": at(30), "end": at(60)}


def test_a_cycle_a_repeated_step_or_a_negative_duration_is_refused():
    with pytest.raises(CriticalPathError, match="cycle"):
        plan_prestages([s("a", ["b"]), s("b", ["a"], inputs=[tape("x")])], START, POLICY)
    with pytest.raises(CriticalPathError, match="twice"):
        plan_prestages([s("a"), s("a")], START, POLICY)
    with pytest.raises(CriticalPathError, match="negative"):
        plan_prestages([s("a", duration=-1)], START, POLICY)


def test_parents_naming_no_listed_step_are_ignored():
    plan = plan_prestages([s("a", duration=5), s("b", ["a", "gone"], inputs=[tape("x", stage_seconds=0)])], START, POLICY)
    assert plan[0].ready_at == at(5)


def _brute_force_start(steps, key):
    """Longest sum of durations over every parent chain ending at ``key`` (flat DAGs only)."""
    by_key = {st.key: st for st in steps}
    best = 0.0
    stack = [(key, 0.0)]
    while stack:
        k, acc = stack.pop()
        if not by_key[k].parents:
            best = max(best, acc)
        for p in by_key[k].parents:
            stack.append((p, acc + by_key[p].duration))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_earliest_starts_and_need_by_match_a_brute_force_over_every_path_of_random_dags(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 9)
    keys = [f"{i:03d}" for i in range(n)]
    steps = []
    for i, key in enumerate(keys):
        parents = tuple(p for p in keys[:i] if rng.random() < 0.35)
        inputs = tuple(StepInput(f"ds.{rng.randint(0, 5)}", rng.random() < 0.6, rng.randint(0, 5000))
                       for _ in range(rng.randint(0, 2)))
        steps.append(PlannedStep(key, parents, inputs, float(rng.randint(0, 500))))
    rng.shuffle(steps)
    starts = earliest_starts(steps, POLICY)
    assert starts == {st.key: pytest.approx(_brute_force_start(steps, st.key)) for st in steps}

    plan = plan_prestages(steps, START, POLICY)
    at_once = {i.dataset for st in steps if not st.parents for i in st.inputs if i.on_tape}
    expected = {}
    for st in sorted(steps, key=lambda st: (starts[st.key], st.key)):
        if not st.parents:
            continue
        for i in st.inputs:
            if i.on_tape and i.dataset not in at_once and i.dataset not in expected:
                expected[i.dataset] = (st.key, at(starts[st.key]) - datetime.timedelta(seconds=staging_seconds(i, POLICY)))
    assert {p.dataset: (p.step, p.need_by) for p in plan} == expected
    assert [p.need_by for p in plan] == sorted(p.need_by for p in plan)
    for p in plan:
        assert p.ready_at - p.need_by == datetime.timedelta(seconds=p.stage_seconds)
        readers = {st.key for st in steps if st.parents and any(i.dataset == p.dataset and i.on_tape for i in st.inputs)}
        assert set(p.steps) == readers and p.steps[0] == p.step


def test_every_small_dag_shape_pre_stages_exactly_the_steps_with_a_parent():
    # all DAGs on 4 steps ordered a<b<c<d (every subset of the 6 forward edges), a tape input on every step
    keys = "abcd"
    edges = [(x, y) for x, y in itertools.combinations(keys, 2)]
    for mask in range(1 << len(edges)):
        chosen = [e for i, e in enumerate(edges) if mask >> i & 1]
        steps = [s(k, [x for x, y in chosen if y == k], [tape(f"raw.{k}", stage_seconds=0)], duration=1) for k in keys]
        plan = plan_prestages(steps, START, POLICY)
        with_parent = {y for _, y in chosen}
        assert {p.step for p in plan} == with_parent
        for p in plan:
            assert p.ready_at == at(_brute_force_start([st for st in steps], p.step))


# ---- a parsed definition as planned steps ------------------------------------------------------------------------

from pathlib import Path  # noqa: E402

from pandajedi_wf.placement.prestage import steps_of_definition  # noqa: E402
from pandajedi_wf.workflow.parse import parse_workflow  # noqa: E402

NATIVE = Path(__file__).parent / "examples" / "native"
SIGNAL = "mc23_dev:mc23_dev.700002.Dev_electron_gun.simul.HITS.e0001_s0001_tid00000002_00"
BACKGROUND = "mc23_dev.700003.Dev_minbias.merge.HITS.e0001_s0001_s0002/"

TAPE_CHAIN = """name: tape_chain
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
    secondaryDSs:
      - "data18_13TeV:data18_13TeV.00348885.physics_Main.deriv.DAOD_PHYS.r13286_p4910"
    args: "--outputs c.txt"
    exec: "cat %IN %IN2 > c.txt"
"""


def test_a_definitions_literal_dataset_of_a_later_step_is_planned_at_the_chains_estimated_start():
    wf = parse_workflow("yaml", TAPE_CHAIN, {})
    steps = steps_of_definition(wf, durations={"prun": 600}, bytes_of={})
    assert [(s.key, s.parents, [i.dataset for i in s.inputs]) for s in steps] == [
        ("001", (), []), ("002", ("001",), []),
        ("003", ("002",), ["data18_13TeV:data18_13TeV.00348885.physics_Main.deriv.DAOD_PHYS.r13286_p4910"])]
    (plan,) = plan_prestages(steps, START, POLICY)
    assert plan.step == "003" and plan.ready_at == at(1200) and plan.need_by == at(1200 - 100)


def test_a_definitions_inputs_given_to_the_workflow_reach_its_steps_and_a_starting_readers_dataset_is_left_alone():
    wf = parse_workflow("yaml", "overlay.yaml", {"signal": "my.signal"}, str(NATIVE))
    steps = {s.key: [i.dataset for i in s.inputs] for s in steps_of_definition(wf)}
    assert steps == {"001": ["my.signal"], "002": [BACKGROUND], "003": [], "004": [], "005": [BACKGROUND], "006": []}
    assert plan_prestages(steps_of_definition(wf), START, POLICY) == []  # 002 reads the background at once


def test_a_definitions_scattered_sub_workflow_lists_every_copys_dataset_in_its_body():
    wf = parse_workflow("yaml", "scatter_overlay.yaml", {}, str(NATIVE))
    steps = {s.key: s for s in steps_of_definition(wf)}
    assert steps["007"].container and steps["008"].parents == ("007",)
    assert [i.dataset for i in steps["007/001"].inputs] == [SIGNAL, "mc23_dev:mc23_dev.700004.Dev_muon_gun.simul.HITS.e0001_s0001_tid00000004_00"]


def test_a_definitions_nested_sub_workflow_keeps_the_engines_keys():
    wf = parse_workflow("yaml", "nested.yaml", {}, str(NATIVE))
    steps = {s.key: s for s in steps_of_definition(wf)}
    assert steps["008"].container and steps["009"].parents == ("008", "001")
    assert [i.dataset for i in steps["008/002"].inputs] == [SIGNAL]
