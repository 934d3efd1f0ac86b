"""Our workflow endpoints as a WSGI application: identity only from what the front end verified, upstream's way."""

from __future__ import annotations

import io
import json
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest

from wf_db_support import submit
from example_workflows import TWO_STEP_CHAIN as CHAIN

DN = "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=jdoe/CN=123456/CN=Jane Doe"
OTHER = "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=mallory/CN=654321/CN=Mallory Evil"


@pytest.fixture
def app(db):
    from pandajedi_wf.server.app import WorkflowEndpoints

    return WorkflowEndpoints(db_factory=lambda: db)


@pytest.fixture
def workflow_id(db, tmp_path):
    from pandajedi_wf.api import submit_workflow

    spec = tmp_path / "chain.yaml"
    spec.write_text(CHAIN)
    from pandajedi_wf_dev.devdb.task_templates import DEV_TEMPLATES

    result = submit_workflow(db, language="yaml", spec=str(spec), base_dir=str(tmp_path), out_ds="user.jdoe.srv",
                             user_name="Jane Doe", user_dn=DN, vo="wlcg", task_templates=DEV_TEMPLATES)
    assert result.ok
    return result.workflow_id


def call(app, path, method="GET", dn=DN, fqans=(), query="", body=None, content_type="application/json", extra=None):
    environ: dict = {}
    setup_testing_defaults(environ)
    raw = json.dumps(body).encode() if isinstance(body, dict) and content_type == "application/json" else (body or b"")
    environ.update({"REQUEST_METHOD": method, "SCRIPT_NAME": path, "PATH_INFO": "", "QUERY_STRING": query,
                    "CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw)})
    if dn is not None:
        environ["SSL_CLIENT_S_DN"] = dn
    for i, fqan in enumerate(fqans):
        environ[f"GRST_CRED_{i}"] = f"VOMS {fqan}"
    environ.update(extra or {})
    seen = {}
    chunks = app(environ, lambda status, headers: seen.update(status=status, headers=headers))
    return seen["status"], json.loads(b"".join(chunks))


def commands_of(db, workflow_id):
    return db.query(f"SELECT command, requester, requester_role, status, message FROM {db.table('JEDI_WF_COMMANDS')} "
                    "WHERE workflow_id=:w ORDER BY command_id", {":w": workflow_id})


def test_details_in_the_shape_panda_client_renders(app, workflow_id):
    status, answer = call(app, "/api/v1/workflow/get_workflow_details", query=f"workflow_id={workflow_id}")
    assert status == "200 OK" and answer["success"], answer
    data = answer["data"]
    assert (data["workflow_id"], data["name"], data["status"], data["user"], data["submitted_as"]) == (workflow_id, "chain", "parsed", "Jane Doe", "user")
    assert data["steps"] == []  # not started yet: the processor creates the steps


def test_owner_commands_are_queued_and_others_refused_and_recorded(app, db, workflow_id):
    status, answer = call(app, "/api/v1/workflow/kill_native_workflow", "POST", dn=OTHER, body={"workflow_id": workflow_id})
    assert status == "200 OK" and not answer["success"]
    assert "permission denied: 'Mallory Evil' may not kill workflow" in answer["message"]
    status, answer = call(app, "/api/v1/workflow/pause_native_workflow", "POST", body={"workflow_id": workflow_id})
    assert answer["success"] and answer["data"]["status"] == "queued", answer
    assert commands_of(db, workflow_id) == [
        ("kill", OTHER, None, "refused", answer_refusal(db, workflow_id)),
        ("pause", DN, "owner", "queued", None),
    ]


def answer_refusal(db, workflow_id):
    return db.query(f"SELECT message FROM {db.table('JEDI_WF_COMMANDS')} WHERE workflow_id=:w AND status='refused'", {":w": workflow_id})[0][0]


@pytest.mark.parametrize(
    "fqans, allowed",
    [
        (["/wlcg/Role=production"], True),
        (["/wlcg/Role=production/Capability=NULL"], True),
        (["/wlcg/Role=productionXYZ"], False),
        (["/evil/Role=production"], False),  # not the workflow's VO
        (["production"], False),  # a bare word (token scope role:production) is not an FQAN
    ],
)
def test_production_role_comes_from_verified_voms_attributes_only(app, workflow_id, fqans, allowed):
    _, answer = call(app, "/api/v1/workflow/pause_native_workflow", "POST", dn=OTHER, fqans=fqans, body={"workflow_id": workflow_id})
    assert answer["success"] is allowed, answer


def test_identity_is_never_taken_from_the_payload(app, db, workflow_id):
    _, answer = call(app, "/api/v1/workflow/kill_native_workflow", "POST", dn=OTHER,
                     body={"workflow_id": workflow_id, "requester": DN, "user_dn": DN, "role": "production"})
    assert not answer["success"]
    assert [c[1] for c in commands_of(db, workflow_id)] == [OTHER]


@pytest.mark.parametrize(
    "dn, expected",
    [
        (None, "SSL secure connection is required"),
        (DN + "/CN=limited proxy", "SSL secure connection is required"),
    ],
)
def test_no_verified_identity_is_forbidden(app, db, workflow_id, dn, expected):
    status, answer = call(app, "/api/v1/workflow/kill_native_workflow", "POST", dn=dn, body={"workflow_id": workflow_id})
    assert status == "403 Forbidden" and expected in answer["message"]
    assert commands_of(db, workflow_id) == []


def test_bad_requests_are_answered_clearly(app, workflow_id):
    assert call(app, "/api/v1/workflow/kill_native_workflow", "GET", query=f"workflow_id={workflow_id}")[0] == "405 Method Not Allowed"
    assert call(app, "/api/v1/workflow/explode_native_workflow", "POST", body={"workflow_id": 1})[0] == "404 Not Found"
    status, answer = call(app, "/api/v1/workflow/get_workflow_details", query="workflow_id=abc")
    assert status == "400 Bad Request" and "workflow_id must be a number" in answer["message"]
    status, answer = call(app, "/api/v1/workflow/rerun_native_workflow", "POST", body={"workflow_id": workflow_id})
    assert status == "400 Bad Request" and "rerun needs 'step'" in answer["message"]
    _, answer = call(app, "/api/v1/workflow/get_workflow_details", query="workflow_id=999999")
    assert not answer["success"] and "no workflow with id 999999" in answer["message"]
    status, answer = call(app, "/api/v1/workflow/kill_native_workflow", "POST", body=b"{oops")
    assert status == "400 Bad Request" and "not JSON" in answer["message"]


def test_form_encoded_commands_work_too(app, workflow_id):
    body = f"workflow_id={workflow_id}".encode()
    _, answer = call(app, "/api/v1/workflow/kill_native_workflow", "POST", body=body, content_type="application/x-www-form-urlencoded")
    assert answer["success"], answer


def test_progress_is_shown_only_where_jedi_counts_inputs():
    from pandajedi_wf.server.details import progress_of

    assert progress_of((0, 0, 0)) is None
    assert progress_of((8, 2, 1)) == {"n_files": 8, "n_files_finished": 2, "n_files_failed": 1, "pct_finished": 25.0}
