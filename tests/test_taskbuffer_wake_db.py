"""Waking backing-off workflows whose JEDI tasks changed, on a real PostgreSQL: ``workflows.changed_tasks`` and
``wake_for_tasks`` against hand-made rows, ``Processor.wake`` reading each change once, and the same through
``workflow_processor.cycle_all`` with real JEDI task submission."""

import datetime
import itertools

import pytest

from wf_db_support import EXAMPLES, new_grid, submit

CLAIMED = datetime.datetime(2030, 1, 1, 12, 0, 0, 250000)
WAKE = CLAIMED + datetime.timedelta(minutes=10)
BACKOFF = CLAIMED + datetime.timedelta(hours=1)
_task_ids = itertools.count(900_001)


def backing_off_workflow(db, step_status="running", task_changed=CLAIMED + datetime.timedelta(minutes=5)):
    """A workflow claimed at CLAIMED and released until BACKOFF, with one step in ``step_status`` whose JEDI task
    last changed status at ``task_changed``; returns the workflow id."""
    from pandajedi_wf.taskbuffer import steps, workflows

    workflow_id = workflows.insert(db, name="wake", user_name="dev.user", user_dn=None, vo="wlcg", prod_source_label="user",
                                   language="yaml", status="running", out_ds="user.dev.wake", definition=None, request=None,
                                   error_dialog=None, now=CLAIMED)
    task_id = next(_task_ids)
    (step_id,) = db.next_ids(steps.SEQUENCE, 1)
    steps.insert_many(db, [{"step_id": step_id, "workflow_id": workflow_id, "node_key": "top", "node_id": 0, "name": "top",
                            "step_type": "prun", "status": step_status, "iteration": 0, "scatter_index": None, "parent_keys": [],
                            "task_name": f"user.dev.wake_{task_id}"}], CLAIMED)
    db.execute(f"UPDATE {db.table('JEDI_WF_STEPS')} SET jedi_task_id=:t WHERE step_id=:s", {":t": task_id, ":s": step_id})
    db.execute(f"INSERT INTO {db.table('JEDI_Tasks')} (jediTaskID, taskName, status, stateChangeTime) VALUES (:t, :n, :st, :c)",
               {":t": task_id, ":n": f"user.dev.wake_{task_id}", ":st": "running", ":c": task_changed})
    assert workflows.claim_due(db, ("running",), "proc-a", CLAIMED, 600, 1) == [workflow_id]
    workflows.release(db, [workflow_id], "proc-a", BACKOFF)
    return workflow_id


def schedule(db, workflow_id):
    ((check_after, locked_by, lock_time),) = db.query(
        f"SELECT check_after, locked_by, lock_time FROM {db.table('JEDI_WF_WORKFLOWS')} WHERE workflow_id=:w", {":w": workflow_id})
    return check_after, locked_by, lock_time


SINCE = datetime.datetime(2000, 1, 1)  # every task row's realModificationTime (the DB's clock at insert) is after it


def workflows_woken(db, now=WAKE, since=SINCE):
    from pandajedi_wf.taskbuffer import workflows

    return workflows.wake_for_tasks(db, now, workflows.changed_tasks(db, since))[0]


def test_release_clears_the_owner_but_keeps_the_claim_time(db):
    """After release the workflow has no lease holder, backs off, and lock_time still says when it was claimed."""
    workflow_id = backing_off_workflow(db)

    assert schedule(db, workflow_id) == (BACKOFF, None, CLAIMED)


def test_a_workflow_whose_task_changed_after_its_claim_is_made_due(db):
    """A task status change after the last claim (or at the very same instant) wakes the workflow at ``now``."""
    later = backing_off_workflow(db)
    same_instant = backing_off_workflow(db, task_changed=CLAIMED)

    assert workflows_woken(db) == 2
    assert schedule(db, later) == (WAKE, None, CLAIMED) and schedule(db, same_instant)[0] == WAKE


def test_a_workflow_whose_task_changed_before_its_claim_keeps_backing_off(db):
    """The claim's cycle already saw that change: nothing new, so the back-off stands."""
    workflow_id = backing_off_workflow(db, task_changed=CLAIMED - datetime.timedelta(seconds=1))

    assert workflows_woken(db) == 0
    assert schedule(db, workflow_id)[0] == BACKOFF


def test_a_leased_workflow_is_not_woken(db):
    """A workflow a processor holds right now is left alone (its holder sets check_after on release)."""
    workflow_id = backing_off_workflow(db)
    db.execute(f"UPDATE {db.table('JEDI_WF_WORKFLOWS')} SET locked_by='proc-b' WHERE workflow_id=:w", {":w": workflow_id})

    assert workflows_woken(db) == 0
    assert schedule(db, workflow_id) == (BACKOFF, "proc-b", CLAIMED)


def test_a_workflow_already_due_is_not_counted(db):
    """A workflow already due keeps its check_after and is not in the count."""
    workflow_id = backing_off_workflow(db)
    due = WAKE - datetime.timedelta(seconds=30)
    db.execute(f"UPDATE {db.table('JEDI_WF_WORKFLOWS')} SET check_after=:c WHERE workflow_id=:w", {":c": due, ":w": workflow_id})

    assert workflows_woken(db) == 0
    assert schedule(db, workflow_id)[0] == due


def test_a_workflow_whose_only_step_is_done_is_not_woken(db):
    """Only steps that still follow their task count: a change of a finished step's task wakes nobody."""
    workflow_id = backing_off_workflow(db, step_status="done")

    assert workflows_woken(db) == 0
    assert schedule(db, workflow_id)[0] == BACKOFF


def test_only_tasks_changed_since_the_watermark_are_read(db):
    """A task whose last change (realModificationTime, set by upstream's trigger) is before ``since`` is not read."""
    from pandajedi_wf.taskbuffer import workflows

    backing_off_workflow(db)
    ((task_id, changed_at, state_changed_at),) = db.query(f"SELECT jediTaskID, realModificationTime, stateChangeTime FROM {db.table('JEDI_Tasks')}")
    assert changed_at is not None  # the trigger set it at insert
    assert workflows.changed_tasks(db, changed_at + datetime.timedelta(microseconds=1)) == {}
    assert workflows.changed_tasks(db, changed_at) == {task_id: workflows.TaskChange(changed_at, state_changed_at)}
    assert state_changed_at == CLAIMED + datetime.timedelta(minutes=5)  # the status change time comes with it


def test_a_held_workflow_s_task_is_looked_at_again_after_its_release(db):
    """While a processor holds the workflow the change is not settled (the holder may have read JEDI before it):
    ``wake_for_tasks`` names the task, and after the release the same change wakes the workflow."""
    from pandajedi_wf.taskbuffer import workflows

    workflow_id = backing_off_workflow(db)
    changes = workflows.changed_tasks(db, SINCE)
    (task_id,) = changes
    db.execute(f"UPDATE {db.table('JEDI_WF_WORKFLOWS')} SET locked_by='proc-b' WHERE workflow_id=:w", {":w": workflow_id})
    assert workflows.wake_for_tasks(db, WAKE, changes) == (0, {task_id})
    workflows.release(db, [workflow_id], "proc-b", BACKOFF)
    assert workflows.wake_for_tasks(db, WAKE, changes) == (1, set())


def waker(db):
    """A fresh processor's wake-up at WAKE, reading changes from SINCE: each call returns (task changes probed,
    workflows woken)."""
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.daemons.processor import Processor, ProcessorSettings

    processor, settings = Processor(), ProcessorSettings()
    processor.wake_since = SINCE

    def wake():
        stats = CycleStats()
        processor.wake(db, WAKE, settings, stats)
        return stats.counters["task_changes_read"], stats.counters["workflows_woken"]

    return wake


def test_the_processor_reads_each_change_once(db):
    """``Processor.wake`` keeps the changes it looked at within its overlap window: the same (task, time) is not
    probed again, a new change of the task is."""
    workflow_id = backing_off_workflow(db)
    wake = waker(db)

    assert wake() == (1, 1)
    db.execute(f"UPDATE {db.table('JEDI_WF_WORKFLOWS')} SET check_after=:b WHERE workflow_id=:w", {":b": BACKOFF, ":w": workflow_id})
    assert wake() == (0, 0)  # the same change: not read again
    db.execute(f"UPDATE {db.table('JEDI_Tasks')} SET modificationTime=:m", {":m": CLAIMED + datetime.timedelta(minutes=7)})
    assert wake() == (1, 1)  # a new change of the task


def test_a_wake_with_nothing_new_reads_nothing_again_and_a_new_change_only_is_read(db):
    """When no task changed since the last look (and no late commit appeared in the overlap), nothing is probed and
    the kept changes stay as they are; a new change of one task is the only one read, and replaces its old one."""
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.daemons.processor import Processor, ProcessorSettings

    for _ in range(3):
        backing_off_workflow(db)
    processor, settings = Processor(), ProcessorSettings()
    processor.wake_since = SINCE

    def wake():
        stats = CycleStats()
        processor.wake(db, WAKE, settings, stats)
        return stats.counters["task_changes_read"], dict(processor.seen_changes.by_task)

    read, kept = wake()
    assert read == 3 and len(kept) == 3
    assert wake() == (0, kept)
    task_id = min(kept)
    db.execute(f"UPDATE {db.table('JEDI_Tasks')} SET modificationTime=:m WHERE jediTaskID=:t",
               {":m": CLAIMED + datetime.timedelta(minutes=9), ":t": task_id})
    read, now_kept = wake()
    assert read == 1 and now_kept.keys() == kept.keys() and now_kept[task_id] != kept[task_id]
    assert list(now_kept)[-1] == task_id  # kept in the order of the changes: the newest last


def test_realmodificationtime_follows_modificationtime_as_upstreams_trigger_sets_it(db):
    """The dev schema's trigger behaves like upstream's (panda-database patch 0.0.16): a change of modificationTime
    sets realModificationTime to the DB's now; an update that leaves modificationTime alone does not."""
    import time

    backing_off_workflow(db)
    ((task_id, first),) = db.query(f"SELECT jediTaskID, realModificationTime FROM {db.table('JEDI_Tasks')}")
    time.sleep(0.01)
    db.execute(f"UPDATE {db.table('JEDI_Tasks')} SET errorDialog='x' WHERE jediTaskID=:t", {":t": task_id})
    assert db.query(f"SELECT realModificationTime FROM {db.table('JEDI_Tasks')}") == [(first,)]
    db.execute(f"UPDATE {db.table('JEDI_Tasks')} SET modificationTime=:m WHERE jediTaskID=:t", {":t": task_id, ":m": CLAIMED})
    ((second,),) = db.query(f"SELECT realModificationTime FROM {db.table('JEDI_Tasks')}")
    assert second > first


@pytest.mark.parametrize("step_status", ["submitted", "retrying", "cancelled"])
def test_every_step_status_that_follows_its_task_wakes(db, step_status):
    """Submitted, retrying and cancelled steps follow their task like running ones."""
    workflow_id = backing_off_workflow(db, step_status=step_status)

    assert workflows_woken(db) == 1
    assert schedule(db, workflow_id)[0] == WAKE


# end to end through the processor -------------------------------------------------------------------------------
def test_a_pass_advances_only_the_workflow_whose_task_ended(db, jedi_taskbuffer, tmp_path):
    """With an hour's back-off, workflows in which nothing moved wait; ending one workflow's running task in JEDI
    makes exactly that workflow due in the next pass, where its next step is submitted, and no other is claimed."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.daemons.workflow_processor import ProcessorSettings, cycle_all

    settings = ProcessorSettings(recheck_seconds=3600, workers=2)
    chain = tmp_path / "chain.yaml"  # the docs' chain, its child waiting for the parent's end (no noWaitParent)
    chain.write_text((EXAMPLES / "native" / "chain.yaml").read_text() + "\noptions:\n  allow_partial_inputs: false\n")
    ids = [submit(db, "yaml", chain, out_ds=f"user.dev.wake{i}").workflow_id for i in range(3)]

    def one_pass():
        stats = CycleStats()
        cycle_all(db, stats, jedi_taskbuffer, now=utcnow(), owner="wake-test", settings=settings)
        return stats.counters

    def tasks_of(workflow_id):
        return {r["name"]: (r["status"], r["jedi_task_id"]) for r in db.query_dicts(
            f"SELECT name, status, jedi_task_id FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w", {":w": workflow_id})}

    one_pass()  # parsed -> running, top submitted
    top_tasks = [tasks_of(w)["top"][1] for w in ids]
    assert all(top_tasks), [tasks_of(w) for w in ids]
    new_grid(db, jedi_taskbuffer).tick()  # JEDI defines the tasks and the pilots start them
    one_pass()  # the steps follow their tasks: submitted -> running
    assert all(tasks_of(w)["top"][0] == "running" for w in ids)
    quiet = one_pass()  # nothing moved: everyone backs off for an hour
    assert quiet.get("workflows_claimed") == 3 and quiet.get("workflows_woken", 0) == 0, quiet
    assert one_pass().get("workflows_claimed", 0) == 0

    # as upstream's status updates write it: modificationTime with the status (upstream's trigger then sets
    # realModificationTime, the index the wake-up reads)
    db.execute(f"UPDATE {db.table('JEDI_Tasks')} SET status='done', stateChangeTime=:now, modificationTime=:now WHERE jediTaskID=:t",
               {":now": utcnow(), ":t": top_tasks[1]})
    woken = one_pass()

    assert (woken.get("workflows_woken"), woken.get("workflows_claimed")) == (1, 1), woken
    assert tasks_of(ids[1])["top"][0] == "done" and tasks_of(ids[1])["bottom"][0] == "submitted", tasks_of(ids[1])
    for other in (ids[0], ids[2]):
        assert tasks_of(other) == {"top": ("running", tasks_of(other)["top"][1]), "bottom": ("defined", None)}
        assert schedule(db, other)[0] > utcnow() + datetime.timedelta(minutes=50)


def test_a_change_committed_late_inside_the_read_window_is_still_seen(db):
    """A JEDI transaction that commits after a later one leaves a change older than the newest one read: the next
    wake counts the window, finds one row more than it saw, reads it again and wakes that workflow."""
    from pandajedi_wf.taskbuffer import workflows

    first, late = backing_off_workflow(db), backing_off_workflow(db)
    (late_task,) = [t for t, w in db.query(f"SELECT s.jedi_task_id, s.workflow_id FROM {db.table('JEDI_WF_STEPS')} s") if w == late]
    db.execute(f"UPDATE {db.table('JEDI_Tasks')} SET realModificationTime=NULL WHERE jediTaskID=:t", {":t": late_task})  # not committed yet
    wake = waker(db)

    assert wake() == (1, 1) and schedule(db, first)[0] == WAKE
    assert wake() == (0, 0)  # nothing new: the window's count matches what was seen
    ((seen_at,),) = db.query(f"SELECT MAX(realModificationTime) FROM {db.table('JEDI_Tasks')}")
    db.execute(f"UPDATE {db.table('JEDI_Tasks')} SET realModificationTime=:m WHERE jediTaskID=:t",  # the late commit
               {":m": seen_at - datetime.timedelta(seconds=1), ":t": late_task})
    assert wake() == (1, 1)
    assert schedule(db, late)[0] == WAKE
    assert workflows.count_changed(db, SINCE, seen_at) == 2
