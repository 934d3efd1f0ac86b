"""Processors SIGKILLed at named points and at random moments, and PostgreSQL stopped or hung under a running one.

The processor runs in child processes (``tests/wf_crash_child.py``, forked from one process that imported everything
once) against PostgreSQL, submitting through upstream's real TaskBuffer (``insertTaskParamsPanda``, which writes
DEFT); the grid simulator (TaskRefiner real) moves the JEDI tasks between children. Children are killed with SIGKILL, nothing in them can clean up:
  * at the processor's fault points (``PANDAJEDI_WF_FAULT_POINT``): mid-batch (decided, nothing written), inside the
    batch's write transaction, after JEDI accepted a task and before its answer is recorded, before the leases are
    released; each at its first and second occurrence;
  * at random moments by the parent.
Then one clean processor runs the workflows to their end, and the test checks: no workflow lost, one JEDI task (and
one DEFT request) per submitted step, no step left ``submitting``, every step's and workflow's status equal to the
last row of its history, the history chained without gaps.

The second part uses its own PostgreSQL server (so the session's server and upstream's connections to it are never
disturbed): a processor cycling as the JEDI plugin does (``run_cycle``) sees the server stopped, then all its
processes hung by SIGSTOP; every cycle fails within its time limits instead of hanging, and cycles succeed again
once the server is back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from test_workflow_submission_cap_db import WIDE_SCATTER
from wf_db_support import ENDED, EXAMPLES, TEMPLATES, check_tasks_and_history, explain, new_grid, step_rows, workflow_row

CHILD = Path(__file__).with_name("wf_crash_child.py")
FAULT_POINTS = ("batch_decided", "write_transaction", "jedi_accepted", "lease_release")
DN = "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=devuser/CN=123456/CN=Dev User"
KILLS_WANTED = 30  # about half at fault points, half at random moments
CAP = 4  # small submission cap: the scatters are submitted over several passes (and repaired under the cap)


class Child:
    """One processor process; its JSON lines arrive in ``lines``."""

    def __init__(self, args: list[str], env: dict[str, str], log):
        self.proc = subprocess.Popen([sys.executable, str(CHILD), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                     env=env, text=True, cwd=str(CHILD.parent.parent))
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                pass
        self.lines.put(None)

    def next(self, timeout: float):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return "timeout"

    def wait_for(self, predicate, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.next(max(deadline - time.monotonic(), 0.01))
            if line is None:
                return None
            if line != "timeout" and predicate(line):
                return line
        return "timeout"

    def send(self, command: dict) -> None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def submit_workload(db, tmp_path, batch: int) -> dict[int, str]:
    from pandajedi_wf.api import submit_workflow

    spec = tmp_path / "wide.cwl"
    spec.write_text(WIDE_SCATTER)
    found = {}
    for i in range(4):
        out_ds = f"user.dev.kill{batch}c{i}"
        result = submit_workflow(db, language="cwl", spec=str(EXAMPLES / "chain.cwl"), base_dir=str(EXAMPLES), out_ds=out_ds,
                                 user_name="devuser", user_dn=DN if i % 2 else "devuser", vo="wlcg", task_templates=TEMPLATES)
        found[result.workflow_id] = out_ds
    for i in range(2):
        out_ds = f"user.dev.kill{batch}s{i}"
        seeds = [f"--outputs seed.txt --nJobs 1 --avoidVP --seed {k}" for k in range(6)]
        result = submit_workflow(db, language="cwl", spec=str(spec), input_values={"seeds": seeds}, base_dir=str(tmp_path), out_ds=out_ds,
                                 user_name="devuser", user_dn=DN, vo="wlcg", task_templates=TEMPLATES)
        found[result.workflow_id] = out_ds
    return found


def test_processors_killed_at_fault_points_and_at_random_lose_and_duplicate_nothing(db, jedi_taskbuffer, tmp_path):
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    rng = random.Random(20261203)
    workload = submit_workload(db, tmp_path, 0)
    grid = new_grid(db, jedi_taskbuffer)
    plan = [(point, nth) for point in FAULT_POINTS for nth in (1, 2, 1)] + [("random", 0)] * 12
    rng.shuffle(plan)
    kills: dict[str, int] = {}
    runs = unreached = 0
    log = open(tmp_path / "children.log", "w")
    env = dict(os.environ)
    env.pop(workflow_processor.FAULT_POINT_ENV, None)
    zygote = Child(["zygote"], env, log)
    started = time.monotonic()
    try:
        assert zygote.wait_for(lambda line: line.get("event") == "ready", 60) not in (None, "timeout")
        while sum(kills.values()) < KILLS_WANTED and time.monotonic() - started < 90:
            point, nth = plan[runs % len(plan)]
            runs += 1
            zygote.send({"fault": None if point == "random" else f"{point}:{nth}", "offset": runs, "cap": CAP})
            pid = zygote.wait_for(lambda line: line.get("event") == "forked", 10)["pid"]
            if point == "random":
                assert zygote.wait_for(lambda line: line.get("event") in ("started", "error") and line.get("pid") == pid, 30).get("event") == "started"
                time.sleep(rng.uniform(0.0, 0.3))  # (a processor is done with its work in about that)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            ended = zygote.wait_for(lambda line: line.get("event") == "ended" and line["pid"] == pid, 60)
            assert ended not in (None, "timeout"), f"processor {pid} did not end: see {tmp_path / 'children.log'}"
            if ended["signal"] == signal.SIGKILL:
                kills[point] = kills.get(point, 0) + 1
            else:
                assert ended["code"] == 0, f"processor {pid} failed: see {tmp_path / 'children.log'}"
                unreached += 1
            if ended["signal"] is None or runs % 3 == 0:  # the processor ran out of work (a grid tick costs a second)
                grid.tick()
            if all(workflow_row(db, w)["status"] in ENDED for w in workload):  # keep work coming until enough kills
                workload.update(submit_workload(db, tmp_path, runs))
    finally:
        zygote.kill()
        log.close()
    killed = sum(kills.values())
    assert killed >= KILLS_WANTED and all(kills.get(p) for p in FAULT_POINTS) and kills.get("random", 0) >= 5, (kills, runs, unreached)

    kill_phase = time.monotonic() - started
    # a clean processor (later than every lease a killed one held) runs everything to its end
    offset = runs + 1
    settings = workflow_processor.ProcessorSettings(max_submissions_per_workflow=CAP, recheck_seconds=0)
    for number in range(80):
        now = utcnow() + datetime.timedelta(hours=offset, seconds=number)
        workflow_processor.cycle_all(db, CycleStats(), jedi_taskbuffer, now=now, settings=settings)
        if all(workflow_row(db, w)["status"] in ENDED for w in workload):
            break
        grid.tick()

    lost = [w for w in workload if workflow_row(db, w)["status"] != "done"]
    duplicates = db.query(f"SELECT taskName, COUNT(*) FROM {db.schema_deft}.T_TASK GROUP BY taskName HAVING COUNT(*) > 1")
    jedi_duplicates = db.query(f"SELECT taskName, COUNT(*) FROM {db.table('JEDI_Tasks')} GROUP BY taskName HAVING COUNT(*) > 1")
    stuck = db.query(f"SELECT step_id FROM {db.table('JEDI_WF_STEPS')} WHERE status='submitting'")
    print(f"\ncrash test: {runs} processor runs, {killed} SIGKILLs {dict(sorted(kills.items()))}, {unreached} runs ended before "
          f"their fault point; {len(workload)} workflows: lost {len(lost)}, duplicate tasks {len(duplicates) + len(jedi_duplicates)}, "
          f"steps stuck submitting {len(stuck)} ({kill_phase:.0f} s of kills, {time.monotonic() - started - kill_phase:.0f} s to the end)")
    assert lost == [], "\n".join(explain(db, w) for w in lost)
    assert duplicates == [] and jedi_duplicates == [] and stuck == []
    for workflow_id, out_ds in workload.items():
        submitted = check_tasks_and_history(db, workflow_id, out_ds)  # one task per step; history chained, ends at the status
        assert len(submitted) == len(step_rows(db, workflow_id))


# ---- PostgreSQL stopped, PostgreSQL hung --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_pg(pg):
    """A second PostgreSQL server with the same schemas, only for this module's outages."""
    from pandajedi_wf_dev.devdb.dev_environment import load_all_schemas
    from pandajedi_wf_dev.devdb.embedded_postgres import EmbeddedPostgres

    server = EmbeddedPostgres()
    server.start()
    load_all_schemas(server)
    yield server
    server.stop()


def server_pids(server) -> list[int]:
    """The postmaster and every process it started."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(entry.name))
    return [postmaster, *children]


def test_cycles_fail_within_their_limits_while_postgres_is_stopped_or_hung_and_recover(own_pg, tmp_path):
    from pandajedi_wf.taskbuffer import agent_heartbeats
    from pandajedi_wf.taskbuffer.connection import ConnectionSettings, WfDatabase
    from wf_db_support import submit

    db = WfDatabase(dataclasses.replace(ConnectionSettings.from_panda_config(), dbhost=own_pg.host, dbport=own_pg.port, connect_timeout=2))
    ids = [submit(db, "cwl", EXAMPLES / "chain.cwl", out_ds=f"user.dev.outage{i}").workflow_id for i in range(3)]
    db.close()
    env = dict(os.environ) | own_pg.env()
    env.pop("PANDAJEDI_WF_FAULT_POINT", None)
    log = open(tmp_path / "child.log", "w")
    child = Child(["heartbeat", "--timeouts", "2,2,1"], env, log)
    stopped: list[int] = []
    try:
        assert child.wait_for(lambda line: line.get("event") == "cycle" and line["ok"], 40) not in (None, "timeout")

        # stopped (fast shutdown, as an operator stops it; the test server runs with synchronous_commit=off, so an
        # immediate stop could lose the last commits, which no application can survive): connections are refused at once
        stop = own_pg._run([own_pg.bin_dir / "pg_ctl", "stop", "-m", "fast", "-w", "-t", "20", "-D", own_pg.data_dir])
        assert stop.returncode == 0, stop.stderr
        failed = child.wait_for(lambda line: line.get("event") == "cycle" and not line["ok"], 15)
        assert failed not in (None, "timeout") and failed["seconds"] < 8, failed
        outage = [f"stopped: a cycle failed in {failed['seconds']} s"]
        own_pg._pg_ctl_start()
        back = child.wait_for(lambda line: line.get("event") == "cycle" and line["ok"], 20)
        assert back not in (None, "timeout"), "no successful cycle after PostgreSQL came back"

        # hung: every server process stopped; the statement in flight is cut, new connections time out
        stopped = server_pids(own_pg)
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        hung_at = time.monotonic()
        failed = child.wait_for(lambda line: line.get("event") == "cycle" and not line["ok"], 20)
        assert failed not in (None, "timeout"), "the cycle did not give up on a hung server"
        assert failed["seconds"] < 12 and time.monotonic() - hung_at < 15, failed  # 4 s answer deadline + 2 x 2 s connects
        outage.append(f"hung: a cycle failed in {failed['seconds']} s")
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        stopped = []
        back = child.wait_for(lambda line: line.get("event") == "cycle" and line["ok"], 30)
        assert back not in (None, "timeout"), "no successful cycle after PostgreSQL was resumed"
        print(f"\noutage test: {'; '.join(outage)}; cycles ok again after each")
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        child.kill()
        log.close()

    db = WfDatabase(dataclasses.replace(ConnectionSettings.from_panda_config(), dbhost=own_pg.host, dbport=own_pg.port))
    (beat,) = agent_heartbeats.list_heartbeats(db, "wf_processor")
    assert beat["last_status"] == "ok", beat
    # nothing lost or half-written by the failed cycles: every workflow is there, no step is left 'submitting', and
    # each status is the last of its history
    rows = db.query_dicts(f"SELECT workflow_id, status FROM {db.table('JEDI_WF_WORKFLOWS')} ORDER BY workflow_id")
    assert [r["workflow_id"] for r in rows] == ids and all(r["status"] == "running" for r in rows), rows
    for workflow_id in ids:
        steps = step_rows(db, workflow_id)
        assert {r["name"]: r["status"] for r in steps.values()} == {"top": "submitted", "bottom": "defined"}, steps
        for r in steps.values():
            last = db.query(f"SELECT to_status FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE entity_type='step' AND entity_id=:s "
                            "ORDER BY transition_id DESC", {":s": r["step_id"]})[0][0]
            assert last == r["status"]
    db.close()
