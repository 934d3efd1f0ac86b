"""The main job, on one machine: a user submits with pchain_native, JEDI runs our plugins, the workflow runs to its end.

1. start an embedded PostgreSQL and load every schema (upstream PanDA/JEDI test tables, ours, iDDS views);
2. start upstream's PanDA server (its own WSGI app) behind a TLS front end doing Apache's job, with our workflow
   endpoints routed beside it;
3. a grid user (a real VOMS proxy) submits a three-step workflow with the real ``pchain_native`` (panda-client);
4. start upstream's JediMaster daemon with only our two WatchDog plugins in panda_jedi.cfg (intake switched on);
5. play the grid in this process (upstream TaskRefiner in-process, simulated pilots) while JEDI's processes
   take the request in and run the workflow; show what ``pbook`` shows the user, until the workflow ends.
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


def say(text: str = "") -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/demo", description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=240, help="give up after this many seconds (default 240)")
    parser.add_argument("--period", type=int, default=5, help="WatchDog period of our plugins in seconds (default 5)")
    parser.add_argument("--serve", action="store_true", help="keep serving the monitor page at the end until Ctrl-C")
    args = parser.parse_args(argv)

    from pandajedi_wf_dev.devdb.dev_environment import start_dev_environment
    from pandajedi_wf_dev.devdb.grid_identity import GridAuthority

    workdir = Path(tempfile.mkdtemp(prefix="pandajedi_wf_demo_"))
    workdir.chmod(0o711)
    say("== pandajedi_wf demo: workflows as JEDI entities, on an embedded PostgreSQL ==")
    grid_ca = GridAuthority(workdir / "grid")
    intake = {"wf_processor_intake": "on", "wf_processor_intake_vo": "wlcg", "wf_processor_intake_ca_path": str(grid_ca.ca_file)}
    pg, panda_home = start_dev_environment(workdir, watchdog_period=args.period, watchdog_options=intake)
    say(f"[1/5] PostgreSQL {pg.port} up in {workdir}; schemas loaded (upstream PanDA/JEDI test tables, pandajedi_wf, iDDS views)")
    master = server = None
    try:
        from pandajedi_wf_dev.devdb.jedi_master import JediMasterProcess
        from pandajedi_wf_dev.devdb.panda_client import ensure_client_venv
        from pandajedi_wf_dev.devdb.panda_server import UpstreamPandaServer
        from pandajedi_wf_dev.devdb.upstream_agents import make_zombie_cleaner_harmless
        from pandajedi_wf.taskbuffer.connection import WfDatabase

        server = UpstreamPandaServer(panda_home, pg, workdir / "panda_server", grid=grid_ca, extra_routes=OUR_ROUTES).start()
        say(f"[2/5] upstream PanDA server 1.0.4 on {server.base_url} (TLS; our endpoints routed beside it: "
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
        say(f"[3/5] alice ({user.dn}) ran: pchain_native --wfd demo_chain.yaml --outDS user.alice.demo")
        for line in output.strip().splitlines()[-3:]:
            say(f"        {line}")

        master = JediMasterProcess(workdir / "jedi").start()
        cfg = (panda_home / "etc" / "panda" / "panda_jedi.cfg").read_text()
        watchdog = [line.strip() for line in cfg.splitlines()
                    if line.strip().startswith(("modConfig", "procConfig", "wf_processor_intake =")) and "wf_processor" in line]
        say(f"[4/5] upstream JediMaster running (pid {master.pid}); panda_jedi.cfg [watchdog]:")
        for line in watchdog:
            say(f"        {line}")

        make_zombie_cleaner_harmless()
        from pandajedi.jedicore.JediTaskBuffer import JediTaskBuffer

        from pandajedi_wf_dev.simulators.grid import GridSimulator

        db = WfDatabase()
        grid = GridSimulator(db, JediTaskBuffer(None, nDBConnection=1))
        say(f"[5/5] following workflow {workflow_id} (JEDI's WatchDog takes it in and runs it; this process plays the grid):")
        status = _follow(db, grid, master, workflow_id, args.timeout)
        say(f"\nalice: pbook show {workflow_id}")
        say(_indent(_client(user, server, work, venv, "pbook", "show", str(workflow_id))))
        say(f"alice: pbook show_native_workflow {workflow_id}")
        say(_indent(_client(user, server, work, venv, "pbook", "show_native_workflow", str(workflow_id), "--format", "plain")))
        _summary(db, workflow_id)
        _monitor_pages(db, workflow_id, workdir.parent / "pandajedi_wf_demo_monitor", args.period)
        _serve_monitor(workflow_id, args.period, args.serve)
        return 0 if status == "done" else 1
    finally:
        if master is not None:
            master.stop()
        if server is not None:
            server.stop()
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


def _summary(db, workflow_id: int) -> None:
    from pandajedi_wf.taskbuffer import agent_heartbeats, transitions

    say("\nHistory of the workflow (JEDI_WF_TRANSITIONS):")
    for h in transitions.workflow_history(db, workflow_id):
        say(f"  {h['transition_time']:%H:%M:%S} {h['entity_type']:8} {h['entity_id']:>4} {str(h['from_status']):10} -> {h['to_status']:10} {h['reason']} [{h['actor']}]")
    say("\nOur JEDI plugins (JEDI_WF_AGENT_HEARTBEATS):")
    for b in agent_heartbeats.list_heartbeats(db):
        say(f"  {b['agent']:13} pid {b['pid']:22} cycles {b['n_cycles']:>3} last {b['last_status']}: {b['last_message']}")
    say("\nSimulated here: pilots and job execution (the grid simulator moves JEDI task rows and writes output files),")
    say("and Apache (a TLS front end passing the client certificate's DN and VOMS attributes as Apache does).")
    say("Real: PostgreSQL, panda-client 2.2.0 (pchain_native, pbook) with VOMS proxies, upstream's PanDA server app,")
    say("upstream JediMaster/WatchDog/plugin factory, insertTaskParamsPanda, TaskRefiner.")


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
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            served = f"{answer.status}, {len(answer.read())} bytes"
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
