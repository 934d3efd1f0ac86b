"""Time limits of our own DB connection: a server that never answers, a statement waiting on a lock, a slow statement.

Without them a JEDI WatchDog process running our plugin stayed blocked for as long as the database did not answer
(upstream's agents share that process). Each limit must end the call with an error the cycle records, and the next
cycle must work again.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

import pytest

from pandajedi_wf.taskbuffer.connection import ConnectionSettings, DatabaseError, WfDatabase, _seconds


class SilentServer:
    """A loopback TCP server that accepts every connection and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def settings(**changes) -> ConnectionSettings:
    return dataclasses.replace(ConnectionSettings.from_panda_config(), **changes)


def test_time_limits_come_from_panda_server_cfg_with_defaults_and_precise_refusals():
    base = ConnectionSettings.from_panda_config()  # the dev panda_server.cfg sets none of them
    assert (base.connect_timeout, base.statement_timeout, base.lock_timeout) == (20.0, 120.0, 30.0)
    assert base.postgres_options() == "-c statement_timeout=120000 -c lock_timeout=30000"
    assert base.answer_deadline == 240.0 and settings(statement_timeout=1).answer_deadline == 3.0
    assert settings(statement_timeout=0).answer_deadline is None  # 0: no limit, as in PostgreSQL
    assert _seconds("wf_db_lock_timeout", "5") == 5.0 and _seconds("wf_db_lock_timeout", "") == 30.0
    for bad in ("soon", "-1", "nan"):
        with pytest.raises(ValueError, match=r"panda_server.cfg \[server\] wf_db_lock_timeout"):
            _seconds("wf_db_lock_timeout", bad)


def test_server_that_accepts_and_never_answers_fails_the_cycle_within_the_connect_timeout(jedi_taskbuffer, pg):
    from pandajedi_wf_dev.devdb.upstream_agents import LocalDDMInterface
    from pandajedi_wf.jedi_agents.workflow_watchdog import WorkflowProcessorWatchDog

    server = SilentServer()
    try:
        db = WfDatabase(settings(dbhost="127.0.0.1", dbport=server.port, connect_timeout=2))
        started = time.monotonic()
        with pytest.raises(Exception, match="timeout expired"):
            db.connect()
        assert time.monotonic() - started < 5
        assert server.accepted  # the TCP connection was made: it is the silence that is cut

        # the JEDI plugin as WatchDog calls it: the cycle, its reconnect and its heartbeat each give up in time
        plugin = WorkflowProcessorWatchDog(jedi_taskbuffer, LocalDDMInterface({}))
        plugin.pre_action(None, "wlcg", "user", None)
        plugin.db = db
        started = time.monotonic()
        assert plugin.doAction() == plugin.SC_FAILED
        assert time.monotonic() - started < 15  # three connection attempts of 2 s, never the 45 s seen before
    finally:
        server.close()


def test_statement_blocked_by_a_lock_fails_within_the_lock_timeout_and_the_next_cycle_works(jedi_taskbuffer, pg, clean_db):
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import run_cycle
    from pandajedi_wf.taskbuffer import agent_heartbeats
    from wf_db_support import EXAMPLES, step_rows, submit

    db = WfDatabase(settings(lock_timeout=1, statement_timeout=10))
    result = submit(db, "cwl", EXAMPLES / "chain.cwl", out_ds="user.dev.locked")
    settings_ = workflow_processor.ProcessorSettings(workers=1)

    def cycle(database, stats):
        return workflow_processor.cycle_all(database, stats, jedi_taskbuffer, settings=settings_)

    holder = pg.connect("panda")
    try:
        with holder.cursor() as cur:  # another session holds the workflow table (an operator's migration, say)
            cur.execute("LOCK TABLE doma_panda.jedi_wf_workflows IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        assert run_cycle("wf_processor", db, cycle) is False
        assert time.monotonic() - started < 5
        (beat,) = agent_heartbeats.list_heartbeats(db, "wf_processor")
        assert beat["last_status"] == "failed" and "lock timeout" in beat["last_message"], beat
    finally:
        holder.rollback()
        holder.close()

    assert run_cycle("wf_processor", db, cycle) is True
    (beat,) = agent_heartbeats.list_heartbeats(db, "wf_processor")
    assert beat["last_status"] == "ok" and beat["n_cycles"] == 2, beat
    assert {r["name"]: r["status"] for r in step_rows(db, result.workflow_id).values()}["top"] == "submitted"
    db.close()


def test_statement_timeout_ends_a_slow_statement_and_the_connection_stays_usable(pg):
    db = WfDatabase(settings(statement_timeout=1))
    started = time.monotonic()
    with pytest.raises(DatabaseError, match="statement timeout"):
        db.query("SELECT pg_sleep(5) FROM dual")
    assert time.monotonic() - started < 3
    assert db.query("SELECT 1 FROM dual") == [(1,)]
    db.close()


def test_a_call_the_server_never_answers_is_cut_from_this_side(pg):
    """A hung server cannot enforce its own statement_timeout: the client cuts the socket after the deadline."""
    db = WfDatabase(settings(statement_timeout=0.5))
    db.connect()
    ((backend,),) = db.query("SELECT pg_backend_pid() FROM dual")
    # stand-in for a frozen server: the session ignores its own timeout and sleeps
    db.execute("SET statement_timeout = 0")
    started = time.monotonic()
    with pytest.raises(DatabaseError, match="closed the connection|connection already closed|EOF"):
        db.query("SELECT pg_sleep(10) FROM dual")
    assert time.monotonic() - started < 4  # deadline 0.5 + 2 s, polled twice a second
    killer = pg.connect("postgres", autocommit=True)
    with killer.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (backend,))
    killer.close()
    db.reconnect()
    assert db.query("SELECT 1 FROM dual") == [(1,)]
    db.close()
