"""The main job, on one machine: PostgreSQL + upstream JEDI running our plugins, and a workflow followed to its end.

1. start an embedded PostgreSQL and load every schema (upstream PanDA/JEDI test tables, ours, iDDS views);
2. submit a three-step workflow through the pandajedi_wf API;
3. start upstream's JediMaster daemon with only our two WatchDog plugins in panda_jedi.cfg;
4. play the grid in this process (upstream TaskRefiner in-process, simulated pilots) while JEDI's processes
   run our workflow processor, and print what a user would see until the workflow ends.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import datetime
import sys
import tempfile
import time
from pathlib import Path

DEMO_WORKFLOW = Path(__file__).with_name("demo_data") / "demo_chain.yaml"


def say(text: str = "") -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pandajedi-wf-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=240, help="give up after this many seconds (default 240)")
    parser.add_argument("--period", type=int, default=5, help="WatchDog period of our plugins in seconds (default 5)")
    args = parser.parse_args(argv)

    from pandajedi_wf.devdb.dev_environment import start_dev_environment

    workdir = Path(tempfile.mkdtemp(prefix="pandajedi_wf_demo_"))
    workdir.chmod(0o711)
    say("== pandajedi_wf demo: workflows as JEDI entities, on an embedded PostgreSQL ==")
    pg, panda_home = start_dev_environment(workdir, watchdog_period=args.period)
    say(f"[1/4] PostgreSQL {pg.port} up in {workdir}; schemas loaded (upstream JEDI test tables, pandajedi_wf, iDDS views)")
    master = None
    try:
        from pandajedi_wf.api import submit_workflow
        from pandajedi_wf.devdb.jedi_master import JediMasterProcess
        from pandajedi_wf.devdb.task_templates import dev_templates
        from pandajedi_wf.devdb.upstream_agents import make_zombie_cleaner_harmless
        from pandajedi_wf.taskbuffer.connection import WfDatabase

        db = WfDatabase()
        result = submit_workflow(
            db, language="yaml", spec=str(DEMO_WORKFLOW), out_ds="user.demo.chain", user_name="demo.user", user_dn="demo.user",
            vo="wlcg", task_templates=dev_templates(),
        )
        if not result.ok:
            say(f"demo workflow refused: {result.problems}")
            return 1
        say(f"[2/4] workflow {result.workflow_id} 'demo_chain' submitted: {len(result.steps)} steps parsed, status {result.status}")

        master = JediMasterProcess(workdir / "jedi").start()
        cfg = (panda_home / "etc" / "panda" / "panda_jedi.cfg").read_text()
        watchdog = [line.strip() for line in cfg.splitlines() if line.strip().startswith(("modConfig", "procConfig")) and "wf_processor" in line]
        say(f"[3/4] upstream JediMaster running (pid {master.pid}); panda_jedi.cfg [watchdog]:")
        for line in watchdog:
            say(f"        {line}")

        make_zombie_cleaner_harmless()
        from pandajedi.jedicore.JediTaskBuffer import JediTaskBuffer

        from pandajedi_wf.simulators.grid import GridSimulator

        grid = GridSimulator(db, JediTaskBuffer(None, nDBConnection=1))
        say("[4/4] following the workflow (JEDI's WatchDog runs our processor; this process plays the grid):")
        status = _follow(db, grid, master, result.workflow_id, args.timeout)
        _summary(db, result.workflow_id)
        _monitor_pages(db, result.workflow_id, workdir.parent / "pandajedi_wf_demo_monitor", args.period)
        return 0 if status == "done" else 1
    finally:
        if master is not None:
            master.stop()
        pg.stop()


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
        status = workflows.load(db, [workflow_id])[workflow_id]["status"]
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
    say("\nSimulated here: pilots and job execution (the grid simulator moves JEDI task rows and writes output files).")
    say("Real: PostgreSQL, upstream JediMaster/WatchDog/plugin factory, insertTaskParamsPanda, TaskRefiner.")


def _monitor_pages(db, workflow_id: int, out_dir: Path, period: int) -> None:
    """The monitoring pages as files (the live server is ``python -m pandajedi_wf.monitor``)."""
    from pandajedi_wf.monitor import html
    from pandajedi_wf.monitor.collect import MonitorSource

    out_dir.mkdir(parents=True, exist_ok=True)
    source = MonitorSource(db, periods={"wf_processor": period, "wf_carousel": period}, vo="wlcg")
    (out_dir / "overview.html").write_text(html.render_overview(source.overview()), encoding="utf-8")
    (out_dir / f"workflow_{workflow_id}.html").write_text(html.render_workflow(source.workflow(workflow_id)), encoding="utf-8")
    say(f"\nMonitoring pages written: file://{out_dir}/overview.html and workflow_{workflow_id}.html")


if __name__ == "__main__":
    sys.exit(main())
