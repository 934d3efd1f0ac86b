"""The processor's kept step rows on a real PostgreSQL, with real JEDI task submission through the grid simulator.

The cache may only save reads: the same workflows end the same way with and without it, a copy is never used
after another processor held the workflow or after an expired lease was taken over, and a pass that went wrong
keeps nothing.
"""

import datetime

import pytest

from wf_db_support import EXAMPLES, ENDED, new_grid, step_rows as rows_by_key, submit, workflow_row

MERGE_INPUT = "user.dev:user.dev.ntuples.v3_output"  # the input of tests/examples/native/merge_chain.yaml
LEASE = 600


def step_rows(db, workflow_id):
    """Step rows by step name (the chain's steps are top and bottom)."""
    return {r["name"]: r for r in rows_by_key(db, workflow_id).values()}


@pytest.fixture(autouse=True)
def no_kept_rows():
    """Tests must not share kept rows (the cache is module-level, like in a JEDI process)."""
    from pandajedi_wf.daemons import workflow_processor

    workflow_processor.PROCESSOR.step_rows.clear()
    yield
    workflow_processor.PROCESSOR.step_rows.clear()


@pytest.fixture
def chain(tmp_path):
    """The docs' simple chain, its child waiting for the parent's end."""
    path = tmp_path / "chain.yaml"
    path.write_text((EXAMPLES / "native" / "chain.yaml").read_text() + "\noptions:\n  allow_partial_inputs: false\n")
    return path


def one_pass(db, task_buffer, now, owner="a", **settings):
    """One processor pass at ``now``; returns its counters."""
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.daemons.workflow_processor import ProcessorSettings, cycle_all

    stats = CycleStats()
    cycle_all(db, stats, task_buffer, now=now, owner=owner, settings=ProcessorSettings(workers=1, **settings))
    return stats.counters


def run_to_end(db, task_buffer, grid, workflow_ids, start, max_passes=40, **settings):
    """Passes (two minutes apart) and grid ticks until every workflow ended; returns each pass's counters."""
    passes, now = [], start
    for _ in range(max_passes):
        now += datetime.timedelta(minutes=2)
        passes.append(one_pass(db, task_buffer, now, **settings))
        if all(workflow_row(db, w)["status"] in ENDED for w in workflow_ids):
            return passes
        grid.tick(now)
    raise AssertionError(f"workflows {[workflow_row(db, w)['status'] for w in workflow_ids]} after {max_passes} passes")


def outcome(db, workflow_id, out_ds):
    """What a run decided for one workflow, free of ids and of its output name: final status; per step its status,
    generation, JEDI task name and the (from, to) transitions of its history."""
    history = db.query_dicts(
        f"SELECT entity_id, from_status, to_status FROM {db.table('JEDI_WF_TRANSITIONS')} "
        "WHERE workflow_id=:w AND entity_type='step' ORDER BY transition_id", {":w": workflow_id})
    found = db.query_dicts(
        f"SELECT step_id, node_key, status, generation, task_name FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w",
        {":w": workflow_id})
    return workflow_row(db, workflow_id)["status"], {
        s["node_key"]: (s["status"], int(s["generation"]), (s["task_name"] or "").replace(out_ds, "<out>"),
                        [(h["from_status"], h["to_status"]) for h in history if int(h["entity_id"]) == int(s["step_id"])])
        for s in found
    }


def submit_all(db, chain, tag):
    specs = {"chain": chain, "merge": EXAMPLES / "native" / "merge_chain.yaml", "scatter": EXAMPLES / "native" / "scatter_overlay.yaml"}
    submitted = {}
    for name, spec in specs.items():
        result = submit(db, "yaml", spec, out_ds=f"user.dev.{tag}{name}")
        assert result.ok, result.problems
        submitted[name] = (result.workflow_id, f"user.dev.{tag}{name}")
    return submitted


def test_the_same_workflows_end_the_same_way_with_and_without_kept_rows(db, jedi_taskbuffer, chain):
    """A chain, a three-step merge chain and a scatter run to the end once reading every pass (cached_steps=0) and
    once with kept rows: every step ends in the same status, generation and task, through the same transitions;
    only the cached run reused rows."""
    from pandajedi_wf.core.clock import utcnow

    grid = new_grid(db, jedi_taskbuffer, datasets=[MERGE_INPUT])
    runs = {}
    for tag, cached_steps in (("u", 0), ("c", 300_000)):
        submitted = submit_all(db, chain, tag)
        passes = run_to_end(db, jedi_taskbuffer, grid, [w for w, _ in submitted.values()], utcnow(), cached_steps=cached_steps)
        runs[tag] = ({name: outcome(db, w, out_ds) for name, (w, out_ds) in submitted.items()}, passes)

    (uncached, uncached_passes), (cached, cached_passes) = runs["u"], runs["c"]
    assert cached == uncached
    assert {status for status, _ in cached.values()} == {"done"}, cached
    assert not any(p.get("step_rows_kept") for p in uncached_passes)
    assert any(p.get("step_rows_kept", 0) > 0 for p in cached_passes), cached_passes


def test_kept_rows_are_the_database_rows_after_every_pass(db, jedi_taskbuffer, chain):
    """After each pass, what the cache holds for a workflow equals its light step rows in the database."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.taskbuffer import steps

    grid = new_grid(db, jedi_taskbuffer, datasets=[MERGE_INPUT])
    ids = [w for w, _ in submit_all(db, chain, "k").values()]
    now, compared = utcnow(), 0
    for _ in range(40):
        now += datetime.timedelta(minutes=2)
        one_pass(db, jedi_taskbuffer, now)
        stored = steps.load_for_workflows(db, ids, light=True)
        for workflow_id, (_, kept) in workflow_processor.PROCESSOR.step_rows._entries.items():
            by_id = {int(r["step_id"]): {k: v for k, v in r.items() if k != "parent_keys"} for r in stored[workflow_id]}
            assert {int(r.step_id): {k: v for k, v in r.columns().items() if k != "parent_keys"} for r in kept} == by_id
            compared += 1
        if all(workflow_row(db, w)["status"] in ENDED for w in ids):
            break
        grid.tick(now)
    assert compared > 0


def test_rows_kept_before_another_processor_held_the_workflow_are_not_used(db, jedi_taskbuffer, chain):
    """Processor 'b' held the workflow between two passes of 'a' and moved the top step to done (its task ended):
    'a' reads the steps again and submits the child, instead of deciding on its copy (top still running there)."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.workflow_processor import ACTIVE_WORKFLOW_STATUSES
    from pandajedi_wf.taskbuffer import workflows

    workflow_id = submit(db, "yaml", chain, out_ds="user.dev.other").workflow_id
    grid, start = new_grid(db, jedi_taskbuffer), utcnow()
    one_pass(db, jedi_taskbuffer, start + datetime.timedelta(minutes=1))  # parsed -> running, top submitted
    grid.tick()
    one_pass(db, jedi_taskbuffer, start + datetime.timedelta(minutes=2))  # top follows its task: running
    assert step_rows(db, workflow_id)["top"]["status"] == "running"
    assert workflow_id in workflow_processor.PROCESSOR.step_rows._entries

    b_time = start + datetime.timedelta(minutes=3)
    assert list(workflows.claim_due_leases(db, ACTIVE_WORKFLOW_STATUSES, "b", b_time, LEASE, 10)) == [workflow_id]
    top = step_rows(db, workflow_id)["top"]
    db.execute(f"UPDATE {db.table('JEDI_Tasks')} SET status='done', stateChangeTime=:now WHERE jediTaskID=:t",
               {":now": utcnow(), ":t": top["jedi_task_id"]})
    db.execute(f"UPDATE {db.table('JEDI_WF_STEPS')} SET status='done', prev_status='running' WHERE step_id=:s", {":s": top["step_id"]})
    workflows.release(db, [workflow_id], "b", b_time)

    counters = one_pass(db, jedi_taskbuffer, start + datetime.timedelta(minutes=4))

    assert counters.get("workflows_claimed") == 1 and counters.get("step_rows_kept", 0) == 0, counters
    wf, rows = workflow_row(db, workflow_id), step_rows(db, workflow_id)
    assert wf["error_dialog"] is None, wf["error_dialog"]
    assert (rows["top"]["status"], rows["bottom"]["status"]) == ("done", "submitted"), rows
    assert counters.get("batch_write_fallbacks", 0) == 0, counters


def test_a_claim_that_took_over_an_expired_lease_keeps_nothing(db, jedi_taskbuffer, chain):
    """'b' claimed the workflow and never released it; once its lease expired 'a' takes the workflow over, reads
    the steps from the database and keeps none of them ('b' may still be writing)."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.workflow_processor import ACTIVE_WORKFLOW_STATUSES
    from pandajedi_wf.taskbuffer import workflows

    workflow_id = submit(db, "yaml", chain, out_ds="user.dev.expired").workflow_id
    new_grid(db, jedi_taskbuffer)
    start = utcnow()
    one_pass(db, jedi_taskbuffer, start)
    assert workflow_id in workflow_processor.PROCESSOR.step_rows._entries
    b_time = start + datetime.timedelta(minutes=1)
    assert list(workflows.claim_due_leases(db, ACTIVE_WORKFLOW_STATUSES, "b", b_time, LEASE, 10)) == [workflow_id]

    counters = one_pass(db, jedi_taskbuffer, b_time + datetime.timedelta(seconds=LEASE + 1), lease_seconds=LEASE)

    assert counters.get("workflows_claimed") == 1 and counters.get("step_rows_kept", 0) == 0, counters
    assert workflow_id not in workflow_processor.PROCESSOR.step_rows._entries
    assert workflow_processor.PROCESSOR.step_rows.rows == 0


def test_nothing_is_kept_when_cached_steps_is_zero(db, jedi_taskbuffer, chain):
    """cached_steps=0 switches keeping off: after passes that advanced the workflow the cache is empty."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor

    workflow_id = submit(db, "yaml", chain, out_ds="user.dev.off").workflow_id
    grid, now = new_grid(db, jedi_taskbuffer), utcnow()
    for _ in range(3):
        now += datetime.timedelta(minutes=2)
        counters = one_pass(db, jedi_taskbuffer, now, cached_steps=0)
        assert counters.get("workflows_claimed") == 1 and counters.get("step_rows_kept", 0) == 0, counters
        assert workflow_processor.PROCESSOR.step_rows.rows == 0 and not workflow_processor.PROCESSOR.step_rows._entries
        grid.tick(now)
    rows = step_rows(db, workflow_id)
    assert (rows["top"]["status"], rows["bottom"]["status"]) == ("done", "submitted"), rows


class FailingSubmission:
    """The task buffer, but insertTaskParamsPanda fails for tasks whose name ends with ``suffix`` while armed: it
    raises ``failure`` if that is an exception, else answers it."""

    def __init__(self, task_buffer, suffix, failure):
        self._task_buffer, self.suffix, self.failure, self.armed, self.failed = task_buffer, suffix, failure, True, 0

    def __getattr__(self, name):
        return getattr(self._task_buffer, name)

    def insertTaskParamsPanda(self, params, *args, **kw):
        import json

        if self.armed and json.loads(params)["taskName"].endswith(self.suffix):
            self.failed += 1
            if isinstance(self.failure, Exception):
                raise self.failure
            return self.failure
        return self._task_buffer.insertTaskParamsPanda(params, *args, **kw)


def pass_until_failed(db, task_buffer, grid, now):
    """Passes and ticks until the armed submission failed once; returns the clock of that pass."""
    for _ in range(10):
        now += datetime.timedelta(minutes=2)
        one_pass(db, task_buffer, now)
        if task_buffer.failed:
            return now
        grid.tick(now)
    raise AssertionError("the child was never submitted")


def test_a_pass_with_an_error_keeps_nothing_and_the_next_pass_repairs_from_the_database(db, jedi_taskbuffer, chain):
    """Submitting the child raises: the workflow gets the error, the step stays submitting and no rows are kept;
    the next pass reads the steps, finds the interrupted submission and submits it, and the workflow ends done."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor

    workflow_id = submit(db, "yaml", chain, out_ds="user.dev.error").workflow_id
    grid, now = new_grid(db, jedi_taskbuffer), utcnow()
    task_buffer = FailingSubmission(jedi_taskbuffer, "_bottom", ConnectionError("JEDI unreachable"))
    now = pass_until_failed(db, task_buffer, grid, now)
    assert task_buffer.failed == 1
    assert "insertTaskParamsPanda raised ConnectionError" in workflow_row(db, workflow_id)["error_dialog"]
    assert step_rows(db, workflow_id)["bottom"]["status"] == "submitting"
    assert workflow_id not in workflow_processor.PROCESSOR.step_rows._entries

    task_buffer.armed = False
    counters = one_pass(db, task_buffer, now + datetime.timedelta(minutes=2))

    assert counters.get("step_rows_kept", 0) == 0, counters
    bottom = step_rows(db, workflow_id)["bottom"]
    assert bottom["status"] == "submitted" and bottom["jedi_task_id"], bottom
    passes = run_to_end(db, task_buffer, grid, [workflow_id], now + datetime.timedelta(minutes=2))
    assert workflow_row(db, workflow_id)["status"] == "done"
    assert any(p.get("step_rows_kept", 0) > 0 for p in passes)


def test_a_pass_in_which_jedi_refused_a_submission_keeps_nothing(db, jedi_taskbuffer, chain):
    """JEDI refuses the child: the step fails with a retry decision the rows in memory do not all carry, so the
    workflow is not kept; the next pass reads the steps and the automatic retry takes the workflow to done."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor

    workflow_id = submit(db, "yaml", chain, out_ds="user.dev.refused").workflow_id
    grid = new_grid(db, jedi_taskbuffer)
    task_buffer = FailingSubmission(jedi_taskbuffer, "_bottom", (False, "temporary trouble in the test"))
    now = pass_until_failed(db, task_buffer, grid, utcnow())
    assert step_rows(db, workflow_id)["bottom"]["status"] == "failed"
    assert workflow_id not in workflow_processor.PROCESSOR.step_rows._entries

    task_buffer.armed = False
    passes = run_to_end(db, task_buffer, grid, [workflow_id], now)

    assert passes[0].get("step_rows_kept", 0) == 0, passes[0]
    assert workflow_row(db, workflow_id)["status"] == "done", workflow_row(db, workflow_id)


def test_a_workflow_that_ended_leaves_no_rows_behind(db, jedi_taskbuffer, chain):
    """No rows are kept for a workflow that ended: no pass claims it again to take them."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor

    workflow_id = submit(db, "yaml", chain, out_ds="user.dev.ended").workflow_id
    run_to_end(db, jedi_taskbuffer, new_grid(db, jedi_taskbuffer), [workflow_id], utcnow())
    assert workflow_row(db, workflow_id)["status"] == "done"

    assert workflow_id not in workflow_processor.PROCESSOR.step_rows._entries and workflow_processor.PROCESSOR.step_rows.rows == 0


def test_a_quiet_workflow_is_claimed_once_per_pass_even_without_back_off(db, jedi_taskbuffer, chain):
    """recheck_seconds=0 (allowed by ProcessorSettings) must mean 'due in the next pass', not 'due again in this one'."""
    from pandajedi_wf.core.clock import utcnow

    submit(db, "yaml", chain, out_ds="user.dev.quiet")
    now = utcnow()
    one_pass(db, jedi_taskbuffer, now, recheck_seconds=0)  # top submitted; no grid tick follows, so nothing moves next
    counters = one_pass(db, jedi_taskbuffer, now + datetime.timedelta(minutes=2), recheck_seconds=0, pass_seconds=2)

    assert counters.get("workflows_claimed") == 1, counters
