"""pandajedi-wf: argument parsing, what reaches the client, and the documented exit codes."""

from __future__ import annotations

import io
import getpass
import json

import pytest

from pandajedi_wf.cli.client import BackendError, InvalidWorkflow, WorkflowClient, WorkflowNotFound, make_client
from pandajedi_wf.cli.main import ExitCode, infer_language, main
from example_workflows import TWO_STEP_CHAIN as CHAIN

WORKFLOW = {
    "workflow_id": 12,
    "name": "chain",
    "user_name": "Jane Doe",
    "status": "running",
    "steps": [{"node_key": "001", "name": "top", "step_type": "prun", "status": "running", "jedi_task_id": 4242, "jedi_status": "running"}],
}


class FakeClient:
    def __init__(self, command_status="queued", fail=None):
        self.calls: list[tuple] = []
        self.command_status = command_status
        self.fail = fail

    def _record(self, *call):
        self.calls.append(call)
        if self.fail:
            raise self.fail

    def submit(self, **kw):
        self._record("submit", kw)
        return {"ok": True, "workflow_id": 12, "status": "parsed", "problems": [], "steps": []}

    def validate(self, **kw):
        self._record("validate", kw)
        if "bad" in kw["spec"]:
            return {"ok": False, "problems": [{"code": "syntax", "message": "bad YAML", "file": "bad.cwl", "step": None}], "steps": []}
        return {"ok": True, "problems": [], "steps": [{"id": 1, "name": "top", "type": "prun", "parents": []}]}

    def show(self, workflow_id):
        self._record("show", workflow_id)
        if workflow_id != 12:
            raise WorkflowNotFound(f"workflow {workflow_id} not found")
        return WORKFLOW

    def show_by_task(self, jedi_task_id):
        self._record("show_by_task", jedi_task_id)
        if jedi_task_id != 4242:
            raise WorkflowNotFound(f"no workflow step runs JEDI task {jedi_task_id}")
        return WORKFLOW

    def list(self, user, status, limit=1000):
        self._record("list", user, status, limit)
        return [WORKFLOW]

    def command(self, workflow_id, command, params, requester, role):
        self._record("command", workflow_id, command, params, requester, role)
        if workflow_id != 12:
            raise WorkflowNotFound(f"workflow {workflow_id} not found")
        message = "cannot resume workflow 12: it is running, not paused" if self.command_status == "refused" else "accepted"
        return {"command_id": 5, "status": self.command_status, "message": message}


def run(argv, client=None):
    client = client or FakeClient()
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, client_factory=lambda: client, out=out, err=err)
    return code, out.getvalue(), err.getvalue(), client


def test_fake_client_satisfies_the_protocol():
    assert isinstance(FakeClient(), WorkflowClient)


def test_show_prints_a_table_and_json_on_request():
    code, out, err, _ = run(["show", "12"])
    assert code == ExitCode.OK and err == ""
    assert out.startswith("workflow 12  chain  [running]") and "4242" in out
    code, out, _, _ = run(["show", "12", "--json"])
    assert code == 0 and json.loads(out)["steps"][0]["jedi_task_id"] == 4242
    code, out, _, _ = run(["--json", "show", "12"])
    assert json.loads(out)["workflow_id"] == 12


def test_show_by_task_and_unknown_ids():
    code, _, _, client = run(["show", "--task", "4242"])
    assert code == 0 and client.calls == [("show_by_task", 4242)]
    code, out, err, _ = run(["show", "99"])
    assert code == ExitCode.NOT_FOUND == 3 and out == ""
    assert err.strip() == "pandajedi-wf: not found: workflow 99 not found"
    assert run(["show", "--task", "1"])[0] == ExitCode.NOT_FOUND


@pytest.mark.parametrize(
    "argv, fragment",
    [
        ([], "the following arguments are required: VERB"),
        (["explode"], "invalid choice: 'explode'"),
        (["show", "abc"], "argument ID: not a number: 'abc'"),
        (["kill", "0"], "argument ID: must be a positive number: '0'"),
        (["show"], "give either a workflow ID or --task JEDITASKID"),
        (["show", "12", "--task", "4"], "give either a workflow ID or --task JEDITASKID"),
        (["list", "--status", "sleeping"], "argument --status: invalid choice: 'sleeping'"),
        (["rerun-from", "12"], "the following arguments are required: STEP"),
    ],
)
def test_usage_errors_exit_2_with_a_message(argv, fragment):
    code, out, err, client = run(argv)
    assert code == ExitCode.USAGE == 2
    assert fragment in err and out == ""


def test_list_passes_filters():
    code, out, _, client = run(["list", "--user", "Jane Doe", "--status", "running", "--limit", "5"])
    assert code == 0 and client.calls == [("list", "Jane Doe", "running", 5)]
    assert out.splitlines()[0].split() == ["ID", "USER", "STATUS", "STEPS", "PROGRESS", "MODIFIED", "NAME"]


@pytest.mark.parametrize(
    "argv, command, params",
    [
        (["kill", "12"], "kill", None),
        (["retry", "12"], "retry", None),
        (["pause", "12"], "pause", None),
        (["resume", "12"], "resume", None),
        (["finish", "12"], "finish", None),
        (["finish", "12", "--now"], "finish", {"now": True}),
        (["rerun-from", "12", "reco"], "rerun", {"step": "reco"}),
    ],
)
def test_commands_reach_the_client_as_the_operator(argv, command, params):
    code, out, _, client = run(argv)
    assert code == ExitCode.OK
    assert client.calls == [("command", 12, command, params, f"operator:{getpass.getuser()}", "operator")]
    assert out.strip() == f"{command} of workflow 12 queued (command 5): accepted"


@pytest.mark.parametrize("option", [["--requester", "/CN=Jane Doe"], ["--role", "production"]])
def test_nobody_can_claim_another_identity_on_the_command_line(option):
    code, _, err, client = run(["kill", "12"] + option)
    assert code == ExitCode.USAGE and client.calls == []
    assert "unrecognized arguments" in err


def test_identity_environment_variables_are_ignored(monkeypatch):
    monkeypatch.setenv("PANDAJEDI_WF_REQUESTER", "Jane Doe")
    monkeypatch.setenv("PANDAJEDI_WF_ROLE", "production")
    _, _, _, client = run(["kill", "12"])
    assert client.calls[0][4:] == (f"operator:{getpass.getuser()}", "operator")


def test_refused_command_exits_1_and_says_why():
    code, out, err, _ = run(["resume", "12"], FakeClient(command_status="refused"))
    assert code == ExitCode.REFUSED == 1 and out == ""
    assert err.strip() == "resume of workflow 12 refused (command 5): cannot resume workflow 12: it is running, not paused"
    code, out, _, _ = run(["resume", "12", "--json"], FakeClient(command_status="refused"))
    assert code == 1 and json.loads(out)["status"] == "refused"


def test_failed_command_exits_5_and_unknown_status_is_a_backend_error():
    assert run(["kill", "12"], FakeClient(command_status="failed"))[0] == ExitCode.BACKEND
    code, _, err, _ = run(["kill", "12"], FakeClient(command_status="weird"))
    assert code == ExitCode.BACKEND and "unknown status 'weird'" in err


@pytest.mark.parametrize(
    "error, code, text",
    [
        (WorkflowNotFound("workflow 13 not found"), ExitCode.NOT_FOUND, "pandajedi-wf: not found: workflow 13 not found"),
        (BackendError("database unreachable"), ExitCode.BACKEND, "pandajedi-wf: backend error: database unreachable"),
        (InvalidWorkflow("2 problems", [{"message": "no steps", "file": "a.cwl"}]), ExitCode.INVALID, "  - file a.cwl: no steps"),
    ],
)
def test_client_exceptions_map_to_exit_codes(error, code, text):
    result, out, err, _ = run(["kill", "12"], FakeClient(fail=error))
    assert result == code and text in err and out == ""


def test_unconfigured_backend_is_a_backend_error(monkeypatch):
    import pandajedi_wf.api.db_client as db_client

    def no_config(*args, **kwargs):
        raise KeyError("panda_server.cfg [server] dbhost")

    monkeypatch.setattr(db_client, "DbWorkflowClient", no_config)
    out, err = io.StringIO(), io.StringIO()
    assert main(["list"], client_factory=make_client, out=out, err=err) == ExitCode.BACKEND
    assert "cannot reach the PanDA database" in err.getvalue() and "PANDA_HOME" in err.getvalue()


# ---- submit ---------------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "main.cwl").write_text("cwlVersion: v1.0\n")
    (tmp_path / "bad.cwl").write_text("::\n")
    (tmp_path / "inputs.yaml").write_text("signal: mc23.sig\nbackground: [b1, b2]\n")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "templates.json").write_text('{"container": {"taskName": "x"}}')
    (tmp_path / "broken.json").write_text("{oops")
    return tmp_path


def test_submit_reads_inputs_and_templates_and_infers_the_language(workdir):
    argv = ["submit", str(workdir / "main.cwl"), "--inputs", str(workdir / "inputs.yaml"), "--outDS", "user.jdoe.wf", "--templates", str(workdir / "templates.json"), "--owner", "Jane Doe", "--vo", "wlcg"]
    code, out, _, client = run(argv)
    assert code == 0 and out.strip() == "workflow 12 submitted (parsed); follow it with: pandajedi-wf show 12"
    (verb, kw), = client.calls
    assert verb == "submit"
    assert kw == {
        "language": "cwl",
        "spec": str(workdir / "main.cwl"),
        "input_values": {"signal": "mc23.sig", "background": ["b1", "b2"]},
        "base_dir": str(workdir),
        "out_ds": "user.jdoe.wf",
        "task_templates": {"container": {"taskName": "x"}},
        "name": None,
        "owner": "Jane Doe",
        "vo": "wlcg",
        "prod_source_label": "user",
        "requester": f"operator:{getpass.getuser()}",
    }




def test_submit_check_parses_without_any_database(workdir):
    (workdir / "chain.yaml").write_text(CHAIN)

    def no_database():
        raise AssertionError("submit --check must not build a database client")

    out, err = io.StringIO(), io.StringIO()
    assert main(["submit", str(workdir / "chain.yaml"), "--check"], client_factory=no_database, out=out, err=err) == ExitCode.OK
    assert "valid: 2 step(s)" in out.getvalue()
    (workdir / "cycle.yaml").write_text(CHAIN.replace('    args: "--outputs a.txt"', '    inDS: bottom/outDS\n    args: "--outputs a.txt"'))
    out, err = io.StringIO(), io.StringIO()
    assert main(["submit", str(workdir / "cycle.yaml"), "--check"], client_factory=no_database, out=out, err=err) == ExitCode.INVALID
    assert "cycle" in err.getvalue()


@pytest.mark.parametrize(
    "extra, code, fragment",
    [
        (["--outDS", "x", "--inputs", "missing.yaml"], ExitCode.USAGE, "cannot read input values"),
        (["--outDS", "x", "--inputs", "list.yaml"], ExitCode.INVALID, "must be a map of input name to value, got list"),
        (["--outDS", "x", "--templates", "broken.json"], ExitCode.INVALID, "are not valid JSON: Expecting property name"),
        ([], ExitCode.USAGE, "--outDS is required (or use --check to validate only)"),
    ],
)
def test_submit_input_problems(workdir, monkeypatch, extra, code, fragment):
    monkeypatch.chdir(workdir)
    result, _, err, client = run(["submit", "main.cwl", *extra])
    assert result == code and fragment in err and client.calls == []


def test_submit_of_a_missing_spec_is_a_usage_error(workdir):
    code, _, err, _ = run(["submit", str(workdir / "nope.cwl"), "--outDS", "x"])
    assert code == ExitCode.USAGE and "no such file" in err


@pytest.mark.parametrize("name, language", [("wf.cwl", "cwl"), ("Snakefile", "snakemake"), ("rules.smk", "snakemake"), ("wfd.yaml", "yaml"), ("x/y.YML", "yaml")])
def test_language_from_the_file_name(name, language):
    assert infer_language(name) == language


def test_unknown_language_asks_for_language_option(workdir):
    (workdir / "workflow.txt").write_text("x")
    code, _, err, _ = run(["submit", str(workdir / "workflow.txt"), "--outDS", "x"])
    assert code == ExitCode.USAGE and "give --language cwl|snakemake|yaml" in err
    code, _, _, client = run(["submit", str(workdir / "workflow.txt"), "--outDS", "x", "--language", "yaml"])
    assert code == 0 and client.calls[0][1]["language"] == "yaml"
