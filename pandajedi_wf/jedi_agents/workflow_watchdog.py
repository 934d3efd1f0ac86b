"""WatchDog plugin that runs the workflow processor (subType ``wf_processor``).

Tuning, all optional, in the same ``[watchdog]`` section of panda_jedi.cfg: ``wf_processor_batch_size``,
``wf_processor_lease_seconds``, ``wf_processor_recheck_seconds``, ``wf_processor_max_submissions_per_workflow``,
``wf_processor_pass_seconds``, ``wf_processor_workers``, ``wf_processor_cached_steps``,
and ``wf_processor_junction_results = module:callable`` (a zero-argument callable returning an object with
``fetch(jedi_task_id, task_name) -> dict``; default: results.json downloaded from Rucio).

``wf_processor_intake = on`` also takes in what users submit with ``pchain_native`` through the PanDA server
(``daemons.upstream_intake``; ``wf_processor_intake_vo``, ``_batch_size``, ``_lock_seconds``, ``_timeout_seconds``,
``_max_sandbox_mb``, ``_max_attempts``, ``_ca_path``). It refuses to run beside upstream's ``AtlasWorkflowManagerWatchDog``.
"""

import importlib

from pandajedi_wf.core.clock import utcnow
from pandajedi_wf.daemons import upstream_intake, workflow_processor
from pandajedi_wf.daemons.common import process_id

from .base import WfWatchDogBase

OPTION_PREFIX = "wf_processor_"


def _options() -> dict[str, str]:
    from pandajedi.jediconfig import jedi_config

    section = getattr(jedi_config, "watchdog", None)
    return {k[len(OPTION_PREFIX) :]: v for k, v in vars(section).items() if k.startswith(OPTION_PREFIX)} if section else {}


def configured_settings() -> workflow_processor.ProcessorSettings:
    return workflow_processor.ProcessorSettings.from_options(_options())


def configured_junction_results():
    spec = str(_options().get("junction_results") or "").strip()
    if not spec:
        from pandajedi_wf.ddm.junction_results import RucioJunctionResults

        return RucioJunctionResults()
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"panda_jedi.cfg [watchdog] {OPTION_PREFIX}junction_results must be 'module:callable', got {spec!r}")
    return getattr(importlib.import_module(module), name)()


def configured_intake() -> tuple[upstream_intake.IntakeSettings, str | None]:
    """Intake settings, and why intake must not run when it is switched on (upstream's manager configured too)."""
    from pandajedi.jediconfig import jedi_config

    settings = upstream_intake.IntakeSettings.from_options(_options())
    section = getattr(jedi_config, "watchdog", None)
    refusal = upstream_intake.conflicting_manager(getattr(section, "modConfig", None)) if settings.enabled else None
    return settings, refusal


class WorkflowProcessorWatchDog(WfWatchDogBase):
    agent_name = "wf_processor"
    settings = None
    junction_results = None
    intake = None
    intake_refusal = None

    def cycle(self, db, stats):
        if self.settings is None:  # read inside a cycle: a bad value is a recorded cycle error, not a JEDI crash
            self.settings = configured_settings()
            self.junction_results = configured_junction_results()
            self.intake, self.intake_refusal = configured_intake()
            if self.intake_refusal:
                self.log.error(self.intake_refusal)
        parts = []
        if self.intake.enabled:
            if self.intake_refusal:
                parts.append(self.intake_refusal)
            else:
                vo = self.intake.vo or (self.vo if getattr(self, "vo", None) not in (None, "any") else "atlas")
                parts.append(upstream_intake.cycle(db, stats, self.intake, process_id(), vo, utcnow(), log=self.log))
        parts.append(workflow_processor.cycle_all(db, stats, self.taskBufferIF, settings=self.settings, junction_results=self.junction_results,
                                                  log=self.log))
        return "; ".join(parts)
