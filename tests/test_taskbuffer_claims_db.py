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
    from pandajedi_wf.taskbuffer.connection import SKIP_LOCKED

    db_a, db_b = dbs
    now = datetime.datetime(2030, 1, 1)
    ids = insert_workflows(db_a, 6, now)
    locked = sorted(ids)[:4]
    holding = threading.Event()
    release = threading.Event()

    def hold_locks():
        with db_a.transaction():
            id_list = ",".join(str(i) for i in locked)
            db_a.query(f"SELECT workflow_id FROM {db_a.table('JEDI_WF_WORKFLOWS')} WHERE workflow_id IN ({id_list}) {SKIP_LOCKED}")
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
    ids = [submit(db, "yaml", EXAMPLES / "native_wfd" / "simple_chain.yaml", out_ds=f"user.dev.pass{i}").workflow_id for i in range(5)]
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
