"""JEDI task parameters per step, built from the client's templates like upstream make_task_params."""

from __future__ import annotations

import re
import shlex

import pytest

from example_paths import EXAMPLES
from pandajedi_wf.workflow import CreateStep, MakeReady, RunContext, StepRecord, SubmitStep, build_task_params, next_actions, parse_workflow
from pandajedi_wf.workflow.engine import DatasetRef, StepSpec
from pandajedi_wf.workflow.taskparams import TaskParamsError
from cpu_bound import cpu_at_most

TEMPLATE = {
    "vo": "atlas",
    "taskName": "user.alice.wf/",
    "container_name": "__dummy_container__",
    "multiStepExec": {"containerOptions": {"containerImage": "__dummy_container__"}},
    "processingType": "panda-client-1.4.81-jedi-run",
    "jobParameters": [
        {"type": "constant", "value": '-p "'},
        {"type": "constant", "value": "__dummy_exec_str__", "padding": False},
        {"type": "constant", "value": '"'},
        {"type": "constant", "value": "-a jobO.tar.gz"},
    ],
    "noWaitParent": True,
}
CTX = RunContext(out_ds="user.alice.wf", user_name="alice", workflow_id=77, task_templates={"container": TEMPLATE, "athena": dict(TEMPLATE, architecture="x86_64")})


def spec(**kw):
    base = dict(node_key="002", node_id=2, name="bottom", type="prun", task_name="user.alice.wf_002_bottom", inputs={}, placeholders={})
    base.update(kw)
    return StepSpec(**base)


def test_prun_step_wires_parent_container_and_names():
    s = spec(inputs={"opt_inDS": DatasetRef("user.alice.wf_001_top", ("seed.txt",)), "opt_exec": "echo %IN > results.root", "opt_args": "--outputs results.root --forceStaged"}, output_types=("results.root",), parent_task_name="user.alice.wf_001_top")
    p = build_task_params(s, CTX)
    assert p["taskName"] == "user.alice.wf_002_bottom"
    assert (p["userName"], p["vo"], p["prodSourceLabel"], p["reqID"]) == ("alice", "atlas", "user", 77)
    assert p["pandajedi_wf"] == {"workflow_id": 77, "node_key": "002", "step": "bottom"}
    assert p["noWaitParent"] is True and p["parentTaskName"] == "user.alice.wf_001_top"
    cli = shlex.split(p["cliParams"])
    assert cli[cli.index("--inDS") + 1] == "user.alice.wf_001_top_seed.txt/"
    assert cli[cli.index("--outDS") + 1] == "user.alice.wf_002_bottom"
    assert p["log"]["dataset"] == "user.alice.wf_002_bottom.log/"
    outputs = [j for j in p["jobParameters"] if j.get("param_type") == "output"]
    assert [o["dataset"] for o in outputs] == ["user.alice.wf_002_bottom_results.root/"]
    inputs = [j for j in p["jobParameters"] if j.get("param_type") == "input"]
    assert inputs[0]["dataset"] == "user.alice.wf_001_top_seed.txt/"
    assert {"type": "constant", "value": "echo %IN > results.root", "padding": False} in p["jobParameters"]
    assert "container_name" not in p and "multiStepExec" not in p
    assert "noEmail" in p  # not a workflow output unless the engine says so
    assert TEMPLATE["jobParameters"][1]["value"] == "__dummy_exec_str__"  # template untouched


def test_no_parent_task_drops_template_no_wait_parent():
    p = build_task_params(spec(inputs={"opt_exec": "echo", "opt_args": ""}, is_workflow_output=True), CTX)
    assert "noWaitParent" not in p and "parentTaskName" not in p and "noEmail" not in p


def test_secondary_datasets_types_and_placeholders():
    s = spec(
        inputs={
            "opt_inDS": DatasetRef("T1", ("abc.dat", "def.zip")),
            "opt_inDsType": "def.zip",
            "opt_secondaryDSs": [DatasetRef("T2", ("xyz.pool",)), DatasetRef("T3", ("ooo.root",))],
            "opt_secondaryDsTypes": ["xyz.pool", "ooo.root"],
            "opt_exec": "echo %{x} %{i} %{DS1}",
            "opt_args": "--outputs klm.root --secondaryDSs IN2:2:%{SECDS1},IN3:5:%{SECDS2}",
        },
        placeholders={"x": 456, "i": 2},
    )
    p = build_task_params(s, CTX)
    cli = shlex.split(p["cliParams"])
    assert cli[cli.index("--inDS") + 1] == "T1_def.zip/"
    assert "IN2:2:T2_xyz.pool/,IN3:5:T3_ooo.root/" in cli
    assert p["execString"] == "echo 456 2 T1_def.zip/"


def test_junction_adds_results_json_and_runs_on_instant_queues():
    s = spec(type="junction", inputs={"opt_inDS": [DatasetRef("A", ("seed.txt",)), DatasetRef("B", ("results.root",))], "opt_exec": "echo %{DS1} %{DS2}"}, output_types=("results.json",))
    p = build_task_params(s, CTX)
    cli = shlex.split(p["cliParams"])
    assert cli[cli.index("--outputs") + 1] == "results.json"
    assert cli[cli.index("--inDS") + 1] == "A_seed.txt/,B_results.root/"
    assert "--forceStaged" in cli and p["runOnInstant"] is True
    assert p["execString"] == "echo A_seed.txt/ B_results.root/"


def test_athena_template_and_container_image():
    p = build_task_params(spec(inputs={"opt_exec": "x", "opt_useAthenaPackages": True}), CTX)
    assert p["architecture"] == "x86_64" and "--useAthenaPackages" in p["cliParams"]
    p = build_task_params(spec(inputs={"opt_exec": "x", "opt_containerImage": "docker://busybox"}), CTX)
    assert p["container_name"] == "docker://busybox"
    assert p["multiStepExec"]["containerOptions"]["containerImage"] == "docker://busybox"


def test_gitlab_and_phpo_steps():
    g = build_task_params(spec(type="gitlab", inputs={"opt_inDS": [DatasetRef("U", ("out.txt",))], "opt_site": "CERN", "opt_api": "https://x", "opt_projectID": 165337, "opt_ref": "master", "opt_triggerToken": "T", "opt_accessToken": "A"}), CTX)
    assert g["site"] == "CERN" and g["processingType"].endswith("-gitlab") and '"input_datasets": "U_out.txt/"' in g["jobParameters"][0]["value"]
    h = build_task_params(spec(type="phpo", inputs={"opt_trainingDS": DatasetRef("P", ("seed.txt",)), "opt_args": "--loadJson conf.json"}), CTX)
    assert h["trainingDS"] == "P_seed.txt/" and h["cliParams"].startswith("phpo --loadJson conf.json")


def test_missing_template_is_a_clear_error():
    with pytest.raises(TaskParamsError, match="no athena task template"):
        build_task_params(spec(inputs={"opt_useAthenaPackages": True}), RunContext(out_ds="o", task_templates={"container": TEMPLATE}))


def test_engine_builds_params_for_scattered_sub_workflow_steps():
    wf = parse_workflow("cwl", str(EXAMPLES / "scatter_overlay.cwl"), {"signals": ["sigA", "sigB"], "backgrounds": ["bgA", "bgB"]}, str(EXAMPLES))
    ctx = RunContext(out_ds="user.alice.mm", user_name="alice", workflow_id=5, workflow_status="running", task_templates={"container": TEMPLATE})
    submits = {a.node_key: a for a in next_actions(wf, {}, ctx) if isinstance(a, SubmitStep)}
    p = submits["007s1/001"].task_params
    assert p["taskName"] == "user.alice.mm_001_simulate_s1"
    cli = shlex.split(p["cliParams"])
    assert cli[cli.index("--inDS") + 1] == "sigB" and cli[cli.index("--containerImage") + 1] == "docker://alpine:3.20"
    assert "user.alice.mm_001_simulate_s1_hits.dat/" in [j.get("dataset") for j in p["jobParameters"]]


def _inputs(p):
    return [j for j in p["jobParameters"] if j.get("param_type") == "input"]


def test_overlay_digitise_reads_pileup_a_as_secondary_input():
    """Like prun: one hidden ``${IN2}`` input per --secondaryDSs entry, on the parent's container, so JEDI's refiner
    registers it as a secondary of the primary input (not only in cliParams)."""
    wf = parse_workflow("cwl", str(EXAMPLES / "overlay.cwl"), {"signal": "sig", "background": "bg"}, str(EXAMPLES))
    ctx = RunContext(out_ds="user.alice.sbc", user_name="alice", workflow_id=5, workflow_status="running", task_templates={"container": TEMPLATE})
    steps: dict[str, StepRecord] = {}
    params = {}
    for _ in range(4):  # every task ends done at once, so each round opens the next layer
        for a in next_actions(wf, steps, ctx):
            if isinstance(a, CreateStep):
                steps[a.node_key] = StepRecord(a.node_key, a.node_id, "defined")
            elif isinstance(a, MakeReady):
                steps[a.node_key].status = "ready"
            elif isinstance(a, SubmitStep):
                steps[a.node_key].status = "done"
                params[a.spec.name] = a.task_params
    digitise = params["digitise"]
    assert _inputs(digitise) == [
        {"type": "template", "param_type": "input", "value": '-i "${IN/T}"', "dataset": "user.alice.sbc_001_simulate_truth.zip/", "expand": False, "exclude": "\\.log\\.tgz(\\.\\d+)*$"},
        {"type": "template", "param_type": "input", "value": "${IN2}", "dataset": "user.alice.sbc_002_pileup_a_noise.pool/", "hidden": True, "nFilesPerJob": 3},
    ]
    assert {"type": "constant", "value": "--inMap \"{'IN': ${IN/T}, 'IN2': ${IN2/T}}\""} in digitise["jobParameters"]
    assert digitise["reuseSecOnDemand"] is True
    reconstruct = _inputs(params["reconstruct"])
    assert [(j["value"], j["dataset"], j.get("nFilesPerJob")) for j in reconstruct[1:]] == [
        ("${IN2}", "user.alice.sbc_003_digitise_digits.root/", 3),
        ("${IN3}", "user.alice.sbc_005_pileup_b_cavern.root/", 4),
    ]
    assert "reuseSecOnDemand" not in params["simulate"] and len(_inputs(params["simulate"])) == 1


def test_secondary_options_pattern_skip_reusable_ratio_and_expansion():
    s = spec(inputs={"opt_exec": "x", "opt_args": "--secondaryDSs IN2:3:D2/:*.root:4,IN3:0:D3a/^D3b/ --reusableSecondary IN3 --useNumFilesInSecDSsAsRatio"})
    p = build_task_params(s, CTX)
    in2, in3 = _inputs(p)
    assert in2 == {"type": "template", "param_type": "input", "value": "${IN2}", "dataset": "D2/", "hidden": True, "include": "*.root", "offset": 4, "expand": True, "ratio": 3}
    assert in3["dataset"] == "D3a/,D3b/" and in3["reusable"] is True and "ratio" not in in3 and "nFilesPerJob" not in in3
    assert p["noInput"] is True  # no primary input: JEDI makes the pseudo one, the secondaries follow it
    assert {"type": "constant", "value": "--inMap \"{'IN2': ${IN2/T}, 'IN3': ${IN3/T}}\""} in p["jobParameters"]
    # with a primary input pchain adds --notExpandSecDSs; several datasets of one stream go into one container,
    # named the same on every build of the step
    s = spec(inputs={"opt_inDS": DatasetRef("T1", ("a.txt",)), "opt_exec": "x", "opt_args": "--secondaryDSs=IN2:1:D3a/^D3b/"})
    first, again = (_inputs(build_task_params(s, CTX))[1] for _ in range(2))
    assert "expand" not in first and first["consolidate"] == again["consolidate"]
    assert first["consolidate"].startswith("user.alice.") and first["consolidate"].endswith("/")


@pytest.mark.parametrize("value,message", [
    ("IN2:x:D/", "bad --secondaryDSs entry 'IN2:x:D/'"),
    ("D/", "expected StreamName:nFiles:DatasetName"),
    ("IN2:1:D/,IN2:1:E/", "uses stream 'IN2' twice"),
    ("IN2:1:D/:p:0:files.txt", "local file list"),
])
def test_bad_secondary_datasets_are_clear_errors(value, message):
    with pytest.raises(TaskParamsError, match=re.escape(message)):
        build_task_params(spec(inputs={"opt_exec": "x", "opt_args": f"--secondaryDSs {value}"}), CTX)


def test_allow_empty_input_follows_the_engine():
    p = build_task_params(spec(inputs={"opt_inDS": DatasetRef("T1", ("a.txt",)), "opt_exec": "x"}, allow_empty_input=True), CTX)
    assert p["allowEmptyInput"] is True
    assert "allowEmptyInput" not in build_task_params(spec(inputs={"opt_inDS": DatasetRef("T1", ("a.txt",)), "opt_exec": "x"}), CTX)


def test_output_containers_read_back_from_task_params():
    from pandajedi_wf.workflow.taskparams import output_containers

    params = {
        "taskName": "user.a.wf_002_premix",
        "jobParameters": [
            {"type": "constant", "value": "-j"},
            {"type": "template", "param_type": "input", "dataset": "user.a.wf_001_x_abc.dat/"},
            {"type": "template", "param_type": "output", "container": "user.a.wf_002_premix_klm.root/", "dataset": "user.a.wf_002_premix_klm.root/"},
            {"type": "template", "param_type": "output", "dataset": "user.a.wf_002_premix_log.tgz/"},
        ],
    }
    assert output_containers(params) == [("user.a.wf_002_premix_klm.root/", "klm.root"), ("user.a.wf_002_premix_log.tgz/", "log.tgz")]
    assert output_containers(None) == [] and output_containers({"taskName": "t"}) == []


# ---- issue 11 ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("inputs,fragment", [
    ({"opt_containerImage": ["a", "b"]}, "opt_containerImage must be a string, got a list of 2 items"),
    ({"opt_args": {"x": 1}}, "opt_args must be a string, got a map of 1 key"),
    ({"opt_exec": 5}, "opt_exec must be a string, got a number (5)"),
    ({"opt_inDS": [DatasetRef("T"), {"x": 1}]}, "opt_inDS must be a dataset name or a list of dataset names, got a list holding a map of 1 key"),
    ({"opt_useAthenaPackages": "yes"}, "opt_useAthenaPackages must be true or false, got a string ('yes')"),
])
def test_values_of_the_wrong_type_raise_a_step_definition_error(inputs, fragment):
    from pandajedi_wf.workflow import StepDefinitionError

    with pytest.raises(StepDefinitionError) as info:
        build_task_params(spec(inputs=inputs), CTX)
    assert isinstance(info.value, TaskParamsError) and str(info.value) == f"step 'bottom': {fragment}"


def test_long_arguments_split_in_linear_time():
    for size in (400_000, 900_000):
        args = "--outputs out.root --x " + "a" * size + ' "' + "b\\\\" * (size // 6) + '"'
        with cpu_at_most(1.5, size):  # shlex.split: 4 s at 400,000 characters, > 15 s at 900,000
            params = build_task_params(spec(inputs={"opt_args": args, "opt_exec": "echo"}), CTX)
        assert len(params["cliParams"]) > size
