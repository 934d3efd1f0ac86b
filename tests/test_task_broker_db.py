"""The workflow-aware task broker on the real database, loaded and called the way JEDI does it.

Real: upstream's ``TaskBroker`` (its FactoryBase) reads ``[taskbroker] modConfig`` of the test PANDA_HOME's
panda_jedi.cfg (pandajedi_wf_dev.devdb.panda_home) and loads ``WorkflowTaskBroker``, which loads upstream's
``AtlasProdTaskBroker`` from ``wf_inner_modConfig`` through FactoryBase too; upstream's ``TaskBrokerThread`` runs the
brokerage (``getTasksToBeProcessed_JEDI``, ``doBrokerage``), and AtlasProdTaskBroker runs all its checks (nucleus
status, transfer backlog, endpoints' space, a full ``AtlasProdJobBroker`` job check; its data check has nothing to
look at: the child's JEDI input is a pseudo dataset, what it reads of its parents reaches it through the workflow,
so upstream alone draws between the nuclei at even weights) and sets the nucleus
with ``setCloudToTasks_JEDI``; the sites are upstream's ``SiteMapper`` over schedconfig rows of two nuclei with one
queue each (and the seeded DEV_SITE); the pilots' requests are recorded by upstream's ``updateSiteData``; the
workflow (tests/examples/fan_in.cwl, label managed) is run by our processor through upstream's insertTaskParamsPanda,
TaskRefiner and ContentsFeeder, which puts the child in ``assigning``.
Simulated: the parents' jobs (grid simulator: each parent's output at the queue the test names) and JEDI's DDM (which
the task brokerage does not ask here).
Not the processor's own doing: it submits every step without production role (upstream then makes it a user task);
here the submission is given the production role a production workflow would have.
"""

from __future__ import annotations

import datetime
import json
import random
import re

import pytest

from grid_sites import sites_in_reference_tables
from wf_db_support import EXAMPLES, TEMPLATES

PROD_TEMPLATES = {kind: {**{k: v for k, v in t.items() if k != "site"}, "taskType": "prod", "cloud": "WORLD"}
                  for kind, t in TEMPLATES.items()}
NUCLEI = {"NQ_A": "NUC_A", "NQ_B": "NUC_B"}  # queue -> nucleus (its site), beside the seeded DEV_QUEUE/DEV_SITE
UPSTREAM_ALONE = "wlcg:managed:pandajedi.jedibrokerage.AtlasProdTaskBroker:AtlasProdTaskBroker"


def _queue_json(queue: str, site: str) -> str:
    return json.dumps({
        "siteid": queue, "nickname": queue, "panda_resource": queue, "atlas_site": site, "vo_name": "wlcg",
        "cloud": "WORLD", "status": "online", "state": "ACTIVE", "type": "production", "capability": "ucore",
        "catchall": "allow_no_pilot", "corecount": 1, "corepower": 10, "maxrss": 4000, "minrss": 0,
        # AtlasProdJobBroker sends jobs of undefined walltime only where maxtime covers 24 h of a 10 HS06 core
        "maxtime": 864000, "mintime": 0, "maxwdir": 100000, "maxinputsize": 100000, "memory": 4000, "pledgedcpu": 0,
        "space": 0, "tier": "T1", "tier_level": 1, "jobseed": "std", "wnconnectivity": "full", "direct_access_lan": False,
        "direct_access_wan": False, "is_cvmfs": True, "fairsharepolicy": "", "defaulttoken": "", "workflow": "pull_ups",
        "maxdiskio": 0, "ddm": f"{site}_DATADISK", "comment_": "test nucleus queue", "ddmendpoints": {f"{site}_DATADISK": {}},
    })


@pytest.fixture
def nuclei(pg, clean_db, jedi_taskbuffer):
    """Two nuclei (CRIC role ``nucleus``), each with one disk endpoint of 1 PB and one production queue whose pilots
    asked for jobs lately; removed afterwards (clean_db keeps reference tables)."""
    with sites_in_reference_tables(pg, jedi_taskbuffer, NUCLEI, role="nucleus", tier_level=1, disk_bytes=1_000_000_000,
                                   ddm_roles="read_lan,write_lan,read_wan,write_wan", queue_json=_queue_json):
        # the pilots of both queues asked for jobs lately, as the server's add_sub script records them
        assert jedi_taskbuffer.updateSiteData("pandaserver", {q: {"getJob": {"wn1": 3}} for q in NUCLEI}, interval=3) is not False
        jedi_taskbuffer.last_update_site_mapper = None
        yield sorted(NUCLEI.values())


@pytest.fixture
def production_role(monkeypatch):
    """The processor's submissions with the production role a production workflow's would carry."""
    from pandajedi_wf.daemons import jedi_calls
    from pandajedi_wf.daemons.processor import submission

    monkeypatch.setattr(submission, "submit_task",
                        lambda tb, params, dn, params_text=None: jedi_calls.submit_task(tb, params, dn, True, params_text))


def to_assigning(db, task_buffer, ddm):
    """Upstream's TaskRefiner and ContentsFeeder for label managed: a WORLD task without nucleus goes ``assigning``."""
    from pandajedi_wf_dev.devdb.upstream_agents import feed_contents, refine_tasks
    from pandajedi_wf_dev.simulators import grid_sql

    refine_tasks(task_buffer, "wlcg", "managed", ddm)
    grid_sql.refresh_min_task_ids(db)
    feed_contents(task_buffer, "wlcg", "managed", ddm)
    grid_sql.refresh_min_task_ids(db)


def run_fan_in_to_child_assigning(db, task_buffer):
    """tests/examples/fan_in.cwl as a production workflow: left (1 file of 1 MB) writes at NQ_A, right (4 files) at
    NQ_B; returns the workflow id, its steps and the grid (its DDM) once the child ``reinterpret`` is assigning."""
    from pandajedi_wf.api import submit_workflow
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf_dev.simulators.grid import Fate, GridSimulator
    from pandajedi_wf_dev.simulators.jedi_ddm import InProcessDDMInterface

    class SitedGrid(GridSimulator):
        def _start(self, task_id, name, status, parent_running, now):
            self.site = "NQ_B" if "_right" in name else "NQ_A"
            return super()._start(task_id, name, status, parent_running, now)

    grid = SitedGrid(db, task_buffer, prod_source_label="managed", fate=lambda name: Fate(n_files=4 if "_right" in name else 1))
    result = submit_workflow(db, language="cwl", spec=str(EXAMPLES / "fan_in.cwl"), user_name="dev.user", user_dn="dev.user",
                             vo="wlcg", task_templates=PROD_TEMPLATES, out_ds="user.dev.prod", prod_source_label="managed")
    assert result.ok, result.problems
    now = utcnow()
    for _ in range(30):
        now += datetime.timedelta(minutes=2)
        workflow_processor.cycle(db, CycleStats(), task_buffer, now=now, owner="test-task-broker", junction_results=grid)
        steps = {r["name"]: r for r in db.query_dicts(
            f"SELECT name, status, jedi_task_id FROM {db.table('JEDI_WF_STEPS')} WHERE workflow_id=:w", {":w": result.workflow_id})}
        child = steps.get("reinterpret")
        if child and child["jedi_task_id"]:
            to_assigning(db, task_buffer, InProcessDDMInterface({"any": grid.ddm}))
            assert task_row(db, child["jedi_task_id"])["status"] == "assigning"
            return result.workflow_id, steps, grid
        grid.tick(now)
    pytest.fail(f"step reinterpret was never submitted: {steps}")


def task_row(db, task_id) -> dict:
    return db.query_dicts(f"SELECT status, cloud, nucleus, errorDialog FROM {db.table('JEDI_Tasks')} WHERE jediTaskID=:t", {":t": task_id})[0]


def same_task_by_hand(db, task_buffer, ddm, task_id: int, tag: str) -> int:
    """The task ``task_id`` submitted again by hand (same parameters and inputs, its own name, no workflow), taken
    to ``assigning`` by upstream's refiner and feeder."""
    params = json.loads(task_buffer.getTaskParamsWithID_JEDI(task_id))
    for key in ("reqID", "parentTaskName", "noWaitParent"):
        params.pop(key, None)
    params["taskName"] = f"user.dev.by_hand.{tag}"
    params["log"] = {**params["log"], "value": f"user.dev.by_hand.{tag}.log.${{SN}}.tgz", "dataset": f"user.dev.by_hand.{tag}.log/",
                     "container": f"user.dev.by_hand.{tag}.log/"}
    code, message = task_buffer.insertTaskParamsPanda(json.dumps(params), "dev.user", True, [], properErrorCode=True)
    assert code == 0, message
    alone = int(re.search(r"jediTaskID=(\d+)", message).group(1))
    to_assigning(db, task_buffer, ddm)
    assert task_row(db, alone)["status"] == "assigning", task_row(db, alone)
    return alone


def broker_log(task_id: int) -> str:
    """What upstream's task broker (and ours) logged for ``task_id`` in this session (JEDI's log files)."""
    import os
    from pathlib import Path

    lines = []
    for name in ("panda-pandajedi_wf.task_brokers.log", "panda-AtlasProdTaskBroker.log"):
        path = Path(os.environ["PANDA_HOME"]) / "log" / name
        if path.exists():
            lines += [line for line in path.read_text().splitlines() if f"<jediTaskID={task_id}>" in line]
    return "\n".join(lines)


def broker_through_jedi(task_buffer, ddm, task_ids, seed, mod_config=None):
    """Upstream's TaskBroker factory (modConfig of the cfg, or ``mod_config``) and its TaskBrokerThread on
    ``task_ids``, as TaskBroker.start runs them for the tasks getTasksToAssign_JEDI gave; returns the impl."""
    from pandajedi.jediconfig import jedi_config
    from pandajedi.jedicore.ThreadUtils import ListWithLock, ThreadPool
    from pandajedi.jediorder.TaskBroker import TaskBroker, TaskBrokerThread

    saved = jedi_config.taskbroker.modConfig
    if mod_config:
        jedi_config.taskbroker.modConfig = mod_config
    try:
        broker = TaskBroker(None, task_buffer, ddm, "wlcg", "managed")
    finally:
        jedi_config.taskbroker.modConfig = saved
    broker.initializeMods(task_buffer, ddm)
    work_queue = task_buffer.getWorkQueueMap().getQueueWithIDGshare(2, None)  # the seeded wlcg_managed queue
    random.seed(seed)
    TaskBrokerThread(ListWithLock(list(task_ids)), ThreadPool(), task_buffer, ddm, broker, "wlcg", "managed", work_queue, "SCORE").runImpl()
    return broker.getImpl("wlcg", "managed", doRefresh=False)


def test_cfg_loads_our_task_broker_wrapping_upstreams_through_factorybase(jedi_taskbuffer):
    from pandajedi.jedibrokerage.AtlasProdTaskBroker import AtlasProdTaskBroker
    from pandajedi.jediconfig import jedi_config
    from pandajedi.jediorder.TaskBroker import TaskBroker

    from pandajedi_wf.jedi_agents.task_brokers import WorkflowTaskBroker

    assert "pandajedi_wf.jedi_agents.task_brokers:WorkflowTaskBroker" in jedi_config.taskbroker.modConfig
    broker = TaskBroker(None, jedi_taskbuffer, None, "wlcg", "managed")
    broker.initializeMods(jedi_taskbuffer, None)  # TaskBroker.start passes (taskBufferIF, ddmIF)
    impl = broker.getImpl("wlcg", "managed")
    assert type(impl) is WorkflowTaskBroker
    assert type(impl.inner) is AtlasProdTaskBroker and (impl.inner.vo, impl.inner.prodSourceLabel) == ("wlcg", "managed")
    assert broker.getClassName("wlcg", "managed") == "WorkflowTaskBroker"


def test_workflow_task_goes_to_the_nucleus_of_its_parents_outputs_and_other_tasks_get_upstreams_choice(
        db, jedi_taskbuffer, nuclei, production_role):
    """The child reads 1 MB written at NUC_A and 4 MB at NUC_B. The same task submitted by hand (no workflow), brokered
    by upstream's AtlasProdTaskBroker alone, draws NUC_A with seed 1 and NUC_B with seed 0 (both pass every check and
    weigh the same); through our plugin such a task gets exactly upstream's draw, and the workflow's child, brokered
    with seed 1, goes to NUC_B, upstream's checks and weights having run among NUC_B alone."""
    from pandajedi.jedibrokerage.AtlasProdTaskBroker import AtlasProdTaskBroker

    from pandajedi_wf.jedi_agents.task_brokers import WorkflowTaskBroker
    from pandajedi_wf_dev.simulators.jedi_ddm import InProcessDDMInterface

    workflow_id, steps, grid = run_fan_in_to_child_assigning(db, jedi_taskbuffer)
    child = int(steps["reinterpret"]["jedi_task_id"])
    ddm = InProcessDDMInterface({"any": grid.ddm})

    by_hand = {seed: (same_task_by_hand(db, jedi_taskbuffer, ddm, child, f"ours{seed}"),
                      same_task_by_hand(db, jedi_taskbuffer, ddm, child, f"upstream{seed}")) for seed in (0, 1)}
    upstream = {}
    for seed, (ours_id, upstream_id) in by_hand.items():
        assert type(broker_through_jedi(jedi_taskbuffer, ddm, [ours_id], seed)) is WorkflowTaskBroker
        assert type(broker_through_jedi(jedi_taskbuffer, ddm, [upstream_id], seed, UPSTREAM_ALONE)) is AtlasProdTaskBroker
        upstream[seed] = task_row(db, upstream_id)["nucleus"]
        assert task_row(db, ours_id) == task_row(db, upstream_id) == {"status": "ready", "cloud": "WORLD", "nucleus": upstream[seed], "errordialog": None}
    assert upstream == {0: "NUC_B", 1: "NUC_A"}  # upstream's own draw, which the plugin left alone

    broker_through_jedi(jedi_taskbuffer, ddm, [child], 1)
    assert task_row(db, child) == {"status": "ready", "cloud": "WORLD", "nucleus": "NUC_B", "errordialog": None}
    log = broker_log(child)
    assert f"upstream's task brokerage among nuclei NUC_B: workflow {workflow_id}: follows the data of parents" in log
    assert "got 1 candidates" in log and "1 candidates passed job check" in log and "set nucleus=NUC_B" in log


def test_unreadable_workflow_tables_leave_the_task_to_upstream(db, jedi_taskbuffer, nuclei, production_role, monkeypatch, caplog):
    from pandajedi_wf.jedi_agents import brokers, task_brokers
    from pandajedi_wf.taskbuffer.connection import DatabaseError
    from pandajedi_wf_dev.simulators.jedi_ddm import InProcessDDMInterface

    workflow_id, steps, grid = run_fan_in_to_child_assigning(db, jedi_taskbuffer)
    child = int(steps["reinterpret"]["jedi_task_id"])
    ddm = InProcessDDMInterface({"any": grid.ddm})
    twin = same_task_by_hand(db, jedi_taskbuffer, ddm, child, "twin")
    broker_through_jedi(jedi_taskbuffer, ddm, [twin], 1, UPSTREAM_ALONE)

    def unreadable(db, task_id):
        raise DatabaseError("UndefinedTable: relation jedi_wf_steps does not exist")

    monkeypatch.setattr(task_brokers.placement_inputs, "workflow_parents", unreadable)
    monkeypatch.setattr(brokers.placement_inputs, "workflow_parents", unreadable)
    first = brokers.shared_db()
    broker_through_jedi(jedi_taskbuffer, ddm, [child], 1)
    assert task_row(db, child)["nucleus"] == task_row(db, twin)["nucleus"] == "NUC_A"  # upstream's draw for seed 1
    assert "workflow nucleus preference skipped, upstream decides: DatabaseError" in caplog.text
    assert brokers.shared_db() is not first


def test_a_preferred_nucleus_upstream_rejects_holds_the_task_only_for_the_preference_period(
        db, pg, jedi_taskbuffer, nuclei, production_role, monkeypatch):
    """NUC_B (4 of the child's 5 MB) reports its disk full: upstream's job check rejects its queue, so the child waits in
    assigning with upstream's own "no candidates", as any task none of whose candidates passes; once it has been
    assigning longer than wf_prefer_minutes it is brokered over every nucleus and goes to NUC_A."""
    from pandajedi.jediconfig import jedi_config
    from pandajedi.jedicore.MsgWrapper import MsgWrapper

    from pandajedi_wf_dev.simulators.jedi_ddm import InProcessDDMInterface

    workflow_id, steps, grid = run_fan_in_to_child_assigning(db, jedi_taskbuffer)
    child = int(steps["reinterpret"]["jedi_task_id"])
    ddm = InProcessDDMInterface({"any": grid.ddm})
    conn = pg.connect("panda", autocommit=True)
    with conn.cursor() as cur:  # what the storage reports (upstream's ddm_endpoint space columns)
        cur.execute("UPDATE doma_panda.ddm_endpoint SET space_free=0, space_used=space_total WHERE ddm_endpoint_name='NUC_B_DATADISK'")
    conn.close()
    jedi_taskbuffer.last_update_site_mapper = None
    # upstream uploads the brokerage log of a task left without candidates to the PanDA server: not from a test
    monkeypatch.setattr(MsgWrapper, "uploadLog", lambda self, task_id: "brokerage log (not uploaded by the test)")

    broker_through_jedi(jedi_taskbuffer, ddm, [child], 1)
    row = task_row(db, child)
    assert (row["status"], row["nucleus"]) == ("assigning", None)
    log = broker_log(child)
    assert "upstream's task brokerage among nuclei NUC_B" in log and "got 1 candidates" in log
    assert "skip site=NQ_B due to disk shortage at NUC_B_DATADISK" in log and "no sites can run jobs" in log

    monkeypatch.setattr(jedi_config.taskbroker, "wf_prefer_minutes", "0", raising=False)
    broker_through_jedi(jedi_taskbuffer, ddm, [child], 1)
    assert task_row(db, child)["nucleus"] == "NUC_A" and task_row(db, child)["status"] == "ready"
    log = broker_log(child)
    assert "over 0 min: every nucleus" in log and "set nucleus=NUC_A" in log
