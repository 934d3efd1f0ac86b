"""JEDI job broker plugin that follows a workflow's data. Thin: it runs upstream's broker, gathers the parents'
outputs (``taskbuffer.placement_inputs``) and applies the pure decision (``placement.decide``).

Enable it in panda_jedi.cfg: the broker JEDI loaded so far moves to ``wf_inner_modConfig`` (same format, loaded by
JEDI's own FactoryBase), and ``modConfig`` names this class for the same VO/labels:

    [jobbroker]
    modConfig = atlas:user:pandajedi_wf.jedi_agents.brokers:WorkflowJobBroker,atlas:managed:pandajedi.jedibrokerage.AtlasProdJobBroker:AtlasProdJobBroker
    wf_inner_modConfig = atlas:user:pandajedi.jedibrokerage.AtlasAnalJobBroker:AtlasAnalJobBroker

A task of none of our workflows (and run by no iDDS request) gets upstream's answer untouched: the wrapped broker
sees exactly the calls it would have seen. For a workflow task, upstream's site candidates (``InputChunk``) are cut
to those that move the least parent output; the reason goes to JEDI's log. Nothing is ever added: a site upstream
rejected stays rejected. If our tables cannot be read, the task keeps upstream's answer and the failure is logged.
"""

from __future__ import annotations

import threading

from pandacommon.pandalogger.PandaLogger import PandaLogger
from pandajedi.jedicore.FactoryBase import FactoryBase
from pandajedi.jedicore.MsgWrapper import MsgWrapper

from pandajedi_wf import placement
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


class WorkflowJobBroker:
    """Wraps the job broker ``wf_inner_modConfig`` names for this VO/label; everything but ``doBrokerage`` (and
    ``refresh``) is the wrapped broker's own."""

    def __init__(self, ddmIF, taskBufferIF):
        self.ddmIF, self.taskBufferIF = ddmIF, taskBufferIF
        self.vo = self.prodSourceLabel = None  # FactoryBase sets them after construction
        self._inner = None

    @property
    def inner(self):
        if self._inner is None:
            factory = FactoryBase(self.vo, self.prodSourceLabel, logger, inner_mod_config())
            factory.initializeMods(self.ddmIF, self.taskBufferIF)
            inner = factory.getImpl(self.vo, self.prodSourceLabel, doRefresh=False)
            if inner is None:
                raise ValueError(f"[jobbroker] {INNER_OPTION} has no broker for vo={self.vo} label={self.prodSourceLabel}")
            self._inner = inner
        return self._inner

    def __getattr__(self, name):  # setLiveCounter, setLockID, getBaseLockID, setTestMode, set_task_common_dict, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def refresh(self):
        self.inner.refresh()

    def doBrokerage(self, taskSpec, cloudName, inputChunk, taskParamMap):
        status, chunk = self.inner.doBrokerage(taskSpec, cloudName, inputChunk, taskParamMap)
        if status != self.inner.SC_SUCCEEDED or not chunk.siteCandidates:
            return status, chunk
        tmp_log = MsgWrapper(logger, f"<jediTaskID={taskSpec.jediTaskID}>")
        try:
            self.follow_workflow(taskSpec.jediTaskID, chunk, tmp_log)
        except Exception as exc:  # our tables unreadable: upstream's answer stands
            tmp_log.error(f"workflow placement skipped, upstream's candidates kept: {type(exc).__name__}: {exc}")
            drop_shared_db()
        return status, chunk

    def follow_workflow(self, jedi_task_id: int, chunk, tmp_log) -> placement.Placement | None:
        db = shared_db()
        found = workflow_parents(db, jedi_task_id)
        if found is None:
            return None
        owner, parent_ids = found
        site_mapper = self.inner.siteMapper
        rows = placement_inputs.parent_outputs(db, parent_ids)
        parents = placement.parents_at_storages([(r.task_id, r.ended, r.bytes_at_site) for r in rows], lambda s: storage_of(site_mapper, s))
        candidates = {name: storage_of(site_mapper, name) for name in chunk.siteCandidates}
        decision = placement.decide(candidates, parents)
        for name in candidates:
            if name not in decision.chosen:
                del chunk.siteCandidates[name]
        tmp_log.info(f"{owner}: {decision.reason}; candidates {','.join(candidates)} -> {','.join(decision.chosen)}")
        return decision
