"""JEDI job broker plugin that follows a workflow's data. Thin: it runs upstream's broker, gathers the parents'
outputs (``taskbuffer.placement_inputs``) and applies the pure decision (``placement.decide``).

Enable it in panda_jedi.cfg: the broker JEDI loaded so far moves to ``wf_inner_modConfig`` (same format, loaded by
JEDI's own FactoryBase), and ``modConfig`` names this class for the same VO/labels:

    [jobbroker]
    modConfig = atlas:user:pandajedi_wf.jedi_agents.brokers:WorkflowJobBroker,atlas:managed:pandajedi.jedibrokerage.AtlasProdJobBroker:AtlasProdJobBroker
    wf_inner_modConfig = atlas:user:pandajedi.jedibrokerage.AtlasAnalJobBroker:AtlasAnalJobBroker

A task of none of our workflows (and run by no iDDS request) gets upstream's answer untouched: the wrapped broker
sees exactly the calls it would have seen. For a workflow task:
  * the ``includedSite``/``excludedSite`` of its task parameters (our processor's choice, ``daemons/processor/
    placement.py``, or the user's) hold for a wrapped broker that ignores them: upstream's ``GenJobBroker`` never reads
    them (only ``AtlasAnalJobBroker`` does, for tasks its refiner marked ``limitedSites``), so for such a task the
    wrapped broker scans only the included queues (a view of its SiteMapper whose cloud lists only them) and runs
    all its own checks and its load weights among them;
  * upstream's site candidates (``InputChunk``) are cut by ``placement.decide``: those expected to end soonest given
    the parents' outputs, the tape recalls of its inputs and each candidate's jobs, and of those the ones moving the
    least. The reason goes to JEDI's log.
Nothing is ever added: a site upstream rejected stays rejected. If our tables cannot be read, the task keeps
upstream's answer and the failure is logged.
"""

from __future__ import annotations

import threading

from pandacommon.pandalogger.PandaLogger import PandaLogger
from pandajedi.jedicore.FactoryBase import FactoryBase
from pandajedi.jedicore.MsgWrapper import MsgWrapper

from pandajedi_wf import placement
from pandajedi_wf.placement.task_sites import estimate_work, matches, site_list, site_load
from pandajedi_wf.taskbuffer import placement_inputs
from pandajedi_wf.taskbuffer.connection import WfDatabase

INNER_OPTION = "wf_inner_modConfig"
logger = PandaLogger().getLogger("pandajedi_wf.brokers")

# JobGenerator builds a new broker for every task it brokers (JobBroker.initializeMods per task), in several threads:
# one connection per process serves them all (each read is one statement; WfDatabase serialises its statements)
_db_lock = threading.Lock()
_db: WfDatabase | None = None


def shared_db() -> WfDatabase:
    global _db
    with _db_lock:
        if _db is None:
            _db = WfDatabase()
        return _db


def drop_shared_db() -> None:
    """After a failure: the next brokerage opens a fresh connection."""
    global _db
    with _db_lock:
        if _db is not None:
            _db.close()
        _db = None


def inner_mod_config(section: str = "jobbroker") -> str:
    from pandajedi.jediconfig import jedi_config

    spec = str(getattr(getattr(jedi_config, section, None), INNER_OPTION, "") or "").strip()
    if not spec:
        raise ValueError(f"panda_jedi.cfg [{section}] {INNER_OPTION} must name the broker to wrap (vo:label:module:Class), got nothing")
    return spec


def storage_of(site_mapper, site: str) -> str:
    """The storage a PanDA queue writes to and reads from (its default output endpoint), else the queue's name."""
    if not site_mapper.checkSite(site):
        return site
    endpoints = getattr(site_mapper.getSite(site), "ddm_output", None) or {}
    return endpoints.get("default") or site


def workflow_parents(db: WfDatabase, jedi_task_id: int) -> tuple[str, list[int]] | None:
    """Who the task's parents are, from our workflow tables, else from iDDS's; ``None`` for a task of neither."""
    ours = placement_inputs.workflow_parents(db, jedi_task_id)
    if ours is not None:
        return f"workflow {ours[0]}", ours[1]
    idds = placement_inputs.idds_parents(db, jedi_task_id)
    return ("iDDS request", idds) if idds else None


class IncludedSitesView:
    """A SiteMapper as a broker that ignores includedSite should see it for a task that has one: its clouds list only
    the queues the task's ``includedSite`` names and its ``excludedSite`` does not (upstream's own matching, by the
    queue's unified name); everything else is the SiteMapper's."""

    def __init__(self, site_mapper, included: list[str], excluded: list[str]):
        self._mapper, self._included, self._excluded = site_mapper, included, excluded

    def allowed(self, name: str) -> bool:
        unified = self._mapper.getSite(name).get_unified_name() if self._mapper.checkSite(name) else name
        if self._included and not (matches(unified, self._included) or matches(name, self._included)):
            return False
        return not (matches(unified, self._excluded) or matches(name, self._excluded))

    def getCloud(self, cloud):
        spec = dict(self._mapper.getCloud(cloud))
        spec["sites"] = [s for s in spec.get("sites", []) if self.allowed(s)]
        return spec

    def __getattr__(self, name):
        return getattr(self._mapper, name)


class WrappedUpstreamBroker:
    """A broker JEDI's factory loads in place of upstream's: it wraps the broker ``wf_inner_modConfig`` of its
    panda_jedi.cfg section names for this VO/label, loaded by JEDI's own FactoryBase on first use, and everything but
    what a subclass defines (``doBrokerage``) is the wrapped broker's own."""

    SECTION = ""  # panda_jedi.cfg section of the broker kind

    def __init__(self):
        self.vo = self.prodSourceLabel = None  # FactoryBase sets them after construction
        self._factory = self._inner = None

    def factory_args(self) -> tuple:
        """The interfaces JEDI's factory gives a broker of this kind, in its order."""
        raise NotImplementedError

    @property
    def inner(self):
        if self._inner is None:
            factory = FactoryBase(self.vo, self.prodSourceLabel, logger, inner_mod_config(self.SECTION))
            factory.initializeMods(*self.factory_args())
            inner = factory.getImpl(self.vo, self.prodSourceLabel, doRefresh=False)
            if inner is None:
                raise ValueError(f"[{self.SECTION}] {INNER_OPTION} has no broker for vo={self.vo} label={self.prodSourceLabel}")
            self._factory, self._inner = factory, inner
        return self._inner

    def __getattr__(self, name):  # setLiveCounter, setLockID, doCheck, SC_* codes, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def refresh(self):
        self.inner.refresh()


class WorkflowJobBroker(WrappedUpstreamBroker):
    """Wraps the job broker ``wf_inner_modConfig`` names for this VO/label."""

    SECTION = "jobbroker"

    def __init__(self, ddmIF, taskBufferIF):
        super().__init__()
        self.ddmIF, self.taskBufferIF = ddmIF, taskBufferIF

    def factory_args(self) -> tuple:
        return self.ddmIF, self.taskBufferIF

    def doBrokerage(self, taskSpec, cloudName, inputChunk, taskParamMap):
        tmp_log = MsgWrapper(logger, f"<jediTaskID={taskSpec.jediTaskID}>")
        try:
            found = workflow_parents(shared_db(), taskSpec.jediTaskID)
        except Exception as exc:  # our tables unreadable: upstream's answer stands
            tmp_log.error(f"workflow placement skipped, upstream's candidates kept: {type(exc).__name__}: {exc}")
            drop_shared_db()
            return self.inner.doBrokerage(taskSpec, cloudName, inputChunk, taskParamMap)
        if found is None:  # not a workflow task: exactly upstream
            return self.inner.doBrokerage(taskSpec, cloudName, inputChunk, taskParamMap)
        status, chunk = self.broker_within_included(taskSpec, cloudName, inputChunk, taskParamMap, tmp_log)
        if status != self.inner.SC_SUCCEEDED or not chunk.siteCandidates:
            return status, chunk
        try:
            self.follow_workflow(found, chunk, tmp_log)
        except Exception as exc:  # our tables unreadable: upstream's answer stands
            tmp_log.error(f"workflow placement skipped, upstream's candidates kept: {type(exc).__name__}: {exc}")
            drop_shared_db()
        return status, chunk

    def broker_within_included(self, taskSpec, cloudName, inputChunk, taskParamMap, tmp_log):
        """The wrapped broker, held to the task's includedSite/excludedSite when it would ignore them."""
        params = taskParamMap or {}
        included, excluded = site_list(params.get("includedSite")), site_list(params.get("excludedSite"))
        if not (included or excluded) or taskSpec.useLimitedSites() or "AUTO" in included:
            return self.inner.doBrokerage(taskSpec, cloudName, inputChunk, taskParamMap)
        mapper = self.inner.siteMapper
        self.inner.siteMapper = IncludedSitesView(mapper, included, excluded)
        tmp_log.info(f"workflow task: {type(self.inner).__name__} scans only includedSite={','.join(included) or '-'} "
                     f"excludedSite={','.join(excluded) or '-'}")
        try:
            return self.inner.doBrokerage(taskSpec, cloudName, inputChunk, taskParamMap)
        finally:
            self.inner.siteMapper = mapper

    def follow_workflow(self, found: tuple[str, list[int]], chunk, tmp_log) -> placement.Placement:
        db = shared_db()
        owner, parent_ids = found
        site_mapper = self.inner.siteMapper
        rows = placement_inputs.parent_outputs(db, parent_ids)
        parents = placement.parents_at_storages([(r.task_id, r.ended, r.bytes_at_site) for r in rows], lambda s: storage_of(site_mapper, s))
        datasets = [d.datasetName for d in chunk.getDatasets() if getattr(d, "datasetName", None)]
        for destination, size in placement_inputs.staging_destinations(db, datasets).values():
            parents += placement.external_input(destination, size)
        candidates = {name: storage_of(site_mapper, name) for name in chunk.siteCandidates}
        queues = {q.queue: q for q in placement_inputs.site_loads(db)}
        loads = {}
        for name, storage in candidates.items():
            unified = site_mapper.getSite(name).get_unified_name() if site_mapper.checkSite(name) else name
            q = queues.get(unified) or queues.get(name)
            if q is not None:
                loads[name] = site_load(name, storage, q.running, q.waiting)
        work = estimate_work(sum(p.finished_bytes + p.pending_bytes for p in parents))
        decision = placement.decide(candidates, parents, loads, work)
        for name in candidates:
            if name not in decision.chosen:
                del chunk.siteCandidates[name]
        tmp_log.info(f"{owner}: {decision.reason}; candidates {','.join(candidates)} -> {','.join(decision.chosen)}")
        return decision
