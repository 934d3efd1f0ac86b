"""Our example workflows (tests/examples/) parse into their intended DAG (steps, edges, conditions, loops, scatter),
the same in CWL, Snakemake and native YAML; so does every documented pchain example, when those are here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from example_paths import DOCS_EXAMPLES, needs_docs_examples
from example_paths import EXAMPLES as OWN
from pandajedi_wf.workflow import Workflow, parse_workflow

OWN_SNAKE = OWN / "snakemake"
OWN_NATIVE = OWN / "native"
EXAMPLES = DOCS_EXAMPLES
SNAKE = EXAMPLES / "snakemake"
NATIVE = EXAMPLES / "native_wfd"


def shape(wf: Workflow, prefix: str = "") -> dict:
    """name path -> (id, type, parent names, condition, loop, scatter) for every node."""
    names = {n.id: n.name for n in wf.nodes}
    out = {}
    for n in wf.nodes:
        out[prefix + n.name] = (n.id, n.type, sorted(names[p] for p in n.parents), str(n.condition) if n.condition else None, n.loop, n.scatter)
        if n.sub_workflow:
            out.update(shape(n.sub_workflow, f"{prefix}{n.name}/"))
    return out


def parse(language, path, inputs=None, base=OWN):
    wf = parse_workflow(language, str(path), inputs or {}, str(base))
    again = Workflow.from_dict(json.loads(json.dumps(wf.to_dict())))
    assert again == wf  # JSON round trip keeps everything
    return wf


SIG_BG = {
    "make_signal": (1, "prun", [], None, False, []),
    "make_background_1": (2, "prun", [], None, False, []),
    "premix": (3, "prun", ["make_background_1", "make_signal"], None, False, []),
    "generate_some": (4, "prun", [], None, False, []),
    "make_background_2": (5, "prun", ["generate_some"], None, False, []),
    "combine": (6, "prun", ["make_background_2", "make_signal", "premix"], None, False, []),
}


def nested(prefix, table, shift=0):
    return {f"{prefix}/{k}": (v[0] + shift,) + v[1:] for k, v in table.items()}


CHAIN = {"top": (1, "prun", [], None, False, []), "bottom": (2, "prun", ["top"], None, False, [])}
ATHENA = {"first": (1, "prun", [], None, False, []), "second": (2, "prun", ["first"], None, False, []), "third": (3, "prun", ["second"], None, False, [])}
COND = {
    "top": (1, "prun", [], None, False, []),
    "bottom_OK": (2, "prun", ["top"], "self.opt_inDS", False, []),
    "bottom_NG": (3, "prun", ["top"], "!self.opt_inDS", False, []),
}
HPO = {
    "pre_proc": (1, "prun", [], None, False, []),
    "main_hpo": (2, "phpo", ["pre_proc"], "self.opt_trainingDS", False, []),
    "post_proc": (3, "prun", ["main_hpo"], "self.opt_inDS", False, []),
}
REANA = {"ain": (1, "prun", [], None, False, []), "twai": (2, "prun", [], None, False, []), "drai": (3, "reana", ["ain", "twai"], None, False, [])}
LOOP_BODY = {
    "inner_work_top": (2, "prun", [], None, False, []),
    "inner_work_bottom": (3, "prun", ["inner_work_top"], None, False, []),
    "checkpoint": (4, "junction", ["inner_work_bottom", "inner_work_top"], None, False, []),
}
LOOP = {
    "work_start": (1, "prun", [], None, False, []),
    "work_loop": (5, "workflow", ["work_start"], None, True, []),
    **nested("work_loop", LOOP_BODY),
    "work_end": (6, "prun", ["work_loop"], None, False, []),
}
MERGE_MANY = {
    "many_sig_bg_comb": (7, "workflow", [], None, False, ["signal", "background"]),
    **nested("many_sig_bg_comb", SIG_BG),
    "merge": (8, "prun", ["many_sig_bg_comb"], None, False, []),
}
MULTI_LOOP = {
    "work_loop": (4, "workflow", [], None, True, ["dataset"]),
    **nested("work_loop", LOOP_BODY, shift=-1),
    "merge": (5, "prun", ["work_loop"], None, False, []),
}
SEQ_LOOP = {
    "seq_loop": (4, "workflow", [], None, True, []),
    "seq_loop/parallel_work": (2, "workflow", [], None, False, ["param_sliced_x", "param_sliced_y"]),
    "seq_loop/parallel_work/core": (1, "prun", [], None, False, []),
    "seq_loop/checkpoint": (3, "junction", ["parallel_work"], None, False, []),
}
SIGNALS = {"signals": ["s1", "s2"], "backgrounds": ["b1", "b2"]}


# ---- our examples ---------------------------------------------------------------------------------------------------

OWN_CHAIN = CHAIN
OWN_BRANCHES = {
    "produce": (1, "prun", [], None, False, []),
    "use_it": (2, "prun", ["produce"], "self.opt_inDS", False, []),
    "fall_back": (3, "prun", ["produce"], "!self.opt_inDS", False, []),
}
OWN_TUNING = {
    "prepare": (1, "prun", [], None, False, []),
    "optimise": (2, "phpo", ["prepare"], "self.opt_trainingDS", False, []),
    "evaluate": (3, "prun", ["optimise"], "self.opt_inDS", False, []),
}
OWN_FAN_IN = {"left": (1, "prun", [], None, False, []), "right": (2, "prun", [], None, False, []), "reinterpret": (3, "reana", ["left", "right"], None, False, [])}
OWN_ATHENA = {"generate": (1, "prun", [], None, False, []), "convert": (2, "prun", ["generate"], None, False, []), "summarise": (3, "prun", ["convert"], None, False, [])}
OWN_OVERLAY = {
    "simulate": (1, "prun", [], None, False, []),
    "pileup_a": (2, "prun", [], None, False, []),
    "digitise": (3, "prun", ["pileup_a", "simulate"], None, False, []),
    "seed_noise": (4, "prun", [], None, False, []),
    "pileup_b": (5, "prun", ["seed_noise"], None, False, []),
    "reconstruct": (6, "prun", ["digitise", "pileup_b", "simulate"], None, False, []),
}
OWN_SCATTER = {
    "overlay_each": (7, "workflow", [], None, False, ["signal", "background"]),
    **nested("overlay_each", OWN_OVERLAY),
    "merge": (8, "prun", ["overlay_each"], None, False, []),
}
OWN_LOOP_BODY = {
    "fit": (2, "prun", [], None, False, []),
    "validate": (3, "prun", ["fit"], None, False, []),
    "decide": (4, "junction", ["fit", "validate"], None, False, []),
}
OWN_LOOP = {
    "start": (1, "prun", [], None, False, []),
    "refine": (5, "workflow", ["start"], None, True, []),
    **nested("refine", OWN_LOOP_BODY),
    "publish": (6, "prun", ["refine"], None, False, []),
}
OWN_LOOPS = {
    "refine_each": (4, "workflow", [], None, True, ["dataset"]),
    **nested("refine_each", OWN_LOOP_BODY, shift=-1),
    "merge": (5, "prun", ["refine_each"], None, False, []),
}
OWN_SWEEP = {
    "sweep": (4, "workflow", [], None, True, []),
    "sweep/points": (2, "workflow", [], None, False, ["param_sliced_w", "param_sliced_d"]),
    "sweep/points/point": (1, "prun", [], None, False, []),
    "sweep/decide": (3, "junction", ["points"], None, False, []),
}
OWN_FORK = {
    "first": (1, "prun", [], None, False, []),
    "long1": (2, "prun", ["first"], None, False, []),
    "long2": (3, "prun", ["long1"], None, False, []),
    "long3": (4, "prun", ["long2"], None, False, []),
    "short": (5, "prun", ["first"], None, False, []),
    "join": (6, "prun", ["long3", "short"], None, False, []),
}
OWN_CASES = {  # name -> (expected shape, input values); the same workflow in every language it is written in
    "chain": (OWN_CHAIN, {}),
    "branches": (OWN_BRANCHES, {}),
    "tuning": (OWN_TUNING, {}),
    "fan_in": (OWN_FAN_IN, {}),
    "athena": (OWN_ATHENA, {}),
    "overlay": (OWN_OVERLAY, {"signal": "s", "background": "b"}),
    "scatter_overlay": (OWN_SCATTER, SIGNALS),
    "iterate": (OWN_LOOP, {}),
    "iterate_each": (OWN_LOOPS, {"datasets": ["d1", "d2"]}),
    "sweep": (OWN_SWEEP, {"sample": "s"}),
    "fork": (OWN_FORK, {}),
}


def _own_files():
    for name, (expected, inputs) in OWN_CASES.items():
        for language, path, base in (("cwl", OWN / f"{name}.cwl", OWN), ("snakemake", OWN_SNAKE / name / "Snakefile", OWN_SNAKE),
                                     ("yaml", OWN_NATIVE / f"{name}.yaml", OWN_NATIVE)):
            if path.exists():
                yield pytest.param(language, path, base, inputs if language != "yaml" else {}, expected, id=f"{language}-{name}")


def test_every_own_example_file_is_checked():
    written = {p for p in OWN.rglob("*") if p.suffix in (".cwl", ".yaml") or p.name == "Snakefile"}
    checked = {case.values[1] for case in _own_files()}
    # sub-workflow bodies are checked through the workflows that run them; nested/merge_chain/ci have their own tests
    bodies = {OWN / n for n in ("iterate_body.cwl", "sweep_body.cwl", "sweep_point.cwl", "ci.cwl")}
    bodies |= {OWN_SNAKE / n / "Snakefile" for n in ("iterate_body", "sweep_body", "sweep_point")}
    bodies |= {OWN_NATIVE / n for n in ("nested.yaml", "merge_chain.yaml")}
    assert written - checked == bodies


@pytest.mark.parametrize("language,path,base,inputs,expected", list(_own_files()))
def test_own_example_dag(language, path, base, inputs, expected):
    assert shape(parse(language, path, inputs, base)) == expected


def test_own_native_sub_workflow_by_reference_and_three_step_chain():
    s = shape(parse("yaml", OWN_NATIVE / "nested.yaml", base=OWN_NATIVE))
    assert s["top"] == (1, "prun", [], None, False, [])
    assert s["overlay"] == (8, "workflow", [], None, False, [])
    assert s["overlay/reconstruct"] == (7, "prun", ["digitise", "pileup_b", "simulate"], None, False, [])
    assert s["bottom"] == (9, "prun", ["overlay", "top"], None, False, [])
    assert shape(parse("yaml", OWN_NATIVE / "merge_chain.yaml", base=OWN_NATIVE)) == {
        "merge_1": (1, "prun", [], None, False, []), "merge_2": (2, "prun", ["merge_1"], None, False, []), "merge_3": (3, "prun", ["merge_2"], None, False, [])}
    assert shape(parse("cwl", OWN / "ci.cwl")) == {"build": (1, "prun", [], None, False, []), "pipeline": (2, "gitlab", ["build"], None, False, [])}


def test_step_details_inputs_outputs_and_templates():
    wf = parse("cwl", OWN / "overlay.cwl", {"signal": "S", "background": "B"})
    reconstruct = wf.node("reconstruct")
    assert reconstruct.inputs["opt_secondaryDSs"].sources == ["digitise/outDS", "pileup_b/outDS"]
    assert reconstruct.inputs["opt_secondaryDSs"].is_list
    assert reconstruct.inputs["opt_secondaryDsTypes"].default == ["digits.root", "cavern.root"]
    assert reconstruct.template_params()["opt_exec"] == "reco.sh %IN %IN2 %IN3 > reco.root"
    assert wf.node("simulate").output_types == ["hits.dat", "truth.zip"]
    assert wf.node("simulate").template_params()["opt_containerImage"] == "docker://alpine:3.20"
    assert reconstruct.is_tail and not wf.node("digitise").is_tail
    junction = parse("cwl", OWN / "iterate.cwl").node("refine").sub_workflow.node("decide")
    assert junction.output_types == ["results.json"]
    assert junction.inputs["opt_inDS"].parents == [2, 3]
    body = parse("cwl", OWN / "iterate.cwl").node("refine").sub_workflow
    assert body.loop_params() == {"param_scale": 10, "param_shift": 0.25}
    generate = parse("snakemake", OWN_SNAKE / "athena" / "Snakefile", base=OWN_SNAKE).node("generate")
    assert generate.template_params()["opt_useAthenaPackages"] is True
    assert generate.template_params()["opt_exec"].startswith("Gen_tf.py --maxEvents=200") and "--randomSeed=%RNDM:100" in generate.template_params()["opt_exec"]


def test_input_values_override_defaults_and_text_specs_parse():
    text = (OWN / "chain.cwl").read_text()
    wf = parse_workflow("cwl", text, {}, str(OWN))
    assert [n.name for n in wf.nodes] == ["top", "bottom"] and wf.source_file == "<text>"
    wf = parse_workflow("cwl", str(OWN / "iterate_body.cwl"), {"dataset": "d", "param_scale": 7}, str(OWN))
    assert wf.inputs["param_scale"] == 7 and wf.inputs["param_shift"] == 0.25
    wf = parse_workflow("yaml", "overlay.yaml", {"signal": "my.ds/"}, str(OWN_NATIVE))  # name inside the sandbox
    assert wf.inputs["signal"] == "my.ds/" and wf.inputs["background"].startswith("mc23_dev.700003")


# ---- the documentation's examples -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "language,path,inputs,expected",
    [
        ("cwl", EXAMPLES / "test.cwl", {}, CHAIN),
        ("cwl", EXAMPLES / "conda.cwl", {}, CHAIN),
        ("cwl", EXAMPLES / "athena.cwl", {}, ATHENA),
        ("cwl", EXAMPLES / "cond.cwl", {}, COND),
        ("cwl", EXAMPLES / "hpo.cwl", {}, HPO),
        ("cwl", EXAMPLES / "reana.cwl", {}, REANA),
        ("cwl", EXAMPLES / "loop.cwl", {}, LOOP),
        ("cwl", EXAMPLES / "merge_many.cwl", SIGNALS, MERGE_MANY),
        ("cwl", EXAMPLES / "multi_loop.cwl", SIGNALS, MULTI_LOOP),
        ("cwl", EXAMPLES / "sequential_loop.cwl", {"signal": "s"}, SEQ_LOOP),
        ("cwl", EXAMPLES / "sig_bg_comb.cwl", {"signal": "s", "background": "b"}, SIG_BG),
        ("cwl", EXAMPLES / "gitlab.cwl", {}, {"un": (1, "prun", [], None, False, []), "deux": (2, "gitlab", ["un"], None, False, [])}),
        ("snakemake", SNAKE / "simple_chain" / "Snakefile", {}, CHAIN),
        ("snakemake", SNAKE / "athena" / "Snakefile", {}, ATHENA),
        ("snakemake", SNAKE / "cond" / "Snakefile", {}, COND),
        ("snakemake", SNAKE / "hpo" / "Snakefile", {}, HPO),
        ("snakemake", SNAKE / "reana" / "Snakefile", {}, REANA),
        ("snakemake", SNAKE / "loop" / "Snakefile", {}, LOOP),
        ("snakemake", SNAKE / "merge_many" / "Snakefile", {}, MERGE_MANY),
        ("snakemake", SNAKE / "multi_loop" / "Snakefile", SIGNALS, MULTI_LOOP),
        ("snakemake", SNAKE / "sequential_loop" / "Snakefile", {"signal": "s"}, SEQ_LOOP),
        ("snakemake", SNAKE / "sig_bg_comb" / "Snakefile", {}, SIG_BG),
    ],
    ids=lambda v: str(v).split("pchain/")[-1] if isinstance(v, Path) else None,
)
@needs_docs_examples
def test_docs_example_dag(language, path, inputs, expected):
    base = SNAKE if language == "snakemake" else EXAMPLES
    assert shape(parse(language, path, inputs, base)) == expected


@needs_docs_examples
def test_docs_evnt_to_deriv_chains_and_ntup_condition():
    wf = parse("cwl", EXAMPLES / "evnt_to_deriv_ntup.cwl", base=EXAMPLES)
    assert shape(wf) == {
        "evnt": (1, "prun", [], None, False, []),
        "simul": (2, "prun", ["evnt"], None, False, []),
        "pile": (3, "prun", ["simul"], None, False, []),
        "deriv": (4, "prun", ["pile"], None, False, []),
        "ntup_pile": (5, "prun", ["pile"], "self.opt_inDS", False, []),
    }
    assert wf.inputs == {"seed": 123}
    assert [n.name for n in parse("cwl", EXAMPLES / "evnt_to_deriv.cwl", base=EXAMPLES).nodes] == ["evnt", "simul", "pile", "deriv"]
    wf = parse_workflow("cwl", str(EXAMPLES / "evnt_to_deriv_ntup.cwl"), {"seed": 7}, str(EXAMPLES))
    assert wf.inputs["seed"] == 7


@needs_docs_examples
def test_docs_prod_recast_scatters_a_whole_sub_workflow_over_seeds():
    wf = parse("cwl", EXAMPLES / "prod_recast.cwl", {"seeds": [1, 2, 3]}, base=EXAMPLES)
    s = shape(wf)
    assert s["prod"] == (6, "workflow", [], None, False, ["seed"])
    assert s["recast"] == (7, "reana", ["prod"], None, False, [])
    assert s["prod/ntup_pile"][3] == "self.opt_inDS"
    assert wf.inputs["seeds"] == [1, 2, 3]


@needs_docs_examples
def test_docs_native_examples():
    assert shape(parse("yaml", NATIVE / "simple_chain.yaml", base=NATIVE)) == CHAIN
    merge = shape(parse("yaml", NATIVE / "multistep_merge_wfd.yaml", base=NATIVE))
    assert merge == {"first": (1, "prun", [], None, False, []), "second": (2, "prun", ["first"], None, False, []), "third": (3, "prun", ["second"], None, False, [])}
    assert shape(parse("yaml", NATIVE / "signal_background_combine_wfd.yaml", base=NATIVE)) == {
        "make_signal": (1, "prun", [], None, False, []),
        "make_background_1": (2, "prun", [], None, False, []),
        "generate_some": (3, "prun", [], None, False, []),
        "premix": (4, "prun", ["make_background_1", "make_signal"], None, False, []),
        "make_background_2": (5, "prun", ["generate_some"], None, False, []),
        "combine": (6, "prun", ["make_background_2", "make_signal", "premix"], None, False, []),
    }
    for name in ("nested_workflow_sig_bg_comb_wfd.yaml", "nested_workflow_inline_sig_bg_comb_wfd.yaml"):
        s = shape(parse("yaml", NATIVE / name, base=NATIVE))
        assert s["top"] == (1, "prun", [], None, False, [])
        assert s["sig_bg_comb"] == (8, "workflow", [], None, False, [])
        assert s["sig_bg_comb/combine"] == (7, "prun", ["make_background_2", "make_signal", "premix"], None, False, [])
        assert s["bottom"] == (9, "prun", ["sig_bg_comb", "top"], None, False, [])
    s = shape(parse("yaml", NATIVE / "scatter_sig_bg_comb_wfd.yaml", base=NATIVE))
    assert s["many_sig_bg_comb"] == (7, "workflow", [], None, False, ["signal", "background"])
    assert s["merge"] == (8, "prun", ["many_sig_bg_comb"], None, False, [])


def test_native_yaml_when_and_loop_extensions():
    text = """
steps:
  top: {type: prun, exec: "echo", args: "--outputs a.txt"}
  ok: {type: prun, inDS: top/outDS, exec: "echo", when: "$(self.opt_inDS)"}
  ng: {type: prun, inDS: top/outDS, exec: "echo", when: "!self.opt_inDS"}
  again:
    type: workflow
    loop: true
    inputs: {param_n: 1}
    steps:
      work: {type: prun, exec: "echo %{n}"}
      check: {type: junction, inDS: work/outDS, exec: "echo"}
"""
    s = shape(parse_workflow("yaml", text, {}, str(OWN_NATIVE)))
    assert s["ok"] == (2, "prun", ["top"], "self.opt_inDS", False, [])
    assert s["ng"] == (3, "prun", ["top"], "!self.opt_inDS", False, [])
    assert s["again"] == (6, "workflow", [], None, True, [])
    assert s["again/check"] == (5, "junction", ["work"], None, False, [])
