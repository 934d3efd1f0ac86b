"""Every documented pchain example parses into its intended DAG (steps, edges, conditions, loops, scatter)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pandajedi_wf.workflow import Workflow, parse_workflow

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "examples" / "pchain"
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


def parse(language, path, inputs=None, base=EXAMPLES):
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
def test_example_dag(language, path, inputs, expected):
    base = SNAKE if language == "snakemake" else EXAMPLES
    assert shape(parse(language, path, inputs, base)) == expected


def test_evnt_to_deriv_chains_and_ntup_condition():
    wf = parse("cwl", EXAMPLES / "evnt_to_deriv_ntup.cwl")
    assert shape(wf) == {
        "evnt": (1, "prun", [], None, False, []),
        "simul": (2, "prun", ["evnt"], None, False, []),
        "pile": (3, "prun", ["simul"], None, False, []),
        "deriv": (4, "prun", ["pile"], None, False, []),
        "ntup_pile": (5, "prun", ["pile"], "self.opt_inDS", False, []),
    }
    assert wf.inputs == {"seed": 123}
    assert [n.name for n in parse("cwl", EXAMPLES / "evnt_to_deriv.cwl").nodes] == ["evnt", "simul", "pile", "deriv"]


def test_prod_recast_scatters_a_whole_sub_workflow_over_seeds():
    wf = parse("cwl", EXAMPLES / "prod_recast.cwl", {"seeds": [1, 2, 3]})
    s = shape(wf)
    assert s["prod"] == (6, "workflow", [], None, False, ["seed"])
    assert s["recast"] == (7, "reana", ["prod"], None, False, [])
    assert s["prod/ntup_pile"][3] == "self.opt_inDS"
    assert wf.inputs["seeds"] == [1, 2, 3]


def test_native_examples():
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


def test_step_details_inputs_outputs_and_templates():
    wf = parse("cwl", EXAMPLES / "sig_bg_comb.cwl", {"signal": "S", "background": "B"})
    combine = wf.node("combine")
    assert combine.inputs["opt_secondaryDSs"].sources == ["premix/outDS", "make_background_2/outDS"]
    assert combine.inputs["opt_secondaryDSs"].is_list
    assert combine.inputs["opt_secondaryDsTypes"].default == ["klm.root", "ooo.root"]
    assert combine.template_params()["opt_exec"] == "echo %IN %IN2 %IN3 > aaa.root"
    assert wf.node("make_signal").output_types == ["abc.dat", "def.zip"]
    assert wf.node("make_signal").template_params()["opt_containerImage"] == "docker://busybox"
    assert combine.is_tail and not wf.node("premix").is_tail
    junction = parse("cwl", EXAMPLES / "loop.cwl").node("work_loop").sub_workflow.node("checkpoint")
    assert junction.output_types == ["results.json"]
    assert junction.inputs["opt_inDS"].parents == [2, 3]
    body = parse("cwl", EXAMPLES / "loop.cwl").node("work_loop").sub_workflow
    assert body.loop_params() == {"param_xxx": 123, "param_yyy": 0.456}
    athena = parse("snakemake", SNAKE / "athena" / "Snakefile", base=SNAKE).node("first")
    assert athena.template_params()["opt_useAthenaPackages"] is True
    assert athena.template_params()["opt_exec"].startswith("Gen_tf.py --maxEvents=1000") and "--AMITag=e8201" in athena.template_params()["opt_exec"]


def test_input_values_override_defaults_and_text_specs_parse():
    text = (EXAMPLES / "test.cwl").read_text()
    wf = parse_workflow("cwl", text, {}, str(EXAMPLES))
    assert [n.name for n in wf.nodes] == ["top", "bottom"] and wf.source_file == "<text>"
    wf = parse_workflow("cwl", str(EXAMPLES / "evnt_to_deriv_ntup.cwl"), {"seed": 7}, str(EXAMPLES))
    assert wf.inputs["seed"] == 7
    wf = parse_workflow("yaml", "simple_chain.yaml", {"input": "my.ds/"}, str(NATIVE))  # name inside the sandbox
    assert wf.inputs["input"] == "my.ds/"


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
    s = shape(parse_workflow("yaml", text, {}, str(NATIVE)))
    assert s["ok"] == (2, "prun", ["top"], "self.opt_inDS", False, [])
    assert s["ng"] == (3, "prun", ["top"], "!self.opt_inDS", False, [])
    assert s["again"] == (6, "workflow", [], None, True, [])
    assert s["again/check"] == (5, "junction", ["work"], None, False, [])
