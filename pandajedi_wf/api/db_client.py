"""The ``WorkflowClient`` of the ``pandajedi-wf`` command, over the PanDA database named in panda_server.cfg."""

from __future__ import annotations

from pandajedi_wf.api.errors import BackendError, InvalidWorkflow
from pandajedi_wf.control import compact_user_name
from pandajedi_wf.taskbuffer.connection import DatabaseError, WfDatabase

from . import queries
from .control import command_workflow
from .submission import submit_workflow


class DbWorkflowClient:
    def __init__(self, db: WfDatabase | None = None):
        self.db = db or WfDatabase()

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DatabaseError as exc:
            raise BackendError(str(exc)) from exc

    def submit(self, *, language, spec, input_values, base_dir, out_ds, task_templates, name, requester, owner=None, vo="atlas",
               prod_source_label="user", retry_policy=None) -> dict:
        """``owner`` is the user the workflow belongs to; ``requester`` (the operator) is recorded as the actor."""
        owner = owner or requester
        result = self._call(submit_workflow, self.db, language=language, spec=spec, input_values=input_values, base_dir=base_dir,
                            out_ds=out_ds, user_name=compact_user_name(owner), user_dn=owner if owner.startswith("/") else None,
                            task_templates=task_templates, name=name, vo=vo, prod_source_label=prod_source_label,
                            actor=f"submit by {requester}", retry_policy=retry_policy)
        if not result.ok:
            raise InvalidWorkflow(f"workflow {result.workflow_id} refused: invalid description", result.problems)
        return result.to_dict()

    def validate(self, *, language, spec, input_values, base_dir) -> dict:
        return submit_workflow(None, language=language, spec=spec, input_values=input_values, base_dir=base_dir, out_ds="check",
                               user_name="check", check_only=True).to_dict()

    def show(self, workflow_id: int) -> dict:
        return self._call(queries.show_workflow, self.db, workflow_id)

    def show_by_task(self, jedi_task_id: int) -> dict:
        return self._call(queries.show_by_task, self.db, jedi_task_id)

    def list(self, user, status, limit: int = 1000) -> list[dict]:
        return self._call(queries.list_workflows, self.db, user, status, limit)

    def command(self, workflow_id: int, command: str, params, requester, role) -> dict:
        return self._call(command_workflow, self.db, workflow_id, command, params, requester, role)
