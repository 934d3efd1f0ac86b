"""What the ``pandajedi-wf`` command needs from a backend: the ``WorkflowClient`` protocol.

The command line only parses arguments and renders answers; everything it asks goes
through one object implementing this protocol (the DB-backed one is built by
``make_client``).  Answers are plain dicts so the command can print them as tables or
JSON.  Failures are the exceptions below; each maps to one documented exit code.

Shapes (keys the renderer reads; more keys are shown with --json only):

* ``submit`` / ``validate`` -> ``{"ok": bool, "workflow_id": int|None, "status": str|None,
  "problems": [{"code", "message", "file", "step"}], "steps": [{"id", "name", "type", "parents", ...}]}``
* ``show`` / ``show_by_task`` -> ``{"workflow_id", "name", "user_name", "status", "language", "out_ds",
  "creation_time", "modification_time", "error_dialog",
  "steps": [{"node_key", "name", "step_type", "status", "jedi_task_id", "jedi_status", "attempt_nr",
             "error_class", "error_dialog"}],
  "data": [{"name", "data_type", "status", "n_files", "n_files_done"}],
  "commands": [{"command_id", "command", "status", "requester", "creation_time", "message"}],
  "history": [{"time", "entity", "key", "from", "to", "why"}]}``
* ``list`` -> ``[{"workflow_id", "name", "user_name", "status", "creation_time", "modification_time",
  "n_steps", "steps_by_status": {status: count}}]``
* ``command`` -> ``{"command_id": int|None, "status": "queued"|"done"|"refused"|"failed", "message": str}``
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pandajedi_wf.api.errors import BackendError, ClientError, ClientNotConfigured, InvalidWorkflow, WorkflowNotFound

__all__ = ["BackendError", "ClientError", "ClientNotConfigured", "InvalidWorkflow", "WorkflowClient", "WorkflowNotFound", "make_client"]


@runtime_checkable
class WorkflowClient(Protocol):
    def submit(
        self,
        *,
        language: str,
        spec: str,
        input_values: dict | None,
        base_dir: str | None,
        out_ds: str,
        task_templates: dict | None,
        name: str | None,
        requester: str | None,
        owner: str | None = None,
        vo: str = "atlas",
        prod_source_label: str = "user",
        retry_policy: dict | None = None,
    ) -> dict: ...

    def validate(self, *, language: str, spec: str, input_values: dict | None, base_dir: str | None) -> dict: ...

    def show(self, workflow_id: int) -> dict: ...

    def show_by_task(self, jedi_task_id: int) -> dict: ...

    def list(self, user: str | None, status: str | None, limit: int = 1000) -> list[dict]: ...

    def command(self, workflow_id: int, command: str, params: dict | None, requester: str | None, role: str | None) -> dict: ...


def make_client(**options: Any) -> WorkflowClient:
    """The DB-backed client, connected with the settings of panda_server.cfg (found through PANDA_HOME like upstream)."""
    try:
        from pandajedi_wf.api.db_client import DbWorkflowClient

        return DbWorkflowClient(**options)
    except Exception as exc:  # upstream config missing or unreadable: say what to set
        raise ClientNotConfigured(
            f"pandajedi-wf cannot reach the PanDA database ({type(exc).__name__}: {exc}); "
            "set PANDA_HOME so that $PANDA_HOME/etc/panda/panda_server.cfg names the database, as for the PanDA server"
        ) from exc
