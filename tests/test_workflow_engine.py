"""Drive ``next_actions`` over our example workflows (tests/examples/) with simulated JEDI outcomes."""

from __future__ import annotations

import pytest

from example_paths import DOCS_EXAMPLES, EXAMPLES, needs_docs_examples
from pandajedi_wf.workflow import (
    STEP_LIFECYCLE,
    CancelStep,
    CreateStep,
    Limits,
    MakeReady,
    RunContext,
    SetStepStatus,
    SetWorkflowStatus,
    Skip,
    StepRecord,
    SubmitStep,
    next_actions,
    parse_workflow,
)

OUT_DS = "user.alice.wf"


class Simulation:
    """Applies engine actions like the DB processor would, and plays JEDI from a script of outcomes."""

    def __init__(self, workflow, outcomes=None, results=None, limits=None, workflow_status="parsed"):
        self.workflow = workflow
        self.steps: dict[str, StepRecord] = {}
        self.names: dict[str, str] = {}
        self.task_names: dict[str, str] = {}
        self.outcomes = outcomes or {}  # step name -> final status (default done)
        self.results = results or {}  # step name -> callable(iteration) -> results dict
        self.ctx = RunContext(out_ds=OUT_DS, user_name="alice", workflow_id=42, workflow_status=workflow_status, limits=limits or Limits())
        self.submitted: list[str] = []
        self.history: list = []
        self.status = workflow_status

    def set(self, key, status):
        STEP_LIFECYCLE.check(self.steps[key].status, status)
        self.steps[key].status = status

    def apply(self, actions):
        for action in actions:
            self.history.append(action)
            if isinstance(action, CreateStep):
                assert action.node_key not in self.steps, f"duplicate creation of {action.node_key}"
                self.steps[action.node_key] = StepRecord(action.node_key, action.node_id, "defined", action.iteration, action.scatter_index)
                self.names[action.node_key] = action.name
                self.task_names[action.node_key] = action.task_name
            elif isinstance(action, MakeReady):
                self.set(action.node_key, "ready")
            elif isinstance(action, Skip):
                self.set(action.node_key, "skipped")
            elif isinstance(action, SubmitStep):
                self.set(action.node_key, "submitting")
                assert action.task_name not in self.submitted, f"task {action.task_name} submitted twice"
                self.submitted.append(action.task_name)
            elif isinstance(action, SetStepStatus):
                self.set(action.node_key, action.status)
            elif isinstance(action, CancelStep):
                self.set(action.node_key, "cancelled")
            elif isinstance(action, SetWorkflowStatus):
                self.status = action.status
                self.ctx.workflow_status = action.status

    def cycle(self):
        actions = next_actions(self.workflow, self.steps, self.ctx)
        self.apply(actions)
        # idempotence: the same state asks for nothing more... except what JEDI must change
        again = next_actions(self.workflow, self.steps, self.ctx)
        assert again == [], f"second call is not idempotent: {again}"
        return actions

    def jedi(self):
        """Every submitted task ends with its scripted outcome (iteration-aware for junctions)."""
        for key, record in self.steps.items():
            if record.status == "submitting":
                self.set(key, "submitted")
                name = self.names[key]
                self.set(key, "running")
                self.set(key, self.outcomes.get(name, "done"))
                if name in self.results:
                    record.results = self.results[name](record.iteration)

    def run(self, max_cycles=50):
        for _ in range(max_cycles):
            self.cycle()
            if self.status in ("done", "finished", "failed", "cancelled"):
                return self.status
            self.jedi()
        raise AssertionError("workflow did not end")

    def status_of(self, name):
        return {k: r.status for k, r in self.steps.items() if self.names[k] == name}


def cwl(name, inputs=None):
    return parse_workflow("cwl", str(EXAMPLES / name), inputs or {}, str(EXAMPLES))


def test_simple_chain_runs_in_order_and_ends_done():
    sim = Simulation(cwl("chain.cwl"))
    first = sim.cycle()
    assert isinstance(first[0], SetWorkflowStatus) and first[0].status == "running"
    assert [a.node_key for a in first if isinstance(a, SubmitStep)] == ["001"]
    assert sim.steps["002"].status == "defined"
    assert sim.run() == "done"
    assert sim.submitted == [f"{OUT_DS}_001_top", f"{OUT_DS}_002_bottom"]


def test_child_starts_on_running_parent_with_no_wait_parent():
    sim = Simulation(cwl("chain.cwl"))
    sim.cycle()
    sim.set("001", "submitted")
    sim.set("001", "running")
    actions = sim.cycle()
    submit = [a for a in actions if isinstance(a, SubmitStep)]
    assert [a.node_key for a in submit] == ["002"]
    assert submit[0].spec.parent_task_name == f"{OUT_DS}_001_top"


def test_no_early_start_when_disabled():
    sim = Simulation(cwl("chain.cwl"))
    sim.ctx.no_wait_parent = False
    sim.cycle()
    sim.set("001", "submitted")
    sim.set("001", "running")
    assert sim.cycle() == []


def test_cond_parent_success_takes_ok_branch():
    sim = Simulation(cwl("branches.cwl"))
    assert sim.run() == "done"
    assert sim.status_of("use_it") == {"002": "done"}
    assert sim.status_of("fall_back") == {"003": "skipped"}
    skip = next(a for a in sim.history if isinstance(a, Skip))
    assert skip.node_key == "003" and "!self.opt_inDS" in skip.reason


def test_cond_parent_failure_takes_ng_branch_and_the_handled_failure_ends_done():
    sim = Simulation(cwl("branches.cwl"), outcomes={"produce": "failed"})
    assert sim.run() == "done"
    assert sim.status_of("produce") == {"001": "failed"}
    assert sim.status_of("use_it") == {"002": "skipped"}
    assert sim.status_of("fall_back") == {"003": "done"}
    final = [a for a in sim.history if isinstance(a, SetWorkflowStatus)][-1]
    assert "failure of 'produce' handled by 'fall_back'" in final.reason
    ng = next(a for a in sim.history if isinstance(a, SubmitStep) and a.node_key == "003")
    assert ng.spec.allow_empty_input is True  # it reads produce's output container, empty since produce failed


def test_cond_ok_branch_does_not_allow_empty_input():
    sim = Simulation(cwl("branches.cwl"))
    sim.ctx.task_templates = {"container": {"jobParameters": [], "taskName": "x", "vo": "atlas"}}
    assert sim.run() == "done"
    ok = next(a for a in sim.history if isinstance(a, SubmitStep) and a.node_key == "002")
    assert ok.spec.allow_empty_input is False and "allowEmptyInput" not in ok.task_params


def test_failure_branch_that_fails_leaves_the_workflow_failed():
    sim = Simulation(cwl("branches.cwl"), outcomes={"produce": "failed", "fall_back": "failed"})
    assert sim.run() == "failed"
    final = [a for a in sim.history if isinstance(a, SetWorkflowStatus)][-1]
    assert "handled" not in final.reason


def _cwl_text(steps: str):
    text = "cwlVersion: v1.2\nclass: Workflow\nrequirements:\n  InlineJavascriptRequirement: {}\ninputs: []\noutputs: []\nsteps:\n" + steps
    return parse_workflow("cwl", text, {}, str(EXAMPLES))


def _prun(name, when=None, in_ds=None, sec=None):
    lines = [f"  {name}:", "    run: prun", "    in:", f"      opt_exec:\n        default: echo {name}", "      opt_args:\n        default: --outputs out.txt"]
    if in_ds:
        lines.append(f"      opt_inDS: {in_ds}/outDS")
    if sec:
        lines.append(f"      opt_secondaryDSs: [{sec}/outDS]")
    lines.append("    out: [outDS]")
    if when:
        lines.append(f"    when: $({when})")
    return "\n".join(lines) + "\n"


def test_failure_is_not_handled_when_another_reader_lacks_its_input():
    """rescue fires on top's failure, but plain reads top's output without a condition and is skipped for lack of
    input: the workflow did not do what it was written to do."""
    wf = _cwl_text(_prun("top") + _prun("rescue", "!self.opt_inDS", "top") + _prun("plain", None, "top"))
    sim = Simulation(wf, outcomes={"top": "failed"})
    assert sim.run() == "finished"
    assert sim.status_of("plain") == {"003": "skipped"} and sim.status_of("rescue") == {"002": "done"}


def test_success_only_condition_does_not_handle_a_failure_but_still_allows_empty_input():
    """`self.a || self.b` runs when b succeeded although a failed: a's failure was not planned for (finished), and
    the step may read a's empty container as its primary input (allowEmptyInput)."""
    wf = _cwl_text(_prun("a") + _prun("b") + _prun("either", "self.opt_inDS || self.opt_secondaryDSs", "a", "b"))
    sim = Simulation(wf, outcomes={"a": "failed"})
    assert sim.run() == "finished"
    either = next(x for x in sim.history if isinstance(x, SubmitStep) and x.node_key == "003")
    assert either.spec.allow_empty_input is True


def test_negated_conjunction_handles_the_failure():
    wf = _cwl_text(_prun("a") + _prun("b") + _prun("fallback", "!(self.opt_inDS && self.opt_secondaryDSs)", "a", "b"))
    sim = Simulation(wf, outcomes={"a": "failed"})
    assert sim.run() == "done"
    assert sim.status_of("fallback") == {"003": "done"}


def test_failure_inside_conjunction_is_handled_and_empty_input_propagates_downstream():
    """`!self.a && self.b` fires on a's failure; the step after it reads an output that may be empty too."""
    wf = _cwl_text(_prun("a") + _prun("b") + _prun("fix", "!self.opt_inDS && self.opt_secondaryDSs", "a", "b") + _prun("after", None, "fix"))
    sim = Simulation(wf, outcomes={"a": "failed"})
    assert sim.run() == "done"
    specs = {x.node_key: x.spec for x in sim.history if isinstance(x, SubmitStep)}
    assert specs["003"].allow_empty_input is True and specs["004"].allow_empty_input is True
    assert specs["001"].allow_empty_input is False and specs["002"].allow_empty_input is False


def test_failure_triggers_follow_negations():
    from pandajedi_wf.workflow.conditions import parse_condition
    from pandajedi_wf.workflow.engine import failure_triggers

    ids = {"a": 1, "b": 2}

    def resolved(text):
        cond = parse_condition(text)
        for leaf in cond.leaves():
            leaf.parents = [ids[leaf.param]]
        return cond

    assert failure_triggers(resolved("!self.a")) == {1}
    assert failure_triggers(resolved("self.a")) == set()
    assert failure_triggers(resolved("!self.a && self.b")) == {1}
    assert failure_triggers(resolved("self.a || self.b")) == set()
    assert failure_triggers(resolved("!(self.a && self.b)")) == {1, 2}
    assert failure_triggers(resolved("!(!self.a || self.b)")) == {2}


def test_condition_waits_for_running_parent():
    sim = Simulation(cwl("branches.cwl"))
    sim.cycle()
    sim.set("001", "submitted")
    sim.set("001", "running")
    assert sim.cycle() == []  # conditions need the parent's final outcome, no early start


def test_hpo_chain_of_conditions_skips_downstream_when_parent_fails():
    sim = Simulation(cwl("tuning.cwl"), outcomes={"prepare": "failed"})
    assert sim.run() == "failed"
    assert sim.status_of("optimise") == {"002": "skipped"}
    assert sim.status_of("evaluate") == {"003": "skipped"}


def test_parent_failure_skips_child_without_condition():
    sim = Simulation(cwl("chain.cwl"), outcomes={"top": "failed"})
    assert sim.run() == "failed"
    skip = next(a for a in sim.history if isinstance(a, Skip))
    assert skip.node_key == "002" and "parent 'top' failed" in skip.reason


def test_fan_in_reana_waits_for_both_parents():
    sim = Simulation(cwl("fan_in.cwl"))
    first = sim.cycle()
    assert {a.node_key for a in first if isinstance(a, SubmitStep)} == {"001", "002"}
    sim.set("001", "submitted")
    sim.set("001", "running")
    sim.set("001", "done")
    assert sim.cycle() == []  # right still running, reinterpret never starts early
    sim.set("002", "submitted")
    sim.set("002", "running")
    sim.set("002", "done")
    submit = [a for a in sim.cycle() if isinstance(a, SubmitStep)]
    assert [a.node_key for a in submit] == ["003"]
    assert [r.task_name for r in submit[0].spec.inputs["opt_inDS"]] == [f"{OUT_DS}_001_left", f"{OUT_DS}_002_right"]


def test_merge_many_scatter_fan_out_and_fan_in():
    sim = Simulation(cwl("scatter_overlay.cwl", {"signals": ["sA", "sB"], "backgrounds": ["bA", "bB"]}))
    first = sim.cycle()
    created = [a.node_key for a in first if isinstance(a, CreateStep)]
    assert {"007s0", "007s1", "008", "007s0/006", "007s1/006"} <= set(created)
    assert created.index("007s1") < created.index("008")
    heads = {a.node_key for a in first if isinstance(a, SubmitStep)}
    assert heads == {"007s0/001", "007s0/002", "007s0/004", "007s1/001", "007s1/002", "007s1/004"}
    signal = next(a for a in first if isinstance(a, SubmitStep) and a.node_key == "007s1/001")
    assert signal.spec.inputs["opt_inDS"] == "sB" and signal.task_name == f"{OUT_DS}_001_simulate_s1"
    assert sim.run() == "done"
    merge = next(a for a in sim.history if isinstance(a, SubmitStep) and a.node_key == "008")
    assert [r.task_name for r in merge.spec.inputs["opt_inDS"]] == [f"{OUT_DS}_006_reconstruct_s0", f"{OUT_DS}_006_reconstruct_s1"]
    assert len(sim.submitted) == 2 * 6 + 1


def test_scatter_instance_failure_skips_merge():
    sim = Simulation(cwl("scatter_overlay.cwl", {"signals": ["sA", "sB"], "backgrounds": ["bA", "bB"]}))
    sim.outcomes = {"pileup_b": "failed"}
    assert sim.run() == "failed"
    assert sim.steps["007s0/006"].status == "skipped"  # reconstruct lost an input
    assert sim.steps["007s0"].status == "failed"  # no output from the sub-workflow's tail
    assert sim.steps["008"].status == "skipped"


def test_loop_iterates_while_junction_says_continue_then_stops():
    def results(iteration):
        return {"to_continue": iteration < 3, "scale": 100 + iteration}

    sim = Simulation(cwl("iterate.cwl"), results={"decide": results})
    assert sim.run() == "done"
    top_keys = sorted(k for k in sim.steps if sim.names[k] == "fit")
    assert top_keys == ["005i1/002", "005i2/002", "005i3/002"]
    submits = {a.node_key: a for a in sim.history if isinstance(a, SubmitStep)}
    assert submits["005i1/002"].spec.placeholders["scale"] == 10
    assert submits["005i2/002"].spec.placeholders["scale"] == 101
    assert submits["005i3/002"].spec.placeholders["i"] == 3
    assert submits["005i2/002"].task_name == f"{OUT_DS}_002_fit.2"
    assert submits["005i1/002"].spec.inputs["opt_inDS"].task_name == f"{OUT_DS}_001_start"
    end = submits["006"]
    assert end.spec.inputs["opt_inDS"].task_name == f"{OUT_DS}_003_validate.3"
    assert sim.steps["005"].status == "done"


def test_loop_stops_at_iteration_cap():
    sim = Simulation(cwl("iterate.cwl"), results={"decide": lambda i: {"to_continue": True}}, limits=Limits(max_iterations=2))
    assert sim.run() == "finished"
    assert sim.steps["005"].status == "finished"
    assert not any(k.startswith("005i3") for k in sim.steps)


def test_loop_failure_in_iteration_fails_loop_and_skips_end():
    sim = Simulation(cwl("iterate.cwl"), outcomes={"fit": "failed"})
    assert sim.run() == "finished"  # start produced output, the rest did not
    assert sim.steps["005"].status == "failed"
    assert sim.steps["006"].status == "skipped"


def test_multi_loop_runs_one_loop_per_signal():
    def results(iteration):
        return {"to_continue": iteration < 2}

    sim = Simulation(cwl("iterate_each.cwl", {"datasets": ["s0", "s1"]}), results={"decide": results})
    assert sim.run() == "done"
    assert {k for k in sim.steps if sim.names[k] == "decide"} == {"004s0i1/003", "004s0i2/003", "004s1i1/003", "004s1i2/003"}
    merge = next(a for a in sim.history if isinstance(a, SubmitStep) and a.node_key == "005")
    assert [r.task_name for r in merge.spec.inputs["opt_inDS"]] == [f"{OUT_DS}_002_validate_s0.2", f"{OUT_DS}_002_validate_s1.2"]


def test_sequential_loop_scatter_width_follows_loop_params():
    def results(iteration):
        if iteration == 1:
            return {"to_continue": True, "width": [1, 2, 3], "depth": [0.1, 0.2, 0.3]}
        return {"to_continue": False}

    sim = Simulation(cwl("sweep.cwl", {"sample": "sig"}), results={"decide": results})
    assert sim.run() == "done"
    cores = sorted(k for k in sim.steps if sim.names[k] == "point")
    assert cores == ["004i1/002s0/001", "004i1/002s1/001", "004i2/002s0/001", "004i2/002s1/001", "004i2/002s2/001"]
    submits = {a.node_key: a for a in sim.history if isinstance(a, SubmitStep)}
    assert submits["004i1/002s1/001"].spec.placeholders["sliced_w"] == 20
    assert submits["004i2/002s2/001"].spec.placeholders["sliced_d"] == 0.3
    junction = submits["004i1/003"]
    assert [r.task_name for r in junction.spec.inputs["opt_inDS"]] == [f"{OUT_DS}_001_point_s0.1", f"{OUT_DS}_001_point_s1.1"]


def test_nested_sub_workflow_native_yaml():
    base = EXAMPLES / "native"
    wf = parse_workflow("yaml", str(base / "nested.yaml"), {}, str(base))
    sim = Simulation(wf)
    first = sim.cycle()
    assert sim.steps["008"].status == "running"  # sub-workflow opened at once (no parents)
    assert {a.node_key for a in first if isinstance(a, SubmitStep)} == {"001", "008/002", "008/003", "008/005"}
    assert sim.run() == "done"
    bottom = next(a for a in sim.history if isinstance(a, SubmitStep) and a.node_key == "009")
    assert bottom.spec.inputs["opt_inDS"].task_name == f"{OUT_DS}_007_reconstruct"
    assert bottom.spec.inputs["opt_secondaryDSs"] == [bottom.spec.inputs["opt_secondaryDSs"][0]]
    assert bottom.spec.inputs["opt_secondaryDSs"][0].task_name == f"{OUT_DS}_001_top"


OWN_RUNS = [
    ("cwl", "chain.cwl", {}), ("cwl", "branches.cwl", {}), ("cwl", "tuning.cwl", {}), ("cwl", "fan_in.cwl", {}), ("cwl", "athena.cwl", {}),
    ("cwl", "ci.cwl", {}), ("cwl", "overlay.cwl", {"signal": "s", "background": "b"}),
    ("cwl", "scatter_overlay.cwl", {"signals": ["s0", "s1"], "backgrounds": ["b0", "b1"]}), ("cwl", "iterate.cwl", {}),
    ("cwl", "iterate_each.cwl", {"datasets": ["d0", "d1"]}), ("cwl", "sweep.cwl", {"sample": "s"}),
    ("yaml", "native/chain.yaml", {}), ("yaml", "native/merge_chain.yaml", {}), ("yaml", "native/scatter_overlay.yaml", {}),
    ("yaml", "native/nested.yaml", {}), ("snakemake", "snakemake/scatter_overlay/Snakefile", {}), ("snakemake", "snakemake/tuning/Snakefile", {}),
    ("snakemake", "snakemake/iterate/Snakefile", {}),
]
DOCS_RUNS = [
    ("cwl", "athena.cwl", {}), ("cwl", "conda.cwl", {}), ("cwl", "gitlab.cwl", {}), ("cwl", "evnt_to_deriv.cwl", {}),
    ("cwl", "evnt_to_deriv_ntup.cwl", {}), ("cwl", "prod_recast.cwl", {"seeds": [1, 2]}), ("cwl", "sig_bg_comb.cwl", {"signal": "s", "background": "b"}),
    ("yaml", "native_wfd/simple_chain.yaml", {}), ("yaml", "native_wfd/multistep_merge_wfd.yaml", {}),
    ("yaml", "native_wfd/scatter_sig_bg_comb_wfd.yaml", {}), ("yaml", "native_wfd/nested_workflow_inline_sig_bg_comb_wfd.yaml", {}),
    ("snakemake", "snakemake/merge_many/Snakefile", {}), ("snakemake", "snakemake/hpo/Snakefile", {}),
]


@pytest.mark.parametrize("root,language,path,inputs", [pytest.param(EXAMPLES, *case, id=f"own-{case[1]}") for case in OWN_RUNS]
                         + [pytest.param(DOCS_EXAMPLES, *case, id=f"docs-{case[1]}", marks=needs_docs_examples) for case in DOCS_RUNS])
def test_every_example_runs_to_done_submitting_each_leaf_once(root, language, path, inputs):
    base = (root / path).parent if language == "yaml" else root / "snakemake" if language == "snakemake" else root
    wf = parse_workflow(language, str(root / path), inputs, str(base))
    sim = Simulation(wf, results={"decide": lambda i: {"to_continue": False}})
    assert sim.run() == "done"
    leaf_keys = [k for k, r in sim.steps.items() if sim.task_names[k]]
    assert sorted(sim.submitted) == sorted(sim.task_names[k] for k in leaf_keys if sim.steps[k].status == "done")
    assert all(r.status in ("done", "skipped") for r in sim.steps.values())


def test_cancel_kills_active_and_drops_pending():
    sim = Simulation(cwl("chain.cwl"))
    sim.cycle()
    sim.ctx.workflow_status = "cancelling"
    actions = next_actions(sim.workflow, sim.steps, sim.ctx)
    assert [(a.node_key, type(a)) for a in actions] == [("001", CancelStep), ("002", CancelStep)]
    assert "kill task" in actions[0].reason and "kill task" not in actions[1].reason
    sim.apply(actions)
    assert next_actions(sim.workflow, sim.steps, sim.ctx) == [SetWorkflowStatus("cancelled", "all steps ended and their JEDI tasks with them")]


def test_cancelled_workflow_waits_until_jedi_has_ended_every_task():
    sim = Simulation(cwl("chain.cwl"))
    sim.cycle()
    sim.steps["001"].task_id, sim.steps["001"].jedi_status = 77, None  # submitted, not yet known to JEDI
    sim.ctx.workflow_status = "cancelling"
    sim.apply(next_actions(sim.workflow, sim.steps, sim.ctx))
    assert next_actions(sim.workflow, sim.steps, sim.ctx) == []  # kill is repeated by the processor meanwhile
    sim.steps["001"].jedi_status = "running"
    assert next_actions(sim.workflow, sim.steps, sim.ctx) == []
    sim.steps["001"].jedi_status = "aborted"
    assert [type(a) for a in next_actions(sim.workflow, sim.steps, sim.ctx)] == [SetWorkflowStatus]


def test_paused_workflow_submits_nothing_and_resumes():
    sim = Simulation(cwl("chain.cwl"), workflow_status="paused")
    actions = sim.cycle()
    assert not any(isinstance(a, SubmitStep) for a in actions)
    assert sim.steps["001"].status == "ready"
    sim.ctx.workflow_status = "running"
    assert [a.node_key for a in sim.cycle() if isinstance(a, SubmitStep)] == ["001"]


def test_finishing_skips_pending_steps_and_ends_finished():
    sim = Simulation(cwl("athena.cwl"))
    sim.cycle()
    sim.ctx.workflow_status = "finishing"
    sim.set("001", "submitted")
    sim.set("001", "running")
    sim.ctx.no_wait_parent = False
    sim.set("001", "done")
    actions = sim.cycle()
    assert Skip("002", "workflow is finishing") in actions
    assert sim.run() == "finished"


def test_task_params_are_built_when_templates_are_given():
    sim = Simulation(cwl("chain.cwl"))
    sim.ctx.task_templates = {"container": {"jobParameters": [], "taskName": "x", "vo": "atlas"}}
    submit = next(a for a in sim.cycle() if isinstance(a, SubmitStep))
    assert submit.task_params["taskName"] == f"{OUT_DS}_001_top"
    assert submit.task_params["reqID"] == 42


def test_no_early_start_on_a_parent_that_feeds_only_a_secondary_input():
    """overlay.cwl: pileup_b reads seed_noise only as a secondary input, so it waits for it to end; digitise reads
    simulate as its primary input, but pileup_a too."""
    workflow = parse_workflow("cwl", str(EXAMPLES / "overlay.cwl"), {"signal": "s:ds1", "background": "b:ds2"}, str(EXAMPLES))
    sim = Simulation(workflow)
    sim.cycle()
    by_name = {sim.names[k]: k for k in sim.steps}
    for name in ("seed_noise", "simulate", "pileup_a"):
        sim.set(by_name[name], "submitted")
        sim.set(by_name[name], "running")
    actions = next_actions(sim.workflow, sim.steps, sim.ctx)
    ready = {sim.names[a.node_key] for a in actions if isinstance(a, MakeReady)}
    assert "pileup_b" not in ready
    assert "digitise" not in ready  # digitise also reads pileup_a (two parents): no early start either
    assert all(sim.steps[by_name[n]].status == "defined" for n in ("pileup_b", "digitise", "reconstruct"))


# ---- issue 11 ----------------------------------------------------------------------------------------------

def _step_to(sim, name, *statuses):
    key = next(k for k in sim.steps if sim.names[k] == name)
    for status in statuses:
        sim.set(key, status)
    return key


@pytest.mark.parametrize("held", ["running", "retrying"])
def test_or_condition_waits_for_every_parent_it_reads(held):
    """`self.a || self.b` is true as soon as b succeeded, but the step reads a's output as its primary input: it
    must not start while a runs or is held for an automatic retry (the processor shows that as `retrying`)."""
    wf = _cwl_text(_prun("a") + _prun("b") + _prun("either", "self.opt_inDS || self.opt_secondaryDSs", "a", "b"))
    sim = Simulation(wf)
    sim.cycle()
    _step_to(sim, "b", "submitted", "running", "done")
    a = _step_to(sim, "a", "submitted", "running", *(["failed", "retrying"] if held == "retrying" else []))
    assert sim.cycle() == [] and sim.status_of("either") == {"003": "defined"}
    sim.set(a, "running") if held == "retrying" else None
    sim.set(a, "done")
    submit = [x for x in sim.cycle() if isinstance(x, SubmitStep)]
    assert [x.node_key for x in submit] == ["003"]
    assert submit[0].spec.parent_task_name is None and submit[0].spec.allow_empty_input is False
    assert sim.run() == "done"


def test_or_condition_with_a_failed_parent_still_runs_after_both_ended():
    wf = _cwl_text(_prun("a") + _prun("b") + _prun("either", "self.opt_inDS || self.opt_secondaryDSs", "a", "b"))
    sim = Simulation(wf)
    sim.cycle()
    _step_to(sim, "b", "submitted", "running", "done")
    a = _step_to(sim, "a", "submitted", "running")
    assert sim.cycle() == []
    sim.set(a, "failed")
    [submit] = [x for x in sim.cycle() if isinstance(x, SubmitStep)]
    assert submit.spec.allow_empty_input is True


def test_false_condition_still_skips_without_waiting():
    wf = _cwl_text(_prun("a") + _prun("b") + _prun("both", "self.opt_inDS && self.opt_secondaryDSs", "a", "b"))
    sim = Simulation(wf)
    sim.cycle()
    _step_to(sim, "a", "submitted", "running")
    _step_to(sim, "b", "submitted", "running", "failed")
    assert Skip("003", "condition (self.opt_inDS && self.opt_secondaryDSs) is false") in sim.cycle()


def test_an_empty_definition_ends_failed_instead_of_running_for_ever():
    from pandajedi_wf.workflow import Workflow

    ctx = RunContext(out_ds=OUT_DS, workflow_status="parsed")
    assert next_actions(Workflow(name="empty", language="cwl"), {}, ctx) == [SetWorkflowStatus("failed", "workflow has no steps")]
    ctx.workflow_status = "paused"  # (paused -> failed is no transition: it ends once resumed)
    assert next_actions(Workflow(name="empty", language="cwl"), {}, ctx) == []


def test_scatter_known_only_at_run_time_and_too_wide_fails_the_loop_with_the_reason():
    def results(iteration):
        return {"to_continue": True, "width": [1, 2, 3], "depth": [0.1, 0.2, 0.3]}

    sim = Simulation(cwl("sweep.cwl", {"sample": "sig"}), results={"decide": results}, limits=Limits(max_scatter=2))
    assert sim.run() == "failed"
    assert sim.steps["004"].status == "failed"
    reason = next(a.reason for a in sim.history if isinstance(a, SetStepStatus) and a.node_key == "004" and a.status == "failed")
    assert reason == "iteration 2: scatter of step 'points' over param_sliced_w, param_sliced_d would make 3 copies; the limit is 2"
    assert not any(k.startswith("004i2/") for k in sim.steps)  # nothing of the refused iteration was created, none cut


def test_top_level_scatter_too_wide_in_a_stored_definition_fails_the_workflow():
    wf = cwl("scatter_overlay.cwl", {"signals": ["s0", "s1"], "backgrounds": ["b0", "b1"]})
    sim = Simulation(wf, limits=Limits(max_scatter=1))
    assert sim.cycle() == [SetWorkflowStatus("failed", "scatter of step 'overlay_each' over signal, background would make 2 copies; the limit is 1")]


def test_end_reason_counts_the_steps_of_the_definition():
    sim = Simulation(cwl("scatter_overlay.cwl", {"signals": ["s0", "s1", "s2"], "backgrounds": ["b0", "b1", "b2"]}))
    assert sim.run() == "done"
    assert [a for a in sim.history if isinstance(a, SetWorkflowStatus)][-1].reason == "all 2 top-level steps ended (1 scattered into 3 copies)"
    sim = Simulation(cwl("chain.cwl"))
    sim.run()
    assert [a for a in sim.history if isinstance(a, SetWorkflowStatus)][-1].reason == "all 2 top-level steps ended"
    empty = _cwl_text(_prun("only").replace("    in:\n", "    scatter: opt_inDS\n    in:\n      opt_inDS: {default: []}\n"))
    sim = Simulation(empty)
    assert sim.run() == "done"  # used to stay running: no instance, so no status said it ended
    assert [a for a in sim.history if isinstance(a, SetWorkflowStatus)][-1].reason == "all 1 top-level step ended (1 scattered into 0 copies)"


def test_a_definition_that_cannot_make_a_task_raises_step_definition_error(monkeypatch):
    from pandajedi_wf.workflow import StepDefinitionError, WorkflowError

    wf = cwl("chain.cwl")
    wf.node("top").inputs["opt_containerImage"] = type(wf.node("top").inputs["opt_exec"])(name="opt_containerImage", default=["a", "b"], is_list=True)
    sim = Simulation(wf)
    sim.ctx.task_templates = {"container": {"jobParameters": [], "taskName": "x", "vo": "atlas"}}
    with pytest.raises(StepDefinitionError) as info:
        next_actions(sim.workflow, sim.steps, sim.ctx)
    assert isinstance(info.value, WorkflowError)
    assert str(info.value) == "step 'top': opt_containerImage must be a string, got a list of 2 items"

    import pandajedi_wf.workflow.taskparams as taskparams

    def broken(spec, ctx):
        raise KeyError("jobParameters")

    monkeypatch.setattr(taskparams, "build_task_params", broken)
    with pytest.raises(StepDefinitionError, match=r"step 'top' \(001\) cannot be made into a JEDI task: KeyError: 'jobParameters'"):
        next_actions(cwl("chain.cwl"), {}, sim.ctx)


FULL_WALK_CASES = {  # example -> workflow inputs
    "chain.cwl": {}, "branches.cwl": {}, "fan_in.cwl": {}, "athena.cwl": {}, "ci.cwl": {},
    "sweep.cwl": {"sample": "sig"}, "iterate.cwl": {}, "iterate_each.cwl": {"datasets": ["s0", "s1"]},
    "scatter_overlay.cwl": {"signals": ["sA", "sB"], "backgrounds": ["bA", "bB"]},
}


@pytest.mark.parametrize("name", sorted(FULL_WALK_CASES))
@pytest.mark.parametrize("no_wait_parent", [True, False])
def test_steps_passed_while_their_one_parent_runs_get_the_decisions_of_the_full_walk(name, no_wait_parent):
    """The walk passes a defined step whose readiness is its one parent's outcome while that parent has none
    (``_Index.waits_on``) without deciding it: over random JEDI progress and outcomes (loops' junctions asking for two
    iterations), every pass's actions are those of the walk that decides every such step."""
    import dataclasses
    import random

    from pandajedi_wf.workflow import engine

    for seed in range(12):
        rng = random.Random(seed)
        sim = Simulation(cwl(name, FULL_WALK_CASES[name]))
        sim.ctx.no_wait_parent = no_wait_parent
        full = cwl(name, FULL_WALK_CASES[name])  # the same definition, its index without the shortcut
        index = engine._Index.of(full)
        full.__dict__["_engine_index"] = dataclasses.replace(index, waits_on={}, waits_on_no_early={})
        for _ in range(80):
            fast = next_actions(sim.workflow, sim.steps, sim.ctx)
            assert fast == next_actions(full, sim.steps, sim.ctx), (name, seed)
            sim.apply(fast)
            if sim.status in ("done", "finished", "failed", "cancelled"):
                break
            for key, record in sim.steps.items():  # JEDI moves some tasks, not all, each pass
                if record.status == "submitting":
                    sim.set(key, "submitted")
                elif record.status == "submitted" and rng.random() < 0.5:
                    sim.set(key, "running")
                elif record.status == "running" and rng.random() < 0.4:
                    sim.set(key, rng.choices(["done", "failed", "finished"], [8, 1, 1])[0])
                    if sim.names[key] == "decide":
                        record.results = {"to_continue": record.iteration < 2}
        else:
            raise AssertionError(f"{name} seed {seed} did not end")
