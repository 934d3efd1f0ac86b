"""A step as the processor holds it during a pass, and the one place that says how the engine sees it.

``StepRow`` has a fixed shape (slots): the light columns of JEDI_WF_STEPS, then what a pass learns (JEDI's view) or
decides about the step. Nothing can add a key on the way, so what the step cache keeps between passes is exactly the
persistent part (``end_pass`` clears the rest). The pure control code reads rows through ``get``/``[...]`` as it
reads the API's row dicts; an unknown name is a KeyError, not a silent None.
"""

from __future__ import annotations

import datetime
import operator
from dataclasses import dataclass, fields

from pandajedi_wf.control.step_graph import enclosing

from .retries import HOLDING_WORKFLOW, is_held


@dataclass(slots=True, eq=False)
class StepRow:
    # JEDI_WF_STEPS columns (taskbuffer.steps.LIGHT_COLUMNS)
    step_id: int | None
    workflow_id: int
    node_key: str
    node_id: int | None
    name: str | None
    step_type: str | None
    status: str
    prev_status: str | None = None
    iteration: int = 0
    scatter_index: int | None = None
    parent_keys: tuple[str, ...] = ()
    jedi_task_id: int | None = None
    task_name: str | None = None
    attempt_nr: int = 0
    generation: int = 0
    auto_retries: int = 0  # automatic retries since the last user command (the retry policy's budget)
    retry_after: datetime.datetime | None = None  # set: held for an automatic retry due then
    results: dict | None = None
    error_class: str | None = None
    error_dialog: str | None = None
    # one pass only
    orig: str | None = None  # the status read at the start of the pass (None: created in this pass)
    jedi_status: str | None = None  # JEDI_Tasks.status of its task, read this pass (followed steps only)
    jedi_dialog: str | None = None
    retry_pending: bool = False  # our JEDI 'retry' of its task still waits in DEFT
    retry_reset: bool = False  # made a new task by an automatic retry in this pass
    task_params: dict | None = None  # the task to submit (an intent of this pass, or a crash repair)
    task_params_text: str | None = None  # task_params as the intent recorded them (JSON): what is sent to JEDI

    def columns(self) -> dict:
        """The persistent part, as the database row holds it."""
        return {name: getattr(self, name) for name in _COLUMNS}

    def end_pass(self) -> None:
        """Forget what belongs to this pass: the row is then what the database holds."""
        self.orig = self.jedi_status = self.jedi_dialog = self.task_params = self.task_params_text = None
        self.retry_pending = self.retry_reset = False

    def __getitem__(self, name: str):
        try:
            return _READERS[name](self)
        except KeyError:
            raise KeyError(name) from None

    def get(self, name: str, default=None):
        reader = _READERS.get(name)
        if reader is not None:
            return reader(self)
        if name in _FOREIGN:
            return default
        raise KeyError(name)

    def __setitem__(self, name: str, value) -> None:  # (taskbuffer.jedi_tasks.with_jedi_status writes jedi_status)
        if name not in _NAMES:
            raise KeyError(name)
        setattr(self, name, value)


_NAMES = frozenset(f.name for f in fields(StepRow))
_READERS = {name: operator.attrgetter(name) for name in _NAMES}  # (read for every step of every pass)
_COLUMNS = tuple(f.name for f in fields(StepRow))[: [f.name for f in fields(StepRow)].index("orig")]
# names the shared control code asks rows of other origins for (API rows carry task ids as task_id)
_FOREIGN = frozenset({"task_id"})


def engine_status(s: StepRow, workflow_status: str) -> str:
    """The status the engine decides on, for every step of every pass.

    * A task DEFT accepted but TaskRefiner has not yet put in JEDI_Tasks cannot be named as ``parentTaskName``
      (insertTaskParamsPanda looks the parent up there and refuses the child): until then the step counts as
      ``submitting`` and no child starts early on it.
    * A finished junction in a loop body whose results.json is not read yet counts as ``running``: the loop neither
      stops early nor goes on blindly (``junctions``).
    * A step held for an automatic retry counts as ``retrying`` while its workflow holds retries: its children wait
      and the workflow does not end (``retries``).
    """
    status = s.status
    if status == "submitted" and s.jedi_status is None:
        return "submitting"
    if s.step_type == "junction" and needs_results(s):  # (the type and the retry time first: cheap, and most rows)
        return "running"
    if s.retry_after is not None and workflow_status in HOLDING_WORKFLOW and is_held(s):
        return "retrying"
    return status


def needs_results(s: StepRow) -> bool:
    """A finished junction directly in a loop iteration's body (its results decide the loop) without its results."""
    if s.step_type != "junction" or s.status not in ("done", "finished") or s.results is not None or not s.jedi_task_id:
        return False
    body = enclosing(s.node_key)
    return body is not None and body[1] is not None
