"""Upstream JediMaster, run as the real daemon, loads our two WatchDog plugins from
panda_jedi.cfg alone and each completes cycles (seen in JEDI_WF_AGENT_HEARTBEATS).

This is the deployment path: no code of ours starts the agents, only configuration.
"""

import time

import pytest

from pandajedi_wf_dev.devdb.jedi_master import JediMasterProcess
from pandajedi_wf_dev.devdb.panda_home import WATCHDOG_PLUGINS

DEADLINE_SECONDS = 90


def heartbeats(db_conn):
    with db_conn.cursor() as cur:
        cur.execute("SELECT agent, pid, n_cycles, last_status, last_message FROM doma_panda.jedi_wf_agent_heartbeats")
        rows = cur.fetchall()
    db_conn.commit()
    return rows


@pytest.fixture
def jedi_master(pg, clean_db, tmp_path):
    master = JediMasterProcess(tmp_path / "jedi")
    master.start()
    yield master
    master.stop()


def test_jedi_master_runs_both_plugins_from_config(jedi_master, db_conn, panda_home):
    expected = set(WATCHDOG_PLUGINS)  # wf_processor, wf_carousel
    deadline = time.monotonic() + DEADLINE_SECONDS
    rows = []
    while time.monotonic() < deadline:
        assert jedi_master.alive(), f"JediMaster died:\n{jedi_master.output_tail()}"
        rows = heartbeats(db_conn)
        if {agent for agent, _, n_cycles, _, _ in rows if n_cycles >= 1} >= expected:
            break
        time.sleep(0.5)
    else:
        logs = sorted(p.name for p in (panda_home / "log").glob("*.log"))
        pytest.fail(f"not every plugin reported a cycle within {DEADLINE_SECONDS} s: {rows}\nlogs in {panda_home / 'log'}: {logs}")

    by_agent = {agent: (pid, status, message) for agent, pid, _, status, message in rows}
    for agent in expected:
        pid, status, message = by_agent[agent]
        assert status == "ok", f"{agent}: {status} {message}"
        assert pid  # the forked WatchDog process recorded itself, not the test process
    pids = {by_agent[agent][0] for agent in expected}
    assert len(pids) == 2, "each plugin runs in its own JEDI WatchDog process"


def test_stopping_the_master_stops_its_agents(pg, clean_db, tmp_path):
    master = JediMasterProcess(tmp_path / "jedi").start()
    pgid = master.pgid
    master.stop()
    import os

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"process group {pgid} still has members after stop()")
    assert not master.alive()


def test_intake_refuses_to_run_beside_upstreams_workflow_manager(pg, clean_db, panda_home, db_conn, tmp_path):
    """Deployment path: a panda_jedi.cfg that switches our intake on but also lists upstream's
    AtlasWorkflowManagerWatchDog; our processor keeps running workflows, and its heartbeat says why it takes no request."""
    import os
    import shutil

    home = tmp_path / "panda_home"
    shutil.copytree(panda_home, home)
    cfg = home / "etc" / "panda" / "panda_jedi.cfg"
    text = cfg.read_text()
    upstream = "atlas:managed:pandajedi.jedidog.AtlasWorkflowManagerWatchDog:AtlasWorkflowManagerWatchDog:wf_manager"
    text = text.replace("\n[watchdog]\nmodConfig = ", f"\n[watchdog]\nwf_processor_intake = on\nmodConfig = {upstream},", 1)
    cfg.write_text(text)
    master = JediMasterProcess(tmp_path / "jedi", env={**os.environ, "PANDA_HOME": str(home)}).start()
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            assert master.alive(), f"JediMaster died:\n{master.output_tail()}"
            beats = {agent: (status, message) for agent, _, n, status, message in heartbeats(db_conn) if n >= 1}
            if "wf_processor" in beats:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"no processor cycle within {DEADLINE_SECONDS} s")
    finally:
        master.stop()
    status, message = beats["wf_processor"]
    assert status == "ok" and "intake refused: upstream's AtlasWorkflowManagerWatchDog is listed" in message, message
    logs = [p.read_text(errors="replace") for d in (home / "log", panda_home / "log") for p in d.glob("*wf_processor*.log")]
    assert any("intake refused" in log for log in logs), "the refusal is in the processor's JEDI log too"
