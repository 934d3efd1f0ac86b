"""A user's whole path with the real clients: pchain_native -> upstream's server -> our intake -> JEDI tasks refined by
upstream's TaskRefiner -> pbook show / show_native_workflow / kill, and another user refused.

Real: panda-client 2.2.0 (.venv-client) with VOMS proxies over TLS, upstream panda-server 1.0.4's WSGI app, our WSGI
endpoints mounted beside it as Apache would route them, PostgreSQL, upstream's TaskRefiner (generic VO ``wlcg``),
sendCommandTaskPanda behind pbook's task commands and its command pick-up. Simulated: the pilots, and what JEDI's
TaskCommando/PostProcessor do with a killed task's jobs (``simulators.grid``).
"""

from __future__ import annotations

import datetime
import re

import pytest
import requests

from pandajedi_wf_dev.devdb.grid_identity import GridAuthority
from pandajedi_wf_dev.devdb.panda_client import ClientVenvError, ensure_client_venv, run_client
from pandajedi_wf_dev.devdb.panda_server import UpstreamPandaServer
from wf_db_support import explain, jedi_tasks, new_grid, step_rows, workflow_row

CHAIN = """\
name: user_chain
steps:
  gen:
    type: prun
    args: "--outputs a.txt --nJobs 2"
    exec: "sh payload.sh > a.txt"
  ana:
    type: prun
    inDS: gen/outDS
    args: "--outputs b.txt"
    exec: "cat %IN > b.txt"
"""
OUR_ENDPOINTS = ("get_workflow_details", *(f"{c}_native_workflow" for c in ("kill", "retry", "pause", "resume", "finish", "rerun")))


@pytest.fixture(scope="module")
def client_venv():
    try:
        return ensure_client_venv()
    except ClientVenvError as exc:
        pytest.skip(f"cannot create the panda-client virtualenv (.venv-client): {exc}")


@pytest.fixture(scope="module")
def grid_users(tmp_path_factory):
    authority = GridAuthority(tmp_path_factory.mktemp("grid"))
    return authority, authority.user("alice"), authority.user("bob", "Bob Builder")


@pytest.fixture
def server(clean_db, panda_home, pg, grid_users, client_venv, tmp_path):
    """Upstream's server with our endpoints routed to pandajedi_wf.server.wsgi (README: the Apache snippet)."""
    routes = {f"/api/v1/workflow/{name}": "pandajedi_wf.server.wsgi:application" for name in OUR_ENDPOINTS}
    routes |= {f"/server/panda/api/v1/workflow/{name}": "pandajedi_wf.server.wsgi:application" for name in OUR_ENDPOINTS}
    panda_server = UpstreamPandaServer(panda_home, pg, tmp_path / "panda_server", grid=grid_users[0], extra_routes=routes)
    panda_server.start()
    yield panda_server
    panda_server.stop()


class Jedi:
    """Our processor and intake in this process, upstream's refiner through the grid simulator, one clock."""

    def __init__(self, db, task_buffer, ca_file):
        from pandajedi_wf.core.clock import utcnow
        from pandajedi_wf.daemons import upstream_intake
        from pandajedi_wf_dev.simulators.grid import Fate

        self.db, self.task_buffer, self.now = db, task_buffer, utcnow()
        self.intake = upstream_intake.IntakeSettings(enabled=True, ca_path=str(ca_file))
        self.grid = new_grid(db, task_buffer, fate=lambda name: Fate(running_ticks=40))

    def cycle(self):
        from pandajedi_wf.daemons import upstream_intake, workflow_processor
        from pandajedi_wf.daemons.common import CycleStats
        from pandajedi_wf_dev.simulators import grid_sql

        self.now += datetime.timedelta(minutes=2)
        stats = CycleStats()
        self.intake_message = upstream_intake.cycle(self.db, stats, self.intake, "e2e-intake", "wlcg", self.now)
        workflow_processor.cycle_all(self.db, stats, self.task_buffer, now=self.now, owner="e2e-processor")
        self.grid.tick(self.now)
        self.task_buffer.getTasksToExecCommand_JEDI("wlcg", "user")  # JEDI's TaskCommando pick-up of pbook's commands
        for task in grid_sql.tasks_in_status(self.db, "wlcg", ("aborting", "toabort")):
            with self.db.transaction():  # ... and what it and the PostProcessor make of the killed jobs
                grid_sql.set_task_status(self.db, int(task["jeditaskid"]), "aborted", datetime.datetime.utcnow())
        return stats.counters

    def until(self, predicate, workflow_id, rounds=25):
        for _ in range(rounds):
            self.cycle()
            if predicate():
                return
        upstream = self.db.query(f"SELECT status, parameters FROM {self.db.table('workflows')} WHERE workflow_id=:w", {":w": workflow_id})
        raise AssertionError(f"not reached: {self.intake_message} {upstream}\n" + explain(self.db, workflow_id))


def client(user, server, work, venv, *args):
    done = run_client(list(args), user, server, work, venv=venv)
    output = done.stdout + done.stderr
    print(f"\n$ {' '.join(args)}   # as {user.name}\n{output}")  # (shown with pytest -s: what the user sees)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{output}\nserver log:\n{server.log_tail()}"
    assert "Traceback" not in output, output
    return done.stdout, done.stderr


def test_a_user_submits_follows_and_kills_a_workflow_with_pchain_native_and_pbook(server, db, jedi_taskbuffer, grid_users,
                                                                                   client_venv, tmp_path):
    _, alice, bob = grid_users
    work = tmp_path / "work"
    work.mkdir()
    (work / "chain.yaml").write_text(CHAIN)
    (work / "payload.sh").write_text("echo a\n")

    out, err = client(alice, server, work, client_venv, "pchain_native", "--wfd", "chain.yaml", "--outDS", "user.alice.e2e")
    workflow_id = int(re.search(r"'workflow_id': (\d+)", out + err).group(1))

    jedi = Jedi(db, jedi_taskbuffer, grid_users[0].ca_file)
    jedi.until(lambda: sum(t["status"] == "running" for t in jedi_tasks(db)) >= 1, workflow_id)
    wf = workflow_row(db, workflow_id)
    assert (wf["status"], wf["user_name"], wf["vo"]) == ("running", alice.username, "wlcg")
    tasks = jedi_tasks(db)
    assert tasks and all(int(t["reqid"]) == workflow_id for t in tasks), tasks  # the id alice was given

    # pbook show <id>: the id is a reqID below 10**7, and lists alice's tasks of the workflow
    out, _ = client(alice, server, work, client_venv, "pbook", "show", str(workflow_id))
    for task in tasks:
        assert str(task["jeditaskid"]) in out and task["taskname"] in out, out

    # pbook show_native_workflow <id>: our endpoint, rendered by the client
    out, _ = client(alice, server, work, client_venv, "pbook", "show_native_workflow", str(workflow_id), "--format", "plain")
    assert f"workflow_id={workflow_id}" in out and "name=\"user_chain\"" in out and "status=running" in out, out
    for row in step_rows(db, workflow_id).values():
        assert row["name"] in out, out
    assert str(tasks[0]["jeditaskid"]) in out

    # bob: pbook kill <id> reaches only his own tasks (none), and our kill endpoint refuses him, on the record
    client(bob, server, work, client_venv, "pbook", "kill", str(workflow_id))
    answer = requests.post(f"{server.api_url}/workflow/kill_native_workflow", json={"workflow_id": workflow_id}, timeout=60,
                           **server.tls(bob)).json()
    assert not answer["success"] and "permission denied: 'Bob Builder' may not kill" in answer["message"], answer
    jedi.cycle()
    assert workflow_row(db, workflow_id)["status"] == "running"

    # alice: pbook kill <id> kills each task of the workflow; the processor reads that as her killing the workflow
    client(alice, server, work, client_venv, "pbook", "kill", str(workflow_id))
    jedi.until(lambda: workflow_row(db, workflow_id)["status"] == "cancelled", workflow_id)
    commands = db.query(f"SELECT command, requester, requester_role, status FROM {db.table('JEDI_WF_COMMANDS')} WHERE workflow_id=:w "
                        "ORDER BY command_id", {":w": workflow_id})
    assert any(c[0] == "kill" and c[3] == "refused" and c[1].startswith(bob.dn) for c in commands), commands
    assert ("kill", alice.username, "owner", "done") in commands, commands
    assert all(r["status"] == "cancelled" for r in step_rows(db, workflow_id).values()), explain(db, workflow_id)
    assert not [t for t in jedi_tasks(db) if "_r" in t["taskname"].rsplit("_", 1)[-1]]  # no automatic retry of killed steps
    jedi.cycle()  # the next intake pass mirrors the status on upstream's row
    assert db.query(f"SELECT status FROM {db.table('workflows')} WHERE workflow_id=:w", {":w": workflow_id}) == [("cancelled",)]

    out, _ = client(alice, server, work, client_venv, "pbook", "show_native_workflow", str(workflow_id), "--format", "plain")
    assert "status=cancelled" in out, out


def submit_as(user, server, work, venv, out_ds):
    out, err = client(user, server, work, venv, "pchain_native", "--wfd", "chain.yaml", "--outDS", out_ds)
    return int(re.search(r"'workflow_id': (\d+)", out + err).group(1))


@pytest.fixture
def work(tmp_path):
    area = tmp_path / "work"
    area.mkdir()
    (area / "chain.yaml").write_text(CHAIN)
    (area / "payload.sh").write_text("echo a\n")
    return area


@pytest.fixture
def production_task_ids(pg, clean_db):
    """JEDI task ids as in production (DEFT's sequence is far above 10**7), so pbook takes them for task ids."""
    conn = pg.connect("panda", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT nextval('doma_deft.prodsys2_task_id_seq')")
        (before,) = cur.fetchone()
        cur.execute("ALTER SEQUENCE doma_deft.prodsys2_task_id_seq RESTART WITH 45000000")
    yield
    with conn.cursor() as cur:  # the other tests' ids go on from where they were (clean_db empties the task tables)
        cur.execute(f"ALTER SEQUENCE doma_deft.prodsys2_task_id_seq RESTART WITH {int(before) + 1}")
    conn.close()


def commands_of(db, workflow_id):
    return db.query(f"SELECT command, requester, requester_role, status FROM {db.table('JEDI_WF_COMMANDS')} WHERE workflow_id=:w "
                    "ORDER BY command_id", {":w": workflow_id})


def test_pbook_retry_of_a_failed_workflow_is_followed_and_pbook_finish_lets_one_end(server, db, jedi_taskbuffer, grid_users,
                                                                                      client_venv, work, production_task_ids):
    from pandajedi_wf_dev.simulators.grid import Fate

    _, alice, _ = grid_users
    jedi = Jedi(db, jedi_taskbuffer, grid_users[0].ca_file)
    # 'ana' fails on its first two runs (the second is the automatic retry), so the workflow ends with it failed
    jedi.grid.fate_of_run = lambda name, run: Fate(status="failed") if name.endswith("_ana") and run <= 2 else Fate()
    retried = submit_as(alice, server, work, client_venv, "user.alice.retry")
    jedi.until(lambda: workflow_row(db, retried)["status"] == "finished", retried, rounds=40)  # (gen done, ana failed)
    ana = next(r for r in step_rows(db, retried).values() if r["name"] == "ana")

    # pbook retry <reqID> would stop at the first task JEDI refuses to retry (panda-client 2.2.0's PBookCore chains
    # the per-task calls with 'and'), here the done 'gen': a user retries the failed task by its jediTaskID, as
    # production task ids are (>= 10**7, never mistaken for a reqID)
    out, err = client(alice, server, work, client_venv, "pbook", "retry", str(ana["jedi_task_id"]))
    assert "Command rejected" not in out + err, out + err
    jedi.until(lambda: workflow_row(db, retried)["status"] == "done", retried, rounds=40)
    assert [c for c in commands_of(db, retried) if c[1] == alice.username] == [("retry", alice.username, "owner", "done")]
    again = next(r for r in step_rows(db, retried).values() if r["name"] == "ana")
    assert again["jedi_task_id"] == ana["jedi_task_id"] and again["status"] == "done"  # her retry of the same task, followed

    # pbook finish: the running task is finished by JEDI, the workflow submits nothing new and ends
    jedi.grid.fate_of_run = None
    jedi.grid.fate = lambda name: Fate(running_ticks=40)
    finished = submit_as(alice, server, work, client_venv, "user.alice.finish")
    jedi.until(lambda: any(t["status"] == "running" and int(t["reqid"]) == finished for t in jedi_tasks(db)), finished)
    client(alice, server, work, client_venv, "pbook", "finish", str(finished))
    jedi.until(lambda: workflow_row(db, finished)["status"] in ("done", "finished", "failed"), finished, rounds=40)
    assert ("finish", alice.username, "owner", "done") in commands_of(db, finished), commands_of(db, finished)
    assert all(r["status"] in ("done", "finished", "skipped", "failed", "cancelled") for r in step_rows(db, finished).values())
