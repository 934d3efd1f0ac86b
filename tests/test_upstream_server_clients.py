"""Upstream panda-server 1.0.4's own WSGI app, reached by the real panda-client 2.2.0 (pchain_native, pbook).

The server runs unpatched behind the test front end (pandajedi_wf_dev.devdb.panda_server) on the session PostgreSQL;
the clients run from .venv-client as grid users holding real VOMS proxies (pandajedi_wf_dev.devdb.grid_identity), so
the identity the server sees is the TLS client certificate, as behind Apache.
"""

from __future__ import annotations

import io
import json
import re
import struct
import tarfile
import uuid

import pytest
import requests

from pandajedi_wf_dev.devdb.grid_identity import GridAuthority
from pandajedi_wf_dev.devdb.panda_client import ClientVenvError, ensure_client_venv, run_client
from pandajedi_wf_dev.devdb.panda_server import UpstreamPandaServer

# a native (YAML) workflow of two prun steps, the second reading the first's output
TWO_STEP_CHAIN = """\
name: two_steps
inputs:
  input: "mc16_valid:mc16_valid.900248.PG_singlepion_flatPt2to50.simul.HITS.e8312_s3238_tid26378578_00"
outputs:
  final_output:
    from: bottom/outDS
    output_types:
      - results.root
steps:
  top:
    type: prun
    inDS: "{input}"
    args: "--outputs intermediate.txt --avoidVP"
    exec: "sh payload.sh %IN > intermediate.txt"
  bottom:
    type: prun
    inDS: top/outDS
    args: "--outputs results.root --forceStaged --avoidVP"
    exec: "cat %IN > results.root"
"""
RAW_REQUEST_FIELDS = {"taskParams", "sourceURL", "sandbox", "workflowSpecFile", "workflowInputFile", "language", "outDS", "base_platform", "user_dn"}
ECHO_ROUTE = "/whoami"


@pytest.fixture(scope="module")
def client_venv():
    try:
        return ensure_client_venv()
    except ClientVenvError as exc:
        pytest.skip(f"cannot create the panda-client virtualenv (.venv-client): {exc}")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The CA, host and VOMS certificates; users' proxies are made from it (voms-proxy-fake)."""
    return GridAuthority(tmp_path_factory.mktemp("grid"))


@pytest.fixture(scope="module")
def alice(grid):
    return grid.user("alice")


@pytest.fixture(scope="module")
def bob(grid):
    return grid.user("bob", "Bob Builder")


@pytest.fixture
def panda_server(clean_db, panda_home, pg, grid, client_venv, tmp_path):
    """A server per test, started after clean_db: upstream leaves read transactions open on PostgreSQL
    (DBProxy.getConfigValue never commits), so its connection can hold locks that a TRUNCATE waits for."""
    server = UpstreamPandaServer(panda_home, pg, tmp_path / "panda_server", grid=grid, extra_routes={ECHO_ROUTE: "pandajedi_wf_dev.devdb.panda_server:identity_echo"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def work_area(tmp_path):
    """A user's working directory: the workflow description and a small payload (the sandbox)."""
    area = tmp_path / "work"
    area.mkdir()
    (area / "chain.yaml").write_text(TWO_STEP_CHAIN)
    (area / "payload.sh").write_text("echo processing \"$@\"\n")
    return area


def _submit(panda_server, user, work_area, venv, auth="x509"):
    out_ds = f"user.{user.nickname}.two_steps.{uuid.uuid4().hex[:8]}"
    done = run_client(["pchain_native", "--wfd", "chain.yaml", "--outDS", out_ds], user, panda_server, work_area, auth=auth, venv=venv)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"pchain_native failed ({done.returncode}):\n{output}\nserver log:\n{panda_server.log_tail()}"
    match = re.search(r"workflow submit succeeded with: \(True, \{'workflow_id': (\d+)\}\)", output)
    assert match, f"no workflow_id in pchain_native output:\n{output}"
    return int(match.group(1)), out_ds, output


def _workflow_row(db_conn, workflow_id):
    with db_conn.cursor() as cur:
        cur.execute(
            "SELECT status, prodsourcelabel, username, name, definition_json, raw_request_json FROM doma_panda.workflows WHERE workflow_id = %s",
            (workflow_id,),
        )
        row = cur.fetchone()
    assert row is not None, f"no upstream workflows row {workflow_id}"
    return row


def test_pchain_native_registers_a_workflow_and_pbook_shows_it(panda_server, alice, bob, work_area, client_venv, db_conn):
    from pandaserver.srvcore.CoreUtils import clean_user_id, get_bare_dn

    workflow_id, out_ds, _ = _submit(panda_server, alice, work_area, client_venv)

    status, label, username, name, definition_json, raw_request_json = _workflow_row(db_conn, workflow_id)
    assert (status, label, name, definition_json) == ("registered", "user", None, None)
    assert username == clean_user_id(alice.dn) == "Alice Tester"
    request = json.loads(raw_request_json)
    assert set(request) == RAW_REQUEST_FIELDS
    assert set(request["taskParams"]) == {"container"}
    assert request["taskParams"]["container"]["taskName"] == f"{out_ds}/"
    assert (request["language"], request["workflowSpecFile"], request["workflowInputFile"], request["outDS"]) == ("yaml", "chain.yaml", None, out_ds)
    assert request["sourceURL"] == panda_server.base_url
    # the DN is what TLS authenticated: alice's proxy subject, as upstream keeps it (get_bare_dn, proxy CN kept)
    assert request["user_dn"] == get_bare_dn(alice.proxy_dn(), keep_proxy=True)
    assert request["user_dn"].startswith(alice.dn + "/CN=")

    # the sandbox: in the server's cache dir, registered for reuse, and served under sourceURL/cache/
    sandbox = request["sandbox"]
    assert re.fullmatch(r"jobO\.[0-9a-f-]{36}\.tar\.gz", sandbox)
    cached = panda_server.cache_dir / sandbox
    assert cached.is_file()
    with tarfile.open(cached) as tar:
        assert {"./chain.yaml", "./payload.sh"} <= set(tar.getnames())
    answer = requests.get(f"{request['sourceURL']}/cache/{sandbox}", timeout=30, **panda_server.tls())
    assert answer.status_code == 200 and answer.content == cached.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(answer.content)) as tar:
        assert tar.extractfile("./chain.yaml").read().decode() == TWO_STEP_CHAIN
    with db_conn.cursor() as cur:
        cur.execute("SELECT username, hostname FROM doma_pandameta.usercacheusage WHERE filename = %s", (sandbox,))
        assert cur.fetchall() == [("Alice Tester", "127.0.0.1")]

    # what the client asks before uploading (size, CRC from the gzip trailer): the registered sandbox is offered
    # for reuse to its owner only. (Not checked by submitting twice: pchain_native tars the work area while writing
    # the archive into a subdirectory of it, so the archive sometimes contains a partial copy of itself.)
    data = cached.read_bytes()
    question = {"file_size": len(data), "checksum": struct.unpack("II", data[-8:])[0]}
    validate_url = f"{panda_server.api_url}/file_server/validate_cache_file"
    answer = requests.post(validate_url, json=question, timeout=30, **panda_server.tls(alice)).json()
    assert answer == {"success": True, "message": f"FOUND:127.0.0.1:{sandbox}", "data": None}
    answer = requests.post(validate_url, json=question, timeout=30, **panda_server.tls(bob)).json()
    assert answer == {"success": False, "message": "NOTFOUND", "data": None}

    # pbook in batch mode: an id below 10**7 is a reqID; no task has it yet, so an empty table
    shown = run_client(["pbook", "show", str(workflow_id)], alice, panda_server, work_area, venv=client_venv)
    output = shown.stdout + shown.stderr
    assert shown.returncode == 0, f"pbook failed ({shown.returncode}):\n{output}"
    assert "PBook user: Alice Tester" in shown.stdout
    assert "JediTaskID" in shown.stdout and "Showing only max 1000 tasks" in shown.stderr
    assert "Traceback" not in output and "ERROR" not in output


def test_identity_comes_from_the_client_certificate_only(panda_server, alice, bob, work_area, client_venv, db_conn):
    from pandaserver.srvcore.CoreUtils import clean_user_id

    # bob without grid tools (PANDA_AUTH=x509_no_grid): still identified by the proxy his client presents
    workflow_id, _, _ = _submit(panda_server, bob, work_area, client_venv, auth="x509_no_grid")
    _, _, username, _, _, raw_request_json = _workflow_row(db_conn, workflow_id)
    assert username == clean_user_id(bob.dn) == "Bob Builder"
    assert json.loads(raw_request_json)["user_dn"].startswith(bob.dn + "/CN=")

    # no certificate: upstream refuses, whatever headers claim
    submit_url = f"{panda_server.api_url}/workflow/submit_workflow_raw_request"
    forged = {"SSL-Client-S-DN": alice.dn, "SSL_CLIENT_S_DN": alice.dn, "GRST-CRED-0": f"X509USER 0 0 1 {alice.dn}"}
    refused = requests.post(submit_url, json={"params": {"outDS": "user.alice.x"}}, headers=forged, timeout=30, **panda_server.tls())
    assert refused.status_code == 200 and refused.json() == {"success": False, "message": "SSL secure connection is required", "data": None}
    with db_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM doma_panda.workflows")
        assert cur.fetchone()[0] == 1

    # a mounted app is dispatched before upstream, with WSGIScriptAlias paths and the same identity variables
    echo = requests.get(f"{panda_server.base_url}{ECHO_ROUTE}/details?workflow_id=7", timeout=30, **panda_server.tls(alice)).json()
    assert (echo["SCRIPT_NAME"], echo["PATH_INFO"], echo["QUERY_STRING"]) == (ECHO_ROUTE, "/details", "workflow_id=7")
    assert echo["SSL_CLIENT_S_DN"] == alice.proxy_dn() and echo["SSL_CLIENT_I_DN"] == alice.dn
    assert echo["GRST_CRED"][0].endswith(f" {alice.dn}") and echo["GRST_CRED"][-1].endswith(" /atlas/Role=NULL/Capability=NULL")
    anonymous = requests.get(f"{panda_server.base_url}{ECHO_ROUTE}", headers=forged, timeout=30, **panda_server.tls()).json()
    assert anonymous["SSL_CLIENT_S_DN"] is None and anonymous["GRST_CRED"] == []


def test_front_end_serves_only_files_inside_the_cache_dir(tmp_path):
    from pandajedi_wf_dev.devdb.panda_server import ApacheFrontEnd

    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "jobO.x.tar.gz").write_bytes(b"sandbox")
    (tmp_path / "secret.cfg").write_text("dbpasswd = x")
    front_end = ApacheFrontEnd(tmp_path / "cache")

    def get(path, method="GET"):
        answer = {}
        body = b"".join(front_end({"PATH_INFO": path, "REQUEST_METHOD": method}, lambda status, headers: answer.update(status=status)))
        return answer["status"], body

    assert get("/cache/jobO.x.tar.gz") == ("200 OK", b"sandbox")
    assert get("/cache/jobO.x.tar.gz", "HEAD") == ("200 OK", b"")
    assert get("/cache/../secret.cfg")[0] == "404 Not Found"
    assert get("/cache/")[0] == "404 Not Found"
    assert get("/cache/jobO.x.tar.gz", "POST")[0] == "405 Method Not Allowed"
    assert get("/server/panda/getJob")[0] == "404 Not Found"  # no upstream attached
