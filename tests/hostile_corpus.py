"""A generated corpus of hostile and mistaken workflow descriptions (CWL, Snakemake, native YAML).

``cases()`` builds every case in memory (nothing is stored as files in the repository): cycles, unknown
types and sources, a wrong value in every field of each language, YAML bombs in every YAML read path,
10^5-step and deeply nested definitions, 1 MB strings, unicode and quotes, code-looking conditions and
Snakemake code, paths escaping the sandbox, and the real pchain examples, ours and the documentation's when
it is here (which must stay valid).

A case is a sandbox: ``files`` (path -> text or bytes) written under a case directory whose ``box/``
is the sandbox the server unpacked; ``spec`` is a file name inside ``box/`` or, when ``inline``, the
description text itself.  ``inputs_file`` names a values file in ``box/`` read as the client's
``workflowInputFile``.  ``expect`` is ``"refused"``, ``"valid"`` or None when either answer is right;
what matters for every case is a clear answer, fast and small.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from example_paths import DOCS_EXAMPLES, EXAMPLES  # ours (tests/examples/); the documentation's when present

MB = 1_000_000


@dataclass
class Case:
    id: str
    language: str
    spec: str
    files: dict[str, Any] = field(default_factory=dict)
    inline: bool = False
    inputs: Any = None
    inputs_file: str | None = None
    expect: str | None = None
    symlinks: dict[str, str] = field(default_factory=dict)  # link (under the case dir) -> target


# values that are wrong (or at least odd) in almost any field
WRONG_VALUES: dict[str, Any] = {
    "map": {"k": 1},
    "list": [1, [2]],
    "int": 7,
    "bool": True,
    "null": None,
    "float": 1.5,
    "empty": "",
    "long": "x" * 300,
    "unicode": "créer \u202e\u0000\U0001f600 \"'`$(rm -rf /)",
}


def _dump(doc: Any) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=True, width=1 << 30)


def _set(doc: dict, path: tuple, value: Any) -> dict:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


# ---- bases the mutations start from -------------------------------------------------------------------------

NATIVE_BASE = {
    "name": "base",
    "inputs": {"dataset": "user.x:ds1", "sigs": ["s1", "s2"]},
    "outputs": {"out": {"from": "b/outDS"}},
    "steps": {
        "a": {"type": "prun", "exec": "echo %IN", "args": "--outputs a.root", "inDS": "{dataset}", "containerImage": "docker://busybox"},
        "b": {"type": "prun", "inDS": "a/outDS", "inDsType": "a.root", "secondaryDSs": ["user.x:sec"], "secondaryDsTypes": ["s.root"],
              "exec": "echo", "args": "--outputs b.root", "when": "self.opt_inDS", "useAthenaPackages": False},
        "c": {"type": "workflow", "scatter_inputs": {"x": "sigs"}, "scatter_mode": "zip", "inputs": {"x": None},
              "steps": {"w": {"exec": "echo %{x}", "args": "--outputs w.root"}}},
    },
}
NATIVE_FIELDS = [
    ("name",), ("inputs",), ("outputs",), ("steps",), ("options",), ("inputs", "sigs"), ("outputs", "out"), ("outputs", "out", "from"),
    ("steps", "a"), ("steps", "a", "type"), ("steps", "a", "exec"), ("steps", "a", "args"), ("steps", "a", "inDS"),
    ("steps", "a", "containerImage"), ("steps", "b", "inDsType"), ("steps", "b", "secondaryDSs"), ("steps", "b", "secondaryDsTypes"),
    ("steps", "b", "when"), ("steps", "b", "loop"), ("steps", "b", "useAthenaPackages"), ("steps", "c", "scatter_inputs"),
    ("steps", "c", "scatter_mode"), ("steps", "c", "steps"), ("steps", "c", "inputs"), ("steps", "c", "workflow_ref"),
    ("steps", "c", "options"), ("steps", "c", "name"),
]

CWL_BASE = {
    "cwlVersion": "v1.0",
    "class": "Workflow",
    "requirements": {"ScatterFeatureRequirement": {}},
    "inputs": {"signal": {"type": "string", "default": "user.x:ds"}, "dss": {"type": "string[]", "default": ["d1", "d2"]}},
    "outputs": {"outDS": {"type": "string", "outputSource": "b/outDS"}},
    "steps": {
        "a": {"run": "prun", "in": {"opt_inDS": "signal", "opt_exec": {"default": "echo %IN"}, "opt_args": {"default": "--outputs a.root"}}, "out": ["outDS"]},
        "b": {"run": "prun", "in": {"opt_inDS": "a/outDS", "opt_exec": {"default": "echo"}, "opt_args": {"default": "--outputs b.root"}},
              "out": ["outDS"], "when": "$(self.opt_inDS)"},
        "s": {"run": "prun", "scatter": "opt_inDS", "scatterMethod": "dotproduct", "in": {"opt_inDS": "dss", "opt_exec": {"default": "echo"}},
              "out": ["outDS"], "hints": ["other"]},
    },
}
CWL_FIELDS = [
    ("class",), ("inputs",), ("outputs",), ("steps",), ("inputs", "signal"), ("inputs", "signal", "default"), ("inputs", "dss", "default"),
    ("outputs", "outDS", "outputSource"), ("steps", "a"), ("steps", "a", "run"), ("steps", "a", "in"), ("steps", "a", "out"),
    ("steps", "a", "in", "opt_exec"), ("steps", "a", "in", "opt_exec", "default"), ("steps", "a", "in", "opt_args", "default"),
    ("steps", "a", "in", "opt_inDS"), ("steps", "b", "when"), ("steps", "b", "in", "opt_inDS"), ("steps", "s", "scatter"),
    ("steps", "s", "scatterMethod"), ("steps", "s", "hints"), ("steps", "s", "in", "opt_containerImage"),
]

SNAKE_BASE = '''configfile: "config.json"
from pandaserver.workflow.snakeparser.utils import param_of

rule all:
    params:
        signal={ALL_PARAM}
    input: config["output"]

rule top:
    params:
        opt_inDS=param_of("signal", source=rules.all),
        opt_exec={EXEC},
        opt_args={ARGS},
        opt_containerImage={IMAGE}
    output: f"{config['output']}.top"
    shell: {SHELL}

rule bottom:
    params:
        opt_inDS=rules.top.output[0],
        opt_exec="echo %IN",
        opt_useAthenaPackages={ATHENA}
    input: rules.top.output
    when: {WHEN}
    loop: {LOOP}
    output: config["output"]
    shell: "prun"
'''
SNAKE_DEFAULTS = {"ALL_PARAM": 'config["signal"]', "EXEC": '"echo %IN"', "ARGS": '"--outputs top.root"', "IMAGE": '"docker://busybox"',
                  "SHELL": '"prun"', "ATHENA": "False", "WHEN": 'str(param_of("opt_inDS"))', "LOOP": "False"}
SNAKE_WRONG = {
    "map": '{"k": 1}', "list": "[1, [2]]", "int": "7", "bool": "True", "null": "None", "float": "1.5", "empty": '""',
    "unknown_config": 'config["nope"]', "unknown_rule": "rules.nope.output[0]", "lambda": "lambda wildcards: 1",
    "import": '__import__("os").system("touch pwned")', "dunder": "().__class__.__bases__[0].__subclasses__()",
    "call": 'open("/etc/passwd").read()', "walrus": "(x := 1)", "comprehension": "[c for c in config]",
}
SNAKE_CONFIG = {"output": "outDS", "signal": "user.x:ds", "signals": ["s1", "s2"]}


def _snake(**overrides: str) -> str:
    text = SNAKE_BASE
    for key, value in (SNAKE_DEFAULTS | overrides).items():
        text = text.replace("{" + key + "}", value)
    return text


# ---- YAML bombs ----------------------------------------------------------------------------------------------

def laughs(levels: int = 9, width: int = 9, key: str = "lol") -> str:
    """A billion-laughs document: ``width ** levels`` strings from a few hundred bytes (anchors only, no use)."""
    text = f"{key}0: &{key}0 [" + ", ".join(['"lol"'] * width) + "]\n"
    for i in range(1, levels):
        text += f"{key}{i}: &{key}{i} [" + ", ".join([f"*{key}{i - 1}"] * width) + "]\n"
    return text


def _bomb_cases() -> list[Case]:
    bomb, top = laughs(), "*lol8"
    native_step = "steps:\n  a: {exec: echo, args: '--outputs a.root'}\n"
    cwl_head = "cwlVersion: v1.0\nclass: Workflow\noutputs: {}\n"
    cwl_step = "steps:\n  a:\n    run: prun\n    in: {opt_exec: {default: echo}}\n    out: [outDS]\n"
    out = [
        Case("bomb-native-inputs", "yaml", bomb + f"inputs: {{big: {top}}}\n" + native_step, inline=True, expect="refused"),
        Case("bomb-native-name", "yaml", bomb + f"name: {top}\n" + native_step, inline=True, expect="refused"),
        Case("bomb-native-options", "yaml", bomb + f"options: {{x: {top}}}\n" + native_step, inline=True, expect="refused"),
        Case("bomb-native-step-args", "yaml", bomb + f"steps:\n  a: {{exec: echo, args: {top}}}\n", inline=True, expect="refused"),
        Case("bomb-native-unused-anchors", "yaml", bomb + native_step, inline=True, expect="refused"),
        Case("bomb-native-file", "yaml", "wf.yaml", files={"box/wf.yaml": bomb + f"inputs: {{big: {top}}}\n" + native_step}, expect="refused"),
        Case("bomb-native-sub-file", "yaml", "wf.yaml", expect="refused", files={
            "box/wf.yaml": "steps:\n  sub: {type: workflow, workflow_ref: sub.yaml}\n",
            "box/sub.yaml": bomb + f"inputs: {{x: {top}}}\n" + native_step}),
        Case("bomb-cwl-inputs", "cwl", bomb + cwl_head + f"inputs: {{x: {{default: {top}}}}}\n" + cwl_step, inline=True, expect="refused"),
        Case("bomb-cwl-step-default", "cwl", bomb + cwl_head + "inputs: {}\nsteps:\n  a:\n    run: prun\n    in: {opt_exec: {default: " + top + "}}\n    out: [outDS]\n",
             inline=True, expect="refused"),
        Case("bomb-cwl-sub-file", "cwl", "main.cwl", expect="refused", files={
            "box/main.cwl": cwl_head + "inputs: {}\nsteps:\n  a:\n    run: sub.cwl\n    in: {}\n    out: [outDS]\n",
            "box/sub.cwl": bomb + cwl_head + f"inputs: {{x: {{default: {top}}}}}\n" + cwl_step}),
        Case("bomb-cwl-inline-run", "cwl", bomb + cwl_head + "inputs: {}\nsteps:\n  a:\n    run: {class: Workflow, inputs: {x: {default: " + top + "}}, outputs: {}, "
             "steps: {w: {run: prun, in: {}, out: [outDS]}}}\n    in: {}\n    out: [outDS]\n", inline=True, expect="refused"),
        Case("bomb-snakemake-config", "snakemake", "Snakefile", expect="refused", files={
            "box/Snakefile": _snake().replace('configfile: "config.json"', 'configfile: "config.yaml"'),
            "box/config.yaml": bomb + "output: outDS\nsignal: " + top + "\n"}),
        Case("bomb-input-values-file", "cwl", "wf.cwl", inputs_file="inputs.yaml", expect="refused", files={
            "box/wf.cwl": cwl_head + "inputs: {x: string}\n" + cwl_step, "box/inputs.yaml": bomb + f"x: {top}\n"}),
        Case("bomb-recursive-alias", "yaml", "a: &a [1, *a]\n" + native_step, inline=True, expect="refused"),
        Case("bomb-recursive-map", "yaml", "inputs: &a {x: *a}\n" + native_step, inline=True, expect="refused"),
        Case("bomb-wide-fan", "yaml", "s: &s '" + "x" * 50_000 + "'\ninputs: {x: [" + ", ".join(["*s"] * 2000) + "]}\n" + native_step, inline=True, expect="refused"),
        Case("bomb-merge-keys", "yaml", "base: &b {exec: echo}\nsteps:\n  a:\n    <<: *b\n", inline=True, expect="refused"),
        Case("bomb-many-small-values", "yaml", "inputs: {x: [" + "1," * 300_000 + "1]}\n" + native_step, inline=True, expect="refused"),
        Case("bomb-binary-tag", "yaml", "inputs: {x: !!binary aGVsbG8=}\n" + native_step, inline=True, expect="refused"),
        Case("bomb-python-tag", "yaml", "inputs: {x: !!python/object/apply:os.system [touch pwned]}\n" + native_step, inline=True, expect="refused"),
        Case("bomb-nan", "yaml", "inputs: {x: .nan}\n" + native_step, inline=True, expect="refused"),
        Case("bomb-huge-int", "yaml", "inputs: {x: " + "9" * 10_000 + "}\n" + native_step, inline=True, expect="refused"),
    ]
    for levels, width in ((4, 40), (6, 10), (20, 2), (30, 2)):
        out.append(Case(f"bomb-shape-{levels}x{width}", "yaml", laughs(levels, width) + f"inputs: {{x: *lol{levels - 1}}}\n" + native_step, inline=True, expect="refused"))
    return out


# ---- mutations of every field ---------------------------------------------------------------------------------

def _field_cases() -> list[Case]:
    out = []
    for path in NATIVE_FIELDS:
        for label, value in WRONG_VALUES.items():
            out.append(Case(f"native-{'.'.join(path)}={label}", "yaml", _dump(_set(NATIVE_BASE, path, value)), inline=True))
    for path in CWL_FIELDS:
        for label, value in WRONG_VALUES.items():
            out.append(Case(f"cwl-{'.'.join(path)}={label}", "cwl", _dump(_set(CWL_BASE, path, value)), inline=True))
    for slot in ("ALL_PARAM", "EXEC", "ARGS", "IMAGE", "SHELL", "ATHENA", "WHEN", "LOOP"):
        for label, value in SNAKE_WRONG.items():
            out.append(Case(f"snakemake-{slot}={label}", "snakemake", "Snakefile",
                            files={"box/Snakefile": _snake(**{slot: value}), "box/config.json": json.dumps(SNAKE_CONFIG)}))
    # the bases themselves are valid, and a wrong type where intake can see it is refused
    out.append(Case("native-base", "yaml", _dump(NATIVE_BASE), inline=True, expect="valid"))
    out.append(Case("cwl-base", "cwl", _dump(CWL_BASE), inline=True, expect="valid"))
    out.append(Case("snakemake-base", "snakemake", "Snakefile", expect="valid", files={"box/Snakefile": _snake(), "box/config.json": json.dumps(SNAKE_CONFIG)}))
    for path in (("steps", "a", "exec"), ("steps", "a", "args"), ("steps", "a", "containerImage"), ("steps", "a", "inDS"), ("steps", "b", "useAthenaPackages")):
        for label in ("map", "list", "int"):
            out.append(Case(f"native-typed-{'.'.join(path)}={label}", "yaml", _dump(_set(NATIVE_BASE, path, WRONG_VALUES[label])), inline=True, expect="refused"))
    for label in ("map", "list", "int", "bool"):
        out.append(Case(f"cwl-input-value-{label}", "cwl", _dump(CWL_BASE), inline=True, inputs={"signal": WRONG_VALUES[label]}, expect="refused"))
        out.append(Case(f"snakemake-config-value-{label}", "snakemake", "Snakefile", expect="refused", files={
            "box/Snakefile": _snake(), "box/config.json": json.dumps(SNAKE_CONFIG | {"signal": WRONG_VALUES[label]})}))
    return out


# ---- structure: cycles, unknown references, size and depth -----------------------------------------------------

def _cwl_steps(steps: dict, inputs: dict | None = None) -> str:
    return _dump({"cwlVersion": "v1.0", "class": "Workflow", "inputs": inputs or {}, "outputs": {}, "steps": steps})


def _cwl_prun(ins: dict | None = None, **extra) -> dict:
    return {"run": "prun", "in": {"opt_exec": {"default": "echo"}, **(ins or {})}, "out": ["outDS"], **extra}


def _structure_cases() -> list[Case]:
    out = []
    # cycles
    for n in (1, 2, 3, 50, 500):
        names = [f"s{i}" for i in range(n)]
        steps = {name: _cwl_prun({"opt_inDS": f"{names[(i + 1) % n]}/outDS"}) for i, name in enumerate(names)}
        out.append(Case(f"cycle-cwl-{n}", "cwl", _cwl_steps(steps), inline=True, expect="refused"))
        native = {"steps": {name: {"exec": "echo", "inDS": f"{names[(i + 1) % n]}/outDS"} for i, name in enumerate(names)}}
        out.append(Case(f"cycle-native-{n}", "yaml", _dump(native), inline=True, expect="refused"))
    rules = "".join(f'rule r{i}:\n    params:\n        opt_exec="echo"\n    input: rules.r{(i + 1) % 3}.output\n    output: "o{i}"\n    shell: "prun"\n' for i in range(3))
    out.append(Case("cycle-snakemake", "snakemake", "Snakefile", expect="refused", files={"box/Snakefile": 'rule all:\n    input: "o0"\n' + rules}))
    out.append(Case("cycle-cwl-files", "cwl", "a.cwl", expect="refused", files={
        "box/a.cwl": _cwl_steps({"x": {"run": "b.cwl", "in": {}, "out": ["outDS"]}}), "box/b.cwl": _cwl_steps({"y": {"run": "a.cwl", "in": {}, "out": ["outDS"]}})}))
    out.append(Case("cycle-native-files", "yaml", "a.yaml", expect="refused", files={
        "box/a.yaml": "steps:\n  x: {type: workflow, workflow_ref: b.yaml}\n", "box/b.yaml": "steps:\n  y: {type: workflow, workflow_ref: a.yaml}\n"}))
    out.append(Case("cycle-snakemake-files", "snakemake", "Snakefile", expect="refused", files={
        "box/Snakefile": 'rule all:\n    input: "o"\nrule sub:\n    output: "o"\n    shell: "sub/Snakefile"\n',
        "box/sub/Snakefile": 'rule all:\n    input: "o"\nrule back:\n    output: "o"\n    shell: "../Snakefile"\n'}))
    # unknown types and sources
    for run in ("pmagic", "prun.py", "../prun", "", "PRUN", "prun ", "workflow", "missing.cwl", "http://evil/x.cwl"):
        # ("../prun" names the prun type like "prun.cwl" does: the base name counts, no file is read)
        out.append(Case(f"unknown-run-{run!r}", "cwl", _cwl_steps({"a": _cwl_prun(run=run)}), inline=True, expect=None if run == "../prun" else "refused"))
    for source in ("nowhere/outDS", "a/other", "a/", "/outDS", "missing_input", "a/outDS/extra", "#a/outDS", "a\\outDS"):
        steps = {"a": _cwl_prun(), "b": _cwl_prun({"opt_inDS": source})}
        out.append(Case(f"unknown-source-{source!r}", "cwl", _cwl_steps(steps), inline=True))
    for step_type in ("pmagic", "Workflow", "", "junction "):
        out.append(Case(f"unknown-type-native-{step_type!r}", "yaml", _dump({"steps": {"a": {"type": step_type, "exec": "echo"}}}), inline=True, expect="refused"))
    out.append(Case("unknown-key-native", "yaml", "steps:\n  a: {exec: echo, bogus: 1}\n", inline=True, expect="refused"))
    out.append(Case("unknown-shell-snakemake", "snakemake", "Snakefile", expect="refused", files={
        "box/Snakefile": _snake(SHELL='"pmagic"'), "box/config.json": json.dumps(SNAKE_CONFIG)}))
    out.append(Case("unknown-language", "bpmn", "x: 1", inline=True, expect="refused"))
    out.append(Case("empty-text", "yaml", "", inline=True, expect="refused"))
    out.append(Case("empty-cwl-steps", "cwl", _cwl_steps({}), inline=True, expect="refused"))
    out.append(Case("empty-cwl-null-steps", "cwl", "cwlVersion: v1.0\nclass: Workflow\ninputs: []\noutputs: []\nsteps:\n", inline=True, expect="refused"))
    out.append(Case("empty-native-steps", "yaml", "steps: {}\n", inline=True, expect="refused"))
    out.append(Case("empty-snakemake", "snakemake", "Snakefile", files={"box/Snakefile": 'rule all:\n    input: "x"\n'}, expect="refused"))
    out.append(Case("not-a-map", "yaml", "- a\n- b\n", inline=True, expect="refused"))
    out.append(Case("scalar-doc", "cwl", "42\n", inline=True, expect="refused"))
    out.append(Case("two-documents", "yaml", "steps: {a: {exec: echo}}\n---\nsteps: {}\n", inline=True, expect="refused"))
    # 10^5 steps in each language, and just over the cap
    out.append(Case("huge-native-100k", "yaml", "steps: {" + ", ".join(f"s{i}: {{}}" for i in range(100_000)) + "}\n", inline=True, expect="refused"))
    out.append(Case("huge-cwl-100k-map", "cwl", "class: Workflow\ninputs: []\noutputs: []\nsteps: {" + ", ".join(f"s{i}: {{run: prun}}" for i in range(100_000)) + "}\n",
                    inline=True, expect="refused"))
    out.append(Case("huge-cwl-100k-list", "cwl", "class: Workflow\ninputs: []\noutputs: []\nsteps: [" + ", ".join(f"{{id: s{i}}}" for i in range(100_000)) + "]\n",
                    inline=True, expect="refused"))
    out.append(Case("huge-snakemake-100k", "snakemake", "Snakefile", expect="refused", files={
        "box/Snakefile": 'rule all:\n    input: "o"\n' + "".join(f'rule r{i}:\n    shell: "prun"\n' for i in range(100_000))}))
    out.append(Case("huge-native-2001", "yaml", _dump({"steps": {f"s{i}": {"exec": "echo"} for i in range(2001)}}), inline=True, expect="refused"))
    out.append(Case("big-native-2000-valid", "yaml", _dump({"steps": {f"s{i}": {"exec": "echo", **({"inDS": f"s{i - 1}/outDS"} if i else {})} for i in range(2000)}}),
                    inline=True, expect="valid"))
    out.append(Case("huge-over-byte-cap", "yaml", "steps:\n  a: {exec: '" + "x" * (MB + 10) + "'}\n", inline=True, expect="refused"))
    out.append(Case("huge-scatter-input", "cwl", _dump(CWL_BASE), inline=True, inputs={"dss": [f"d{i}" for i in range(1001)]}, expect="refused"))
    out.append(Case("huge-scatter-native", "yaml", _dump(_set(NATIVE_BASE, ("inputs", "sigs"), [f"s{i}" for i in range(5000)])), inline=True, expect="refused"))
    out.append(Case("huge-nested-scatter", "yaml", _dump({"inputs": {"xs": [f"x{i}" for i in range(1000)]}, "steps": {"outer": {
        "type": "workflow", "scatter_inputs": {"x": "xs"}, "inputs": {"x": None, "ys": [f"y{i}" for i in range(1000)]},
        "steps": {"inner": {"type": "workflow", "scatter_inputs": {"y": "ys"}, "inputs": {"y": None}, "steps": {"w": {"exec": "echo %{y}"}}}}}}}),
        inline=True))
    # depth
    for depth in (30, 63, 64, 65, 200, 999, 5000):
        out.append(Case(f"deep-yaml-list-{depth}", "yaml", "inputs: {x: " + "[" * depth + "1" + "]" * depth + "}\nsteps: {a: {exec: echo}}\n", inline=True))
        out.append(Case(f"deep-yaml-map-{depth}", "cwl", "class: Workflow\ninputs: {x: {default: " + "{a: " * depth + "1" + "}" * depth + "}}\noutputs: []\n"
                        "steps: {a: {run: prun, in: {}, out: [outDS]}}\n", inline=True))
    for depth in (3, 8, 9, 30):
        doc: dict = {"exec": "echo"}
        for level in range(depth):
            doc = {"type": "workflow", "steps": {f"l{level}": doc}}
        out.append(Case(f"deep-native-sub-workflows-{depth}", "yaml", _dump({"steps": {"top": doc}}), inline=True, expect="valid" if depth <= 8 else "refused"))
        run: Any = {"class": "Workflow", "inputs": {}, "outputs": {}, "steps": {"w": _cwl_prun()}}
        for level in range(depth):
            run = {"class": "Workflow", "inputs": {}, "outputs": {}, "steps": {f"l{level}": {"run": run, "in": {}, "out": ["outDS"]}}}
        out.append(Case(f"deep-cwl-inline-runs-{depth}", "cwl", _dump(run), inline=True, expect="valid" if depth <= 8 else "refused"))
        files = {}
        for level in range(depth):
            files[f"box/{'d/' * level}Snakefile"] = 'rule all:\n    input: "o"\nrule n:\n    output: "o"\n    shell: "d/Snakefile"\n'
        files[f"box/{'d/' * depth}Snakefile"] = 'rule all:\n    input: "o"\nrule leaf:\n    params:\n        opt_exec="echo"\n    output: "o"\n    shell: "prun"\n'
        out.append(Case(f"deep-snakemake-files-{depth}", "snakemake", "Snakefile", files=files, expect="valid" if depth <= 8 else "refused"))
    for depth in (10, 51, 10_000, 200_000):
        cond = "(" * depth + "self.opt_inDS" + ")" * depth
        out.append(Case(f"deep-condition-parens-{depth}", "cwl", _cwl_steps({"a": _cwl_prun(), "b": _cwl_prun({"opt_inDS": "a/outDS"}, when=f"$({cond})")}),
                        inline=True, expect="valid" if depth <= 50 else "refused"))
        out.append(Case(f"deep-condition-nots-{depth}", "yaml", _dump({"steps": {"a": {"exec": "echo"}, "b": {"exec": "echo", "inDS": "a/outDS", "when": "!" * depth + "self.opt_inDS"}}}),
                        inline=True, expect="valid" if depth <= 50 else "refused"))
        expr = "[" * depth + '"echo"' + "]" * depth
        out.append(Case(f"deep-snakemake-expression-{depth}", "snakemake", "Snakefile", expect="refused", files={
            "box/Snakefile": _snake(EXEC=expr), "box/config.json": json.dumps(SNAKE_CONFIG)}))
    return out


# ---- long strings, unicode and quotes ---------------------------------------------------------------------------

def _text_cases() -> list[Case]:
    out = []
    big = "a" * 900_000
    for field_name in ("exec", "args", "inDS", "containerImage", "when", "type"):
        out.append(Case(f"long-native-{field_name}", "yaml", _dump({"steps": {"a": {"exec": "echo", field_name: big}}}), inline=True))
    out.append(Case("long-native-quoted-args", "yaml", _dump({"steps": {"a": {"exec": "echo", "args": "--outputs o.root " + '"' + "b\\\\" * 250_000 + '"'}}}),
                    inline=True, expect="valid"))
    out.append(Case("long-native-open-quote-args", "yaml", _dump({"steps": {"a": {"exec": "echo", "args": "--outputs o.root '" + big}}}), inline=True, expect="refused"))
    out.append(Case("long-native-name", "yaml", _dump({"steps": {big: {"exec": "echo"}}}), inline=True, expect="refused"))
    out.append(Case("long-native-input-name", "yaml", _dump({"inputs": {big: 1}, "steps": {"a": {"exec": "echo"}}}), inline=True))
    out.append(Case("long-cwl-condition", "cwl", _cwl_steps({"a": _cwl_prun(), "b": _cwl_prun({"opt_inDS": "a/outDS"}, when="$(" + "self.opt_inDS || " * 50_000 + "self.opt_inDS)")}),
                    inline=True))
    out.append(Case("long-cwl-source", "cwl", _cwl_steps({"a": _cwl_prun({"opt_inDS": big})}), inline=True, expect="refused"))
    out.append(Case("long-snakemake-line", "snakemake", "Snakefile", files={"box/Snakefile": _snake(ARGS='"' + big + '"'), "box/config.json": json.dumps(SNAKE_CONFIG)}))
    out.append(Case("long-snakemake-import", "snakemake", "Snakefile", expect="refused", files={
        "box/Snakefile": "from a import" + " " * 400_000 + "!\n" + _snake(), "box/config.json": json.dumps(SNAKE_CONFIG)}))
    out.append(Case("long-snakemake-concat", "snakemake", "Snakefile", expect="refused", files={
        "box/Snakefile": _snake(EXEC=" + ".join(['config["big"]'] * 20_000)), "box/config.json": json.dumps(SNAKE_CONFIG | {"big": "y" * 200_000})}))
    out.append(Case("long-snakemake-list-of-config", "snakemake", "Snakefile", expect="refused", files={
        "box/Snakefile": _snake(ALL_PARAM="[" + ", ".join(['config["big"]'] * 50_000) + "]"), "box/config.json": json.dumps(SNAKE_CONFIG | {"big": "y" * 200_000})}))
    out.append(Case("long-snakemake-constants", "snakemake", "Snakefile", expect="refused", files={
        "box/Snakefile": _snake(ALL_PARAM="[" + "1," * 480_000 + "1]"), "box/config.json": json.dumps(SNAKE_CONFIG)}))
    out.append(Case("long-snakemake-strings", "snakemake", "Snakefile", files={
        "box/Snakefile": _snake(ALL_PARAM="[" + '"ab",' * 15_000 + "1]"), "box/config.json": json.dumps(SNAKE_CONFIG)}))
    out.append(Case("long-config-value", "snakemake", "Snakefile", files={
        "box/Snakefile": _snake(), "box/config.json": json.dumps(SNAKE_CONFIG | {"signal": "s" * 900_000})}))
    for name in ("créer", "a b", "it's", 'say"hi"', "a.b", "-x", "\u202eevil", "名前", "a/b", "a\tb", "😀", "a;rm -rf /", "$(id)", "`id`", "a\\b", "null", "1", "true"):
        out.append(Case(f"name-native-{name!r}", "yaml", _dump({"steps": {name: {"exec": "echo"}}}), inline=True))
        out.append(Case(f"name-cwl-{name!r}", "cwl", _cwl_steps({name: _cwl_prun()}), inline=True))
    for args in ("--x 'unterminated", '--x "unterminated', "--x \\", "--outputs 'a b.root'", "--outputs \"$(rm -rf /)\"", "--outputs \x00.root",
                 "--outputs é.root", "--outputs=a.root,b.root --outputs c.root", "--secondaryDSs IN2:3:ds", "--secondaryDSs bad", "--x \u2028y"):
        out.append(Case(f"args-native-{args!r}", "yaml", _dump({"steps": {"a": {"exec": "echo", "args": args}}}), inline=True))
    out.append(Case("bad-utf8-file", "yaml", "wf.yaml", files={"box/wf.yaml": b"steps:\n  a: {exec: \xff\xfe}\n"}, expect="refused"))
    out.append(Case("nul-in-yaml", "yaml", "steps:\n  a: {exec: \"a\x00b\"}\n", inline=True, expect="refused"))
    out.append(Case("bom-yaml", "yaml", "\ufeffsteps:\n  a: {exec: echo}\n", inline=True))
    out.append(Case("tabs-yaml", "yaml", "steps:\n\ta: {exec: echo}\n", inline=True, expect="refused"))
    out.append(Case("crlf-snakemake", "snakemake", "Snakefile", files={"box/Snakefile": _snake().replace("\n", "\r\n"), "box/config.json": json.dumps(SNAKE_CONFIG)}))
    out.append(Case("duplicate-step", "yaml", "steps:\n  a: {exec: echo}\n  a: {exec: echo}\n", inline=True, expect="refused"))
    out.append(Case("unhashable-key", "yaml", "steps:\n  ? [a, b]\n  : {exec: echo}\n", inline=True, expect="refused"))
    out.append(Case("date-and-numbers-as-keys", "yaml", "inputs: {2024-01-01: x, 1: y, true: z}\nsteps:\n  1: {exec: echo}\n", inline=True, expect="refused"))
    return out


# ---- code where data belongs ---------------------------------------------------------------------------------------

def _code_cases() -> list[Case]:
    out = []
    for cond in ("$(require('child_process').execSync('touch pwned'))", "${ return self.opt_inDS }", "$(self.opt_inDS; import os)",
                 "__import__('os').system('x')", "$(self.opt_inDS && true)", "$(self.opt_inDS == 1)", "$(inputs.opt_inDS)", "$(self.__class__)",
                 "$(self.opt_inDS[99999999999])", "$(self.opt_inDS[1])", "$(!!self.opt_inDS)", "$()", "$(", "self.opt_inDS)", "$((self.opt_inDS)"):
        out.append(Case(f"condition-cwl-{cond!r}", "cwl", _cwl_steps({"a": _cwl_prun(), "b": _cwl_prun({"opt_inDS": "a/outDS"}, when=cond)}), inline=True))
        out.append(Case(f"condition-native-{cond!r}", "yaml", _dump({"steps": {"a": {"exec": "echo"}, "b": {"exec": "echo", "inDS": "a/outDS", "when": cond}}}), inline=True))
    snake_code = {
        "import-os": "import os\n", "os-system": 'os.system("touch pwned")\n', "exec": 'exec("import os")\n', "def": "def f():\n    return 1\n",
        "class": "class X:\n    pass\n", "if": "if True:\n    x = 1\n", "onstart": "onstart:\n    shell('touch pwned')\n", "assign": "x = 1\n",
        "decorator": "@workflow.rule\ndef r():\n    pass\n", "include": 'include: "other.smk"\n', "workdir": 'workdir: "/tmp"\n',
        "from-os": "from os import system\n", "from-mixed": "from pandaserver.workflow.snakeparser.utils import param_of, system\n",
        "wildcard-import": "from os import *\n",
    }
    for label, code in snake_code.items():
        out.append(Case(f"snakemake-code-{label}", "snakemake", "Snakefile", expect="refused", files={
            "box/Snakefile": code + _snake(), "box/config.json": json.dumps(SNAKE_CONFIG)}))
    for label, section in {"run": "    run:\n        import os\n", "shell-rm": '    shell: "rm -rf /"\n', "message": '    message: __import__("os").getcwd()\n',
                           "threads": "    threads: 10**10\n", "resources": "    resources: mem=lambda wildcards: open('/etc/passwd').read()\n",
                           "log": '    log: "x".join(config)\n', "benchmark": '    benchmark: "b.txt"\n'}.items():
        text = _snake().replace('rule bottom:\n', 'rule bottom:\n' + section) if label != "shell-rm" else _snake(SHELL='"rm -rf /"')
        out.append(Case(f"snakemake-section-{label}", "snakemake", "Snakefile", expect="refused", files={"box/Snakefile": text, "box/config.json": json.dumps(SNAKE_CONFIG)}))
    for label, expr in {"fstring-call": 'f"{open(\'/etc/passwd\').read()}"', "fstring-spec": 'f"{config[\'output\']:>999999999}"', "getattr": 'getattr(config, "x")',
                        "subscript-slice": 'config["output"][0:2]', "attr-chain": "config.__class__.__mro__", "starred": "[*config]",
                        "dict-unpack": "{**config}", "set": "{1, 2}", "compare": "1 < 2", "ifexp": '"a" if True else "b"', "bytes": "b'x'",
                        "ellipsis": "...", "complex": "1j", "big-int": "9" * 5000, "await": "await x", "yield": "(yield)"}.items():
        out.append(Case(f"snakemake-expr-{label}", "snakemake", "Snakefile", expect="refused", files={
            "box/Snakefile": _snake(EXEC=expr), "box/config.json": json.dumps(SNAKE_CONFIG)}))
    for line, content in (("configfile: config.json", "{}"), ('configfile: open("config.json")', "{}"), ('configfile: "config.json"', "{oops"),
                          ('configfile: "config.json"', "[1, 2]"), ('configfile: "config.json"', '"text"'), ('configfile: "config.json"', '{"a": NaN}'),
                          ('configfile: "config.json"', "9" * 5000), ('configfile: "config.json"', "[" * 100_000), ('configfile: "config.json"', ""),
                          ('configfile: "config.yaml"', "- a\n"), ('configfile: "config.yaml"', "a: [\n"), ("configfile: 'config.json' + 'x'", "{}"),
                          ('configfile: "missing.json"', "{}"), ("configfile: " + "(" * 1000 + '"config.json"' + ")" * 1000, "{}")):
        name = "config.yaml" if "config.yaml" in line else "config.json"
        out.append(Case(f"snakemake-configfile-{line[:40]!r}-{content[:12]!r}", "snakemake", "Snakefile", expect="refused", files={
            "box/Snakefile": _snake().replace('configfile: "config.json"', line), f"box/{name}": content}))
    return out


# ---- paths that leave the sandbox -----------------------------------------------------------------------------------

def _path_cases() -> list[Case]:
    out = []
    secret_cwl = _cwl_steps({"s": _cwl_prun()})
    outside = {"secret.cwl": secret_cwl, "secret.yaml": "steps: {s: {exec: echo}}\n", "secret.json": json.dumps(SNAKE_CONFIG),
               "Snakefile": 'rule all:\n    input: "o"\nrule s:\n    params:\n        opt_exec="echo"\n    output: "o"\n    shell: "prun"\n'}
    for ref in ("../secret.cwl", "../../../../../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "file://../secret.cwl", "link.cwl", "dirlink/secret.cwl",
                "./../box/../secret.cwl", "a\x00.cwl", "x" * 5000 + ".cwl", "/proc/self/environ", "/dev/zero.cwl", "~/.ssh/id_rsa.cwl"):
        steps = {"a": {"run": ref, "in": {}, "out": ["outDS"]}}
        files = {"box/main.cwl": _cwl_steps(steps), **outside}
        out.append(Case(f"sandbox-cwl-run-{ref[:40]!r}", "cwl", "main.cwl", files=files, symlinks={"box/link.cwl": "../secret.cwl", "box/dirlink": ".."}, expect="refused"))
        native_ref = ref.replace(".cwl", ".yaml")
        files = {"box/main.yaml": _dump({"steps": {"a": {"type": "workflow", "workflow_ref": native_ref}}}), **outside}
        out.append(Case(f"sandbox-native-ref-{native_ref[:40]!r}", "yaml", "main.yaml", files=files,
                        symlinks={"box/link.yaml": "../secret.yaml", "box/dirlink": ".."}, expect="refused"))
        snake_ref = ref.replace("secret.cwl", "Snakefile").replace("link.cwl", "link/Snakefile")
        files = {"box/Snakefile": 'rule all:\n    input: "o"\nrule s:\n    output: "o"\n    shell: ' + json.dumps(snake_ref if "Snakefile" in snake_ref else snake_ref + "/Snakefile") + "\n", **outside}
        out.append(Case(f"sandbox-snakemake-shell-{snake_ref[:40]!r}", "snakemake", "Snakefile", files=files, symlinks={"box/link": "..", "box/dirlink": ".."}, expect="refused"))
        config_ref = ref.replace("secret.cwl", "secret.json").replace(".cwl", ".json")
        files = {"box/Snakefile": _snake().replace('configfile: "config.json"', "configfile: " + json.dumps(config_ref)), **outside}
        out.append(Case(f"sandbox-snakemake-config-{config_ref[:40]!r}", "snakemake", "Snakefile", files=files,
                        symlinks={"box/link.json": "../secret.json", "box/dirlink": ".."}, expect="refused"))
    for spec in ("../secret.cwl", "/etc/passwd", "link.cwl"):
        out.append(Case(f"sandbox-spec-{spec!r}", "cwl", spec, files=dict(outside), symlinks={"box/link.cwl": "../secret.cwl"}, expect="refused"))
    out.append(Case("sandbox-inputs-file-outside", "cwl", "main.cwl", inputs_file="../secret.yaml", expect="refused",
                    files={"box/main.cwl": secret_cwl, **outside}))
    return out


# ---- the real examples stay valid ----------------------------------------------------------------------------------

def _own_example_cases() -> list[Case]:
    """Ours (tests/examples/), each in a sandbox holding the whole directory."""
    files = {f"box/{p.relative_to(EXAMPLES)}": p.read_text(encoding="utf-8") for p in EXAMPLES.rglob("*") if p.is_file() and p.suffix in (".cwl", ".yaml", ".json", "")}
    values = {"scatter_overlay.cwl": {"signals": ["s1", "s2"], "backgrounds": ["b1", "b2"]}, "iterate_each.cwl": {"datasets": ["d1", "d2"]},
              "sweep.cwl": {"sample": "s"}, "overlay.cwl": {"signal": "s", "background": "b"},
              "snakemake/iterate_each/Snakefile": {"datasets": ["d1", "d2"]}, "snakemake/sweep/Snakefile": {"sample": "s"}}
    bodies = ("iterate_body", "sweep_body", "sweep_point")
    out = []
    for name in sorted(files):
        rel = name[len("box/"):]
        if rel.endswith(".cwl") and rel[:-4] not in bodies:
            out.append(Case(f"example-{rel}", "cwl", rel, files=files, inputs=values.get(rel), expect="valid"))
        elif rel.startswith("native/"):
            native = {k.replace("box/native/", "box/"): v for k, v in files.items() if k.startswith("box/native/")}  # its sandbox root
            out.append(Case(f"example-{rel}", "yaml", rel.split("/", 1)[1], files=native, expect="valid"))
        elif rel.endswith("/Snakefile") and rel.split("/")[1] not in bodies:
            out.append(Case(f"example-{rel}", "snakemake", rel, files=files, inputs=values.get(rel), expect="valid"))
    out.append(Case("example-inputs-file", "cwl", "overlay.cwl", files=files | {"box/inputs.yaml": "signal: s\nbackground: b\n"}, inputs_file="inputs.yaml",
                    expect="valid"))
    return out


def _docs_example_cases() -> list[Case]:
    """The documentation's, when they are here (tests/example_paths.py)."""
    out = []
    if not DOCS_EXAMPLES.is_dir():
        return out
    files = {f"box/{p.relative_to(DOCS_EXAMPLES)}": p.read_text(encoding="utf-8") for p in DOCS_EXAMPLES.rglob("*") if p.is_file() and p.suffix in (".cwl", ".yaml", ".json", "")}
    values = {"merge_many.cwl": {"signals": ["s1", "s2"], "backgrounds": ["b1", "b2"]}, "multi_loop.cwl": {"signals": ["s1", "s2"]},
              "sequential_loop.cwl": {"signal": "s"}, "sig_bg_comb.cwl": {"signal": "s", "background": "b"}, "prod_recast.cwl": {"seeds": [1, 2]},
              "snakemake/multi_loop/Snakefile": {"signals": ["s1", "s2"]}, "snakemake/sequential_loop/Snakefile": {"signal": "s"}}
    for name in sorted(files):
        rel = name[len("box/"):]
        if rel.endswith(".cwl") and rel not in ("prun.cwl", "loop_body.cwl", "loop_main.cwl", "scatter_body.cwl"):
            out.append(Case(f"docs-example-{rel}", "cwl", rel, files=files, inputs=values.get(rel), expect="valid"))
        elif rel.startswith("native_wfd/") and rel != "native_wfd/signal_background_combine_wfd.yaml":
            native = {k.replace("box/native_wfd/", "box/"): v for k, v in files.items() if k.startswith("box/native_wfd/")}  # its sandbox root
            out.append(Case(f"docs-example-{rel}", "yaml", rel.split("/", 1)[1], files=native, expect="valid"))
        elif rel.endswith("/Snakefile") and rel.split("/")[1] not in ("loop_body", "loop_main", "scatter_body"):
            out.append(Case(f"docs-example-{rel}", "snakemake", rel, files=files, inputs=values.get(rel), expect="valid"))
    out.append(Case("docs-example-inputs-file", "cwl", "sig_bg_comb.cwl", files=files | {"box/inputs.yaml": "signal: s\nbackground: b\n"}, inputs_file="inputs.yaml",
                    expect="valid"))
    return out


def cases() -> list[Case]:
    found = _bomb_cases() + _field_cases() + _structure_cases() + _text_cases() + _code_cases() + _path_cases() + _own_example_cases() + _docs_example_cases()
    ids = [c.id for c in found]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return found
