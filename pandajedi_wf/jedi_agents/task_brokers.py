"""JEDI task broker plugin that sends a workflow's production task to the nucleus holding its parents' outputs.
Thin: it gathers the parents' outputs (``taskbuffer.placement_inputs``), applies the pure decision
(``placement.decide``, bytes only: a nucleus is a storage, the queues' loads are the job broker's concern) and runs
upstream's task broker over the nuclei it prefers.

Enable it in panda_jedi.cfg like the job broker: the task broker JEDI loaded so far moves to ``wf_inner_modConfig``
(same format, loaded by JEDI's own FactoryBase) and ``modConfig`` names this class for the same VO/labels:

    [taskbroker]
    modConfig = atlas:managed:pandajedi_wf.jedi_agents.task_brokers:WorkflowTaskBroker
    wf_inner_modConfig = atlas:managed:pandajedi.jedibrokerage.AtlasProdTaskBroker:AtlasProdTaskBroker

The seam. Upstream's ``AtlasProdTaskBroker`` picks a nucleus inside worker threads of its own: each task's candidates
are ``copy.copy(siteMapper.nuclei)`` of the SiteMapper the thread takes from ``taskBufferIF.get_site_mapper()``,
cut by its checks (status, transfer backlog, storage endpoints, a full ``AtlasProdJobBroker`` job check, data, full
chain) and drawn at random by its weights; there is no call between the checks and the draw that a plugin could
answer. So for a workflow task that prefers some nuclei, this plugin has JEDI's factory instantiate the wrapped
broker once more over a view of the TaskBuffer whose SiteMapper lists only those nuclei as nuclei: every check and
every weight of upstream run among them, and upstream's own tail sets the nucleus and the output destinations
(``setCloudToTasks_JEDI``). Setting the task's ``nucleus`` instead (the path of a preset nucleus) would skip every
check, and upstream's full-chain co-location only applies to tasks of one full chain.

The preference holds while the task has been in ``assigning`` (``frozenTime``) less than ``[taskbroker]
wf_prefer_minutes`` (60), as upstream drops its own data-locality check after ``DATA_LOCATION_CHECK_PERIOD``: if no
preferred nucleus passes upstream's checks, the task waits in ``assigning`` with upstream's "no candidates" and, once
the period is over, is brokered over every nucleus. A task of no workflow, one with a nucleus already set, a
full-chain task (upstream co-locates it with its parent), or one whose parents' outputs do not favour any nucleus
goes to upstream unchanged, with the other tasks of the call. If our tables cannot be read, upstream decides and
JEDI's log says why.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from pandacommon.pandalogger.PandaLogger import PandaLogger
from pandajedi.jedicore.MsgWrapper import MsgWrapper

from pandajedi_wf import placement
from pandajedi_wf.core.clock import utcnow
from pandajedi_wf.taskbuffer import placement_inputs

from .brokers import WrappedUpstreamBroker, drop_shared_db, shared_db, storage_of, workflow_parents

SECTION = "taskbroker"
PREFER_OPTION = "wf_prefer_minutes"
DEFAULT_PREFER_MINUTES = 60
logger = PandaLogger().getLogger("pandajedi_wf.task_brokers")


def prefer_minutes() -> float:
    from pandajedi.jediconfig import jedi_config

    value = getattr(getattr(jedi_config, SECTION, None), PREFER_OPTION, None)
    return float(value) if value not in (None, "") else float(DEFAULT_PREFER_MINUTES)


def nucleus_storage(site_mapper, nucleus: str) -> str:
    """The storage a nucleus's outputs go to (its default output endpoint), else its name."""
    spec = site_mapper.getNucleus(nucleus)
    return getattr(spec, "default_ddm_endpoint_out", None) or nucleus


@dataclass(frozen=True)
class NucleusPreference:
    nuclei: tuple[str, ...]  # empty: upstream unchanged
    reason: str
    of_workflow: bool = False  # the task is a workflow's (its reason goes to JEDI's log at info level)


def preference_for(task_spec, site_mapper, db, now: datetime.datetime, period_minutes: float) -> NucleusPreference:
    """Which nuclei upstream should choose among for ``task_spec`` (empty: all of them, as without this plugin)."""
    if not task_spec.useWorldCloud():
        return NucleusPreference((), f"cloud {task_spec.cloud}, not WORLD: no nucleus to choose")
    if task_spec.nucleus:
        return NucleusPreference((), f"nucleus {task_spec.nucleus} already set")
    if task_spec.get_full_chain():
        return NucleusPreference((), "full-chain task: upstream co-locates it with its parent")
    found = workflow_parents(db, task_spec.jediTaskID)
    if found is None:
        return NucleusPreference((), "not a workflow task")
    owner, parent_ids = found
    frozen = task_spec.frozenTime  # set when it entered assigning (ContentsFeeder), kept while it stays there
    if frozen is None:
        return NucleusPreference((), f"{owner}: the time it entered assigning is not recorded: every nucleus", True)
    if now - frozen > datetime.timedelta(minutes=period_minutes):
        return NucleusPreference((), f"{owner}: in assigning since {frozen:%Y-%m-%d %H:%M}, over {period_minutes:g} min: every nucleus", True)
    rows = placement_inputs.parent_outputs(db, parent_ids)
    parents = placement.parents_at_storages([(r.task_id, r.ended, r.bytes_at_site) for r in rows], lambda s: storage_of(site_mapper, s))
    candidates = {name: nucleus_storage(site_mapper, name) for name in sorted(site_mapper.nuclei)}
    decision = placement.decide(candidates, parents)
    return NucleusPreference(decision.chosen if decision.restricted else (), f"{owner}: {decision.reason}", True)


class NucleiView:
    """A SiteMapper whose nuclei are only ``nuclei``; everything else (sites, satellites, endpoints) is the mapper's."""

    def __init__(self, site_mapper, nuclei):
        self._mapper = site_mapper
        self.nuclei = {n: s for n, s in site_mapper.nuclei.items() if n in set(nuclei)}

    def __getattr__(self, name):
        return getattr(self._mapper, name)


class TaskBufferWithNuclei:
    """JEDI's TaskBuffer interface, but ``get_site_mapper`` gives a ``NucleiView``."""

    def __init__(self, task_buffer, nuclei):
        self._task_buffer, self._nuclei = task_buffer, tuple(nuclei)

    def get_site_mapper(self, *args, **kwargs):
        return NucleiView(self._task_buffer.get_site_mapper(*args, **kwargs), self._nuclei)

    def __getattr__(self, name):
        return getattr(self._task_buffer, name)


class WorkflowTaskBroker(WrappedUpstreamBroker):
    """Wraps the task broker ``wf_inner_modConfig`` names for this VO/label."""

    SECTION = SECTION

    def __init__(self, taskBufferIF, ddmIF):
        super().__init__()
        self.taskBufferIF, self.ddmIF = taskBufferIF, ddmIF

    def factory_args(self) -> tuple:
        return self.taskBufferIF, self.ddmIF

    def restricted_broker(self, nuclei):
        """The wrapped broker once more, made by JEDI's factory, over a TaskBuffer whose SiteMapper lists only ``nuclei``."""
        self.inner  # noqa: B018  (loads the factory)
        return self._factory.instantiateImpl(self.vo, self.prodSourceLabel, "any", TaskBufferWithNuclei(self.taskBufferIF, nuclei), self.ddmIF)

    def doBrokerage(self, inputList, vo, prodSourceLabel, workQueue, resource_name):
        unchanged, preferred = [], []
        try:
            db = shared_db()
            site_mapper = self.taskBufferIF.get_site_mapper()
            now, period = utcnow(), prefer_minutes()
            for item in inputList:
                jedi_task_id, chunks = item
                tmp_log = MsgWrapper(logger, f"<jediTaskID={jedi_task_id}>")
                pref = preference_for(chunks[0][0], site_mapper, db, now, period) if chunks else NucleusPreference((), "nothing to broker")
                if pref.nuclei:
                    tmp_log.info(f"upstream's task brokerage among nuclei {','.join(pref.nuclei)}: {pref.reason}")
                    preferred.append((item, pref.nuclei))
                else:
                    (tmp_log.info if pref.of_workflow else tmp_log.debug)(f"upstream's task brokerage unchanged: {pref.reason}")
                    unchanged.append(item)
        except Exception as exc:  # our tables unreadable: upstream decides for every task
            MsgWrapper(logger).error(f"workflow nucleus preference skipped, upstream decides: {type(exc).__name__}: {exc}")
            drop_shared_db()
            return self.inner.doBrokerage(inputList, vo, prodSourceLabel, workQueue, resource_name)
        status = self.inner.SC_SUCCEEDED
        if unchanged:
            status = self.inner.doBrokerage(unchanged, vo, prodSourceLabel, workQueue, resource_name)
        for item, nuclei in preferred:
            answer = self.restricted_broker(nuclei).doBrokerage([item], vo, prodSourceLabel, workQueue, resource_name)
            if answer != self.inner.SC_SUCCEEDED:
                status = answer
        return status
