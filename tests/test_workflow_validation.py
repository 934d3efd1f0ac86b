"""Bad descriptions give precise problems (file, step, what); caps keep huge ones cheap."""

from __future__ import annotations


import pytest

from example_paths import EXAMPLES
from pandajedi_wf.workflow import Limits, WorkflowError, parse_workflow, validate_workflow
from pandajedi_wf.workflow.conditions import ConditionSyntaxError, evaluate, parse_condition
from pandajedi_wf.workflow.naming import step_name_problem
from cpu_bound import cpu_at_most

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
    result = validate_workflow("cwl", str(EXAMPLES / "iterate.cwl"), {}, str(EXAMPLES))
    assert result.ok and result.problems == []
    paths = [(s.path, s.type, s.parents) for s in result.steps]
    assert paths == [
        ("start", "prun", []),
        ("refine", "workflow", ["start"]),
        ("refine/fit", "prun", []),
        ("refine/validate", "prun", ["fit"]),
        ("refine/decide", "junction", ["fit", "validate"]),
        ("publish", "prun", ["refine"]),
    ]
    assert result.steps[1].loop and result.steps[4].file == "iterate_body.cwl"


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
    text = "steps:\n  l:\n    type: workflow\n    loop: true\n    steps:\n      w: {type: prun, exec: echo}\n  p: {type: prun, loop: true, exec: echo}\n"
    found = {(p.step, p.code) for p in problems(text, "yaml")}
    assert found == {("l", "bad_loop"), ("p", "bad_loop")}


def test_missing_workflow_input_value():
    [p] = problems(str(EXAMPLES / "scatter_overlay.cwl"), inputs={"signals": ["s"]}, base=str(EXAMPLES))
    assert p.code == "missing_input" and "'backgrounds'" in p.message and p.file == "scatter_overlay.cwl"


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
    with cpu_at_most(20, "100,000 steps refused"):  # generous bound against minutes, not a speed target
        [p] = problems(text)
        assert p.code == "too_large" and "bytes" in p.message
        # a raised byte cap still stops at the step cap, while reading
        compact = HEAD.replace("steps:\n", "steps: {") + ", ".join(f"s{i}: {{run: prun}}" for i in range(100_000)) + "}\n"
        [p] = problems(compact, limits=Limits(max_bytes=50_000_000, max_steps=2_000))
        assert p.code == "too_large" and "more than 2000 steps" in p.message


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


# ---- issue 11: hostile or mistaken descriptions get a precise problem, never a traceback ----------------------

BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")
)  # 9^9 = 387 million strings from 1 KB


def fast_problems(text, language="yaml", seconds=1.0, **kw):
    with cpu_at_most(seconds, "refused while reading"):
        found = problems(text, language, **kw)
    assert all(len(str(p)) < 1500 for p in found)  # a reason a person can read, not the input echoed back
    return found


@pytest.mark.parametrize("where", ["inputs: {big: *i}\n", "name: *i\n", "options: {x: *i}\n"])
def test_yaml_bomb_is_refused_while_reading(where):
    [p] = fast_problems(BOMB + where + "steps:\n  x: {exec: echo}\n")
    assert p.code == "too_large" and "aliases" in p.message and "line 6" in p.message


def test_yaml_bomb_in_cwl_and_in_a_sub_workflow_file(tmp_path):
    [p] = fast_problems(BOMB + HEAD.replace("inputs: []\n", "inputs: {x: {default: *i}}\n") + step("a"), "cwl")
    assert p.code == "too_large"
    (tmp_path / "body.cwl").write_text(BOMB + HEAD + step("inner"))
    (tmp_path / "main.cwl").write_text(HEAD + step("outer", run="body.cwl").replace("opt_exec: {default: echo}", "x: {default: 1}"))
    [p] = fast_problems(str(tmp_path / "main.cwl"), "cwl", base=str(tmp_path))
    assert p.code == "too_large" and p.file == "body.cwl"


def test_yaml_bomb_in_snakemake_config_and_in_the_input_values_file(tmp_path):
    from pandajedi_wf.workflow import read_values_file

    (tmp_path / "config.yaml").write_text(BOMB + "output: out\n")
    (tmp_path / "Snakefile").write_text('configfile: "config.yaml"\nrule all:\n    input: config["output"]\nrule a:\n    params:\n        opt_exec="echo"\n    output: config["output"]\n    shell: "prun"\n')
    [p] = fast_problems(str(tmp_path / "Snakefile"), "snakemake", base=str(tmp_path))
    assert p.code == "too_large" and p.file == "config.yaml"
    (tmp_path / "inputs.yaml").write_text(BOMB)
    with cpu_at_most(1, "alias bomb in the input values"), pytest.raises(WorkflowError, match="aliases") as info:
        read_values_file(str(tmp_path / "inputs.yaml"))
    assert info.value.problems[0].file == "inputs.yaml"


def test_config_values_repeated_by_a_snakefile_count_against_the_size_limit(tmp_path):
    """No alias at all: the Snakefile itself repeats a 400 KB config value 20 times."""
    (tmp_path / "config.json").write_text('{"big": "' + "x" * 400_000 + '", "output": "out"}')
    params = ", ".join(['config["big"]'] * 20)
    (tmp_path / "Snakefile").write_text(f'configfile: "config.json"\nrule all:\n    params:\n        huge=[{params}]\n    input: config["output"]\n'
                                        'rule a:\n    params:\n        opt_exec="echo"\n    output: config["output"]\n    shell: "prun"\n')
    [p] = fast_problems(str(tmp_path / "Snakefile"), "snakemake", base=str(tmp_path))
    assert p.code == "too_large" and "config values used by the Snakefile" in p.message


@pytest.mark.parametrize("text,fragment", [
    ("a: &a [*a]\n", "inside the value it names"),
    ("a: !!binary aGVsbG8=\n", "YAML tag 'tag:yaml.org,2002:binary'"),
    ("a: !!set {x: null}\n", "YAML tag 'tag:yaml.org,2002:set'"),
    ("a: .nan\n", "not a number that can be stored"),
    ("a: &x {b: 1}\nc:\n  <<: *x\n", "merge keys"),
    ("a: " + "[" * 70 + "]" * 70 + "\n", "nested deeper than 64"),
    ("a: " + "9" * 5000 + "\n", "cannot be read"),
])
def test_yaml_that_cannot_be_stored_as_json_is_refused(text, fragment):
    [p] = fast_problems(text + "steps:\n  x: {exec: echo}\n")
    assert fragment in p.message and "line 1" in p.message or fragment in p.message


def test_date_looking_values_stay_strings():
    result = validate_workflow("yaml", "inputs: {day: 2024-01-31}\nsteps:\n  x: {exec: echo}\n")
    assert result.ok and result.workflow.inputs == {"day": "2024-01-31"}


@pytest.mark.parametrize("text,language", [
    (HEAD + " {}\n", "cwl"),
    (HEAD, "cwl"),
    (HEAD.replace("steps:\n", "steps: []\n"), "cwl"),
    ("steps:\n  sub:\n    type: workflow\n    steps: {}\n", "yaml"),
])
def test_empty_workflow_is_refused(text, language):
    found = fast_problems(text, language)
    assert any(p.code in ("empty", "syntax") and ("no steps" in p.message or "non-empty" in p.message) for p in found)


def test_snakefile_with_only_rule_all_is_refused(tmp_path):
    (tmp_path / "Snakefile").write_text('rule all:\n    input: "x"\n')
    [p] = problems(str(tmp_path / "Snakefile"), "snakemake", base=str(tmp_path))
    assert p.code == "empty" and p.message.startswith("workflow has no steps")


def test_scatter_wider_than_the_cap_is_refused_at_submission():
    merge_many = str(EXAMPLES / "scatter_overlay.cwl")
    values = {"signals": [f"s{i}" for i in range(3)], "backgrounds": [f"b{i}" for i in range(3)]}
    [p] = problems(merge_many, "cwl", inputs=values, base=str(EXAMPLES), limits=Limits(max_scatter=2))
    assert p.code == "too_large" and p.step == "overlay_each" and "makes 3 copies of the step; the limit is 2" in p.message
    assert validate_workflow("cwl", merge_many, values, str(EXAMPLES), Limits(max_scatter=3)).ok
    # a loop's first iteration is known at submission too (later ones only at run time: the engine reports them)
    [p] = problems(str(EXAMPLES / "sweep.cwl"), "cwl", inputs={"sample": "s"}, base=str(EXAMPLES), limits=Limits(max_scatter=1))
    assert p.step == "points" and "makes 2 copies" in p.message


@pytest.mark.parametrize("outputs", ["[a/outDS, b]", "3", "true", "{out: {from: [1]}}", "{out: 5}"])
def test_native_outputs_of_the_wrong_type(outputs):
    [p] = fast_problems(f"outputs: {outputs}\nsteps:\n  a: {{exec: echo}}\n")
    assert p.code == "syntax" and "output" in p.message and p.file == "<text>"


@pytest.mark.parametrize("scatter,fragment", [("3", "got a number (3)"), ("[{a: 1}]", "got a map of 1 key"), ("[[x]]", "got a list of 1 item"), ("''", "got a string")])
def test_cwl_scatter_of_the_wrong_type(scatter, fragment):
    text = HEAD.replace("inputs: []", "inputs: {xs: {default: [d1, d2]}}") + step("a", inds="xs", extra=f"    scatter: {scatter}\n")
    [p] = fast_problems(text, "cwl")
    assert p.step == "a" and p.code == "bad_scatter" and fragment in p.message


SNAKE_BODY = 'rule all:\n    input: "out"\nrule a:\n    params:\n        opt_exec="echo"\n    output: "out"\n    shell: "prun"\n'


@pytest.mark.parametrize("line", ["configfile: config.json", 'configfile: open("config.json")', "configfile: 42", "configfile:"])
def test_snakemake_configfile_must_be_a_quoted_name(tmp_path, line):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "Snakefile").write_text(line + "\n" + SNAKE_BODY)
    [p] = fast_problems(str(tmp_path / "Snakefile"), "snakemake", base=str(tmp_path))
    assert p.code == "syntax" and "line 1: configfile: takes a quoted file name" in p.message and p.file == "Snakefile"


@pytest.mark.parametrize("name,content,fragment", [
    ("config.json", "{oops", "broken JSON at line 1, column 2"),
    ("config.json", "[1, 2]", "must hold a map of names to values, got a list of 2 items"),
    ("config.json", '"just text"', "got a string ('just text')"),
    ("config.json", '{"x": NaN}', "NaN is not a number that can be stored"),
    ("config.yaml", "- a\n- b\n", "got a list of 2 items"),
    ("config.yaml", "a: [\n", "broken YAML"),
])
def test_snakemake_config_that_is_not_a_map(tmp_path, name, content, fragment):
    (tmp_path / name).write_text(content)
    (tmp_path / "Snakefile").write_text(f'configfile: "{name}"\n' + SNAKE_BODY)
    [p] = fast_problems(str(tmp_path / "Snakefile"), "snakemake", base=str(tmp_path))
    assert fragment in p.message and p.file == name


@pytest.mark.parametrize("section", ['when: ', "scatter: ", "loop: 1", 'shell: ["prun", "x"]', 'params:\n        opt_exec=1 + "a"',
                                     'params:\n        opt_exec=param_of()', 'params:\n        opt_exec=f"{config!r:>999999999}"',
                                     'params:\n        **config', "params:\n        opt_exec=b'x'"])
def test_snakemake_sections_of_the_wrong_shape(tmp_path, section):
    (tmp_path / "Snakefile").write_text(f'rule all:\n    input: "out"\nrule a:\n    {section}\n    output: "out"\n    shell: "prun"\n'.replace('    shell: "prun"\n', "") if section.startswith("shell") else
                                        f'rule all:\n    input: "out"\nrule a:\n    {section}\n    output: "out"\n    shell: "prun"\n')
    [p] = fast_problems(str(tmp_path / "Snakefile"), "snakemake", base=str(tmp_path))
    assert p.step == "a" and p.code in ("syntax", "bad_scatter")


@pytest.mark.parametrize("fields,fragment", [
    ("exec: {x: 1}", "opt_exec must be a string, got a map of 1 key"),
    ("args: [1, 2]", "opt_args must be a string, got a list of 2 items"),
    ("args: 5", "opt_args must be a string, got a number (5)"),
    ("containerImage: [a, b]", "opt_containerImage must be a string, got a list of 2 items"),
    ("inDS: 3", "opt_inDS must be a dataset name or a list of dataset names, got a number (3)"),
    ("inDS: {a: 1}", "got a map of 1 key"),
    ("inDS: [ds1, 7]", "got a list holding a number (7)"),
    ("exec: echo, inDsType: 5", "opt_inDsType must be a file type or a list of file types"),
    ("useAthenaPackages: 'yes'", "opt_useAthenaPackages must be true or false, got a string ('yes')"),
    ("loop: 'no'", "'loop' must be true or false"),
    ("type: [prun]", "step type must be a string, got a list of 1 item"),
])
def test_native_fields_of_the_wrong_type(fields, fragment):
    found = fast_problems(f"steps:\n  a: {{{fields}}}\n")
    assert any(fragment in p.message and p.step == "a" for p in found), found


def test_wrong_types_in_cwl_snakemake_and_from_input_values(tmp_path):
    [p] = problems(HEAD + "  a:\n    run: prun\n    in:\n      opt_args: {default: [--x]}\n    out: [outDS]\n")
    assert p.step == "a" and p.code == "bad_value" and "opt_args must be a string" in p.message
    (tmp_path / "Snakefile").write_text('rule all:\n    input: "out"\nrule a:\n    params:\n        opt_containerImage=["a", "b"]\n    output: "out"\n    shell: "prun"\n')
    [p] = problems(str(tmp_path / "Snakefile"), "snakemake", base=str(tmp_path))
    assert p.step == "a" and "opt_containerImage must be a string, got a list of 2 items" in p.message
    # a value the user sends in the input file, followed through a sub-workflow binding and a scatter
    [p] = problems(str(EXAMPLES / "scatter_overlay.cwl"), "cwl", inputs={"signals": [{"x": 1}], "backgrounds": ["b"]}, base=str(EXAMPLES))
    assert p.step == "simulate" and p.file == "overlay.cwl" and "got a map of 1 key (value of input 'signal')" in p.message
    # a step's output only feeds dataset parameters
    [p] = problems(HEAD + step("a") + "  b:\n    run: prun\n    in:\n      opt_exec: a/outDS\n    out: [outDS]\n")
    assert p.step == "b" and "opt_exec cannot take the output of a step" in p.message


def test_gitlab_project_id_and_python_level_junk():
    text = (EXAMPLES / "ci.cwl").read_text()
    assert validate_workflow("cwl", text).ok
    [p] = problems(text.replace("default: 4242", "default: [1]"))
    assert p.step == "pipeline" and "opt_projectID must be a whole number" in p.message
    [p] = problems(HEAD + step("a"), limits=Limits(), inputs=[1, 2])
    assert "input values must be a map" in p.message
    [p] = problems(12345)
    assert "must be text or a file path, got a number" in p.message


def test_spec_file_outside_the_sandbox_is_not_read(tmp_path):
    (tmp_path / "box").mkdir()
    (tmp_path / "secret.cwl").write_text(HEAD + step("a"))
    for spec in (str(tmp_path / "secret.cwl"), "../secret.cwl"):
        [p] = problems(spec, "cwl", base=str(tmp_path / "box"))
        assert p.code == "outside_sandbox"


def test_an_unexpected_exception_becomes_a_problem_naming_it(monkeypatch):
    import pandajedi_wf.workflow.parse as parse_module

    def broken(raw):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(parse_module, "build_workflow", broken)
    [p] = problems(HEAD + step("a"))
    assert p.code == "internal" and "ZeroDivisionError: division by zero" in p.message


def test_definition_given_directly_gets_the_same_checks():
    from pandajedi_wf.workflow import validate_definition

    good = parse_workflow("cwl", HEAD + step("a"), {}, None).to_dict()
    assert validate_definition(good).ok
    bad = json_copy(good)
    bad["nodes"][0]["inputs"].append({"name": "opt_containerImage", "default": ["a", "b"]})
    [p] = validate_definition(bad).problems
    assert p.step == "a" and "opt_containerImage must be a string" in p.message
    [p] = validate_definition({"nodes": "not a list"}).problems
    assert p.code == "syntax" and "not a workflow definition (KeyError" in p.message
    [p] = validate_definition({"name": "x", "language": "yaml", "nodes": []}).problems
    assert p.code == "empty"


def json_copy(value):
    import json

    return json.loads(json.dumps(value))


def test_huge_condition_and_huge_step_name_give_short_messages():
    text = HEAD + step("a") + step("b", inds="a/outDS", extra="    when: $(" + "(" * 200 + "self.opt_inDS" + ")" * 200 + ")\n")
    [p] = fast_problems(text, "cwl")
    assert p.code == "bad_condition" and "more than 50 deep" in p.message
    text = HEAD + step("a") + step("b", inds="a/outDS", extra="    when: $(self.opt_inDS[" + "9" * 5000 + "])\n")
    [p] = fast_problems(text, "cwl")
    assert p.code == "bad_condition"
    [p] = fast_problems(HEAD + "  ? " + "x" * 300_000 + "\n  : {run: prun, out: [outDS]}\n", "cwl")  # (explicit key: YAML caps plain ones)
    assert p.code == "bad_name" and "300000 characters" in p.message and len(p.step) < 150


def test_snakemake_sections_are_bounded_and_unused_ones_still_checked(tmp_path):
    (tmp_path / "Snakefile").write_text('rule all:\n    params:\n        x=[' + "1," * 20_000 + '1]\n    input: "out"\n' + SNAKE_BODY.split("\n", 2)[2])
    [p] = fast_problems(str(tmp_path / "Snakefile"), "snakemake", base=str(tmp_path))
    assert p.code == "too_large" and "characters of code outside strings" in p.message
    long_string = 'rule all:\n    input: "out"\nrule a:\n    params:\n        opt_exec="echo", opt_args="' + "a" * 500_000 + '"\n    output: "out"\n    shell: "prun"\n'
    (tmp_path / "Snakefile").write_text(long_string)
    assert validate_workflow("snakemake", str(tmp_path / "Snakefile"), {}, str(tmp_path)).ok  # a long string is not code
    for section in ('threads: 10**10', 'message: __import__("os").getcwd()', "resources: mem=lambda w: open('/etc/passwd').read()"):
        (tmp_path / "Snakefile").write_text(SNAKE_BODY.replace('    shell: "prun"\n', f'    shell: "prun"\n    {section}\n'))
        [p] = fast_problems(str(tmp_path / "Snakefile"), "snakemake", base=str(tmp_path))
        assert p.step == "a" and section.split(":")[0] in p.message
    (tmp_path / "Snakefile").write_text(SNAKE_BODY.replace('    shell: "prun"\n', '    shell: "prun"\n    threads: 4\n    log: "a.log"\n'))
    assert validate_workflow("snakemake", str(tmp_path / "Snakefile"), {}, str(tmp_path)).ok


def test_condition_size_caps():
    for when, fragment in (("self.opt_inDS || " * 300 + "self.opt_inDS", "301 terms"), ("self.opt_inDS" + " " * 20_000, "characters long")):
        [p] = fast_problems(HEAD + step("a") + step("b", inds="a/outDS", extra=f"    when: $({when})\n"), "cwl")
        assert p.code == "bad_condition" and fragment in p.message


def test_secondary_datasets_in_arguments_are_checked_at_intake():
    [p] = problems("steps:\n  a: {exec: echo, args: '--secondaryDSs bad'}\n", "yaml")
    assert p.step == "a" and p.code == "bad_value" and "bad --secondaryDSs entry 'bad'" in p.message
    [p] = problems("steps:\n  a: {exec: echo, args: '--secondaryDSs IN2:1:x,IN2:2:y'}\n", "yaml")
    assert "uses stream 'IN2' twice" in p.message
    assert validate_workflow("yaml", "steps:\n  a: {exec: echo, args: '--secondaryDSs IN2:3:ds,IN3:1:d2'}\n").ok
    assert validate_workflow("yaml", "steps:\n  a: {exec: echo, args: '--secondaryDSs IN2:3:%{SECDS1}'}\n").ok  # filled in later


def test_scatters_and_sub_workflows_together_are_capped():
    text = ("inputs: {xs: [" + ", ".join(f"x{i}" for i in range(200)) + "]}\nsteps:\n  outer:\n    type: workflow\n    scatter_inputs: {x: xs}\n"
            "    inputs: {x: null, ys: [" + ", ".join(f"y{i}" for i in range(200)) + "]}\n    steps:\n      inner:\n        type: workflow\n"
            "        scatter_inputs: {y: ys}\n        inputs: {y: null}\n        steps:\n          w: {exec: echo}\n")
    [p] = fast_problems(text)
    assert p.code == "too_large" and "more than 20000 step copies" in p.message
    assert validate_workflow("yaml", text, limits=Limits(max_instances=100_000)).ok


def test_input_values_file_must_stay_in_the_sandbox(tmp_path):
    from pandajedi_wf.workflow import read_values_file

    (tmp_path / "box").mkdir()
    (tmp_path / "secret.yaml").write_text("x: 1\n")
    (tmp_path / "box" / "in.yaml").write_text("x: 1\n")
    assert read_values_file(str(tmp_path / "box" / "in.yaml"), base_dir=str(tmp_path / "box")) == {"x": 1}
    for path in (tmp_path / "box" / ".." / "secret.yaml", tmp_path / "secret.yaml"):
        with pytest.raises(WorkflowError, match="outside the workflow directory"):
            read_values_file(str(path), base_dir=str(tmp_path / "box"))
    with pytest.raises(WorkflowError, match="must be a map of input name to value, got a list"):
        (tmp_path / "box" / "list.yaml").write_text("- 1\n")
        read_values_file(str(tmp_path / "box" / "list.yaml"), base_dir=str(tmp_path / "box"))
