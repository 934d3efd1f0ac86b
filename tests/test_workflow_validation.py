"""Bad descriptions give precise problems (file, step, what); caps keep huge ones cheap."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pandajedi_wf.workflow import Limits, WorkflowError, parse_workflow, validate_workflow
from pandajedi_wf.workflow.conditions import ConditionSyntaxError, evaluate, parse_condition
from pandajedi_wf.workflow.naming import step_name_problem

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "examples" / "pchain"

HEAD = "cwlVersion: v1.0\nclass: Workflow\ninputs: []\noutputs: {}\nsteps:\n"


def step(name, run="prun", inds=None, extra=""):
    text = f"  {name}:\n    run: {run}\n    in:\n      opt_exec: {{default: echo}}\n"
    if inds:
        text += f"      opt_inDS: {inds}\n"
    return text + "    out: [outDS]\n" + extra


def problems(text, language="cwl", **kw):
    result = validate_workflow(language, text, kw.pop("inputs", {}), kw.pop("base", None), **kw)
    assert not result.ok
    return result.problems


def test_valid_example_lists_steps_with_paths():
    result = validate_workflow("cwl", str(EXAMPLES / "loop.cwl"), {}, str(EXAMPLES))
    assert result.ok and result.problems == []
    paths = [(s.path, s.type, s.parents) for s in result.steps]
    assert paths == [
        ("work_start", "prun", []),
        ("work_loop", "workflow", ["work_start"]),
        ("work_loop/inner_work_top", "prun", []),
        ("work_loop/inner_work_bottom", "prun", ["inner_work_top"]),
        ("work_loop/checkpoint", "junction", ["inner_work_top", "inner_work_bottom"]),
        ("work_end", "prun", ["work_loop"]),
    ]
    assert result.steps[1].loop and result.steps[4].file == "loop_body.cwl"


def test_cycle_is_reported_with_its_path():
    text = HEAD + step("a", inds="c/outDS") + step("b", inds="a/outDS") + step("c", inds="b/outDS")
    [p] = problems(text)
    assert p.code == "cycle" and "a -> c -> b -> a" in p.message and p.file == "<text>"


def test_unknown_type_dangling_reference_and_bad_output_all_reported():
    text = HEAD + step("a", run="pmagic") + step("b", inds="nowhere/outDS") + step("c", inds="b/other") + step("d", inds="missing_input")
    found = {(p.step, p.code) for p in problems(text)}
    assert found == {("a", "unknown_type"), ("b", "dangling"), ("c", "dangling"), ("d", "dangling")}
    msgs = " | ".join(str(p) for p in problems(text))
    assert "unknown step 'nowhere'" in msgs and "output 'other'" in msgs and "'missing_input'" in msgs


def test_broken_yaml_names_line():
    [p] = problems(HEAD + "  a:\n    run: prun\n   in: [\n")
    assert p.code == "syntax" and "line" in p.message


def test_duplicate_step_names_are_refused_not_overwritten():
    [p] = problems(HEAD + step("a") + step("a"))
    assert p.code == "syntax" and "duplicate key 'a'" in p.message


@pytest.mark.parametrize("name,fragment", [
    ("it's", "\"'\""), ('say"hi"', "'\"'"), ("créer", "'é'"), ("a b", "' '"), ("a.b", "'.'"), ("-lead", "start with"), ("x" * 65, "65 characters"),
])
def test_illegal_step_names(name, fragment):
    assert fragment in step_name_problem(name)
    text = HEAD + f"  {name!r}:\n    run: prun\n    in: {{}}\n    out: [outDS]\n".replace(f"{name!r}", '"' + name.replace('"', '\\"') + '"')
    [p] = problems(text)
    assert p.code == "bad_name" and p.step == name


def test_legal_step_names():
    for name in ("top", "Step_2", "a-b", "9lives"):
        assert step_name_problem(name) is None


def test_condition_errors():
    bad_syntax = HEAD + step("a") + step("b", inds="a/outDS", extra="    when: $(self.opt_inDS &&)\n")
    [p] = problems(bad_syntax)
    assert p.code == "bad_condition" and p.step == "b"
    unknown = HEAD + step("a") + step("b", inds="a/outDS", extra="    when: $(self.nothing)\n")
    [p] = problems(unknown)
    assert "self.nothing" in p.message


def test_condition_grammar_and_three_valued_evaluation():
    c = parse_condition("$(!(self.a && self.b[1]) || !self.c)")
    assert str(c) == "(!((self.a && self.b[1])) || !self.c)"
    for leaf, pid in zip(c.leaves(), (1, 2, 3)):
        leaf.parents = [pid]
    assert evaluate(c, {1: "succeeded", 2: "succeeded", 3: None}.get) is None
    assert evaluate(c, {1: "succeeded", 2: "failed", 3: None}.get) is True
    assert evaluate(c, {1: "succeeded", 2: "succeeded", 3: "succeeded"}.get) is False
    assert evaluate(c, {1: "succeeded", 2: "succeeded", 3: "failed"}.get) is True
    with pytest.raises(ConditionSyntaxError):
        parse_condition("self.a self.b")


def test_loop_without_junction_and_loop_on_leaf():
    (EXAMPLES / "loop_body.cwl").read_text()
    text = "steps:\n  l:\n    type: workflow\n    loop: true\n    steps:\n      w: {type: prun, exec: echo}\n  p: {type: prun, loop: true, exec: echo}\n"
    found = {(p.step, p.code) for p in problems(text, "yaml")}
    assert found == {("l", "bad_loop"), ("p", "bad_loop")}


def test_missing_workflow_input_value():
    [p] = problems(str(EXAMPLES / "merge_many.cwl"), inputs={"signals": ["s"]}, base=str(EXAMPLES))
    assert p.code == "missing_input" and "'backgrounds'" in p.message and p.file == "merge_many.cwl"


def test_sub_workflow_errors_name_the_sub_file(tmp_path):
    (tmp_path / "body.cwl").write_text(HEAD + step("inner", inds="ghost/outDS"))
    (tmp_path / "main.cwl").write_text(HEAD + step("outer", run="body.cwl").replace("opt_exec: {default: echo}", "x: {default: 1}"))
    found = [(p.file, p.step, p.code) for p in problems(str(tmp_path / "main.cwl"), base=str(tmp_path))]
    assert ("body.cwl", "inner", "dangling") in found and ("main.cwl", "outer", "dangling") in found


def test_self_including_sub_workflow_and_sandbox_escape(tmp_path):
    (tmp_path / "me.cwl").write_text(HEAD + step("again", run="me.cwl"))
    [p] = problems(str(tmp_path / "me.cwl"), base=str(tmp_path))
    assert p.code == "cycle" and "includes itself" in p.message
    (tmp_path / "out.cwl").write_text(HEAD + step("esc", run="../../etc/x.cwl"))
    [p] = problems(str(tmp_path / "out.cwl"), base=str(tmp_path))
    assert p.code == "outside_sandbox"


def test_snakefile_code_is_never_executed(tmp_path):
    (tmp_path / "Snakefile").write_text('import os\nrule all:\n    input: "x"\n')
    [p] = problems(str(tmp_path / "Snakefile"), "snakemake", base=str(tmp_path))
    assert "unsupported statement 'import os'" in p.message
    (tmp_path / "Snakefile").write_text('rule all:\n    input: "x"\nrule a:\n    params:\n        opt_exec=__import__("os").system("touch pwned")\n    output: "x"\n    shell: "prun"\n')
    [p] = problems(str(tmp_path / "Snakefile"), "snakemake", base=str(tmp_path))
    assert p.step == "a" and "can be called" in p.message
    assert not (tmp_path / "pwned").exists()


def test_unknown_language_and_unknown_step_input():
    assert problems("x", "bpmn")[0].code == "unknown_language"
    [p] = problems(HEAD + "  a:\n    run: prun\n    in:\n      opt_bogus: {default: 1}\n    out: [outDS]\n")
    assert p.code == "unknown_input" and "opt_bogus" in p.message


def test_hundred_thousand_steps_rejected_fast():
    body = "".join(f"  s{i}:\n    run: prun\n    in: {{opt_exec: {{default: echo}}}}\n    out: [outDS]\n" for i in range(100_000))
    text = HEAD + body
    start = time.perf_counter()
    [p] = problems(text)
    assert p.code == "too_large" and "bytes" in p.message
    # a raised byte cap still stops at the step cap, while reading
    compact = HEAD.replace("steps:\n", "steps: {") + ", ".join(f"s{i}: {{run: prun}}" for i in range(100_000)) + "}\n"
    [p] = problems(compact, limits=Limits(max_bytes=50_000_000, max_steps=2_000))
    assert p.code == "too_large" and "more than 2000 steps" in p.message
    assert time.perf_counter() - start < 20  # generous bound against minutes, not a speed target


def test_step_cap_counts_sub_workflows(tmp_path):
    (tmp_path / "body.cwl").write_text(HEAD + step("a") + step("b"))
    (tmp_path / "main.cwl").write_text(HEAD + "".join(step(f"w{i}", run="body.cwl").replace("opt_exec: {default: echo}", "") for i in range(3)))
    [p] = problems(str(tmp_path / "main.cwl"), base=str(tmp_path), limits=Limits(max_steps=8))
    assert p.code == "too_large"
    assert validate_workflow("cwl", str(tmp_path / "main.cwl"), {}, str(tmp_path), Limits(max_steps=9)).ok


def test_parse_workflow_raises_with_all_problems():
    with pytest.raises(WorkflowError) as info:
        parse_workflow("cwl", HEAD + step("a", run="x") + step("b", run="y"), {}, None)
    assert [p.step for p in info.value.problems] == ["a", "b"]
