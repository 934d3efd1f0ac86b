"""WatchDog plugin that runs the workflow processor (subType ``wf_processor``)."""

from pandajedi_wf.daemons import workflow_processor

from .base import WfWatchDogBase


class WorkflowProcessorWatchDog(WfWatchDogBase):
    agent_name = "wf_processor"

    def cycle(self, db, stats):
        return workflow_processor.cycle(db, stats, self.taskBufferIF)
