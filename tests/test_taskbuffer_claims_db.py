"""Claiming workflows on a real PostgreSQL: batches, SKIP LOCKED between concurrent processors, leases."""

import datetime
import threading

import pytest


@pytest.fixture
def dbs(clean_db):
    from pandajedi_wf.taskbuffer.connection import WfDatabase

    opened = [WfDatabase(), WfDatabase()]
    for db in opened:
        db.connect()
    yield opened
    for db in opened:
        db.close()


def insert_workflows(db, n, now, status="running"):
    from pandajedi_wf.taskbuffer import workflows

    with db.transaction():
        return [
            workflows.insert(db, name=f"wf '{i}' ü", user_name="dev.user", user_dn=None, vo="wlcg", prod_source_label="user",
                             language="yaml", status=status, out_ds=f"user.dev.claim{i}", definition={"nodes": []}, request=None,
                             error_dialog=None, now=now)
            for i in range(n)
        ]


def test_batches_are_bounded_and_leased(dbs):
    from pandajedi_wf.taskbuffer import workflows

    db, _ = dbs
    now = datetime.datetime(2030, 1, 1)
    ids = insert_workflows(db, 7, now)
    insert_workflows(db, 2, now, status="done")  # ended workflows are never claimed

    first = workflows.claim_due(db, ("running",), "proc-a", now, lease_seconds=600, batch_size=5)
    second = workflows.claim_due(db, ("running",), "proc-b", now, lease_seconds=600, batch_size=5)

    assert len(first) == 5 and len(second) == 2
    assert set(first) | set(second) == set(ids) and not set(first) & set(second)
    # an expired lease (a crashed processor) is taken over
    later = now + datetime.timedelta(seconds=601)
    assert sorted(workflows.claim_due(db, ("running",), "proc-c", later, 600, 100)) == sorted(ids)


def test_release_only_by_the_lease_holder_and_backoff(dbs):
    from pandajedi_wf.taskbuffer import workflows

    db, _ = dbs
    now = datetime.datetime(2030, 1, 1)
    ids = insert_workflows(db, 3, now)
    claimed = workflows.claim_due(db, ("running",), "proc-a", now, 600, 10)
    workflows.release(db, claimed, "proc-intruder", now)  # not the holder: nothing happens
    assert workflows.claim_due(db, ("running",), "proc-b", now, 600, 10) == []
    workflows.release(db, claimed, "proc-a", now + datetime.timedelta(seconds=60))
    assert workflows.claim_due(db, ("running",), "proc-b", now, 600, 10) == []  # backing off
    assert sorted(workflows.claim_due(db, ("running",), "proc-b", now + datetime.timedelta(seconds=60), 600, 10)) == sorted(ids)


def test_rows_locked_by_a_concurrent_claim_are_skipped_not_waited_for(dbs):
    """While one processor's claiming transaction holds row locks, another's claim skips those rows at once."""
    from pandajedi_wf.taskbuffer import workflows

    db_a, db_b = dbs
    now = datetime.datetime(2030, 1, 1)
    ids = insert_workflows(db_a, 6, now)
    locked = sorted(ids)[:4]
    holding = threading.Event()
    release = threading.Event()

    def hold_locks():
        with db_a.transaction():
            id_list = ",".join(str(i) for i in locked)
            db_a.query(f"SELECT workflow_id FROM {db_a.table('JEDI_WF_WORKFLOWS')} WHERE workflow_id IN ({id_list}) FOR UPDATE")
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_locks)
    holder.start()
    assert holding.wait(10)
    try:
        got = workflows.claim_due(db_b, ("running",), "proc-b", now, 600, 10)
    finally:
        release.set()
        holder.join()
    assert sorted(got) == sorted(set(ids) - set(locked))


def test_one_pass_visits_every_due_workflow_once_in_batches(dbs, jedi_taskbuffer):
    """cycle_all: batches of 2 over 5 due workflows -> 3 batches, each workflow claimed once, none twice."""
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from wf_db_support import EXAMPLES, submit

    db, _ = dbs
    ids = [submit(db, "yaml", EXAMPLES / "native" / "chain.yaml", out_ds=f"user.dev.pass{i}").workflow_id for i in range(5)]
    stats = CycleStats()
    settings = workflow_processor.ProcessorSettings(batch_size=2)
    now = datetime.datetime.utcnow() + datetime.timedelta(seconds=5)

    summary = workflow_processor.cycle_all(db, stats, jedi_taskbuffer, now=now, owner="pass", settings=settings)

    assert stats.counters["workflows_claimed"] == 5 and stats.counters["batches"] == 3, (summary, stats.counters)
    rows = db.query(f"SELECT workflow_id, status FROM {db.table('JEDI_WF_WORKFLOWS')}")
    assert sorted(w for w, st in rows if st == "running") == sorted(ids)
    # the next pass (later clock) takes them again: they moved, so they are due at once, not after the back-off
    stats2 = CycleStats()
    workflow_processor.cycle_all(db, stats2, jedi_taskbuffer, now=now + datetime.timedelta(seconds=1), owner="pass", settings=settings)
    assert stats2.counters["workflows_claimed"] == 5


# ---- fair claims: oldest due first, the next free rows to a second claimer, Oracle's form -----------------------


def set_check_after(db, schedule):
    """workflow_id -> check_after"""
    with db.transaction():
        for workflow_id, check_after in schedule.items():
            db.execute(f"UPDATE {db.table('JEDI_WF_WORKFLOWS')} SET check_after=:c WHERE workflow_id=:w", {":c": check_after, ":w": workflow_id})


def test_a_second_claimer_gets_the_next_free_rows_in_due_order_while_the_first_holds_its_lock(dbs):
    """Two processors on their own connections: A's claim holds its row locks (transaction open); B, claiming at
    that moment, gets the next due rows at once, not none, not the rows A holds, and in due order (check_after,
    then id) whatever the ids' order."""
    from pandajedi_wf.taskbuffer import workflows

    db_a, db_b = dbs
    now = datetime.datetime(2030, 1, 1)
    ids = sorted(insert_workflows(db_a, 7, now))
    minutes = [5, 1, 9, 1, 3, 7, 2]  # due times out of id order, two equal ones (then the lower id comes first)
    set_check_after(db_a, {w: now - datetime.timedelta(minutes=m) for w, m in zip(ids, minutes)})
    due_order = sorted(ids, key=lambda w: (now - datetime.timedelta(minutes=minutes[ids.index(w)]), w))
    holding, release = threading.Event(), threading.Event()
    got_a: list[int] = []

    def first_claimer():
        with db_a.transaction():
            got_a.extend(workflows.lease_due(db_a, ("running",), "proc-a", now, 600, 2))
            holding.set()
            release.wait(20)

    holder = threading.Thread(target=first_claimer)
    holder.start()
    assert holding.wait(20)
    try:
        got_b = workflows.claim_due(db_b, ("running",), "proc-b", now, 600, 2)
    finally:
        release.set()
        holder.join()
    assert got_a == due_order[:2]
    assert got_b == due_order[2:4]
    # A committed: its rows are leased now, so the rest comes next, still oldest due first
    assert workflows.claim_due(db_b, ("running",), "proc-c", now, 600, 10) == due_order[4:]


def test_registered_requests_are_claimed_oldest_first(dbs, jedi_taskbuffer):
    """The intake takes upstream's registered rows by when they became due: never taken ones by registration, a row
    taken before (lock expired) by its lock time; the rest waits for the next claim."""
    from pandaserver.workflow.workflow_core import WorkflowInterface

    from pandajedi_wf.taskbuffer import upstream_workflows

    db, _ = dbs
    now = datetime.datetime(2030, 1, 1)
    ids = [WorkflowInterface(jedi_taskbuffer).register_workflow("user", "/CN=claims", raw_request_params={"n": i}) for i in range(4)]
    created = {ids[0]: 40, ids[1]: 10, ids[2]: 30, ids[3]: 50}  # minutes before now
    with db.transaction():
        for workflow_id, m in created.items():
            db.execute(f"UPDATE {db.table('workflows')} SET creation_time=:c WHERE workflow_id=:w",
                       {":c": now - datetime.timedelta(minutes=m), ":w": workflow_id})
        # ids[3], the oldest, was taken 20 minutes ago by an intake that crashed: due again by that time
        db.execute(f"UPDATE {db.table('workflows')} SET locked_by='gone', lock_time=:t WHERE workflow_id=:w",
                   {":t": now - datetime.timedelta(minutes=20), ":w": ids[3]})
    first = upstream_workflows.claim_registered(db, "intake-a", now, 600, 2)
    second = upstream_workflows.claim_registered(db, "intake-b", now, 600, 10)
    assert [r.workflow_id for r in first] == [ids[0], ids[2]]
    assert [r.workflow_id for r in second] == [ids[3], ids[1]]


class _OracleCursor:
    def __init__(self, sent, rows):
        self.sent, self.rows = sent, rows
        self.prefetchrows, self.arraysize = 2, 100
        self.rowcount = 0

    def execute(self, sql, binds):
        self.sent.append({"sql": sql, "binds": dict(binds), "prefetchrows": self.prefetchrows, "arraysize": self.arraysize})
        self.rowcount = len(self.rows)

    def fetchmany(self, n):
        self.sent[-1]["fetched"] = n
        return self.rows[:n]

    def fetchall(self):
        return list(self.rows)

    def close(self):
        pass


class _OracleConnection:
    """What WfDatabase sees of python-oracledb: statements are recorded, claims answer ``rows``."""

    def __init__(self, rows):
        self.sent: list[dict] = []
        self.rows = rows
        self.commits = 0

    def cursor(self):
        return _OracleCursor(self.sent, self.rows)

    def commit(self):
        self.commits += 1

    def rollback(self):
        pass


class _WrappedOracleCursor:
    """Upstream's WrappedCursor on Oracle: the schema names changed, the statement sent as it is."""

    def __init__(self, conn):
        self.cur = conn.cursor()

    def change_schema(self, sql):
        from pandaserver.taskbuffer.WrappedCursor import WrappedCursor

        return WrappedCursor.change_schema(None, sql)

    def execute(self, sql, binds):
        return self.cur.execute(self.change_schema(sql), binds)

    @property
    def rowcount(self):
        return self.cur.rowcount


def oracle_db(rows):
    from pandajedi_wf.taskbuffer.connection import ConnectionSettings, WfDatabase

    db = WfDatabase(ConnectionSettings(backend="oracle", dbhost="db.example", dbuser="u", dbpasswd="", dbname="", dbport=None,
                                       schema_jedi="ATLAS_PANDA", schema_deft="ATLAS_DEFT"))
    db._conn = _OracleConnection(rows)
    db._cur = _WrappedOracleCursor(db._conn)
    return db


@pytest.mark.parametrize("claim", ["workflows", "registered"])
def test_on_oracle_a_claim_fetches_its_rows_from_an_ordered_skip_locked_cursor_without_rownum(claim):
    """Oracle applies rownum before SKIP LOCKED: the claim is limited by fetching instead, with no more rows
    prefetched than it takes (Oracle locks what it sends), and the statement parses in the Oracle dialect."""
    from test_ddl_oracle_parse import parse_problems

    from pandajedi_wf.taskbuffer import upstream_workflows, workflows

    now = datetime.datetime(2030, 1, 1)
    if claim == "workflows":
        db = oracle_db([(11, None, None), (12, now, "proc-old")])
        assert workflows.claim_due_leases(db, ("running", "paused"), "proc-a", now, 600, 3) == {11: (None, None), 12: (now, "proc-old")}
        order = "ORDER BY check_after, workflow_id FOR UPDATE SKIP LOCKED"
    else:
        db = oracle_db([(21, "jdoe", "user", '{"a": 1}', None)])
        (got,) = upstream_workflows.claim_registered(db, "intake-a", now, 600, 3)
        assert got.workflow_id == 21 and got.request == {"a": 1}
        order = "ORDER BY COALESCE(lock_time, creation_time), workflow_id FOR UPDATE SKIP LOCKED"
    claim_sent, update_sent = db._conn.sent
    assert claim_sent["sql"].endswith(order), claim_sent["sql"]
    assert "rownum" not in claim_sent["sql"].lower() and " LIMIT " not in claim_sent["sql"].upper()
    assert ":claim_n" not in claim_sent["binds"]
    assert claim_sent["prefetchrows"] == claim_sent["arraysize"] == claim_sent["fetched"] == 3
    assert parse_problems(claim_sent["sql"], "oracle") == []
    assert update_sent["sql"].startswith("UPDATE ") and "locked_by=:owner" in update_sent["sql"]
    assert db._conn.commits == 1


def test_a_claim_must_give_its_order():
    db = oracle_db([])
    with pytest.raises(ValueError, match="ORDER BY"):
        db.claim_rows("SELECT workflow_id FROM ATLAS_PANDA.JEDI_WF_WORKFLOWS", {}, 5)
    assert db.claim_rows("SELECT workflow_id FROM ATLAS_PANDA.JEDI_WF_WORKFLOWS ORDER BY workflow_id", {}, 0) == []
    assert db._conn.sent == []


def test_an_ended_workflow_leaves_the_queue_by_its_row_s_status(dbs):
    """release decides from the row: a workflow that ended is out of the queue (check_after NULL) until a command
    makes it due, and one the caller last saw ended but that a command has meanwhile made running again stays in it.
    A workflow inserted ended is never in the queue."""
    from pandajedi_wf.taskbuffer import workflows

    db, _ = dbs
    now = datetime.datetime(2030, 1, 1)
    ended, retried = insert_workflows(db, 2, now)
    (refused,) = insert_workflows(db, 1, now, status="failed")
    assert sorted(workflows.claim_due(db, ("running",), "proc-a", now, 600, 10)) == sorted([ended, retried])
    db.execute(f"UPDATE {db.table('JEDI_WF_WORKFLOWS')} SET status='done' WHERE workflow_id=:w", {":w": ended})
    later = now + datetime.timedelta(minutes=1)
    workflows.release(db, [ended, retried], "proc-a", later)  # the caller's view of either does not matter

    check_after = dict(db.query(f"SELECT workflow_id, check_after FROM {db.table('JEDI_WF_WORKFLOWS')}"))
    assert check_after == {ended: None, retried: later, refused: None}
    workflows.make_due(db, ended, later)  # what queuing a command does
    # due again, but an ended workflow is claimed only with a command queued; the running one is due by its back-off
    assert workflows.claim_due(db, ("running",), "proc-a", later, 600, 10) == [retried]
