"""Intake of what the pchain client sends: sandbox (unpacked here), spec and input files, language, outDS."""

import shutil

import pytest

from wf_db_support import BACKGROUNDS, EXAMPLES, SIGNALS, TEMPLATES


@pytest.fixture
def sandbox(tmp_path):
    """The client's working directory as the server unpacks it: the CWL files and an input-values file."""
    for name in ("overlay.cwl",):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    (tmp_path / "inputs.yaml").write_text(f"signal: {SIGNALS[0]}\nbackground: {BACKGROUNDS[0]}\n")
    return tmp_path


def client_request(**overrides):
    request = {
        "taskParams": TEMPLATES,
        "sourceURL": "https://panda.example.org:25443",
        "sandbox": "jobO.1234.tar.gz",
        "workflowSpecFile": "overlay.cwl",
        "workflowInputFile": "inputs.yaml",
        "language": "cwl",
        "outDS": "user.alice.overlay",
        "base_platform": None,
    }
    request.update(overrides)
    return request


def test_pchain_request_becomes_a_parsed_workflow(db, sandbox):
    from pandajedi_wf.api import submit_client_request
    from pandajedi_wf.taskbuffer import workflows

    result = submit_client_request(db, client_request(), "alice", "/DC=ch/CN=alice", str(sandbox), vo="wlcg")

    assert result.ok and result.status == "parsed", result.problems
    row = workflows.load(db, [result.workflow_id])[result.workflow_id]
    assert row["out_ds"] == "user.alice.overlay" and row["user_name"] == "alice" and row["language"] == "cwl"
    assert row["request"]["sandbox"] == "jobO.1234.tar.gz" and "taskParams" in row["request"]
    names = sorted(n["name"] for n in row["definition"]["nodes"])
    assert names == ["digitise", "pileup_a", "pileup_b", "reconstruct", "seed_noise", "simulate"]


def test_broken_spec_is_recorded_as_a_failed_workflow_with_the_reason(db, sandbox):
    from pandajedi_wf.api import submit_client_request
    from pandajedi_wf.taskbuffer import transitions, workflows

    (sandbox / "broken.cwl").write_text("cwlVersion: v1.0\nclass: Workflow\nsteps:\n  a: [unclosed\n")
    result = submit_client_request(db, client_request(workflowSpecFile="broken.cwl"), "alice", None, str(sandbox))

    assert not result.ok and result.status == "failed"
    row = workflows.load(db, [result.workflow_id])[result.workflow_id]
    assert row["status"] == "failed" and "broken.cwl" in row["error_dialog"]
    assert [h["to_status"] for h in transitions.history(db, "workflow", result.workflow_id)] == ["failed"]
    assert db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_WF_STEPS')}") == [(0,)]


def test_check_only_writes_nothing(db, sandbox):
    from pandajedi_wf.api import submit_client_request

    result = submit_client_request(db, client_request(), "alice", None, str(sandbox), check_only=True)
    assert result.ok and result.workflow_id is None and len(result.steps) == 6
    assert db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_WF_WORKFLOWS')}") == [(0,)]


def test_request_missing_fields_is_refused_clearly(db, sandbox):
    from pandajedi_wf.api import submit_client_request

    with pytest.raises(ValueError, match="workflowSpecFile"):
        submit_client_request(db, client_request(workflowSpecFile=None), "alice", None, str(sandbox))
