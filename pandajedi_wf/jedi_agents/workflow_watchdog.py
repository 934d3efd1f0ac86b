"""WatchDog plugin that runs the workflow processor (subType ``wf_processor``).

Tuning, all optional, in the same ``[watchdog]`` section of panda_jedi.cfg: ``wf_processor_batch_size``,
``wf_processor_lease_seconds``, ``wf_processor_recheck_seconds``, ``wf_processor_max_submissions_per_workflow``.
"""

from pandajedi_wf.daemons import workflow_processor

from .base import WfWatchDogBase

OPTION_PREFIX = "wf_processor_"


def configured_settings() -> workflow_processor.ProcessorSettings:
    from pandajedi.jediconfig import jedi_config

    section = getattr(jedi_config, "watchdog", None)
    options = {k[len(OPTION_PREFIX) :]: v for k, v in vars(section).items() if k.startswith(OPTION_PREFIX)} if section else {}
    return workflow_processor.ProcessorSettings.from_options(options)


class WorkflowProcessorWatchDog(WfWatchDogBase):
    agent_name = "wf_processor"
    settings = None

    def cycle(self, db, stats):
        if self.settings is None:  # read inside a cycle: a bad value is a recorded cycle error, not a JEDI crash
            self.settings = configured_settings()
        return workflow_processor.cycle(db, stats, self.taskBufferIF, settings=self.settings)
