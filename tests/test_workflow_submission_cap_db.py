"""The per-workflow submission cap holds for new intents and for the crash-repair path, on a wide scatter.

Before, the processor wrote an intent (``submitting``) for every ready step and only *called JEDI* for the first
``max_submissions_per_workflow``; the rest were submitted in the next pass one by one through the crash repair,
uncapped, each with a DEFT lookup (a wide scatter made one pass take 44 s). Now a pass writes at most the cap of
intents, the other steps stay ``ready`` for the next passes, and the repair of intents a crash left is capped too.
"""

from __future__ import annotations

import datetime

import pytest

from wf_db_support import TEMPLATES, step_rows

WIDTH = 60
CAP = 25

WIDE_SCATTER = """cwlVersion: v1.0
class: Workflow
requirements:
  ScatterFeatureRequirement: {}
inputs:
  seeds: string[]
outputs:
  outDS:
    type: string
    outputSource: gen/outDS
steps:
  gen:
    run: prun
    scatter: [opt_args]
    in:
      opt_args: seeds
      opt_exec:
        default: "echo %RNDM:10 > seed.txt"
    out: [outDS]
"""


class CountingTaskBuffer:
    """Upstream's task buffer, counting submissions; optionally the process dies after JEDI took the n-th one."""

    def __init__(self, task_buffer, die_after: int | None = None):
        self.task_buffer, self.die_after, self.calls = task_buffer, die_after, 0

    def insertTaskParamsPanda(self, *args, **kwargs):
        self.calls += 1
        answer = self.task_buffer.insertTaskParamsPanda(*args, **kwargs)
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt("killed")  # a BaseException: nothing in the processor catches it
        return answer

    def __getattr__(self, name):
        return getattr(self.task_buffer, name)


def submit_wide(db, tmp_path):
    from pandajedi_wf.api import submit_workflow

    spec = tmp_path / "wide.cwl"
    spec.write_text(WIDE_SCATTER)
    seeds = [f"--outputs seed.txt --nJobs 1 --avoidVP --seed {k}" for k in range(WIDTH)]
    result = submit_workflow(db, language="cwl", spec=str(spec), input_values={"seeds": seeds}, base_dir=str(tmp_path),
                             out_ds="user.dev.wide", user_name="dev.user", user_dn="dev.user", vo="wlcg", task_templates=TEMPLATES)
    assert result.ok, result.problems
    return result.workflow_id


def counts(db, workflow_id) -> dict[str, int]:
    found: dict[str, int] = {}
    for r in step_rows(db, workflow_id).values():
        found[r["status"]] = found.get(r["status"], 0) + 1
    return found


def deft_tasks(db) -> int:
    return int(db.query(f"SELECT COUNT(*) FROM {db.schema_deft}.T_TASK")[0][0])


def test_a_wide_scatter_writes_at_most_the_cap_of_intents_per_pass(db, jedi_taskbuffer, tmp_path):
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    workflow_id = submit_wide(db, tmp_path)
    settings = workflow_processor.ProcessorSettings(max_submissions_per_workflow=CAP, workers=1, recheck_seconds=3600)
    now = utcnow()
    task_buffer = CountingTaskBuffer(jedi_taskbuffer)
    passes = []
    for n in range(5):
        stats = CycleStats()
        workflow_processor.cycle_all(db, stats, task_buffer, now=now + datetime.timedelta(seconds=n), settings=settings)
        passes.append((task_buffer.calls, counts(db, workflow_id), stats.counters.get("submissions_deferred", 0)))
        # never an intent beyond the cap: what is not submitted this pass is still 'ready', not 'submitting'
        assert counts(db, workflow_id).get("submitting", 0) == 0, passes
    assert [calls for calls, _, _ in passes] == [25, 50, 60, 60, 60], passes
    assert passes[0][1] == {"submitted": 25, "ready": 35} and passes[0][2] == 35, passes
    assert passes[1][1] == {"submitted": 50, "ready": 10}, passes
    assert passes[2][1] == {"submitted": 60}, passes
    assert deft_tasks(db) == WIDTH
    intents = db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE workflow_id=:w AND to_status='submitting'",
                       {":w": workflow_id})[0][0]
    assert intents == WIDTH  # one intent per step, none written twice


def test_crash_repair_of_many_intents_is_capped_per_pass(db, jedi_taskbuffer, tmp_path):
    """Intents a crash left (here by a processor with a larger cap, killed after its first JEDI call) are repaired at
    most ``cap`` per pass, and no new intent is written in a pass whose budget the repair used up."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    workflow_id = submit_wide(db, tmp_path)
    now = utcnow()
    wide = workflow_processor.ProcessorSettings(max_submissions_per_workflow=40, workers=1)
    with pytest.raises(KeyboardInterrupt):
        workflow_processor.cycle(db, CycleStats(), CountingTaskBuffer(jedi_taskbuffer, die_after=1), now=now, owner="dead", settings=wide)
    db.reconnect()
    assert counts(db, workflow_id) == {"submitting": 40, "ready": 20}

    settings = workflow_processor.ProcessorSettings(max_submissions_per_workflow=CAP, workers=1, recheck_seconds=3600)
    later = now + datetime.timedelta(hours=1)  # the dead processor's leases expired
    seen = []
    for n in range(4):
        stats = CycleStats()
        task_buffer = CountingTaskBuffer(jedi_taskbuffer)
        workflow_processor.cycle_all(db, stats, task_buffer, now=later + datetime.timedelta(seconds=n), settings=settings)
        seen.append((stats.counters.get("intents_repaired", 0), task_buffer.calls, counts(db, workflow_id)))
    # pass 1: 25 of the 40 intents repaired (the first one adopted from DEFT, no JEDI call), no new intent;
    # pass 2: the last 15 repaired, 10 new intents; pass 3: the last 10
    assert [(repaired, calls) for repaired, calls, _ in seen] == [(25, 24), (15, 25), (0, 10), (0, 0)], seen
    assert seen[0][2] == {"submitted": 25, "submitting": 15, "ready": 20}, seen
    assert seen[-1][2] == {"submitted": 60}, seen
    assert deft_tasks(db) == WIDTH
