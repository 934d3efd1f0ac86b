"""The main job, on one machine: a user submits with pchain_native, JEDI runs our plugins, the workflow runs to its end.

1. start an embedded PostgreSQL and load every schema (upstream PanDA/JEDI test tables, ours, iDDS views);
2. start upstream's PanDA server (its own WSGI app) behind a TLS front end doing Apache's job, with our workflow
   endpoints routed beside it;
3. a grid user (a real VOMS proxy) submits a three-step workflow with the real ``pchain_native`` (panda-client);
4. start upstream's JediMaster daemon with only our two WatchDog plugins in panda_jedi.cfg (intake switched on);
5. play the grid in this process (upstream TaskRefiner in-process, simulated pilots) while JEDI's processes
   take the request in and run the workflow; show what ``pbook`` shows the user, until the workflow ends;
6. the data carousel: a production task whose input is only on tape goes through upstream's TaskRefiner with our
   refiner plugin and upstream's ContentsFeeder (in this process); the carousel plugin inside JediMaster recalls the
   dataset through a real Rucio server (when ``.venv-rucio`` is there; this process completes the transfers, as
   FTS would) or from the tape simulator, and releases its files one by one; the task ends ``ready``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import re
import sys
import tempfile
import time
from pathlib import Path

DEMO_WORKFLOW = Path(__file__).with_name("demo_data") / "demo_chain.yaml"
# the carousel part: one dataset only on a simulated tape (one drive, ~8 s a file), read by one production task
TAPE_DATASET = "mc23_13p6TeV:mc23_13p6TeV.601229.demo.RAW"
TAPE_RSE = "DEV_SITE_TAPE"
TAPE_FILES = 6
FILE_BYTES = 1_600_000_000
RUCIO_FILE_SECONDS = 6  # on the real Rucio server, one transfer completed this often (there is no FTS here)


def say(text: str = "") -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/demo", description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=240, help="give up after this many seconds (default 240)")
    parser.add_argument("--period", type=int, default=5, help="WatchDog period of our plugins in seconds (default 5)")
    parser.add_argument("--serve", action="store_true", help="keep serving the monitor page at the end until Ctrl-C")
    parser.add_argument("--tape", choices=("auto", "rucio", "simulator"), default="auto",
                        help="where the carousel recalls from: a real Rucio server (needs .venv-rucio, made by bin/_bootstrap.sh), "
                             "the tape simulator, or Rucio when its virtualenv is there (default)")
    args = parser.parse_args(argv)

    from pandajedi_wf_dev.devdb.dev_environment import start_dev_environment
    from pandajedi_wf_dev.devdb.grid_identity import GridAuthority

    workdir = Path(tempfile.mkdtemp(prefix="pandajedi_wf_demo_"))
    workdir.chmod(0o711)
    say("== pandajedi_wf demo: workflows as JEDI entities, on an embedded PostgreSQL ==")
    grid_ca = GridAuthority(workdir / "grid")
    intake = {"wf_processor_intake": "on", "wf_processor_intake_vo": "wlcg", "wf_processor_intake_ca_path": str(grid_ca.ca_file)}
    from pandajedi_wf_dev.devdb import demo_tape

    use_rucio = args.tape == "rucio" or (args.tape == "auto" and _rucio_installed())
    # the carousel plugin in JediMaster: Rucio (its default, the server's client config in $RUCIO_CONFIG), or the tape simulator
    ddm_option = {"watchdog": {"wf_carousel_ddm": ""}} if use_rucio else demo_tape.DDM_OPTION
    pg, panda_home = start_dev_environment(workdir, watchdog_period=args.period, watchdog_options=intake, jedi_options=ddm_option)
    rucio = None
    try:
        rucio = _rucio_tape(pg, workdir) if use_rucio else None
    except Exception:
        pg.stop()
        raise
    tape_files = _rucio_files(rucio) if rucio else _tape_catalogue(workdir)
    say(f"[1/6] PostgreSQL {pg.port} up in {workdir}; schemas loaded (upstream PanDA/JEDI test tables, pandajedi_wf, iDDS views)")
    master = server = None
    try:
        from pandajedi_wf_dev.devdb.jedi_master import JediMasterProcess
        from pandajedi_wf_dev.devdb.panda_client import ensure_client_venv
        from pandajedi_wf_dev.devdb.panda_server import UpstreamPandaServer
        from pandajedi_wf_dev.devdb.upstream_agents import make_zombie_cleaner_harmless
        from pandajedi_wf.taskbuffer.connection import WfDatabase

        server = UpstreamPandaServer(panda_home, pg, workdir / "panda_server", grid=grid_ca, extra_routes=OUR_ROUTES).start()
        say(f"[2/6] upstream PanDA server 1.0.4 on {server.base_url} (TLS; our endpoints routed beside it: "
            f"get_workflow_details, <command>_native_workflow)")
        user, venv = grid_ca.user("alice"), ensure_client_venv()
        work = workdir / "alice"
        work.mkdir()
        (work / "demo_chain.yaml").write_text(DEMO_WORKFLOW.read_text())
        output = _client(user, server, work, venv, "pchain_native", "--wfd", "demo_chain.yaml", "--outDS", "user.alice.demo")
        match = re.search(r"'workflow_id': (\d+)", output)
        if match is None:
            say(f"pchain_native did not submit:\n{output}\nserver log:\n{server.log_tail()}")
            return 1
        workflow_id = int(match.group(1))
        say(f"[3/6] alice ({user.dn}) ran: pchain_native --wfd demo_chain.yaml --outDS user.alice.demo")
        for line in output.strip().splitlines()[-3:]:
            say(f"        {line}")

        master = JediMasterProcess(workdir / "jedi").start()
        cfg = (panda_home / "etc" / "panda" / "panda_jedi.cfg").read_text()
        watchdog = [line.strip() for line in cfg.splitlines()
                    if line.strip().startswith(("modConfig", "procConfig", "wf_processor_intake =")) and "wf_processor" in line]
        say(f"[4/6] upstream JediMaster running (pid {master.pid}); panda_jedi.cfg [watchdog]:")
        for line in watchdog:
            say(f"        {line}")

        make_zombie_cleaner_harmless()
        from pandajedi.jedicore.JediTaskBuffer import JediTaskBuffer

        from pandajedi_wf_dev.simulators.grid import GridSimulator

        db = WfDatabase()
        grid = GridSimulator(db, JediTaskBuffer(None, nDBConnection=1))
        say(f"[5/6] following workflow {workflow_id} (JEDI's WatchDog takes it in and runs it; this process plays the grid):")
        status = _follow(db, grid, master, workflow_id, args.timeout)
        say(f"\nalice: pbook show {workflow_id}")
        say(_indent(_client(user, server, work, venv, "pbook", "show", str(workflow_id))))
        say(f"alice: pbook show_native_workflow {workflow_id}")
        say(_indent(_client(user, server, work, venv, "pbook", "show_native_workflow", str(workflow_id), "--format", "plain")))
        staged = _carousel(db, grid.task_buffer, panda_home, tape_files, rucio, args.timeout)
        _summary(db, workflow_id, rucio is not None)
        _monitor_pages(db, workflow_id, workdir.parent / "pandajedi_wf_demo_monitor", args.period)
        _serve_monitor(workflow_id, args.period, args.serve)
        return 0 if status == "done" and staged else 1
    finally:
        if master is not None:
            master.stop()
        if server is not None:
            server.stop()
        if rucio is not None:
            rucio.stop()
        pg.stop()


# where a deployment's Apache routes our endpoints (README "Serving the workflow endpoints")
OUR_ROUTES = {
    f"{prefix}/api/v1/workflow/{name}": "pandajedi_wf.server.wsgi:application"
    for prefix in ("", "/server/panda")
    for name in ("get_workflow_details", *(f"{c}_native_workflow" for c in ("kill", "retry", "pause", "resume", "finish", "rerun")))
}


def _client(user, server, work, venv, *args) -> str:
    from pandajedi_wf_dev.devdb.panda_client import run_client

    done = run_client(list(args), user, server, work, venv=venv)
    return done.stdout + done.stderr


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.rstrip().splitlines())


def _follow(db, grid, master, workflow_id: int, timeout: int) -> str:
    from pandajedi_wf.taskbuffer import agent_heartbeats, workflows

    start = time.monotonic()
    last_line = None
    status = "?"
    while time.monotonic() - start < timeout:
        if not master.alive():
            say(f"JediMaster died:\n{master.output_tail()}")
            return "jedi-died"
        with contextlib.redirect_stdout(io.StringIO()):  # upstream's cursor prints its JSON rewrites to stdout
            grid.tick(datetime.datetime.utcnow())
        found = workflows.load(db, [workflow_id])
        status = found[workflow_id]["status"] if workflow_id in found else "registered (in upstream's table, not taken in yet)"
        steps = db.query(
            f"SELECT s.name, s.status, s.jedi_task_id, t.status FROM {db.table('JEDI_WF_STEPS')} s "
            f"LEFT JOIN {db.table('JEDI_Tasks')} t ON t.jediTaskID=s.jedi_task_id WHERE s.workflow_id=:w ORDER BY s.node_key",
            {":w": workflow_id},
        )
        beats = {b["agent"]: b["n_cycles"] for b in agent_heartbeats.list_heartbeats(db)}
        parts = [f"{name}={st}" + (f"(task {tid}: {ts})" if tid else "") for name, st, tid, ts in steps]
        line = f"workflow {status:9} | " + (", ".join(parts) or "no steps yet") + f" | plugin cycles {beats or 'none yet'}"
        if line != last_line:
            say(f"  +{time.monotonic() - start:5.1f}s {line}")
            last_line = line
        if status in ("done", "finished", "failed", "cancelled"):
            return status
        time.sleep(1)
    say(f"gave up after {timeout} s; workflow is {status}")
    return status


def _tape_catalogue(workdir: Path) -> list[str]:
    """The simulated tape the carousel plugin inside JediMaster will read (its catalogue named in the environment
    JediMaster inherits); returns the dataset's file names."""
    from pandajedi_wf_dev.devdb import demo_tape
    from pandajedi_wf_dev.simulators.tape import SimDataset, TapeEndpoint

    dataset = SimDataset(TAPE_DATASET, (FILE_BYTES,) * TAPE_FILES, (TAPE_RSE,))
    demo_tape.write_catalogue(workdir / "demo_tape.json", [TapeEndpoint(TAPE_RSE, 1, 200e6, 6.0)], [dataset])
    return [f"{TAPE_DATASET}.{i:06d}" for i in range(TAPE_FILES)]  # the simulator's file names


def _rucio_installed() -> bool:
    from pandajedi_wf_dev.devdb.rucio_server import rucio_venv_path

    return (rucio_venv_path() / "bin" / "gunicorn").exists()


def _rucio_tape(pg, workdir: Path):
    """A real Rucio server on the demo's PostgreSQL: a TAPE RSE holding the dataset, the disk endpoint recalls go to
    (``type=DATADISK``, the carousel's default destination), root's quota there; ``$RUCIO_CONFIG`` (inherited by
    JediMaster) names its client configuration."""
    import os

    from pandajedi_wf_dev.devdb.rucio_server import ROOT_ACCOUNT, RucioServer

    rucio = RucioServer(pg, workdir / "rucio").start()
    rucio.add_rse(TAPE_RSE, "TAPE")
    rucio.add_rse("DEV_SITE_DATADISK", "DISK", {"type": "DATADISK"})
    rucio.add_distance(TAPE_RSE, "DEV_SITE_DATADISK")
    rucio.client().set_local_account_limit(ROOT_ACCOUNT, "DEV_SITE_DATADISK", -1)
    scope, name = TAPE_DATASET.split(":")
    rucio.add_scope(scope)
    rucio.add_dataset(scope, name, [TAPE_RSE], file_sizes=[FILE_BYTES] * TAPE_FILES)
    os.environ.update(rucio.client_environment())
    return rucio


def _rucio_files(rucio) -> list[str]:
    scope, name = TAPE_DATASET.split(":")
    return sorted(f["name"] for f in rucio.client().list_files(scope, name))


def _carousel(db, task_buffer, panda_home: Path, lfns: list[str], rucio, timeout: int) -> bool:
    """A task with tape input, the real way in: upstream's refiner (our plugin) and feeder here, our carousel plugin
    in JediMaster recalling from the tape (the simulator, or a real Rucio server whose transfers this process
    completes one every ``RUCIO_FILE_SECONDS``, as FTS would); its files released one by one, then the task
    ``ready``."""
    import json

    from pandajedi.jediconfig import jedi_config

    from pandajedi_wf.taskbuffer import carousel_jedi, staging_requests
    from pandajedi_wf_dev.devdb.task_templates import tape_task_params
    from pandajedi_wf_dev.devdb.upstream_agents import feed_contents, refine_tasks
    from pandajedi_wf_dev.simulators import grid_sql
    from pandajedi_wf_dev.simulators.jedi_ddm import InProcessDDMInterface, SimulatedDDMClient

    name = TAPE_DATASET
    ddm = SimulatedDDMClient(db)  # JEDI's DDM view of the dataset: its files, the names the tape recalls
    ddm.register_dataset(name, lfns=lfns)
    ddm_if = InProcessDDMInterface({"any": ddm})
    params = dict(tape_task_params("mc23.demo.reprocessing", name), toStaging=True, panda_data_carousel=True, cloud="DEV")
    del params["inputPreStaging"]  # as ProdSys asks for upstream's carousel
    tape = "a real Rucio 41.5.1 server" if rucio else "the tape simulator (wall clock)"
    say(f"\n[6/6] data carousel on {tape}: a production task reading {name} ({TAPE_FILES} files, only on tape "
        f"{TAPE_RSE}), submitted with toStaging and panda_data_carousel")
    code, message = task_buffer.insertTaskParamsPanda(json.dumps(params), "dev.prodsys", True, [], properErrorCode=True)
    match = re.search(r"jediTaskID=(\d+)", str(message))
    if code != 0 or match is None:
        say(f"        insertTaskParamsPanda refused it: {message}")
        return False
    tid = int(match.group(1))
    with contextlib.redirect_stdout(io.StringIO()):
        refine_tasks(task_buffer, "wlcg", "managed", ddm_if)
    task = _task_row(db, tid)
    routing = [line.split("> ", 1)[-1] for line in (panda_home / "log" / "panda-TaskRefiner.log").read_text().splitlines()
               if f"< jediTaskID={tid} > pandajedi_wf carousel routing" in line]
    say(f"        upstream TaskRefiner, refiner {task['refiner']} (from panda_jedi.cfg): task {tid} {task['status']}, "
        f"splitRule {task['split_rule']}")
    for line in routing:
        say(f"        {line}")
    with contextlib.redirect_stdout(io.StringIO()):
        grid_sql.refresh_min_task_ids(db)
        feed_contents(task_buffer, "wlcg", "managed", ddm_if)
    task = _task_row(db, tid)
    say(f"        upstream ContentsFeeder: task {task['status']} ({task['error']})")
    say(f"        our carousel plugin in JediMaster recalls the dataset from {tape}"
        + (f"; this process completes one Rucio transfer every {RUCIO_FILE_SECONDS} s (request DONE + conveyor-finisher):" if rucio else ":"))
    start, last, deadline = time.monotonic(), None, time.monotonic() + timeout
    landed, next_landing = 0, None
    while time.monotonic() < deadline:
        if rucio is not None:
            landed, next_landing = _land_rucio_file(db, rucio, lfns, landed, next_landing)
        total, waiting = carousel_jedi.file_counts(db, [tid], name).get(tid, (0, 0))
        records = [r for r in staging_requests.records(db, ("queued", "submitting", "staging", "done")) if r.request.dataset == name]
        req = "no request yet"
        if records:
            rec = records[0]
            source = f"from {rec.source}" if rec.source else "(no tape chosen yet)"
            req = f"request {rec.request.request_id} {rec.status} {source}: {rec.files_done}/{rec.request.n_files} on disk"
        line = f"{req} | task {tid}: {total - waiting}/{total} files released to jobs (pending), {waiting} staging"
        if line != last:
            say(f"  +{time.monotonic() - start:5.1f}s {line}")
            last = line
        if total and not waiting:
            break
        time.sleep(1)
    else:
        say(f"        gave up after {timeout} s")
        return False
    with contextlib.redirect_stdout(io.StringIO()):  # what upstream's WatchDog and ContentsFeeder do next
        grid_sql.refresh_min_task_ids(db)
        task_buffer.reactivatePendingTasks_JEDI("wlcg", "managed", jedi_config.watchdog.waitForPending, jedi_config.watchdog.timeoutForPending)
        grid_sql.refresh_min_task_ids(db)
        feed_contents(task_buffer, "wlcg", "managed", ddm_if)
    task = _task_row(db, tid)
    say(f"        upstream WatchDog (pending tasks) and ContentsFeeder: task {tid} {task['status']}")
    return task["status"] == "ready"


def _land_rucio_file(db, rucio, lfns: list[str], landed: int, next_landing: float | None) -> tuple[int, float | None]:
    """FTS for the demo: once our rule exists, one more of its files lands every RUCIO_FILE_SECONDS."""
    rules = db.query(f"SELECT rule_id FROM {db.table('JEDI_DC_REQUESTS')} WHERE dataset=:d AND rule_id IS NOT NULL", {":d": TAPE_DATASET})
    if not rules or landed >= len(lfns):
        return landed, next_landing
    now = time.monotonic()
    if next_landing is None:
        return landed, now + RUCIO_FILE_SECONDS
    if now < next_landing:
        return landed, next_landing
    rucio.complete_transfers(rules[0][0], [lfns[landed]])
    return landed + 1, now + RUCIO_FILE_SECONDS


def _task_row(db, tid: int) -> dict:
    ((status, split_rule, error),) = db.query(f"SELECT status, splitRule, errorDialog FROM {db.table('JEDI_Tasks')} WHERE jediTaskID=:t", {":t": tid})
    from pandajedi.jediconfig import jedi_config

    entry = [e for e in jedi_config.taskrefine.modConfig.split(",") if e.strip().startswith("wlcg:managed:")]
    return {"status": status, "split_rule": split_rule, "error": error, "refiner": entry[0].split(":", 2)[2] if entry else "?"}


def _summary(db, workflow_id: int, on_rucio: bool) -> None:
    from pandajedi_wf.taskbuffer import agent_heartbeats, transitions

    say("\nHistory of the workflow (JEDI_WF_TRANSITIONS):")
    for h in transitions.workflow_history(db, workflow_id):
        say(f"  {h['transition_time']:%H:%M:%S} {h['entity_type']:8} {h['entity_id']:>4} {str(h['from_status']):10} -> {h['to_status']:10} {h['reason']} [{h['actor']}]")
    say("\nOur JEDI plugins (JEDI_WF_AGENT_HEARTBEATS):")
    for b in agent_heartbeats.list_heartbeats(db):
        say(f"  {b['agent']:13} pid {b['pid']:22} cycles {b['n_cycles']:>3} last {b['last_status']}: {b['last_message']}")
    say("\nSimulated here: pilots and job execution (the grid simulator moves JEDI task rows and writes output files),")
    say("Apache (a TLS front end passing the client certificate's DN and VOMS attributes as Apache does), JEDI's DDM")
    if on_rucio:
        say("view of datasets, and FTS with the tape behind Rucio (this process completed each transfer in Rucio).")
    else:
        say("view of datasets, and the tape system in place of Rucio (drives, mounts, bandwidth, rules and locks).")
    say("Real: PostgreSQL, panda-client 2.2.0 (pchain_native, pbook) with VOMS proxies, upstream's PanDA server app,")
    say("upstream JediMaster/WatchDog/plugin factory, insertTaskParamsPanda, TaskRefiner (with our refiner plugin for")
    say("label managed), ContentsFeeder, the pending-task reactivation of upstream's WatchDog"
        + (", a Rucio 41.5.1 server (our recall rule, its locks and requests, its conveyor-finisher)." if on_rucio else "."))


def _monitor_pages(db, workflow_id: int, out_dir: Path, period: int) -> None:
    """The monitoring pages as files (the live server is ``python -m pandajedi_wf.monitor``)."""
    from pandajedi_wf.monitor import html
    from pandajedi_wf.monitor.collect import MonitorSource

    out_dir.mkdir(parents=True, exist_ok=True)
    source = MonitorSource(db, periods={"wf_processor": period, "wf_carousel": period}, vo="wlcg")
    (out_dir / "overview.html").write_text(html.render_overview(source.overview()), encoding="utf-8")
    (out_dir / f"workflow_{workflow_id}.html").write_text(html.render_workflow(source.workflow(workflow_id)), encoding="utf-8")
    say(f"\nMonitoring pages written: file://{out_dir}/overview.html and workflow_{workflow_id}.html")


def _serve_monitor(workflow_id: int, period: int, keep: bool) -> None:
    """The live monitor (``python -m pandajedi_wf.monitor``) on loopback, read-only (no trusted front end here); its
    workflow page fetched once, and its URL printed last."""
    import urllib.request

    from pandajedi_wf.monitor.collect import MonitorSource
    from pandajedi_wf.monitor.server import make_server, serve_in_thread
    from pandajedi_wf.taskbuffer.connection import WfDatabase

    db = WfDatabase()
    server = make_server(MonitorSource(db, periods={"wf_processor": period, "wf_carousel": period}, vo="wlcg"), "127.0.0.1", 0, on_error=db.close)
    thread = serve_in_thread(server)
    url = f"http://127.0.0.1:{server.server_address[1]}/workflow/{workflow_id}"
    carousel_url = f"http://127.0.0.1:{server.server_address[1]}/carousel?hours=1"
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            served = f"{answer.status}, {len(answer.read())} bytes"
        with urllib.request.urlopen(carousel_url, timeout=30) as answer:
            page = answer.read().decode("utf-8", "replace")
        shown = TAPE_RSE in page
        say(f"\nMonitor carousel page ({answer.status}, {len(page)} bytes, {'shows' if shown else 'does NOT show'} {TAPE_RSE}): {carousel_url}")
        if keep:
            say(f"\nMonitor serving {url} (the DAG page; /carousel, /workflows); Ctrl-C to stop the demo")
            try:
                thread.join()
            except KeyboardInterrupt:
                pass
        say(f"\nMonitor page served ({served}; it stops with the demo, --serve keeps it): {url}")
    finally:
        server.shutdown()
        server.server_close()
        db.close()


if __name__ == "__main__":
    sys.exit(main())
