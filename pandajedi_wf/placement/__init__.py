"""Workflow-aware placement: where a workflow's task should run so that its inputs move little and it ends soonest.

Pure (plain data in, plain data out; nothing here imports JEDI or opens the database). Two seams: the processor puts
``task_sites.choose_sites`` into a step's task parameters (``includedSite``) before JEDI sees the task
(``pandajedi_wf.daemons.processor.placement``); the job broker plugin (``pandajedi_wf.jedi_agents.brokers``) cuts
upstream's candidates with ``decision.decide``. Both gather their inputs through
``pandajedi_wf.taskbuffer.placement_inputs``.
"""

from .decision import (
    ParentOutput,
    Placement,
    SiteLoad,
    StepWork,
    bytes_to_move,
    decide,
    expected_completion,
    moved_from,
    parents_at_storages,
    queue_seconds,
    steering_parameters,
    transfer_seconds,
)
from .task_sites import SiteChoice, SitePolicy, choose_sites, external_input, steer

__all__ = ["ParentOutput", "Placement", "SiteChoice", "SiteLoad", "SitePolicy", "StepWork", "bytes_to_move",
           "choose_sites", "decide", "expected_completion", "external_input", "moved_from", "parents_at_storages", "queue_seconds",
           "steer", "steering_parameters", "transfer_seconds"]
