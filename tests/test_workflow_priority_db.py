"""Critical-path priority through the processor and upstream's TaskRefiner, on a real PostgreSQL: in a fork whose long
branch the workflow's end waits for, the short branch's task gets a lower currentPriority (JEDI_Tasks, written by
upstream's refiner from the task parameters) and the long branch's keeps the user's bound; the reasons are in the
steps' history. A chain (one live step at a time) is left alone."""

from __future__ import annotations

import datetime

import pytest

from example_paths import EXAMPLES
from wf_db_support import new_grid, submit, workflow_row

pytestmark = pytest.mark.db


def one_pass(db, task_buffer, now):
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    stats = CycleStats()
    workflow_processor.cycle_all(db, stats, task_buffer, now=now, owner="priority-test",
                                 settings=workflow_processor.ProcessorSettings(recheck_seconds=0, workers=1))
    return stats.counters


def step(db, workflow_id, name):
    (row,) = db.query_dicts(f"SELECT step_id, status, jedi_task_id FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w AND name=:n",
                            {":w": workflow_id, ":n": name})
    return row


def current_priority(db, task_id):
    return db.query(f"SELECT currentPriority, taskPriority FROM {db.table('JEDI_Tasks')} WHERE jediTaskID=:t", {":t": task_id})[0]


def test_the_short_branch_gives_way_to_the_critical_path(db, jedi_taskbuffer, tmp_path):
    from pandajedi_wf.core.clock import utcnow

    spec = tmp_path / "fork.yaml"
    spec.write_text((EXAMPLES / "native" / "fork.yaml").read_text() + "\noptions:\n  allow_partial_inputs: false\n")
    workflow_id = submit(db, "yaml", spec, out_ds="user.dev.fork").workflow_id
    grid = new_grid(db, jedi_taskbuffer)
    now = utcnow()
    for _ in range(30):
        one_pass(db, jedi_taskbuffer, now)
        if step(db, workflow_id, "short")["jedi_task_id"] and step(db, workflow_id, "long1")["jedi_task_id"]:
            break
        grid.tick()
        now += datetime.timedelta(minutes=30)  # each pass half an hour later: `first` takes hours
    short, long1 = step(db, workflow_id, "short"), step(db, workflow_id, "long1")
    assert short["jedi_task_id"] and long1["jedi_task_id"], workflow_row(db, workflow_id)
    grid.tick()  # upstream's TaskRefiner writes JEDI_Tasks from the task parameters
    short_priority, short_bound = current_priority(db, short["jedi_task_id"])
    long_priority, long_bound = current_priority(db, long1["jedi_task_id"])
    assert short_bound == long_bound == 1000  # insertTaskParamsPanda's user bound
    assert long_priority == 1000 and 900 <= short_priority < 1000, (short_priority, long_priority)
    print(f"short {short_priority}, long {long_priority}")
    reasons = {name: [r for (r,) in db.query(f"SELECT reason FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE entity_type='step' "
                                             "AND entity_id=:s ORDER BY transition_id", {":s": step(db, workflow_id, name)["step_id"]})]
               for name in ("short", "long1", "first")}
    assert any("of slack on the critical path" in r and f"priority {short_priority}" in r for r in reasons["short"]), reasons
    assert any("priority 1000: on the critical path" in r for r in reasons["long1"]), reasons
    assert not any("priority" in r for r in reasons["first"]), reasons  # alone: nothing to order
