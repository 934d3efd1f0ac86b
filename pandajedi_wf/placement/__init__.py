"""Workflow-aware placement: where a workflow's task should run so that its parents' outputs move the least.

Pure (plain data in, plain data out; nothing here imports JEDI or opens the database). The broker plugins in
``pandajedi_wf.jedi_agents.brokers`` gather the inputs (``pandajedi_wf.taskbuffer.placement_inputs``) and apply the
answer to upstream's candidates.
"""

from .decision import ParentOutput, Placement, bytes_to_move, decide, parents_at_storages, steering_parameters

__all__ = ["ParentOutput", "Placement", "bytes_to_move", "decide", "parents_at_storages", "steering_parameters"]
