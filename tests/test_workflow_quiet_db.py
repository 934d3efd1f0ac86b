"""Workflows whose last decision changed nothing are not decided again while nothing changed (``processor.quiet``),
on a real PostgreSQL with upstream's task submission: skipped when only the back-off ran out, decided again as soon
as a followed task changes status, a command is queued, or a held retry falls due; and never skipped after another
processor held the workflow."""

from __future__ import annotations

import datetime

import pytest

from wf_db_support import EXAMPLES, new_grid, submit

pytestmark = pytest.mark.db
MINUTE = datetime.timedelta(minutes=1)


@pytest.fixture
def chain(tmp_path):
    path = tmp_path / "chain.yaml"  # the docs' chain, its child waiting for the parent's end
    path.write_text((EXAMPLES / "native" / "chain.yaml").read_text() + "\noptions:\n  allow_partial_inputs: false\n")
    return path


def one_pass(db, task_buffer, now, owner="quiet-test"):
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    stats = CycleStats()
    settings = workflow_processor.ProcessorSettings(recheck_seconds=60, workers=1)
    workflow_processor.cycle_all(db, stats, task_buffer, now=now, owner=owner, settings=settings)
    return stats.counters


def make_due(db, workflow_id, now):
    db.execute(f"UPDATE {db.table('JEDI_WF_WORKFLOWS')} SET check_after=:now WHERE workflow_id=:w", {":now": now, ":w": workflow_id})


def running_chain(db, jedi_taskbuffer, chain, now):
    """A chain whose first task runs, decided once with nothing to change (so it has its quiet note)."""
    workflow_id = submit(db, "yaml", chain, out_ds="user.dev.quiet").workflow_id
    one_pass(db, jedi_taskbuffer, now)
    grid = new_grid(db, jedi_taskbuffer)
    grid.tick()
    assert one_pass(db, jedi_taskbuffer, now + MINUTE)["step_transitions"] >= 1  # submitted -> running
    quiet = one_pass(db, jedi_taskbuffer, now + 2 * MINUTE)  # nothing moves: the note is written
    assert quiet["workflows_claimed"] == 1 and quiet.get("decisions_skipped", 0) == 0 and not quiet.get("step_transitions")
    return workflow_id, grid


def test_a_workflow_due_only_by_its_back_off_is_not_decided_again(db, jedi_taskbuffer, chain):
    from pandajedi_wf.core.clock import utcnow

    now = utcnow()
    workflow_id, _ = running_chain(db, jedi_taskbuffer, chain, now)
    for k in (4, 6, 8):  # the back-off runs out again and again: claimed, found unchanged, released
        make_due(db, workflow_id, now + k * MINUTE)
        counters = one_pass(db, jedi_taskbuffer, now + k * MINUTE)
        assert (counters["workflows_claimed"], counters["decisions_skipped"]) == (1, 1), counters
        assert "step_rows_kept" not in counters or counters["step_rows_kept"] == 0  # no rows read, nothing walked
    ((check_after,),) = db.query(f"SELECT check_after FROM {db.table('JEDI_WF_WORKFLOWS')} WHERE workflow_id=:w", {":w": workflow_id})
    assert check_after == now + 9 * MINUTE  # backs off like any workflow in which nothing moved


def test_a_task_that_changes_status_is_decided_at_once(db, jedi_taskbuffer, chain, monkeypatch):
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.taskbuffer import jedi_tasks

    now = utcnow()
    workflow_id, grid = running_chain(db, jedi_taskbuffer, chain, now)
    grid.tick()  # the first task ends in JEDI (finishing, then done)
    grid.tick()
    make_due(db, workflow_id, now + 4 * MINUTE)
    reads, task_states = [], jedi_tasks.task_states
    monkeypatch.setattr(jedi_tasks, "task_states", lambda db, ids: reads.append(sorted(ids)) or task_states(db, ids))
    counters = one_pass(db, jedi_taskbuffer, now + 4 * MINUTE)
    assert counters.get("decisions_skipped", 0) == 0 and counters["jedi_submissions"] == 1, counters  # the child goes
    # the status the claim read to tell the workflow was not quiet is the one the decision follows: read once
    ((first_task,),) = db.query(f"SELECT jedi_task_id FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w AND name='top'", {":w": workflow_id})
    assert sum(ids.count(int(first_task)) for ids in reads) == 1, reads


def test_a_queued_command_is_executed_although_nothing_else_changed(db, jedi_taskbuffer, chain):
    from pandajedi_wf.api.control import command_workflow
    from pandajedi_wf.core.clock import utcnow

    now = utcnow()
    workflow_id, _ = running_chain(db, jedi_taskbuffer, chain, now)
    assert command_workflow(db, workflow_id, "pause", None, "dev.user", None)["status"] == "queued"  # (makes it due)
    counters = one_pass(db, jedi_taskbuffer, now + 4 * MINUTE)
    assert counters.get("decisions_skipped", 0) == 0 and counters.get("commands_done") == 1, counters


def test_another_processor_s_claim_voids_the_note(db, jedi_taskbuffer, chain):
    """The note says what this process saw at its own last claim; after another processor held the workflow (it may
    have written its steps), the workflow is decided again."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.taskbuffer import workflows

    now = utcnow()
    workflow_id, _ = running_chain(db, jedi_taskbuffer, chain, now)
    make_due(db, workflow_id, now + 4 * MINUTE)
    assert workflows.claim_due(db, ("running",), "proc-b", now + 4 * MINUTE, 600, 10) == [workflow_id]  # another processor
    workflows.release(db, [workflow_id], "proc-b", now + 5 * MINUTE)
    counters = one_pass(db, jedi_taskbuffer, now + 5 * MINUTE)
    assert counters["workflows_claimed"] == 1 and counters.get("decisions_skipped", 0) == 0, counters
    make_due(db, workflow_id, now + 7 * MINUTE)
    assert one_pass(db, jedi_taskbuffer, now + 7 * MINUTE)["decisions_skipped"] == 1  # our own claim again: skipped
