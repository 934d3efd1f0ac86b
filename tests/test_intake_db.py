"""Intake of pchain_native requests from upstream's ``workflows`` table, on the real PostgreSQL.

Rows are registered by upstream's own ``WorkflowInterface.register_workflow`` (what the server's
``submit_workflow_raw_request`` calls), sandboxes are served over HTTP from a loopback cache, and our intake
takes them in under the same id; the JEDI tasks it leads to are submitted and refined by upstream code.
"""

from __future__ import annotations

import datetime
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from wf_db_support import check_tasks_and_history, new_grid, run_until_quiet, step_rows, workflow_row

DN = "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=jdoe/CN=123456/CN=Jane Doe"
CHAIN = """name: intake_chain
steps:
  top:
    type: prun
    args: "--outputs a.txt --nJobs 2"
    exec: "echo a > a.txt"
  bottom:
    type: prun
    inDS: top/outDS
    args: "--outputs b.txt"
    exec: "cat %IN > b.txt"
"""
TEMPLATES = {"container": {"taskParams": None}}


class _Cache(http.server.SimpleHTTPRequestHandler):
    """The PanDA server's /cache/ as the intake sees it; ``fail_next`` answers 503 that many times first."""

    fail_next = 0

    def do_GET(self):  # noqa: N802 (http.server's name)
        if _Cache.fail_next:
            _Cache.fail_next -= 1
            self.send_error(503, "busy")
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def cache(tmp_path):
    root = tmp_path / "server"
    (root / "cache").mkdir(parents=True)
    handler = lambda *a, **kw: _Cache(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Cache.fail_next = 0
    yield root / "cache", f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def sandbox(cache_dir: Path, name: str, files: dict[str, str | bytes], members: list[tarfile.TarInfo] = ()) -> str:
    with tarfile.open(cache_dir / name, "w:gz") as tar:
        for path, text in files.items():
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in members:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return name


def register(task_buffer, request: dict, dn: str = DN) -> int:
    """What the PanDA server does for submit_workflow_raw_request: upstream's own register_workflow."""
    from pandaserver.workflow.workflow_core import WorkflowInterface

    workflow_id = WorkflowInterface(task_buffer).register_workflow("user", dn, raw_request_params=dict(request))
    assert workflow_id is not None
    return workflow_id


def request_for(source_url: str, sandbox_name: str, **extra) -> dict:
    from pandajedi_wf_dev.devdb.task_templates import DEV_TEMPLATES

    return {"taskParams": DEV_TEMPLATES, "sourceURL": source_url, "sandbox": sandbox_name, "workflowSpecFile": "chain.yaml",
            "workflowInputFile": "", "language": "yaml", "outDS": "user.jdoe.intake", "base_platform": None} | extra


def intake(db, now=None, **settings):
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import upstream_intake
    from pandajedi_wf.daemons.common import CycleStats

    stats = CycleStats()
    message = upstream_intake.cycle(db, stats, upstream_intake.IntakeSettings(enabled=True, **settings), "intake-test", "wlcg",
                                    now or utcnow())
    return message, stats.counters


def upstream_row(db, workflow_id):
    from pandajedi_wf.taskbuffer.connection import json_value

    row = db.query_dicts(f"SELECT * FROM {db.table('workflows')} WHERE workflow_id=:w", {":w": workflow_id})[0]
    row["parameters"] = json_value(row["parameters"]) if row["parameters"] else None
    return row


def test_a_pchain_native_request_becomes_our_workflow_under_the_servers_id_and_runs(db, jedi_taskbuffer, cache):
    cache_dir, url = cache
    name = sandbox(cache_dir, "jobO.1.tar.gz", {"chain.yaml": CHAIN})
    workflow_id = register(jedi_taskbuffer, request_for(url, name, workflow_name="my chain"))
    assert upstream_row(db, workflow_id)["status"] == "registered"

    message, counters = intake(db)
    assert counters["intake_claimed"] == 1 and counters.get("intake_accepted") == 1, (message, counters, upstream_row(db, workflow_id)["parameters"])
    wf = workflow_row(db, workflow_id)
    assert (wf["status"], wf["name"], wf["user_name"], wf["user_dn"], wf["vo"]) == ("parsed", "my chain", "Jane Doe", DN, "wlcg")
    row = upstream_row(db, workflow_id)
    assert (row["status"], row["name"], row["locked_by"]) == ("running", "my chain", None)
    assert row["parameters"] == {"engine": "pandajedi_wf", "wf_status": "parsed"}

    # the processor runs it: every task carries the id the user was given as reqID, and upstream's row follows
    grid = new_grid(db, jedi_taskbuffer)
    status, _ = run_until_quiet(db, jedi_taskbuffer, grid, workflow_id)
    assert status == "done"
    check_tasks_and_history(db, workflow_id, "user.jdoe.intake")
    intake(db)  # the next cycle mirrors the status
    assert upstream_row(db, workflow_id)["status"] == "done" and upstream_row(db, workflow_id)["end_time"] is not None


def test_a_second_intake_never_takes_a_claimed_row_and_an_expired_claim_is_taken_again(db, jedi_taskbuffer, cache):
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.taskbuffer import upstream_workflows

    cache_dir, url = cache
    workflow_id = register(jedi_taskbuffer, request_for(url, sandbox(cache_dir, "s.tar.gz", {"chain.yaml": CHAIN})))
    now = utcnow()
    (claimed,) = upstream_workflows.claim_registered(db, "crashed-intake", now, 600, 10)
    assert claimed.workflow_id == workflow_id and claimed.request["user_dn"] == DN
    assert intake(db, now=now)[1]["intake_claimed"] == 0  # held by the other one
    message, counters = intake(db, now=now + datetime.timedelta(seconds=601))  # its lock expired: taken over
    assert counters["intake_accepted"] == 1, message
    assert workflow_row(db, workflow_id)["status"] == "parsed"


def test_an_invalid_description_is_answered_with_the_precise_problems(db, jedi_taskbuffer, cache):
    cache_dir, url = cache
    broken = CHAIN.replace('    args: "--outputs a.txt --nJobs 2"', '    inDS: bottom/outDS\n    args: "--outputs a.txt --nJobs 2"')
    workflow_id = register(jedi_taskbuffer, request_for(url, sandbox(cache_dir, "bad.tar.gz", {"chain.yaml": broken})))
    message, counters = intake(db)
    assert counters.get("intake_invalid") == 1, (message, counters, upstream_row(db, workflow_id)["parameters"])
    wf = workflow_row(db, workflow_id)
    assert wf["status"] == "failed" and "cycle" in wf["error_dialog"], wf["error_dialog"]
    row = upstream_row(db, workflow_id)
    assert row["status"] == "failed"
    assert any("cycle" in p["message"] for p in row["parameters"]["problems"]), row["parameters"]


@pytest.mark.parametrize(
    "change, files, members, expected",
    [
        ({"sandbox": "missing.tar.gz"}, None, (), "is not on the server (HTTP 404)"),
        ({"sandbox": "../etc/passwd"}, None, (), "sandbox: '../etc/passwd' must be a plain file name"),
        ({"language": "bash"}, {"chain.yaml": CHAIN}, (), "language: 'bash' is not one of cwl, snakemake, yaml"),
        ({"outDS": None}, {"chain.yaml": CHAIN}, (), "outDS: missing"),
        ({"workflowSpecFile": "/etc/passwd"}, {"chain.yaml": CHAIN}, (), "must be a path inside the sandbox"),
        ({}, {"other.yaml": CHAIN}, (), "chain.yaml"),
        ({}, {"chain.yaml": CHAIN}, ["link"], "is a link; links are not allowed"),
        ({}, {"chain.yaml": CHAIN}, ["escape"], "points outside the sandbox"),
        ({"workflowInputFile": "inputs.yaml"}, {"chain.yaml": CHAIN, "inputs.yaml": "- a\n- b\n"}, (), "must be a map"),
    ],
)
def test_a_request_that_cannot_be_taken_in_is_a_failed_workflow_with_the_reason(db, jedi_taskbuffer, cache, change, files,
                                                                                  members, expected):
    cache_dir, url = cache
    extra_members = []
    if "link" in members:
        link = tarfile.TarInfo("evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        extra_members.append(link)
    if "escape" in members:
        escape = tarfile.TarInfo("../../outside.txt")
        escape.size = 1
        extra_members.append(escape)
    name = sandbox(cache_dir, "sb.tar.gz", files, extra_members) if files is not None else "sb.tar.gz"
    workflow_id = register(jedi_taskbuffer, request_for(url, name) | change)
    message, counters = intake(db)
    assert counters.get("intake_refused", 0) + counters.get("intake_invalid", 0) == 1, message
    wf = workflow_row(db, workflow_id)
    assert wf["status"] == "failed" and expected in wf["error_dialog"], wf["error_dialog"]
    row = upstream_row(db, workflow_id)
    assert row["status"] == "failed" and row["locked_by"] is None
    assert expected in row["parameters"]["error"] or any(expected in p["message"] for p in row["parameters"].get("problems", ()))
    assert not (Path(cache_dir).parent.parent / "outside.txt").exists()


def test_an_unreachable_cache_is_tried_again_and_given_up_after_max_attempts(db, jedi_taskbuffer, cache):
    from pandajedi_wf.core.clock import utcnow

    cache_dir, url = cache
    workflow_id = register(jedi_taskbuffer, request_for(url, sandbox(cache_dir, "s.tar.gz", {"chain.yaml": CHAIN})))
    _Cache.fail_next = 1
    now = utcnow()
    message, counters = intake(db, now=now, max_attempts=3, lock_seconds=60)
    assert counters["intake_postponed"] == 1, message
    row = upstream_row(db, workflow_id)
    assert row["status"] == "registered" and row["parameters"]["intake_attempts"] == 1 and "HTTP 503" in row["parameters"]["intake_error"]
    assert intake(db, now=now + datetime.timedelta(seconds=30), max_attempts=3, lock_seconds=60)[1]["intake_claimed"] == 0  # spaced out
    message, counters = intake(db, now=now + datetime.timedelta(seconds=61), max_attempts=3, lock_seconds=60)
    assert counters["intake_accepted"] == 1, message  # the cache answers again
    assert upstream_row(db, workflow_id)["parameters"] == {"engine": "pandajedi_wf", "wf_status": "parsed", "intake_attempts": 1}

    other = register(jedi_taskbuffer, request_for("http://127.0.0.1:9", "s.tar.gz"))  # nothing listens there
    for attempt in range(3):
        message, counters = intake(db, now=now + datetime.timedelta(seconds=200 + 61 * attempt), max_attempts=3, lock_seconds=60,
                                   timeout_seconds=2)
    assert counters["intake_given_up"] == 1, message
    assert workflow_row(db, other)["status"] == "failed"
    assert "after 3 attempts" in upstream_row(db, other)["parameters"]["error"]


def test_a_row_already_ours_is_only_answered(db, jedi_taskbuffer, cache):
    """A crash between our insert and the answer: the next claim answers without a second workflow."""
    from pandajedi_wf.api import submit_client_request
    from pandajedi_wf.taskbuffer import upstream_workflows

    cache_dir, url = cache
    workflow_id = register(jedi_taskbuffer, request_for(url, sandbox(cache_dir, "s.tar.gz", {"chain.yaml": CHAIN})))
    import tempfile

    with tempfile.TemporaryDirectory() as unpacked:
        Path(unpacked, "chain.yaml").write_text(CHAIN)
        request = upstream_workflows.claim_registered(db, "dying", __import__("pandajedi_wf.core.clock", fromlist=["utcnow"]).utcnow()
                                                      - datetime.timedelta(hours=1), 600, 1)[0].request
        assert submit_client_request(db, request, "Jane Doe", DN, unpacked, workflow_id=workflow_id, vo="wlcg").ok
    message, counters = intake(db)
    assert counters["intake_answered"] == 1, message
    assert upstream_row(db, workflow_id)["status"] == "running"
    assert db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_WF_WORKFLOWS')}")[0][0] == 1


def test_workflows_submitted_any_way_share_the_servers_id_space(db, jedi_taskbuffer, cache):
    from wf_db_support import submit

    cache_dir, url = cache
    first = register(jedi_taskbuffer, request_for(url, sandbox(cache_dir, "s.tar.gz", {"chain.yaml": CHAIN})))
    Path(cache_dir, "chain.yaml").write_text(CHAIN)
    ours = submit(db, "yaml", Path(cache_dir, "chain.yaml")).workflow_id
    second = register(jedi_taskbuffer, request_for(url, "s.tar.gz"))
    assert first < ours < second
    intake(db)
    assert {r[0] for r in db.query(f"SELECT workflow_id FROM {db.table('JEDI_WF_WORKFLOWS')}")} == {first, ours, second}


def test_intake_refuses_to_run_beside_upstreams_workflow_manager():
    from pandajedi_wf.daemons.upstream_intake import IntakeSettings, conflicting_manager

    config = "wlcg:any:pandajedi.jedidog.AtlasWorkflowManagerWatchDog:AtlasWorkflowManagerWatchDog:wf_manager"
    assert "AtlasWorkflowManagerWatchDog" in conflicting_manager(config)
    assert conflicting_manager("wlcg:any:pandajedi_wf.jedi_agents.workflow_watchdog:WorkflowProcessorWatchDog:wf_processor") is None
    assert IntakeSettings.from_options({}).enabled is False
    assert IntakeSettings.from_options({"intake": "on", "intake_batch_size": "5"}) == IntakeSettings(enabled=True, batch_size=5)
    with pytest.raises(ValueError, match="wf_processor_intake_batch_size must be an integer"):
        IntakeSettings.from_options({"intake": "on", "intake_batch_size": "five"})
    with pytest.raises(ValueError, match="wf_processor_intake must be on or off"):
        IntakeSettings.from_options({"intake": "maybe"})
