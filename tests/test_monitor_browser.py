"""The workflow page in a real browser (Debian's headless Chromium over the DevTools protocol, tests/cdp_browser.py),
served by the monitor on 127.0.0.1 from the test PostgreSQL, with a scatter workflow moving under the grid simulator.

The trusted front end is played by the browser itself: it adds the identity headers the monitor is configured to
trust (what Apache with mod_ssl would put there after verifying the certificate).
"""

import datetime
import json
import time
import urllib.error
import urllib.request

import pytest

from cdp_browser import Browser, chromium_path
from wf_db_support import make_db, new_grid, submit

INPUTS = ["mc23_dev:mc23_dev.800001.Browser_a.simul.HITS.e1_s1_tid00000011_00", "mc23_dev:mc23_dev.800002.Browser_b.simul.HITS.e1_s1_tid00000012_00"]
BODY = """
name: body
inputs:
  signal: "%s"
outputs:
  outDS:
    from: combine/outDS
    output_types: [aaa.root]
steps:
  select:
    type: prun
    inDS: "{signal}"
    args: "--outputs sel.root"
    exec: "echo %%IN > sel.root"
  premix:
    type: prun
    inDS: select/outDS
    args: "--outputs mix.root"
    exec: "echo %%IN > mix.root"
  combine:
    type: prun
    inDS: premix/outDS
    args: "--outputs aaa.root"
    exec: "echo %%IN > aaa.root"
""" % INPUTS[0]
MAIN = """
name: browser_scatter
inputs:
  signals: [%s]
outputs:
  final:
    from: merge/outDS
    output_types: [merged.root]
steps:
  per_signal:
    type: workflow
    workflow_ref: body.yaml
    scatter_inputs:
      signal: signals
  merge:
    type: prun
    inDS: per_signal/outDS
    args: --outputs merged.root
    exec: "merge.sh merged.root %%IN"
""" % ", ".join(f'"{d}"' for d in INPUTS)
OWNER = "/DC=org/DC=test/OU=Users/CN=dev.user"
MALLORY = "/DC=org/DC=test/OU=Users/CN=mallory/CN=Mallory Evil"
DN_HEADER, FQANS_HEADER = "X-Test-Verified-DN", "X-Test-Verified-FQANs"
GB = 10**9

pytestmark = pytest.mark.skipif(
    chromium_path() is None,
    reason="Debian's chromium is not installed and could not be: bin/_bootstrap.sh runs 'apt-get install -y chromium chromium-driver'",
)


@pytest.fixture
def monitor(clean_db):
    """The monitor on its own connection, trusting the two test headers; page polls twice a second."""
    from pandajedi_wf.monitor.collect import MonitorSource
    from pandajedi_wf.monitor.identity import IdentityHeaders
    from pandajedi_wf.monitor.server import make_server, serve_in_thread

    server_db = make_db()
    server = make_server(MonitorSource(server_db, vo="wlcg"), "127.0.0.1", 0, on_error=server_db.close,
                         identity_headers=IdentityHeaders(DN_HEADER, FQANS_HEADER), task_url="https://bigpanda.example/task/{task_id}/",
                         poll_ms=500)
    thread = serve_in_thread(server)
    server.base = "http://127.0.0.1:%d" % server.server_address[1]
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    server_db.close()


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "chromium-profile")
    yield b
    b.close()


def cycle(db, task_buffer, now):
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    workflow_processor.cycle(db, CycleStats(), task_buffer, now=now, owner="browser-test")


def jedi_commando(task_buffer, db, now):
    """JEDI picks the kill up (PRODSYS_COMM -> aborting) and, simulated, the task ends aborted."""
    from pandajedi_wf_dev.simulators import grid_sql

    task_buffer.getTasksToExecCommand_JEDI("wlcg", "user")
    for task in grid_sql.tasks_in_status(db, "wlcg", ("aborting", "toabort")):
        with db.transaction():
            grid_sql.set_task_status(db, int(task["jeditaskid"]), "aborted", now)


def commands(db, workflow_id):
    return db.query_dicts(f"SELECT command, requester, status, message FROM {db.table('JEDI_WF_COMMANDS')} WHERE workflow_id=:w "
                          "ORDER BY command_id", {":w": workflow_id})


def wf_status(db, workflow_id):
    return db.query(f"SELECT status FROM {db.table('JEDI_WF_WORKFLOWS')} WHERE workflow_id=:w", {":w": workflow_id})[0][0]


def submit_files(db, folder, files, out_ds):
    """Write the description files into ``folder`` and submit ``main.yaml`` through the API; the workflow's id."""
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    result = submit(db, "yaml", folder / "main.yaml", out_ds=out_ds)
    assert result.ok, result.problems
    return result.workflow_id


@pytest.fixture
def moving(db, jedi_taskbuffer, tmp_path):
    """A scatter workflow (two copies of a three-step sub-workflow, then a merge) with its first tasks running."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf_dev.simulators.grid import Fate

    workflow_id = submit_files(db, tmp_path / "sandbox", {"body.yaml": BODY, "main.yaml": MAIN}, "user.dev.browser")
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate(running_ticks=50), datasets=INPUTS)
    now = utcnow()
    for _ in range(4):
        cycle(db, jedi_taskbuffer, now)
        grid.tick(now)
        now += datetime.timedelta(seconds=30)
    assert wf_status(db, workflow_id) == "running"
    return {"workflow_id": workflow_id, "grid": grid, "now": now}


def test_dag_drawn_owner_kill_executed_live_and_another_users_kill_refused(db, jedi_taskbuffer, moving, monitor, browser, tmp_path):
    wf = moving["workflow_id"]
    page = f"{monitor.base}/workflow/{wf}"
    detail = json.loads(urllib.request.urlopen(page + "/json", timeout=10).read())
    layout = detail["dag"]

    browser.headers({DN_HEADER: OWNER})
    browser.open(page)
    n_nodes = browser.js("document.querySelectorAll('svg.dag g.node').length")
    n_edges = browser.js("document.querySelectorAll('svg.dag path.edge').length")
    assert (n_nodes, n_edges) == (len(layout["nodes"]), len(layout["edges"]))
    assert n_nodes >= 4 and n_edges >= 3, layout  # the scattered body's steps and the merge, joined
    assert browser.js("document.querySelectorAll('svg.dag rect.frame').length") == 1  # the scattered sub-workflow, opened
    assert browser.js("[...document.querySelectorAll('svg.dag g.node')].some(g => g.dataset.status === 'running')")
    # a node opens its panel: each copy with its JEDI task, linked to PanDA's monitor
    browser.click("svg.dag g.node[data-status=running]")
    browser.wait("document.getElementById('node-panel').classList.contains('open')", what="the node panel")
    assert browser.js("document.querySelectorAll('#node-panel a[href^=\"https://bigpanda.example/task/\"]').length") >= 1
    browser.screenshot(tmp_path / "dag-running.png", 1280, 800)

    # another user: the button is there (any verified user may ask), the refusal comes back with the reason, stored
    browser.headers({DN_HEADER: MALLORY, FQANS_HEADER: "/wlcg/Role=NULL/Capability=NULL"})
    browser.open(page)
    browser.click("button[data-command=kill]")
    browser.wait("!document.getElementById('confirm').hidden", what="the kill confirmation")
    assert "cannot be undone" in browser.js("document.getElementById('confirm-text').textContent")
    browser.click("#confirm-yes")
    browser.wait("document.getElementById('action-result').dataset.status === 'refused'", what="the refusal")
    shown = browser.js("document.getElementById('action-result').textContent")
    assert "permission denied" in shown and "Mallory Evil" in shown, shown
    (refused,) = commands(db, wf)
    assert (refused["command"], refused["requester"], refused["status"]) == ("kill", MALLORY, "refused")
    assert wf_status(db, wf) == "running"

    # the owner: kill is stored, the processor executes it, the page shows it without being reloaded
    browser.headers({DN_HEADER: OWNER})
    browser.open(page)
    browser.js("window.__same_page = 'yes'")
    browser.click("button[data-command=kill]")
    browser.wait("!document.getElementById('confirm').hidden", what="the kill confirmation")
    browser.click("#confirm-yes")
    browser.wait("document.getElementById('action-result').dataset.status === 'queued'", what="the queued answer")
    assert [(c["command"], c["requester"], c["status"]) for c in commands(db, wf)][-1] == ("kill", OWNER, "queued")
    now, grid = moving["now"], moving["grid"]
    for _ in range(6):
        now += datetime.timedelta(seconds=30)
        cycle(db, jedi_taskbuffer, now)
        if wf_status(db, wf) == "cancelled":
            break
        grid.tick(now)
        jedi_commando(jedi_taskbuffer, db, now)
    assert wf_status(db, wf) == "cancelled"
    assert commands(db, wf)[-1]["status"] == "done"
    browser.wait("document.getElementById('wf-status').textContent === 'cancelled'", what="the page to show cancelled")
    browser.wait("[...document.querySelectorAll('svg.dag g.node')].every(g => ['cancelled', 'done', 'skipped'].includes(g.dataset.status))",
                 what="every node to show an ended status")
    assert browser.js("window.__same_page") == "yes"  # updated in place, never reloaded
    assert browser.js("document.querySelector('svg.dag g.frame tspan.fs').textContent") == "cancelled"  # the scatter's own steps too
    assert browser.js("document.querySelectorAll('#commands-body tr[data-status=refused]').length") == 1
    browser.screenshot(tmp_path / "dag-cancelled.png", 1280, 800)
    print(f"screenshots: {tmp_path / 'dag-running.png'} {tmp_path / 'dag-cancelled.png'}")


def test_without_identity_the_page_is_read_only(db, moving, monitor, browser):
    wf = moving["workflow_id"]
    browser.open(f"{monitor.base}/workflow/{wf}")
    assert browser.js("document.querySelectorAll('svg.dag g.node').length") >= 4
    assert browser.js("document.querySelectorAll('form.action, button[data-command]').length") == 0
    assert browser.js("!!document.getElementById('read-only') && !!document.getElementById('no-actions')")
    # a POST without the header is refused before anything is stored
    request = urllib.request.Request(f"{monitor.base}/workflow/{wf}/command", data=b"command=kill&confirmed=1&csrf=1.x",
                                     headers={"Accept": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 403 and "read-only" in json.loads(err.value.read())["message"]
    # a forged token with a real identity header is refused too
    request = urllib.request.Request(f"{monitor.base}/workflow/{wf}/command", data=b"command=kill&confirmed=1&csrf=1.x",
                                     headers={"Accept": "application/json", DN_HEADER: OWNER}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 403 and "token" in json.loads(err.value.read())["message"]
    assert commands(db, wf) == []


def test_find_by_task_and_the_carousel_over_time(db, moving, monitor, browser, tmp_path, pg):
    from pandajedi_wf.carousel.state import StagingRequest
    from pandajedi_wf.taskbuffer import staging_requests as sr
    from pandajedi_wf.taskbuffer import tape_stats

    wf = moving["workflow_id"]
    task_id = db.query(f"SELECT MIN(jedi_task_id) FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w", {":w": wf})[0][0]
    browser.open(f"{monitor.base}/workflows?task={task_id}")
    assert browser.js("location.pathname") == f"/workflow/{wf}"
    browser.open(f"{monitor.base}/workflows?name=browser&status=running")
    assert browser.js("document.querySelectorAll('#found tr').length") == 2  # header + the workflow

    now = time.time()
    for k, (tape, hours_ago, took, n) in enumerate([("TAPE_A", 20, 3, 40), ("TAPE_A", 9, 2, 25), ("TAPE_B", 6, 4, 60), ("TAPE_B", 2, None, 30), ("TAPE_A", 1, None, 12)]):
        rec = sr.get(db, sr.insert(db, StagingRequest(0, f"mc16:plot{k}.RAW", n, n * 2 * GB, "dev.user", "User Analysis", "DISK_X", (tape,)), "mc16", now - hours_ago * 3600, "test"))
        rec = sr.save(db, rec, "submitting", {"source": tape}, now - hours_ago * 3600, "test")
        rec = sr.save(db, rec, "staging", {"rule_id": f"r{k}", "started_at": now - hours_ago * 3600, "last_progress_at": now - 600}, now - hours_ago * 3600, "test")
        if took:
            sr.save(db, rec, "done", {"done_at": now - (hours_ago - took) * 3600, "files_done": n}, now - (hours_ago - took) * 3600, "test")
    # one recall the carousel moved: stuck on TAPE_A, switched to TAPE_B, still staging there (as cycle.py writes it)
    rec = sr.get(db, sr.insert(db, StagingRequest(0, "mc16:plot_switched.RAW", 20, 20 * 2 * GB, "dev.user", "User Analysis", "DISK_X", ("TAPE_A", "TAPE_B")), "mc16", now - 12 * 3600, "test"))
    rec = sr.save(db, rec, "submitting", {"source": "TAPE_A", "tried": ("TAPE_A",)}, now - 12 * 3600, "test")
    rec = sr.save(db, rec, "staging", {"rule_id": "rs", "started_at": now - 12 * 3600, "last_progress_at": now - 12 * 3600}, now - 12 * 3600, "test")
    rec = sr.save(db, rec, "switching", {"source": "TAPE_B", "switches": 1, "tried": ("TAPE_A", "TAPE_B"), "last_progress_at": now - 5 * 3600,
                                         "error": "no new file for 7h00m on TAPE_A (stuck timeout 6h00m); TAPE_B is idle"}, now - 5 * 3600, "test")
    sr.save(db, rec, "staging", {"rule_id": "rs2", "error": "", "files_done": 6, "last_progress_at": now - 1800}, now - 5 * 3600, "test")
    tape_stats.save(db, {}, {"TAPE_A": 2.5e8, "TAPE_B": 1.1e8}, ["TAPE_A", "TAPE_B"], now)
    conn = pg.connect("panda", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO doma_panda.config (app, component, key, value, type, vo, descr, value_json) VALUES "
                    "('pandajedi_wf', 'data_carousel', 'config', '', 'json', 'wlcg', 'carousel', %s)",
                    (json.dumps({"tapes": {"TAPE_A": {"max_files": 60, "max_bytes": 150 * GB}, "TAPE_B": {"max_files": 80, "max_bytes": 200 * GB}},
                                 "disk_buffers": {"DISK_X": 400 * GB}}),))
    conn.close()
    browser.open(f"{monitor.base}/carousel?hours=24")
    assert browser.js("document.querySelectorAll('#charts svg.chart').length") == 4
    series = browser.js("[...document.querySelectorAll('#charts polyline.series')].map(p => p.dataset.series)")
    assert series.count("TAPE_A") == 3 and series.count("TAPE_B") == 3 and series.count("DISK_X") == 1
    moves = browser.js("[...document.querySelectorAll('#carousel-events tr[data-status]')].map(r => r.textContent)")
    assert len(moves) == 1 and "TAPE_A → TAPE_B" in moves[0] and "no new file for 7h00m on TAPE_A" in moves[0], moves
    browser.screenshot(tmp_path / "carousel.png", 1280, 800)
    print(f"screenshot: {tmp_path / 'carousel.png'}")


ONE_STEP_BODY = """
name: one_step
inputs:
  signal: ""
outputs:
  outDS:
    from: sim/outDS
    output_types: [sim.root]
steps:
  sim:
    type: prun
    inDS: "{signal}"
    args: "--outputs sim.root"
    exec: "echo %IN > sim.root"
"""
WIDE = 999  # copies: one prep step, 999 sub-workflows of one step each (1,998 rows), a merge: 2,000 steps


def wide_main(datasets):
    return (
        "name: browser_wide\ninputs:\n  signals: [%s]\noutputs:\n  final:\n    from: merge/outDS\n    output_types: [merged.root]\n"
        "steps:\n  prep:\n    type: prun\n    inDS: \"%s\"\n    args: --outputs prep.root\n    exec: \"echo %%IN > prep.root\"\n"
        "  per_signal:\n    type: workflow\n    workflow_ref: body.yaml\n    scatter_inputs:\n      signal: signals\n"
        "  merge:\n    type: prun\n    inDS: per_signal/outDS\n    args: --outputs merged.root\n    exec: \"merge.sh merged.root %%IN\"\n"
    ) % (", ".join(f'"{d}"' for d in datasets), INPUTS[1])


def test_a_2000_step_page_updates_a_node_in_place_with_a_small_payload(db, jedi_taskbuffer, monitor, browser, tmp_path):
    """2,000 steps under the processor (at most 3 JEDI submissions per workflow and cycle, the operator's knob) and
    the grid simulator: the page draws a handful of nodes, and when the processor moves ``prep`` to running the page
    shows it without a reload, from a poll that carried the few steps that changed, not the 2,000."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.daemons.workflow_processor import ProcessorSettings
    from pandajedi_wf_dev.simulators.grid import Fate

    datasets = [f"mc23_dev:mc23_dev.9{k:05d}.Wide.simul.HITS.e1_s1_tid{k:08d}_00" for k in range(WIDE)]
    wf = submit_files(db, tmp_path / "wide", {"body.yaml": ONE_STEP_BODY, "main.yaml": wide_main(datasets)}, "user.dev.wide")
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate(running_ticks=50), datasets=INPUTS + datasets[:40])
    capped = ProcessorSettings(max_submissions_per_workflow=3)
    now = utcnow()

    def n_steps():
        return db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w", {":w": wf})[0][0]

    def prep_status():
        return db.query(f"SELECT status FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w AND name='prep'", {":w": wf})[0][0]

    for _ in range(6):
        now += datetime.timedelta(seconds=30)
        workflow_processor.cycle(db, CycleStats(), jedi_taskbuffer, now=now, owner="browser-test", settings=capped)
        if n_steps() == 2 + 2 * WIDE and prep_status() == "submitted":
            break
    assert n_steps() == 2000 and prep_status() == "submitted"

    page = f"{monitor.base}/workflow/{wf}"
    browser.open(page)
    data = browser.js("JSON.parse(document.getElementById('wf-data').textContent)")
    assert data["n_steps"] == 2000 and len(data["steps"]) == 2000
    n_nodes = browser.js("document.querySelectorAll('svg.dag g.node').length")
    assert 3 <= n_nodes <= 6, n_nodes  # prep, the scattered body (its 999 copies one node), merge: grouped, not 2,000 boxes
    assert browser.js("document.querySelector('svg.dag g.node[data-node=\"001\"]').dataset.status") == "submitted"
    page_bytes = browser.js("document.documentElement.outerHTML.length")
    browser.js("window.__same_page = 'yes'; document.querySelector('svg.dag').dataset.mark = 'first'")
    browser.wait("document.getElementById('live').dataset.steps === '0'", what="a poll with nothing to send")

    grid.tick(now)  # JEDI: prep's task (and the few submitted copies') starts running
    now += datetime.timedelta(seconds=30)
    workflow_processor.cycle(db, CycleStats(), jedi_taskbuffer, now=now, owner="browser-test", settings=capped)
    assert prep_status() == "running"
    browser.wait("document.querySelector('svg.dag g.node[data-node=\"001\"]').dataset.status === 'running'", what="prep's node to show running")
    assert browser.js("window.__same_page") == "yes" and browser.js("document.querySelector('svg.dag').dataset.mark") == "first"
    assert browser.js("document.querySelector('svg.dag g.node[data-node=\"001\"] text.st').textContent") == "running"
    counts = browser.js("[...document.querySelectorAll('svg.dag g.node')].find(g => g.querySelector('text.nm').textContent.startsWith('sim ×999'))"
                        ".querySelector('text.st').textContent")
    assert len(counts) <= 34 and " · " in counts, counts  # the copies' counts per status, kept inside the box
    largest = int(browser.js("document.getElementById('live').dataset.maxBytes"))
    most_steps = int(browser.js("document.getElementById('live').dataset.maxSteps"))
    full = len(urllib.request.urlopen(f"{page}/live", timeout=30).read())  # what a poll without a cursor gets: every step
    assert most_steps <= 10, most_steps  # prep, the copies that started, the next 3 submitted
    assert largest < 6000 and full > 40 * largest and page_bytes > 50 * largest, (largest, full, page_bytes)
    browser.screenshot(tmp_path / "wide.png", 1280, 800)
    print(f"RESULT live update payload {largest} bytes for {most_steps} changed steps; full resync {full} bytes; page {page_bytes} bytes")


# MAIN with a first step and two conditional branches on it (one runs, one is skipped by the engine)
COND_MAIN = MAIN.replace("name: browser_scatter", "name: browser_paths").replace("steps:\n", """steps:
  prep:
    type: prun
    inDS: "%s"
    args: --outputs prep.root
    exec: "echo %%IN > prep.root"
  check:
    type: prun
    inDS: prep/outDS
    args: --outputs check.txt
    exec: "check.sh %%IN > check.txt"
    when: "$(self.opt_inDS)"
  fall_back:
    type: prun
    inDS: prep/outDS
    args: --outputs report.txt
    exec: "echo no prep output > report.txt"
    when: "$(!self.opt_inDS)"
""" % INPUTS[1], 1)


def test_the_critical_path_conditions_and_a_skipped_branch_are_drawn(db, jedi_taskbuffer, monitor, browser, tmp_path):
    """prep and the scattered bodies' first steps end quickly, the rest runs long: the page marks the critical path
    (premix -> combine -> merge through the scatter's frame) with the remaining time, labels the two conditional
    edges with their conditions, and the skipped fall_back says why; the live updates keep the marks."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf_dev.simulators.grid import Fate

    wf = submit_files(db, tmp_path / "paths", {"body.yaml": BODY, "main.yaml": COND_MAIN}, "user.dev.paths")
    quick = ("_prep", "_select")
    grid = new_grid(db, jedi_taskbuffer, fate=lambda name: Fate(running_ticks=1 if any(q in name for q in quick) else 60), datasets=INPUTS)
    now = utcnow()

    def statuses():
        return dict(db.query(f"SELECT name, MAX(status) FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w GROUP BY name", {":w": wf}))

    for _ in range(12):
        now += datetime.timedelta(minutes=2)
        cycle(db, jedi_taskbuffer, now)
        s = statuses()
        if s.get("premix") == "running" and s.get("fall_back") == "skipped":
            break
        grid.tick(now)
    s = statuses()
    assert (s["prep"], s["select"], s["fall_back"], s["premix"]) == ("done", "done", "skipped", "running"), s

    # one premix task waits on the carousel for a dataset (written as the carousel writes it)
    from pandajedi_wf.carousel.state import StagingRequest
    from pandajedi_wf.taskbuffer import staging_relations
    from pandajedi_wf.taskbuffer import staging_requests as sr

    task_id = db.query(f"SELECT MIN(jedi_task_id) FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w AND name='premix'", {":w": wf})[0][0]
    t0 = time.time()
    rid = sr.insert(db, StagingRequest(0, "mc16:premix_pileup.RAW", 12, 12 * GB, "dev.user", "User Analysis", "DISK_X", ("TAPE_A",)), "mc16", t0 - 1800, "test")
    staging_relations.add(db, rid, [task_id], t0 - 1800)
    rec = sr.save(db, sr.get(db, rid), "submitting", {"source": "TAPE_A", "tried": ("TAPE_A",)}, t0 - 1800, "test")
    rec = sr.save(db, rec, "staging", {"rule_id": "r-pileup", "files_done": 5, "started_at": t0 - 1800, "last_progress_at": t0 - 60}, t0 - 60, "test")

    browser.headers({DN_HEADER: OWNER})
    browser.open(f"{monitor.base}/workflow/{wf}")
    staged = browser.js("[...document.querySelectorAll('#staging tr[data-request]')].map(r => r.textContent)")
    assert len(staged) == 1 and "mc16:premix_pileup.RAW" in staged[0] and "5 / 12 files" in staged[0] and "TAPE_A → DISK_X" in staged[0], staged
    crit = browser.js("[...document.querySelectorAll('svg.dag g.node.crit')].map(g => g.dataset.node)")
    names = browser.js("Object.fromEntries(Object.entries(JSON.parse(document.getElementById('wf-data').textContent).nodes).map(([k, n]) => [k, n.name]))")
    assert sorted(names[k] for k in crit) == ["combine", "merge", "premix"], (crit, names)
    assert browser.js("document.querySelectorAll('svg.dag path.edge.crit').length") == 2  # premix -> combine -> merge
    assert browser.js("document.querySelectorAll('svg.dag g.frame.crit').length") == 1  # the scatter's frame
    cp_text = browser.js("document.getElementById('cp').textContent")
    assert "critical path: premix → combine → merge (7 step(s))" in cp_text and "estimated remaining" in cp_text, cp_text  # copies and containers count
    labels = browser.js("[...document.querySelectorAll('svg.dag text.cl')].map(t => t.textContent).sort()")
    assert labels == ["when !self.opt_inDS", "when self.opt_inDS"], labels
    skipped = browser.js("[...document.querySelectorAll('svg.dag g.node[data-status=skipped] text')].map(t => t.textContent)")
    assert skipped[1:] == ["skipped, as:", "condition !self.opt_inDS is false"], skipped
    assert "condition !self.opt_inDS is false" in browser.js("document.querySelector('svg.dag g.node[data-status=skipped] title').textContent")
    premix = next(k for k in crit if names[k] == "premix")
    browser.click(f"svg.dag g.node[data-node='{premix}']")
    browser.wait("document.getElementById('node-panel').classList.contains('open')", what="the node panel")
    panel = browser.js("document.getElementById('node-panel').textContent")
    assert "on the critical path" in panel and "staging mc16:premix_pileup.RAW: staging, 5/12 files" in panel and "TAPE_A" in panel, panel
    browser.wait("+(document.body.dataset.polls || 0) >= 2", what="two live polls")
    browser.js("window.__same_page = 'yes'")
    sr.save(db, rec, "staging", {"files_done": 9, "last_progress_at": time.time()}, time.time(), "test")  # 4 more files arrive
    browser.wait("document.querySelector('#staging tr[data-request]').textContent.includes('9 / 12 files')", what="the staging row to move live")
    assert browser.js("window.__same_page") == "yes"
    assert browser.js("document.querySelectorAll('svg.dag g.node.crit').length") == 3  # the polls keep the marks
    assert "premix → combine → merge" in browser.js("document.getElementById('cp').textContent")
    browser.js("document.getElementById('node-panel').className = ''; document.querySelectorAll('g.node.sel').forEach(x => x.classList.remove('sel'))")
    browser.screenshot(tmp_path / "dag-critical.png", 1280, 760)
    print(f"screenshot: {tmp_path / 'dag-critical.png'}")


def test_pre_stages_on_the_workflow_page_and_the_carousel_page(db, pg, jedi_taskbuffer, monitor, browser, tmp_path):
    """Two workflows pre-stage one tape dataset (rows made by the processor and the carousel cycle, as in
    tests/test_workflow_prestage_db.py): the workflow page lists the pre-stage with its state and the request it
    joined, redraws it in place when its request moves, and keeps it while the page polls; the carousel page names
    the request's workflows."""
    from test_workflow_prestage_db import LONG_SPEC, SPEC, carousel, config, request_of, start_workflow, tape_simulator

    from pandajedi_wf_dev.simulators.tape import SimDataset

    dataset = "mc16:mc16.browser.RAW"
    sim = tape_simulator([SimDataset(dataset, (GB,) * 2, ("TAPE_A",))])
    lead0 = config(prestage_lead_seconds=0)
    late, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, dataset, "user.dev.browser_late", LONG_SPEC)
    carousel(db, sim, jedi_taskbuffer, lead0)
    browser.open(f"{monitor.base}/workflow/{late}")
    browser.js("window.__same_page = 'yes'")
    assert browser.js("document.querySelector('#prestages tr[data-state]').dataset.state") == "queued"  # not due for an hour
    soon, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, dataset, "user.dev.browser_soon", SPEC)
    carousel(db, sim, jedi_taskbuffer, lead0)  # soon's pre-stage joins the request, now due: staging
    (request,) = request_of(pg, dataset)
    browser.wait("document.querySelector('#prestages tr[data-state]').dataset.state === 'staging'", what="the live update of the pre-stage")
    assert browser.js("window.__same_page") == "yes"  # redrawn in place, not reloaded

    browser.open(f"{monitor.base}/workflow/{soon}")
    rows = "[...document.querySelectorAll('#prestages tr[data-state]')]"
    assert browser.js(f"{rows}.map(r => [r.dataset.dataset, r.dataset.state, r.dataset.request])") == [[dataset, "staging", str(request["request_id"])]]
    text = browser.js(f"{rows}[0].textContent")
    assert "joined" in text and "TAPE_A" in text and "002" in text, text
    assert browser.js("!document.getElementById('prestage-section').hidden")
    browser.wait("document.getElementById('live').textContent.startsWith('updated')", what="a live poll")
    time.sleep(1.2)  # a few polls: the section stays
    assert browser.js(f"{rows}.length") == 1

    browser.open(f"{monitor.base}/carousel?hours=24")
    row = f"document.querySelector('#prestage-requests tr[data-request=\"{request['request_id']}\"]')"
    assert browser.js(f"[...{row}.querySelectorAll('[data-workflow]')].map(d => Number(d.dataset.workflow))") == [soon, late]
    assert browser.js(f"{row}.dataset.status") == "staging"
    browser.screenshot(tmp_path / "prestages.png", 1280, 800)
