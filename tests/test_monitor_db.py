"""The monitor on a real PostgreSQL: snapshots of real workflows (submitted through the API and run by the processor
with the grid simulator), staging requests and heartbeats written through the taskbuffer modules, and the HTTP server
answering real GETs on 127.0.0.1."""

import datetime
import json
import time
import urllib.error
import urllib.request

import pytest

from wf_db_support import EXAMPLES, make_db, new_grid, run_until_quiet, submit

GB = 10**9
EVIL_NAME = "<script>alert('chain')</script> “ünï”"


@pytest.fixture
def db(clean_db):
    database = make_db()
    yield database
    database.close()


def set_carousel_config(pg, document):
    conn = pg.connect("panda", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO doma_panda.config (app, component, key, value, type, vo, descr, value_json) "
                "VALUES ('pandajedi_wf', 'data_carousel', 'config', '', 'json', 'wlcg', 'carousel', %s)",
                (json.dumps(document),),
            )
    finally:
        conn.close()


def add_requests(db, now):
    """queued (no tape yet), staging on TAPE_A with no new file for 3 h, switching to TAPE_B; through the taskbuffer."""
    from pandajedi_wf.carousel.state import StagingRequest
    from pandajedi_wf.taskbuffer import staging_requests as sr

    def new(name, n_files):
        request = StagingRequest(0, f"mc16:{name}", n_files, n_files * GB, "dev.user", "User Analysis", "DISK_X", ("TAPE_A", "TAPE_B"))
        request_id = sr.insert(db, request, "mc16", now - 4 * 3600, "test")
        return sr.get(db, request_id)

    new("queued.RAW", 4)
    rec = new("stalled.RAW", 10)
    rec = sr.save(db, rec, "submitting", {"source": "TAPE_A", "tried": ("TAPE_A",)}, now - 4 * 3600, "test")
    rec = sr.save(db, rec, "staging", {"rule_id": "r1", "files_done": 2, "last_progress_at": now - 3 * 3600, "started_at": now - 4 * 3600}, now - 3 * 3600, "test")
    rec = new("switching.RAW", 6)
    rec = sr.save(db, rec, "submitting", {"source": "TAPE_A"}, now - 3600, "test")
    rec = sr.save(db, rec, "staging", {"rule_id": "r2", "files_done": 1, "last_progress_at": now - 1800}, now - 1800, "test")
    sr.save(db, rec, "switching", {"source": "TAPE_B", "switches": 1, "error": "TAPE_A made no progress; TAPE_B is idle"}, now - 60, "test")


@pytest.fixture
def scene(db, jedi_taskbuffer, pg, tmp_path):
    """Two users' workflows (one run to done by the processor, one refused at parsing, one just submitted), staging
    requests, tape throughput, heartbeats and a carousel config with per-tape limits."""
    from pandajedi_wf.api import submit_workflow
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.taskbuffer import agent_heartbeats, tape_stats

    chain = submit(db, "yaml", EXAMPLES / "native" / "chain.yaml", out_ds="user.dev.mon", name=EVIL_NAME)
    assert chain.ok, chain.problems
    status, _ = run_until_quiet(db, jedi_taskbuffer, new_grid(db, jedi_taskbuffer), chain.workflow_id)
    assert status == "done"
    waiting = submit(db, "yaml", EXAMPLES / "native" / "chain.yaml", out_ds="user.dev.mon2")
    bad = tmp_path / "broken.yaml"
    bad.write_text("steps:\n  top:\n    type: prun\n    inDS: '{nowhere}'\n    exec: x\n")
    refused = submit_workflow(db, language="yaml", spec=str(bad), base_dir=str(tmp_path), out_ds="user.carol.x", user_name="carol", vo="wlcg")
    assert not refused.ok and refused.workflow_id

    now = time.time()
    add_requests(db, now)
    tape_stats.save(db, {}, {"TAPE_A": 2.5e8}, ["TAPE_A"], now)
    set_carousel_config(pg, {"tapes": {"TAPE_A": {"max_files": 10, "max_bytes": 100 * GB}}, "release_threshold": 0.7,
                             "stuck_timeout_seconds": 7200, "disk_buffers": {"DISK_X": 40 * GB}})
    wall = utcnow()
    agent_heartbeats.record_cycle(db, "wf_processor", "h-1", "h", wall - datetime.timedelta(seconds=3), wall, "ok", "3 workflows", {"cycle_seconds": 0.2})
    old = wall - datetime.timedelta(hours=2)
    agent_heartbeats.record_cycle(db, "wf_carousel", "h-1", "h", old, old, "ok", "staging requests by status", {})
    return {"chain": chain.workflow_id, "waiting": waiting.workflow_id, "refused": refused.workflow_id}


def test_overview_snapshot_on_real_rows(db, scene):
    from pandajedi_wf.monitor import collect

    snap = collect.overview(db, {"wf_processor": 60, "wf_carousel": 300}, vo="wlcg")

    w = snap["workflows"]
    assert {u["user_name"]: u["counts"] for u in w["by_user"]} == {"carol": {"failed": 1}, "dev.user": {"done": 1, "parsed": 1}}
    recent = {r["workflow_id"]: r for r in w["recent"]}
    assert [r["workflow_id"] for r in w["recent"]] == sorted(scene.values(), reverse=True)
    assert recent[scene["chain"]]["name"] == EVIL_NAME
    assert recent[scene["chain"]]["steps_by_status"] == {"done": 2} and recent[scene["waiting"]]["n_steps"] == 0
    (failed,) = w["failed"]
    assert failed["workflow_id"] == scene["refused"] and "nowhere" in failed["error_dialog"]

    agents = {a["agent"]: a for a in snap["agents"]}
    assert agents["wf_processor"]["problem"] is None
    assert "no cycle for 2h00m" in agents["wf_carousel"]["problem"]
    assert not snap["healthy"]

    c = snap["carousel"]
    assert c["config_error"] is None and c["release_threshold"] == 0.7 and c["config_source"].endswith("vo=wlcg")
    assert c["requests_by_status"] == {"switching": 1, "staging": 1, "queued": 1}
    tapes = {t["tape"]: t for t in c["tapes"]}
    a = tapes["TAPE_A"]
    assert (a["files_in_flight"], a["bytes_in_flight"], a["max_files"]) == (8, 8 * GB, 10)
    assert a["state"] == "above release threshold" and a["throughput_bps"] == 2.5e8
    assert (tapes["TAPE_B"]["files_in_flight"], tapes["TAPE_B"]["max_files"]) == (5, 10_000)
    assert c["requests_without_tape"] == {"queued": 1}
    assert 4 * 3600 - 60 < c["oldest_queued_age_seconds"] < 4 * 3600 + 60
    assert c["buffers"] == [{"destination": "DISK_X", "bytes_held": 16 * GB, "limit_bytes": 40 * GB, "fill": 0.4}]
    reasons = {r["dataset"]: r["reason"] for r in c["troubled"]}
    assert reasons["mc16:switching.RAW"] == "switching source: TAPE_A made no progress; TAPE_B is idle"
    assert reasons["mc16:stalled.RAW"].startswith("no new file for 3h") and "stuck timeout 2h00m" in reasons["mc16:stalled.RAW"]
    assert "mc16:queued.RAW" not in reasons


def test_overview_for_one_user_and_bad_config_reported(db, scene, pg):
    from pandajedi_wf.monitor import collect

    conn = pg.connect("panda", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("UPDATE doma_panda.config SET value_json=%s WHERE app='pandajedi_wf'", (json.dumps({"tapes": {"TAPE_A": {"max_file": 3}}}),))
    conn.close()
    snap = collect.overview(db, {"wf_processor": 60}, user_name="carol", vo="wlcg")
    assert [r["workflow_id"] for r in snap["workflows"]["recent"]] == [scene["refused"]]
    assert [u["user_name"] for u in snap["workflows"]["by_user"]] == ["carol"]
    assert "unknown key 'max_file' in 'tapes.TAPE_A'" in snap["carousel"]["config_error"]
    assert not snap["healthy"]


def test_workflow_detail_has_the_dag_task_ids_and_history(db, scene):
    from pandajedi_wf.monitor import collect

    detail = collect.workflow_detail(db, scene["chain"])
    steps = {s["name"]: s for s in detail["steps"]}
    assert detail["levels"] == [[steps["top"]["node_key"]], [steps["bottom"]["node_key"]]]
    assert steps["bottom"]["parents"] == [steps["top"]["node_key"]]
    tasks = dict(db.query(f"SELECT taskName, jediTaskID FROM {db.table('JEDI_Tasks')}"))
    for s in steps.values():
        assert s["jedi_task_id"] == tasks[s["task_name"]] and s["jedi_status"] == "done" and s["status"] == "done"
    assert detail["history"][0]["to"] == "done" and detail["history"][-1]["from"] is None  # newest first
    assert any(h["entity"] == "step" and h["key"] == steps["bottom"]["node_key"] for h in detail["history"])
    with pytest.raises(collect.WorkflowNotFound, match="no workflow with id 987654321"):
        collect.workflow_detail(db, 987654321)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def test_http_server_answers_pages_json_and_clear_404s(db, scene):
    from pandajedi_wf.monitor.collect import MonitorSource
    from pandajedi_wf.monitor.server import make_server, serve_in_thread

    server = make_server(MonitorSource(db, vo="wlcg"), "127.0.0.1", 0, on_error=db.close)
    thread = serve_in_thread(server)
    base = "http://127.0.0.1:%d" % server.server_address[1]
    try:
        code, kind, page = get(base + "/")
        assert code == 200 and kind.startswith("text/html")
        assert "&lt;script&gt;alert(&#x27;chain&#x27;)&lt;/script&gt; “ünï”" in page and "<script>" not in page
        code, kind, body = get(base + "/json?user=carol")
        assert code == 200 and kind.startswith("application/json")
        assert [r["workflow_id"] for r in json.loads(body)["workflows"]["recent"]] == [scene["refused"]]
        code, _, page = get(f"{base}/workflow/{scene['chain']}")
        assert code == 200 and page.count('<g class="node"') == 2 and page.count('<path class="edge') == 1 and "read-only" in page
        code, _, body = get(f"{base}/workflow/{scene['chain']}/json")
        assert code == 200 and json.loads(body)["workflow"]["workflow_id"] == scene["chain"]
        code, kind, page = get(base + "/workflow/987654321")
        assert code == 404 and kind.startswith("text/html") and "no workflow with id 987654321" in page
        code, _, body = get(base + "/workflow/987654321/json")
        assert code == 404 and json.loads(body) == {"error": "no workflow with id 987654321", "status": 404}
        code, _, page = get(base + "/workflow/abc")
        assert code == 404 and "&#x27;abc&#x27; is not a workflow id" in page
        code, _, page = get(base + "/nothing")
        assert code == 404 and "no page" in page
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_once_writes_the_overview_page(db, scene, tmp_path):
    from pandajedi_wf.monitor.__main__ import main

    out = tmp_path / "overview.html"
    assert main(["--once", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "TAPE_A" in page and "carol" in page and "<script>" not in page
