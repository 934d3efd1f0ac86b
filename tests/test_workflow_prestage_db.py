"""Workflow-level pre-staging on the real PostgreSQL: the processor plans the tape input of a later step when the
workflow starts, the carousel (over the tape simulator) queues it with a need-by behind every waiting task's request,
a task reading that dataset later joins the request (the data already on disk), and a killed workflow releases it
(its rule deleted as the carousel retires any other).

Everything moves through our and upstream's code: the processor (``workflow_processor.cycle``), the carousel cycle
(``data_carousel.cycle``), upstream's insertTaskParamsPanda / TaskRefiner for the reading task, the CLI's kill. The
reading task is one made like the carousel tests' tasks (``carousel_db_fixtures.make_tasks``), standing for the step's
task: the dev grid's task for a workflow step does not go through upstream's tape refinement."""

from __future__ import annotations

import datetime
import json
import time

import pytest

from tests.carousel_db_fixtures import GB, file_statuses, make_tasks, sql
from wf_db_support import new_grid, step_rows, submit, workflow_row

pytestmark = pytest.mark.db

RAW = "mc16:mc16.prestage.RAW"

SPEC = """name: prestaged
steps:
  top:
    type: prun
    args: "--outputs a.txt"
    exec: "echo a > a.txt"
  bottom:
    type: prun
    inDS: top/outDS
    secondaryDSs:
      - "{dataset}"
    args: "--outputs b.txt --secondaryDSs IN2:1:%{{SECDS1}}"
    exec: "cat %IN %IN2 > b.txt"
options:
  allow_partial_inputs: false
"""


# a step more before the reader: it is needed an hour later than in SPEC (steps wait for their parents to end: no
# noWaitParent, so the dev grid refines a step's task at once)
LONG_SPEC = SPEC.replace("""  bottom:
    type: prun
    inDS: top/outDS""", """  middle:
    type: prun
    inDS: top/outDS
    args: "--outputs m.txt"
    exec: "cat %IN > m.txt"
  bottom:
    type: prun
    inDS: middle/outDS""")


def tape_simulator(datasets, max_files=None):
    from pandajedi_wf_dev.simulators.tape import TapeEndpoint, TapeSimulator

    return TapeSimulator([TapeEndpoint("TAPE_A", 2, 100e6, 60)], datasets, start_time=time.time())


def utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)


def process(db, task_buffer, sim, **options):
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats

    stats = CycleStats()
    settings = workflow_processor.ProcessorSettings.from_options({"recheck_seconds": "0", "workers": "1", **options})
    workflow_processor.cycle(db, stats, task_buffer, now=utc(sim.now), owner="prestage-test", settings=settings)
    return stats.counters


def carousel(db, sim, task_buffer, config, step=60.0):
    from pandajedi_wf.daemons import data_carousel
    from pandajedi_wf.daemons.common import CycleStats

    stats = CycleStats()
    message = data_carousel.cycle(db, stats, sim, task_buffer, now=sim.now, config=config, vo="wlcg")
    assert "error" not in message, message
    sim.advance(step)
    return stats.counters


def start_workflow(db, task_buffer, sim, tmp_path, dataset, out_ds, text=SPEC, fate=None, **options):
    spec = tmp_path / f"{out_ds}.yaml"
    spec.write_text(text.format(dataset=dataset))
    workflow_id = submit(db, "yaml", spec, out_ds=out_ds).workflow_id
    start_workflow.grid = new_grid(db, task_buffer, fate=fate, datasets=[dataset])  # (the last one made, for a test that runs the steps)
    sim.advance(max(time.time() + 1.0 - sim.now, 0.0))  # the processor's clock after the submission
    counters = process(db, task_buffer, sim, **options)
    assert workflow_row(db, workflow_id)["status"] == "running"
    return workflow_id, counters


def prestages(pg, workflow_id):
    keys = ("dataset", "node_key", "ready_time", "need_by_time", "request_id", "outcome", "taken_time", "released_time")
    rows = sql(pg, f"SELECT {', '.join(keys)} FROM doma_panda.jedi_dc_prestages WHERE workflow_id=%s ORDER BY dataset", workflow_id)
    return [dict(zip(keys, r)) for r in rows]


def request_of(pg, dataset):
    keys = ("request_id", "status", "need_by_time", "priority", "rule_id", "total_files")
    rows = sql(pg, f"SELECT {', '.join(keys)} FROM doma_panda.jedi_dc_requests WHERE dataset=%s ORDER BY request_id", dataset)
    return [dict(zip(keys, r)) for r in rows]


def history(pg, request_id):
    return [s for (s,) in sql(pg, "SELECT to_status FROM doma_panda.jedi_wf_transitions WHERE entity_type='staging' AND entity_id=%s "
                                  "ORDER BY transition_id", request_id)]


def first_transition(pg, request_id, status):
    rows = sql(pg, "SELECT MIN(transition_id) FROM doma_panda.jedi_wf_transitions WHERE entity_type='staging' AND entity_id=%s "
                   "AND to_status=%s", request_id, status)
    return rows[0][0]


def config(**extra):
    from pandajedi_wf.carousel.config import load_config

    return load_config({"stuck_timeout_seconds": 3600, **extra})


def test_a_later_steps_tape_input_is_pre_staged_at_the_start_and_its_task_joins_the_staged_request(db, pg, jedi_taskbuffer, tmp_path):
    from pandajedi_wf.placement.prestage import PrestagePolicy
    from pandajedi_wf.taskbuffer import staging_prestages
    from pandajedi_wf_dev.simulators.tape import SimDataset

    sim = tape_simulator([SimDataset(RAW, (GB,) * 3, ("TAPE_A",))])
    workflow_id, counters = start_workflow(db, jedi_taskbuffer, sim, tmp_path, RAW, "user.dev.prestage")
    started = utc(sim.now)
    assert counters.get("prestages_planned") == 1
    (planned,) = prestages(pg, workflow_id)
    policy = PrestagePolicy()  # no step has run yet: 'top' is estimated at the default, the recall at its latency
    ready = started + datetime.timedelta(seconds=policy.default_step_seconds)
    assert (planned["dataset"], planned["node_key"], planned["ready_time"]) == (RAW, "002", ready)
    assert planned["need_by_time"] == ready - datetime.timedelta(seconds=policy.tape_latency_seconds)
    assert planned["taken_time"] is None and planned["request_id"] is None

    # a start replayed after a crash plans nothing twice
    again = staging_prestages.PlannedRow(workflow_id, RAW, "002", ready, planned["need_by_time"])
    with db.transaction():
        assert staging_prestages.plan(db, [again], started) == 0
    assert len(prestages(pg, workflow_id)) == 1

    carousel(db, sim, jedi_taskbuffer, config())
    (request,) = request_of(pg, RAW)
    (taken,) = prestages(pg, workflow_id)
    assert taken["outcome"] == "requested" and taken["request_id"] == request["request_id"]
    assert request["priority"] == 0 and request["total_files"] == 3
    # its bytes at the tape's expected rate (the default 200 MB/s) on top of the planned latency
    assert request["need_by_time"] == planned["need_by_time"] - datetime.timedelta(seconds=3 * GB / 200e6)
    assert history(pg, request["request_id"]) == ["queued", "submitting", "staging"]  # nobody waits: admitted at once
    for _ in range(40):
        carousel(db, sim, jedi_taskbuffer, config())
        if request_of(pg, RAW)[0]["status"] == "done":
            break
    assert request_of(pg, RAW)[0]["status"] == "done"

    # the step's task asks for the dataset: related to the pre-staged request, its files released from disk at once
    (task,) = make_tasks(jedi_taskbuffer, pg, [{"name": "user.dev.prestage.bottom", "dataset": RAW, "n_files": 3}])
    carousel(db, sim, jedi_taskbuffer, config())
    (joined,) = request_of(pg, RAW)
    assert joined["request_id"] == request["request_id"] and joined["status"] == "done"
    assert joined["need_by_time"] is None and joined["priority"] == 1000  # the task's request now
    assert sql(pg, "SELECT jedi_task_id FROM doma_panda.jedi_dc_relations WHERE request_id=%s", request["request_id"]) == [(task,)]
    assert file_statuses(pg, task) == {"pending": 3}
    assert len(sim.rules) == 1  # no second recall


def test_a_pre_stage_never_overtakes_a_waiting_task_under_a_tight_tape_window(db, pg, jedi_taskbuffer, tmp_path):
    from pandajedi_wf_dev.simulators.tape import SimDataset

    first, second, ahead = "mc16:mc16.window.first.RAW", "mc16:mc16.window.second.RAW", "mc16:mc16.window.ahead.RAW"
    sim = tape_simulator([SimDataset(first, (GB,) * 4, ("TAPE_A",)), SimDataset(second, (GB,) * 4, ("TAPE_A",)),
                          SimDataset(ahead, (GB,) * 1, ("TAPE_A",))])
    tight = config(default_tape={"max_files": 5, "max_bytes": 100 * GB}, window_from_throughput=False, release_threshold=1.0)
    workflow_id, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, ahead, "user.dev.window")
    make_tasks(jedi_taskbuffer, pg, [{"name": "dc.window.t1", "dataset": first, "n_files": 4},
                                     {"name": "dc.window.t2", "dataset": second, "n_files": 4}])
    counters = carousel(db, sim, jedi_taskbuffer, tight)
    by_ds = {r["dataset"]: r for r in (dict(zip(("dataset", "request_id", "status"), row)) for row in
                                       sql(pg, "SELECT dataset, request_id, status FROM doma_panda.jedi_dc_requests"))}
    # 4 files of the first task's dataset fill the window of 5; the second task's 4 wait; the pre-stage's 1 would fit
    assert {d: r["status"] for d, r in by_ds.items()} == {first: "staging", second: "queued", ahead: "queued"}
    assert counters.get("held_prestage_behind_tasks") == 1 and counters.get("held_tape_full") == 1
    for _ in range(60):
        carousel(db, sim, jedi_taskbuffer, tight)
        if history(pg, by_ds[ahead]["request_id"])[1:2] == ["submitting"]:
            break
    started_second = first_transition(pg, by_ds[second]["request_id"], "submitting")
    started_ahead = first_transition(pg, by_ds[ahead]["request_id"], "submitting")
    assert started_second is not None and started_ahead is not None
    assert started_second < started_ahead  # the waiting task's recall started first, never the pre-stage


def test_a_killed_workflow_releases_its_pre_stage_and_the_staged_data_is_retired(db, pg, jedi_taskbuffer, tmp_path):
    import io

    from pandajedi_wf.api.db_client import DbWorkflowClient
    from pandajedi_wf.cli.main import main
    from pandajedi_wf_dev.simulators.tape import SimDataset

    killed = "mc16:mc16.killed.RAW"
    sim = tape_simulator([SimDataset(killed, (GB,) * 2, ("TAPE_A",))])
    workflow_id, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, killed, "user.dev.killed")
    for _ in range(40):
        carousel(db, sim, jedi_taskbuffer, config())
        if request_of(pg, killed)[0]["status"] == "done":
            break
    (request,) = request_of(pg, killed)
    assert request["status"] == "done" and request["rule_id"] in sim.rules
    carousel(db, sim, jedi_taskbuffer, config())
    assert request_of(pg, killed)[0]["status"] == "done"  # no task yet, but the running workflow still wants it

    out, err = io.StringIO(), io.StringIO()
    assert main(["--json", "kill", str(workflow_id)], client_factory=lambda: DbWorkflowClient(db), out=out, err=err) == 0, err.getvalue()
    assert json.loads(out.getvalue())["status"] == "queued"
    process(db, jedi_taskbuffer, sim)
    assert workflow_row(db, workflow_id)["status"] in ("cancelling", "cancelled")
    counters = carousel(db, sim, jedi_taskbuffer, config())
    assert counters.get("prestages_released") == 1 and counters.get("requests_retired") == 1
    assert prestages(pg, workflow_id)[0]["released_time"] is not None
    assert request_of(pg, killed)[0]["status"] == "retired"
    assert request["rule_id"] not in sim.rules  # the rule deleted: the disk buffer is free


def test_a_workflow_killed_before_its_recall_started_cancels_the_queued_request(db, pg, jedi_taskbuffer, tmp_path):
    import io

    from pandajedi_wf.api.db_client import DbWorkflowClient
    from pandajedi_wf.cli.main import main
    from pandajedi_wf_dev.simulators.tape import SimDataset

    later = "mc16:mc16.later.RAW"
    sim = tape_simulator([SimDataset(later, (GB,) * 2, ("TAPE_A",))])
    workflow_id, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, later, "user.dev.later", LONG_SPEC)
    assert prestages(pg, workflow_id)[0]["node_key"] == "003"
    counters = carousel(db, sim, jedi_taskbuffer, config(prestage_lead_seconds=0))  # its recall starts in an hour: not yet
    assert counters.get("held_prestage_not_due") == 1
    (request,) = request_of(pg, later)
    assert request["status"] == "queued" and not sim.rules
    assert main(["kill", str(workflow_id)], client_factory=lambda: DbWorkflowClient(db), out=io.StringIO(), err=io.StringIO()) == 0
    process(db, jedi_taskbuffer, sim)
    carousel(db, sim, jedi_taskbuffer, config(prestage_lead_seconds=0))
    assert request_of(pg, later)[0]["status"] == "cancelled"
    assert history(pg, request["request_id"]) == ["queued", "cancelled"]


def test_two_workflows_pre_staging_one_dataset_share_one_request_needed_by_the_earlier_and_one_kill_keeps_it(db, pg, jedi_taskbuffer, tmp_path):
    import io

    from pandajedi_wf.api.db_client import DbWorkflowClient
    from pandajedi_wf.cli.main import main
    from pandajedi_wf_dev.simulators.tape import SimDataset

    shared = "mc16:mc16.shared.RAW"
    sim = tape_simulator([SimDataset(shared, (GB,) * 2, ("TAPE_A",))])
    lead0 = config(prestage_lead_seconds=0)
    late, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, shared, "user.dev.late", LONG_SPEC)
    carousel(db, sim, jedi_taskbuffer, lead0)
    (request,) = request_of(pg, shared)
    assert request["status"] == "queued"  # its recall starts in an hour
    soon, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, shared, "user.dev.soon")
    counters = carousel(db, sim, jedi_taskbuffer, lead0)
    assert counters.get("prestages_shared") == 1
    (joined,) = request_of(pg, shared)
    (soon_row,) = prestages(pg, soon)
    assert joined["request_id"] == request["request_id"] and soon_row["outcome"] == "shared" and soon_row["request_id"] == request["request_id"]
    assert joined["need_by_time"] < request["need_by_time"]  # the earlier need-by counts: now due, so admitted
    assert joined["status"] == "staging"

    assert main(["kill", str(late)], client_factory=lambda: DbWorkflowClient(db), out=io.StringIO(), err=io.StringIO()) == 0
    process(db, jedi_taskbuffer, sim)
    counters = carousel(db, sim, jedi_taskbuffer, lead0)
    assert counters.get("prestages_released") == 1
    assert request_of(pg, shared)[0]["status"] in ("staging", "done")  # the other workflow still wants it


def test_the_operators_settings_set_the_plans_estimates_or_turn_pre_staging_off(db, pg, jedi_taskbuffer, tmp_path):
    from pandajedi_wf_dev.simulators.tape import SimDataset

    sim = tape_simulator([SimDataset(RAW, (GB,) * 1, ("TAPE_A",))])
    workflow_id, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, RAW, "user.dev.tuned",
                                    prestage_step_seconds="600", prestage_recall_seconds="7200")
    (planned,) = prestages(pg, workflow_id)
    assert planned["ready_time"] == utc(sim.now) + datetime.timedelta(seconds=600)
    assert planned["need_by_time"] == planned["ready_time"] - datetime.timedelta(seconds=7200)  # already late: first in line
    off, counters = start_workflow(db, jedi_taskbuffer, sim, tmp_path, RAW, "user.dev.off", prestage="0")
    assert prestages(pg, off) == [] and "prestages_planned" not in counters


def test_the_steps_own_task_takes_the_pre_stage_over_and_the_request_retires_when_that_task_ends(db, pg, jedi_taskbuffer, tmp_path):
    """The reading step's own task (submitted by the processor once 'top' is done on the dev grid) is related to the
    pre-staged request as the carousel's intake relates a task waiting in staging (``staging_relations.add``: the dev
    grid's tasks do not go through upstream's tape refinement); from then on the request is the task's."""
    from pandajedi_wf.taskbuffer import staging_relations
    from pandajedi_wf_dev.simulators.tape import SimDataset

    handed = "mc16:mc16.handed.RAW"  # the step names it without its scope (prun's IN2:1:<dataset> takes no colon)
    sim = tape_simulator([SimDataset(handed, (GB,) * 2, ("TAPE_A",))])
    workflow_id, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, "mc16.handed.RAW", "user.dev.handed")
    grid = start_workflow.grid
    bottom = None
    for _ in range(40):
        carousel(db, sim, jedi_taskbuffer, config())
        grid.tick(utc(sim.now))
        process(db, jedi_taskbuffer, sim)
        bottom = step_rows(db, workflow_id).get("002", {}).get("jedi_task_id")
        if bottom and sql(pg, "SELECT status FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", int(bottom)):
            break  # submitted by the processor and refined by upstream's TaskRefiner: a task JEDI knows
    (request,) = request_of(pg, handed)
    assert bottom and workflow_row(db, workflow_id)["status"] == "running", (bottom, request)
    assert prestages(pg, workflow_id)[0]["released_time"] is None
    staging_relations.add(db, request["request_id"], [int(bottom)], sim.now)
    counters = carousel(db, sim, jedi_taskbuffer, config())
    assert counters.get("prestages_handed_over") == 1 and not counters.get("prestages_released")
    assert prestages(pg, workflow_id)[0]["released_time"] is not None
    for _ in range(40):
        if request_of(pg, handed)[0]["status"] in ("retired", "cancelled"):
            break
        grid.tick(utc(sim.now))
        process(db, jedi_taskbuffer, sim)
        carousel(db, sim, jedi_taskbuffer, config())
    # the task ended (on the dev grid it need not wait for the recall): retired once done, or cancelled while staging
    assert request_of(pg, handed)[0]["status"] in ("retired", "cancelled")
    assert sql(pg, "SELECT status FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", int(bottom)) == [("done",)]  # its task ended
    assert request["rule_id"] not in sim.rules


BRANCH_SPEC = """name: branch
options:
  allow_partial_inputs: false
steps:
  top:
    type: prun
    args: "--outputs a.txt"
    exec: "echo a > a.txt"
  on_failure:
    type: prun
    inDS: top/outDS
    secondaryDSs:
      - "{dataset}"
    when: "!self.opt_inDS"
    args: "--outputs b.txt --secondaryDSs IN2:1:%{{SECDS1}}"
    exec: "cat %IN %IN2 > b.txt"
  long:
    type: prun
    inDS: top/outDS
    args: "--outputs c.txt"
    exec: "cat %IN > c.txt"
"""


def test_a_pre_stage_whose_step_is_skipped_is_released_while_the_workflow_runs(db, pg, jedi_taskbuffer, tmp_path):
    from pandajedi_wf_dev.simulators.grid import Fate
    from pandajedi_wf_dev.simulators.tape import SimDataset

    branch = "mc16:mc16.branch.RAW"
    sim = tape_simulator([SimDataset(branch, (GB,) * 2, ("TAPE_A",))])
    workflow_id, _ = start_workflow(db, jedi_taskbuffer, sim, tmp_path, "mc16.branch.RAW", "user.dev.branch", BRANCH_SPEC,
                                    fate=lambda name: Fate(running_ticks=50 if name.endswith("long") else 1))
    assert prestages(pg, workflow_id)[0]["node_key"] == "002"
    grid = start_workflow.grid
    for _ in range(30):
        carousel(db, sim, jedi_taskbuffer, config())
        grid.tick(utc(sim.now))
        process(db, jedi_taskbuffer, sim)
        if step_rows(db, workflow_id)["002"]["status"] == "skipped":
            break
    assert step_rows(db, workflow_id)["002"]["status"] == "skipped"  # 'top' succeeded: the failure branch is not taken
    counters = carousel(db, sim, jedi_taskbuffer, config())
    assert counters.get("prestages_skipped") == 1
    assert workflow_row(db, workflow_id)["status"] == "running"  # 'long' still runs
    (request,) = request_of(pg, branch)
    assert request["status"] in ("retired", "cancelled") and request["rule_id"] not in sim.rules
