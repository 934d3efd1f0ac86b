"""Crash safety of submission and concurrent processors, against real upstream JEDI submission on PostgreSQL.

A processor that dies between recording a submission intent and recording JEDI's answer leaves the step
``submitting``; the next cycle either submits it (JEDI never saw it) or adopts the task DEFT already holds.
Either way the step becomes exactly one JEDI task. Two processors sharing the tables never submit a step twice.
"""

from __future__ import annotations

import datetime
import time

import pytest

from wf_db_support import EXAMPLES, ENDED, ProcessorThreads, explain, new_grid, step_rows, submit, workflow_row


class ProcessDied(BaseException):
    """Stands for the processor's process being killed: nothing in the processor catches it."""


class DyingTaskBuffer:
    """Upstream's task buffer, except that the first submission kills the caller, before or after JEDI took it."""

    def __init__(self, task_buffer, after_jedi_accepted: bool):
        self.task_buffer = task_buffer
        self.after = after_jedi_accepted
        self.calls = 0

    def insertTaskParamsPanda(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 1:
            if self.after:
                answer = self.task_buffer.insertTaskParamsPanda(*args, **kwargs)
                assert answer[0] == 0, answer
            raise ProcessDied()
        return self.task_buffer.insertTaskParamsPanda(*args, **kwargs)


def count_tasks(db, task_name):
    deft = db.query(f"SELECT COUNT(*) FROM {db.schema_deft}.T_TASK WHERE taskName=:n", {":n": task_name})[0][0]
    jedi = db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_Tasks')} WHERE taskName=:n", {":n": task_name})[0][0]
    return int(deft), int(jedi)


@pytest.mark.parametrize("after_jedi_accepted", [False, True], ids=["before-jedi", "after-jedi"])
def test_crash_between_intent_and_answer_submits_exactly_once(db, jedi_taskbuffer, after_jedi_accepted):
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    result = submit(db, "cwl", EXAMPLES / "chain.cwl", out_ds="user.dev.crash")
    now = utcnow()
    with pytest.raises(ProcessDied):
        workflow_processor.cycle(db, CycleStats(), DyingTaskBuffer(jedi_taskbuffer, after_jedi_accepted), now=now, owner="proc-1")
    db.reconnect()
    (top,) = [r for r in step_rows(db, result.workflow_id).values() if r["name"] == "top"]
    assert top["status"] == "submitting" and top["jedi_task_id"] is None  # the intent survived the crash
    assert count_tasks(db, top["task_name"]) == ((1, 0) if after_jedi_accepted else (0, 0))

    # a new processor after the dead one's lease expired
    stats = CycleStats()
    workflow_processor.cycle(db, stats, jedi_taskbuffer, now=now + datetime.timedelta(hours=1), owner="proc-2")

    (top,) = [r for r in step_rows(db, result.workflow_id).values() if r["name"] == "top"]
    assert top["status"] == "submitted", explain(db, result.workflow_id)
    assert count_tasks(db, top["task_name"])[0] == 1
    # top is sent again only if JEDI never saw it; bottom waits until TaskRefiner has put top into JEDI_Tasks
    # (insertTaskParamsPanda refuses a parentTaskName it cannot find there)
    assert stats.counters.get("jedi_submissions", 0) == (0 if after_jedi_accepted else 1)
    assert next(r for r in step_rows(db, result.workflow_id).values() if r["name"] == "bottom")["status"] == "defined"
    reasons = [r[0] for r in db.query(f"SELECT reason FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE entity_id=:s AND entity_type='step' "
                                      "AND to_status='submitted'", {":s": top["step_id"]})]
    assert len(reasons) == 1 and ("adopted" in reasons[0]) == after_jedi_accepted, reasons

    # and the workflow runs to its end from there
    from wf_db_support import run_until_quiet

    status, _ = run_until_quiet(db, jedi_taskbuffer, new_grid(db, jedi_taskbuffer), result.workflow_id)
    assert status == "done", explain(db, result.workflow_id)
    assert count_tasks(db, top["task_name"]) == (1, 1)


@pytest.mark.parametrize("lease_seconds", [600, 0], ids=["leases", "leases-always-expired"])
def test_two_processors_in_parallel_never_submit_a_step_twice(db, jedi_taskbuffer, lease_seconds):
    """With working leases the processors split the workflows; with leases that expire at once both work on the
    same workflows at the same time, and the guarded updates plus JEDI's uniqueTaskName still keep one task per step."""
    from pandajedi_wf.daemons import workflow_processor

    ids = [submit(db, "cwl", EXAMPLES / "chain.cwl", out_ds=f"user.dev.par{i}").workflow_id for i in range(6)]
    grid = new_grid(db, jedi_taskbuffer)
    settings = workflow_processor.ProcessorSettings(recheck_seconds=0, lease_seconds=lease_seconds, batch_size=4)
    deadline = time.monotonic() + 60
    with ProcessorThreads(jedi_taskbuffer, settings) as procs:
        while time.monotonic() < deadline and not all(workflow_row(db, i)["status"] in ENDED for i in ids):
            grid.tick()
            time.sleep(0.05)
    assert not procs.errors, procs.errors
    for wf_id in ids:
        assert workflow_row(db, wf_id)["status"] == "done", explain(db, wf_id)
    deft = db.query(f"SELECT taskName, COUNT(*) FROM {db.schema_deft}.T_TASK GROUP BY taskName")
    assert len(deft) == 12 and all(n == 1 for _, n in deft), deft
    submissions = db.query(f"SELECT entity_id, COUNT(*) FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE entity_type='step' "
                           "AND to_status='submitting' GROUP BY entity_id")
    assert len(submissions) == 12 and all(n == 1 for _, n in submissions), submissions
