"""The monitor on a real PostgreSQL: snapshots of real workflows (submitted through the API and run by the processor
with the grid simulator), staging requests and heartbeats written through the taskbuffer modules, and the HTTP server
answering real GETs on 127.0.0.1."""

import datetime
import json
import time
import urllib.error
import urllib.request

import pytest

from wf_db_support import EXAMPLES, new_grid, run_until_quiet, submit, workflow_row

GB = 10**9
EVIL_NAME = "<script>alert('chain')</script> “ünï”"


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


def test_conditions_skips_critical_path_staging_and_incremental_live_on_a_real_workflow(db, jedi_taskbuffer):
    """branches.cwl under the processor and the grid simulator: ``produce`` ends, ``use_it`` (self.opt_inDS) runs long,
    ``fall_back`` (!self.opt_inDS) is skipped by the engine. The page's data says the conditions, why fall_back was
    skipped, the critical path through use_it, the staging of use_it's task, and a poll carries only what moved."""
    from pandajedi_wf.carousel.state import StagingRequest
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.monitor import page
    from pandajedi_wf.monitor.collect import MonitorSource
    from pandajedi_wf.taskbuffer import staging_relations
    from pandajedi_wf.taskbuffer import staging_requests as sr
    from pandajedi_wf_dev.simulators.grid import Fate

    wf = submit(db, "cwl", EXAMPLES / "branches.cwl", out_ds="user.dev.branches")
    assert wf.ok, wf.problems
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate(running_ticks=1 if "produce" in name else 30))
    now = utcnow()

    def cycle():
        workflow_processor.cycle(db, CycleStats(), jedi_taskbuffer, now=now, owner="monitor-test")

    def status_of(name):
        return db.query(f"SELECT status FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w AND name=:n", {":w": wf.workflow_id, ":n": name})[0][0]

    for _ in range(10):
        now += datetime.timedelta(minutes=2)
        cycle()
        if status_of("use_it") == "running":
            break
        grid.tick(now)
    source = MonitorSource(db, vo="wlcg")
    detail = source.dag(wf.workflow_id, now=now)
    steps = {s["name"]: s for s in detail["steps"]}
    assert [steps[n]["status"] for n in ("produce", "use_it", "fall_back")] == ["done", "running", "skipped"]
    assert (steps["use_it"]["condition_text"], steps["fall_back"]["condition_text"]) == ("self.opt_inDS", "!self.opt_inDS")
    assert steps["fall_back"]["skip_reason"] == "condition !self.opt_inDS is false"  # the engine's words, from the history
    assert steps["produce"]["skip_reason"] is None and steps["use_it"]["skip_reason"] is None
    # the critical path: use_it, estimated from produce (the only ended prun step), minus what it has run
    cp = detail["critical_path"]
    assert cp["known"] and cp["n_critical"] == 1 and cp["steps"] == [steps["use_it"]["node_key"]] and cp["overdue"] == [], cp
    times = dict(((i, (a, b)) for i, a, b in db.query(
        f"SELECT step_id, submit_intent_time, status_change_time FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w", {":w": wf.workflow_id})))
    produce_took = (times[steps["produce"]["step_id"]][1] - times[steps["produce"]["step_id"]][0]).total_seconds()
    use_it_ran = (now - times[steps["use_it"]["step_id"]][0]).total_seconds()
    assert cp["remaining_seconds"] == round(produce_took - use_it_ran) > 0, (produce_took, use_it_ran)
    assert steps["use_it"]["critical"] and not steps["produce"]["critical"] and not steps["fall_back"]["critical"]
    nodes = {n["name"]: n for n in detail["dag"]["nodes"]}
    assert nodes["use_it"]["critical"] and not nodes["fall_back"]["critical"]
    assert nodes["fall_back"]["skip_reasons"] == ["condition !self.opt_inDS is false"] and nodes["fall_back"]["condition_text"] == "!self.opt_inDS"

    # use_it's JEDI task waits on the carousel for a dataset: the carousel's own writes, the page reads them back
    task_id = steps["use_it"]["jedi_task_id"]
    t0 = time.time()
    request_id = sr.insert(db, StagingRequest(0, "mc16:branches.RAW", 10, 10 * GB, "dev.user", "User Analysis", "DISK_X", ("TAPE_A",)), "mc16", t0 - 3600, "test")
    staging_relations.add(db, request_id, [task_id], t0 - 3600)
    rec = sr.save(db, sr.get(db, request_id), "submitting", {"source": "TAPE_A"}, t0 - 3600, "test")
    rec = sr.save(db, rec, "staging", {"rule_id": "r-branches", "files_done": 4, "started_at": t0 - 3600, "last_progress_at": t0 - 600}, t0 - 600, "test")
    detail = source.dag(wf.workflow_id, now=now)
    (staged,) = detail["staging"][str(steps["use_it"]["step_id"])]
    assert (staged["request_id"], staged["status"], staged["files_staged"], staged["files_total"], staged["tape"]) == (request_id, "staging", 4, 10, "TAPE_A")
    assert staged["bytes_total"] == 10 * GB and 0 < staged["bytes_staged"] < 10 * GB and staged["jedi_task_id"] == task_id
    html = page.render_workflow_page(detail, None, None, None)
    assert f'data-request="{request_id}"' in html and "4 / 10 files" in html and "when !self.opt_inDS" in html
    assert 'class="node crit"' in html and "estimated remaining" in html

    # live: nothing moved since the page -> nothing sent; use_it ends -> that step (and what followed) only
    cursor = detail["cursor"]
    quiet = source.live(wf.workflow_id, cursor, now=now)
    assert quiet["steps"] == [] and quiet["critical_path"] is None and quiet["staging"] is None and not quiet["full"] and quiet["cursor"] == cursor
    sr.save(db, rec, "staging", {"files_done": 7, "last_progress_at": t0}, t0, "test")  # the carousel saw 3 more files
    staged_more = source.live(wf.workflow_id, cursor, now=now)
    assert staged_more["steps"] == [] and staged_more["staging"][str(steps["use_it"]["step_id"])][0]["files_staged"] == 7
    cursor = staged_more["cursor"]
    for _ in range(40):
        grid.tick(now)
        now += datetime.timedelta(minutes=2)
        cycle()
        if workflow_row(db, wf.workflow_id)["status"] == "done":
            break
    moved = source.live(wf.workflow_id, cursor, now=now)
    assert moved["workflow"]["status"] == "done"
    assert [(s["node_key"], s["status"]) for s in moved["steps"]] == [(steps["use_it"]["node_key"], "done")]
    assert moved["critical_path"]["n_critical"] == 0 and moved["cursor"] != cursor
    assert source.live(wf.workflow_id, moved["cursor"], now=now)["steps"] == []
    everything = source.live(wf.workflow_id, None, now=now)
    assert everything["full"] and len(everything["steps"]) == 3 and everything["staging"] and everything["critical_path"]


def test_carousel_history_follows_a_switched_request_from_the_carousels_own_records(db):
    """A request written as the carousel writes it (taskbuffer.staging_requests: each move recorded in the history with
    its reason): staging on TAPE_A, switched to TAPE_B for lack of progress, done there. The plots put its hours on each
    tape, its throughput on TAPE_B, and the period's list names the switch, the tapes and the reason."""
    from pandajedi_wf.carousel.state import StagingRequest
    from pandajedi_wf.monitor import collect, page
    from pandajedi_wf.taskbuffer import staging_requests as sr

    now = time.time()
    hour = 3600
    rid = sr.insert(db, StagingRequest(0, "mc16:switched.RAW", 8, 8 * GB, "dev.user", "User Analysis", "DISK_X", ("TAPE_A", "TAPE_B")), "mc16", now - 6 * hour, "test")
    rec = sr.save(db, sr.get(db, rid), "submitting", {"source": "TAPE_A", "tried": ("TAPE_A",)}, now - 6 * hour, "test")
    rec = sr.save(db, rec, "staging", {"rule_id": "r-a", "started_at": now - 6 * hour, "last_progress_at": now - 6 * hour}, now - 6 * hour, "test")
    why = "no new file for 3h00m on TAPE_A (stuck timeout 2h00m); TAPE_B holds a complete replica"
    rec = sr.save(db, rec, "switching", {"source": "TAPE_B", "switches": 1, "tried": ("TAPE_A", "TAPE_B"), "error": why}, now - 3 * hour, "test")
    rec = sr.save(db, rec, "staging", {"rule_id": "r-b", "error": ""}, now - 3 * hour, "test")
    sr.save(db, rec, "done", {"files_done": 8, "done_at": now - 1 * hour}, now - 1 * hour, "test")

    view = collect.carousel_history(db, "wlcg", hours=8, now=datetime.datetime.utcfromtimestamp(now))
    h = view["history"]
    on_a = [i for i, v in enumerate(h["files"]["TAPE_A"]) if v]
    on_b = [i for i, v in enumerate(h["files"]["TAPE_B"]) if v]
    assert on_a and on_b and max(on_a) < min(on_b)  # first on TAPE_A, then on TAPE_B, never both at once
    assert len(on_a) == 18 and len(on_b) == 12  # 3 h and 2 h of 10-minute samples
    assert list(h["throughput"]) == ["TAPE_B"] and max(h["throughput"]["TAPE_B"]) == pytest.approx(8 * GB / (2 * hour), rel=0.01)
    (event,) = h["events"]
    assert (event["request_id"], event["status"], event["from_tape"], event["to_tape"], event["reason"]) == (rid, "switching", "TAPE_A", "TAPE_B", why)
    html = page.render_carousel(view, None)
    assert 'id="carousel-events"' in html and "TAPE_A → TAPE_B" in html and "no new file for 3h00m on TAPE_A" in html
