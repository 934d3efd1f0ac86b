"""The workflow-aware job broker on the real database, loaded and called the way JEDI does it.

Real: upstream's ``JobBroker`` factory reads ``[jobbroker] modConfig`` of the test PANDA_HOME's panda_jedi.cfg
(written by pandajedi_wf_dev.devdb.panda_home) and loads ``WorkflowJobBroker`` through ``FactoryBase``; our plugin
loads upstream's ``GenJobBroker`` from ``wf_inner_modConfig`` through ``FactoryBase`` too; the sites are upstream's
``SiteMapper`` over schedconfig rows of three queues; the workflow (tests/examples/fan_in.cwl) is run by our processor
through upstream's insertTaskParamsPanda and TaskRefiner; parent outputs are JEDI datasets and files.
Simulated: the grid simulator plays the parents' jobs (each parent at the queue the test names, as a broker would
have sent it) and a DDM that knows no replica (Rucio cannot run here; GenJobBroker only counts local files with it).
"""

from __future__ import annotations

import datetime
import json
import random
import re

import pytest

from grid_sites import sites_in_reference_tables
from wf_db_support import EXAMPLES, TEMPLATES

# the development templates pin every task to DEV_QUEUE (task parameter ``site``); these leave the choice to brokerage
BROKERED_TEMPLATES = {kind: {k: v for k, v in template.items() if k != "site"} for kind, template in TEMPLATES.items()}

SITES = {"WF_QUEUE_A": "WF_SITE_A", "WF_QUEUE_B": "WF_SITE_B"}  # queue -> site, beside the seeded DEV_QUEUE


def _queue_json(queue: str, site: str) -> str:
    return json.dumps({
        "siteid": queue, "nickname": queue, "panda_resource": queue, "atlas_site": site, "vo_name": "wlcg",
        "cloud": "WORLD", "status": "online", "state": "ACTIVE", "type": "unified", "capability": "ucore",
        "catchall": "allow_no_pilot", "corecount": 1, "corepower": 10, "maxrss": 4000, "minrss": 0, "maxtime": 86400,
        "mintime": 0, "maxwdir": 100000, "maxinputsize": 100000, "memory": 4000, "pledgedcpu": 0, "space": 0,
        "tier": "T2", "tier_level": 2, "jobseed": "std", "wnconnectivity": "full", "direct_access_lan": False,
        "direct_access_wan": False, "is_cvmfs": True, "fairsharepolicy": "", "defaulttoken": "", "workflow": "pull_ups",
        "maxdiskio": 0, "ddm": f"{site}_DATADISK", "comment_": "test queue", "ddmendpoints": {f"{site}_DATADISK": {}},
    })


@pytest.fixture
def grid_sites(pg, clean_db, jedi_taskbuffer):
    """Two more sites, each with one disk endpoint and one queue, in the reference tables upstream's SiteMapper reads;
    removed afterwards (clean_db keeps reference tables)."""
    with sites_in_reference_tables(pg, jedi_taskbuffer, SITES, role="satellite", tier_level=2, disk_bytes=1_000_000,
                                   ddm_roles="read_lan,write_lan", queue_json=_queue_json):
        yield sorted(SITES)


class Recorder:
    """Passes every call through to ``target`` and records its name and plain arguments (what a broker asked)."""

    def __init__(self, target, calls):
        self._target, self._calls = target, calls

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            plain = tuple(a if isinstance(a, (int, str, bool, type(None))) else type(a).__name__ for a in args)
            self._calls.append((name, plain, tuple(sorted(kwargs))))
            return attr(*args, **kwargs)

        return call


class NoReplicaDDM:
    """JEDI's DDM client as far as GenJobBroker uses it: Rucio cannot run here, so no replica is known anywhere."""

    def getAvailableFiles(self, datasetSpec, siteStorageEP, siteMapper, **kwargs):
        return {}


def run_to_child_refined(db, task_buffer, spec, child_name, queue_of, fate):
    """Run the workflow ``spec`` until its step ``child_name`` has a JEDI task defined by upstream's TaskRefiner (and
    not further: the brokerage is what the test does next). ``queue_of(task name)``: where each parent's jobs run;
    ``fate(task name)``: the grid simulator's Fate of each task."""
    from pandajedi_wf.api import submit_workflow
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf_dev.devdb.upstream_agents import refine_tasks
    from pandajedi_wf_dev.simulators.grid import Fate, GridSimulator
    from pandajedi_wf_dev.simulators.jedi_ddm import InProcessDDMInterface

    class SitedGrid(GridSimulator):
        def _start(self, task_id, name, status, parent_running, now):
            self.site = queue_of(name)
            return super()._start(task_id, name, status, parent_running, now)

    grid = SitedGrid(db, task_buffer, fate=lambda name: Fate(**fate(name)))
    result = submit_workflow(db, language="cwl", spec=str(EXAMPLES / spec), user_name="dev.user", user_dn="dev.user",
                             vo="wlcg", task_templates=BROKERED_TEMPLATES, out_ds="user.dev.place")
    assert result.ok, result.problems
    workflow_id = result.workflow_id
    now = utcnow()
    for _ in range(30):
        now += datetime.timedelta(minutes=2)
        workflow_processor.cycle(db, CycleStats(), task_buffer, now=now, owner="test-brokers", junction_results=grid)
        steps = {r["name"]: r for r in db.query_dicts(
            f"SELECT name, status, jedi_task_id FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w", {":w": workflow_id})}
        child = steps.get(child_name)
        if child and child["jedi_task_id"]:
            refine_tasks(task_buffer, "wlcg", "user", InProcessDDMInterface({"any": grid.ddm}))
            (status,) = db.query(f"SELECT status FROM {db.table('JEDI_Tasks')} WHERE jediTaskID=:t", {":t": child["jedi_task_id"]})[0]
            assert status in ("defined", "ready"), status
            return workflow_id, steps
        grid.tick(now)
    pytest.fail(f"step {child_name} was never submitted: {steps}")


def run_fan_in_to_child_refined(db, task_buffer):
    """tests/examples/fan_in.cwl: left (1 file of 1 MB) runs at WF_QUEUE_A, right (4 files) at WF_QUEUE_B."""
    return run_to_child_refined(db, task_buffer, "fan_in.cwl", "reinterpret",
                                lambda name: "WF_QUEUE_B" if "_right" in name else "WF_QUEUE_A",
                                lambda name: {"n_files": 4 if "_right" in name else 1})


def input_chunk(task_buffer, jedi_task_id):
    """What JobGenerator hands the broker for a task: its spec, parameters and an InputChunk of its input datasets."""
    from pandajedi.jedirefine import RefinerUtils
    from pandaserver.taskbuffer.InputChunk import InputChunk

    ok, task_spec = task_buffer.getTaskWithID_JEDI(jedi_task_id, False)
    assert ok and task_spec is not None
    ok, datasets = task_buffer.getDatasetsWithJediTaskID_JEDI(jedi_task_id, ["input", "pseudo_input"])
    assert ok and datasets, datasets
    master = [d for d in datasets if d.isMaster()]
    chunk = InputChunk(task_spec, masterDataset=master[0], secondaryDatasetList=[d for d in datasets if not d.isMaster()])
    params = RefinerUtils.decodeJSON(task_buffer.getTaskParamsWithID_JEDI(jedi_task_id))
    return task_spec, chunk, params


def broker_through_jedi(task_buffer, jedi_task_id, calls):
    """Upstream's JobBroker factory, as JobGenerator uses it, with the cfg's modConfig; returns status, candidates
    (name -> weight) and the implementation JEDI loaded."""
    from pandajedi.jediorder.JobBroker import JobBroker

    task_spec, chunk, params = input_chunk(task_buffer, jedi_task_id)
    broker = JobBroker(task_spec.vo, task_spec.prodSourceLabel)
    assert broker.initializeMods(Recorder(NoReplicaDDM(), calls), Recorder(task_buffer, calls))
    impl = broker.getImpl(task_spec.vo, task_spec.prodSourceLabel)
    random.seed(7)
    status, chunk = broker.doBrokerage(task_spec, task_spec.cloud, chunk, params)
    # upstream's getJobStatisticsByGlobalShare reads without committing: on PostgreSQL its session stays idle in a
    # transaction (holding locks that block the next test's TRUNCATE) until its next call; a JEDI agent's next call
    # ends it, and so does this one
    task_buffer.getTaskWithID_JEDI(jedi_task_id, False)
    return status, {name: c.weight for name, c in chunk.siteCandidates.items()}, impl


def broker_upstream_alone(task_buffer, jedi_task_id, calls):
    """The same, with JobBroker's modConfig set to the broker our plugin wraps: what JEDI does without our plugin."""
    from pandajedi.jediconfig import jedi_config

    saved = jedi_config.jobbroker.modConfig
    jedi_config.jobbroker.modConfig = jedi_config.jobbroker.wf_inner_modConfig
    try:
        return broker_through_jedi(task_buffer, jedi_task_id, calls)
    finally:
        jedi_config.jobbroker.modConfig = saved


def test_cfg_loads_our_broker_wrapping_upstreams_through_factorybase(jedi_taskbuffer):
    from pandajedi.jediconfig import jedi_config
    from pandajedi.jediorder.JobBroker import JobBroker
    from pandajedi.jedibrokerage.GenJobBroker import GenJobBroker

    from pandajedi_wf.jedi_agents.brokers import WorkflowJobBroker

    assert "pandajedi_wf.jedi_agents.brokers:WorkflowJobBroker" in jedi_config.jobbroker.modConfig
    broker = JobBroker("wlcg", "user")
    broker.initializeMods(NoReplicaDDM(), jedi_taskbuffer)
    impl = broker.getImpl("wlcg", "user")
    assert type(impl) is WorkflowJobBroker
    assert type(impl.inner) is GenJobBroker and (impl.inner.vo, impl.inner.prodSourceLabel) == ("wlcg", "any")
    assert broker.getClassName("wlcg", "user") == "WorkflowJobBroker"


def test_fan_in_step_is_sent_where_most_of_its_input_is(db, jedi_taskbuffer, grid_sites):
    workflow_id, steps = run_fan_in_to_child_refined(db, jedi_taskbuffer)
    child = int(steps["reinterpret"]["jedi_task_id"])

    calls_ours: list = []
    status, candidates, impl = broker_through_jedi(jedi_taskbuffer, child, calls_ours)

    assert status == impl.inner.SC_SUCCEEDED

    # upstream alone (the wrapped broker named in the cfg as JobBroker's modConfig) offers every queue
    calls_upstream: list = []
    up_status, up_candidates, up_impl = broker_upstream_alone(jedi_taskbuffer, child, calls_upstream)
    assert up_status == status and type(up_impl).__name__ == "GenJobBroker"
    # upstream keeps 5 of the 6 queues (3 sites, each queue also as its /SCORE pseudo queue), whatever their data
    assert len(up_candidates) == 5 and {q.split("/")[0] for q in up_candidates} == {"DEV_QUEUE", "WF_QUEUE_A", "WF_QUEUE_B"}
    # ours: only queues at site B (4 MB of the input there, 1 MB at A, none at DEV_SITE), with upstream's weights;
    # upstream dropped one of the six queues at random, ours scanned only the processor's includedSite (four queues)
    # and so kept both of B's
    at_b = {q: w for q, w in up_candidates.items() if q.startswith("WF_QUEUE_B")}
    assert at_b and set(at_b) <= set(candidates) and {q.split("/")[0] for q in candidates} == {"WF_QUEUE_B"}, (candidates, up_candidates)
    assert all(candidates[q] == w for q, w in at_b.items())
    assert calls_ours == calls_upstream  # our plugin's reads go to our own connection, not to JEDI's interfaces


def test_task_outside_any_workflow_gets_upstreams_choice_with_the_same_calls(db, jedi_taskbuffer, grid_sites):
    """The same task submitted by hand (same input containers, same parameters but its name and reqID): not in any
    workflow, so our plugin returns upstream's answer untouched."""
    from pandajedi_wf_dev.devdb.upstream_agents import refine_tasks
    from pandajedi_wf_dev.simulators.jedi_ddm import InProcessDDMInterface, SimulatedDDMClient

    workflow_id, steps = run_fan_in_to_child_refined(db, jedi_taskbuffer)
    params = json.loads(jedi_taskbuffer.getTaskParamsWithID_JEDI(int(steps["reinterpret"]["jedi_task_id"])))
    for key in ("reqID", "parentTaskName", "noWaitParent"):
        params.pop(key, None)
    params["taskName"] = "user.dev.by_hand.reinterpret"
    params["log"] = {**params["log"], "value": "user.dev.by_hand.log.${SN}.tgz", "dataset": "user.dev.by_hand.log/", "container": "user.dev.by_hand.log/"}
    code, message = jedi_taskbuffer.insertTaskParamsPanda(json.dumps(params), "dev.user", False, [], properErrorCode=True)
    assert code == 0, message
    alone = int(re.search(r"jediTaskID=(\d+)", message).group(1))
    refine_tasks(jedi_taskbuffer, "wlcg", "user", InProcessDDMInterface({"any": SimulatedDDMClient(db)}))
    assert db.query(f"SELECT status FROM {db.table('JEDI_Tasks')} WHERE jediTaskID=:t", {":t": alone})[0][0] in ("defined", "ready")

    calls_ours: list = []
    status, candidates, impl = broker_through_jedi(jedi_taskbuffer, alone, calls_ours)
    calls_upstream: list = []
    up_status, up_candidates, _ = broker_upstream_alone(jedi_taskbuffer, alone, calls_upstream)

    assert type(impl).__name__ == "WorkflowJobBroker"
    assert (status, candidates) == (up_status, up_candidates)
    assert {q.split("/")[0] for q in candidates} == {"DEV_QUEUE", "WF_QUEUE_A", "WF_QUEUE_B"}
    assert calls_ours == calls_upstream and any(name == "getJobStatisticsByGlobalShare" for name, _, _ in calls_ours)


def test_child_started_early_goes_where_its_running_parent_runs(db, jedi_taskbuffer, grid_sites):
    """tests/examples/chain.cwl: ``bottom`` reads ``top``'s output as it comes (noWaitParent), so the processor
    submits it while top still runs at WF_QUEUE_A, where top's output dataset is (no file finished yet)."""
    workflow_id, steps = run_to_child_refined(db, jedi_taskbuffer, "chain.cwl", "bottom", lambda name: "WF_QUEUE_A",
                                              lambda name: {"running_ticks": 50})
    top, bottom = int(steps["top"]["jedi_task_id"]), int(steps["bottom"]["jedi_task_id"])
    assert db.query(f"SELECT status FROM {db.table('JEDI_Tasks')} WHERE jediTaskID=:t", {":t": top})[0][0] == "running"

    calls: list = []
    status, candidates, impl = broker_through_jedi(jedi_taskbuffer, bottom, calls)
    up_status, up_candidates, _ = broker_upstream_alone(jedi_taskbuffer, bottom, [])

    at_a = {q: w for q, w in up_candidates.items() if q.startswith("WF_QUEUE_A")}
    assert at_a and candidates == at_a, (candidates, up_candidates)


def test_unreadable_workflow_tables_leave_upstreams_answer(db, jedi_taskbuffer, grid_sites, monkeypatch, caplog):
    """A failure reading our tables must never fail JEDI's brokerage: the task keeps upstream's candidates, the
    error is in JEDI's log, and the next brokerage opens a fresh connection."""
    from pandajedi_wf.jedi_agents import brokers
    from pandajedi_wf.taskbuffer.connection import DatabaseError

    workflow_id, steps = run_fan_in_to_child_refined(db, jedi_taskbuffer)
    child = int(steps["reinterpret"]["jedi_task_id"])

    def unreadable(db, task_id):
        raise DatabaseError("UndefinedTable: relation jedi_wf_steps does not exist")

    monkeypatch.setattr(brokers.placement_inputs, "workflow_parents", unreadable)
    first = brokers.shared_db()
    status, candidates, impl = broker_through_jedi(jedi_taskbuffer, child, [])
    up_status, up_candidates, _ = broker_upstream_alone(jedi_taskbuffer, child, [])

    assert (status, candidates) == (up_status, up_candidates) and len(candidates) == 5
    assert "workflow placement skipped, upstream's candidates kept: DatabaseError" in caplog.text
    assert brokers.shared_db() is not first


# ---- the task-level seam: includedSite set by our processor, honoured through upstream ----------------------------
def step_reasons(db, workflow_id, name):
    (step_id,) = db.query(f"SELECT step_id FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w AND name=:n",
                          {":w": workflow_id, ":n": name})[0]
    return [r for (r,) in db.query(f"SELECT reason FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE entity_type='step' "
                                   "AND entity_id=:s ORDER BY transition_id", {":s": step_id})]


def test_processor_sends_the_child_to_its_parents_site_through_included_site(db, jedi_taskbuffer, grid_sites):
    """fan_in.cwl: the processor submits ``reinterpret`` after its parents ended at WF_QUEUE_A (1 file) and WF_QUEUE_B
    (4 files): its task parameters, as JEDI stores them, carry includedSite with WF_QUEUE_B first and one more site
    (never one alone); upstream's TaskRefiner refines the task with it; upstream's GenJobBroker, which never reads
    includedSite, is held to it by our plugin, and our cut then keeps the queues at B."""
    workflow_id, steps = run_fan_in_to_child_refined(db, jedi_taskbuffer)
    child = int(steps["reinterpret"]["jedi_task_id"])

    params = json.loads(jedi_taskbuffer.getTaskParamsWithID_JEDI(child))
    included = params["includedSite"]
    assert isinstance(included, list) and included[0] == "WF_QUEUE_B" and len(included) == 2, included
    assert set(included) <= {"WF_QUEUE_A", "WF_QUEUE_B", "DEV_QUEUE"}
    reasons = step_reasons(db, workflow_id, "reinterpret")
    assert any(r.startswith("submitting JEDI task") and "includedSite WF_QUEUE_B," in r and "WF_QUEUE_B moves 1000000 B" in r
               for r in reasons), reasons
    # the parents had nothing to follow (external input of unknown place): no includedSite, upstream chose alone
    for parent in ("left", "right"):
        assert "includedSite" not in json.loads(jedi_taskbuffer.getTaskParamsWithID_JEDI(int(steps[parent]["jedi_task_id"])))

    calls: list = []
    status, candidates, impl = broker_through_jedi(jedi_taskbuffer, child, calls)
    up_status, up_candidates, _ = broker_upstream_alone(jedi_taskbuffer, child, [])
    assert status == up_status == impl.inner.SC_SUCCEEDED
    # upstream alone ignores includedSite: every site's queues (5 of 6) whatever the task parameters say
    assert {q.split("/")[0] for q in up_candidates} == {"DEV_QUEUE", "WF_QUEUE_A", "WF_QUEUE_B"}
    # ours: GenJobBroker scanned only the included queues, then the cut kept B's
    assert candidates and {q.split("/")[0] for q in candidates} == {"WF_QUEUE_B"}, candidates
    assert any(name == "getJobStatisticsByGlobalShare" for name, _, _ in calls)  # upstream's own weighing ran


def test_a_users_included_site_wins_over_ours(db, jedi_taskbuffer, grid_sites):
    """The step's own includedSite (here only WF_QUEUE_A, where the smaller parent output is): ours is intersected
    with it, finds nothing in common beyond it or keeps it as written; the task goes where the user said."""
    import wf_db_support

    user_templates = {kind: {**t, "includedSite": ["WF_QUEUE_A"]} for kind, t in BROKERED_TEMPLATES.items()}
    original = BROKERED_TEMPLATES.copy()
    BROKERED_TEMPLATES.clear()
    BROKERED_TEMPLATES.update(user_templates)
    try:
        workflow_id, steps = run_fan_in_to_child_refined(db, jedi_taskbuffer)
    finally:
        BROKERED_TEMPLATES.clear()
        BROKERED_TEMPLATES.update(original)
    child = int(steps["reinterpret"]["jedi_task_id"])
    params = json.loads(jedi_taskbuffer.getTaskParamsWithID_JEDI(child))
    assert params["includedSite"] == ["WF_QUEUE_A"]
    status, candidates, impl = broker_through_jedi(jedi_taskbuffer, child, [])
    assert status == impl.inner.SC_SUCCEEDED and {q.split("/")[0] for q in candidates} == {"WF_QUEUE_A"}, candidates
    assert wf_db_support  # (the templates module is the one the processor read)
