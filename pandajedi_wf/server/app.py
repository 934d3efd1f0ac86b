"""WSGI application: native workflow details and workflow-level control over HTTPS, as PanDA server endpoints.

Routes (method = last path component, as upstream's ``parse_script_name`` takes it; SCRIPT_NAME + PATH_INFO, so
both ``WSGIScriptAlias`` and ``WSGIScriptAliasMatch`` mounts work):

  GET  .../workflow/get_workflow_details?workflow_id=N     what ``pbook show_native_workflow N`` renders
  POST .../workflow/<command>_native_workflow               command in kill, retry, pause, resume, finish, rerun;
       JSON (or form) body {"workflow_id": N, "step": "<name>" (rerun), "now": true (finish)}

Answers are upstream's envelope ``{"success", "message", "data"}`` as JSON. Commands are stored exactly as the
operator CLI and the API store them (``api.control.command_workflow``) for the identity the front end verified, with
its VOMS FQANs as roles and ``panda_config.production_dns``; a refusal is recorded and answered with its reason.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Callable
from urllib.parse import parse_qs

from pandajedi_wf.api.control import command_workflow
from pandajedi_wf.api.queries import WorkflowNotFound, show_workflow
from pandajedi_wf.taskbuffer import jedi_tasks
from pandajedi_wf.taskbuffer.connection import DatabaseError, WfDatabase

from .details import native_details, progress_of
from .identity import NotAuthenticated, verified_identity

COMMANDS = ("kill", "retry", "pause", "resume", "finish", "rerun")
_METHOD = re.compile(r"/workflow/(?P<method>[A-Za-z_]+)/?$")
MAX_BODY = 64 * 1024


class _Refusal(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


class WorkflowEndpoints:
    """The application object; ``db_factory`` opens the database (default: panda_server.cfg, like the server)."""

    def __init__(self, db_factory: Callable[[], WfDatabase] = WfDatabase, log=None):
        self._db_factory = db_factory
        self._db: WfDatabase | None = None
        self._db_lock = threading.Lock()
        self.log = log or _panda_logger()

    def __call__(self, environ, start_response):
        method = _METHOD.search(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        try:
            if method is None:
                raise _Refusal("404 Not Found", "no such endpoint")
            name = method.group("method")
            identity = verified_identity(environ, self.log)
            if name == "get_workflow_details":
                self._expect(environ, "GET")
                data = self._details(_workflow_id(_query(environ)))
                return self._answer(start_response, True, "", data)
            if name.endswith("_native_workflow") and name[: -len("_native_workflow")] in COMMANDS:
                self._expect(environ, "POST")
                answer = self._command(name[: -len("_native_workflow")], _body(environ), identity)
                return self._answer(start_response, answer["status"] == "queued", answer["message"], answer)
            raise _Refusal("404 Not Found", f"no such endpoint: {name}")
        except NotAuthenticated as exc:
            return self._answer(start_response, False, str(exc), None, "403 Forbidden")
        except _Refusal as exc:
            return self._answer(start_response, False, str(exc), None, exc.status)
        except WorkflowNotFound as exc:
            return self._answer(start_response, False, str(exc), None)
        except DatabaseError as exc:
            self.log.error(f"database error: {exc}")
            self._reset()
            return self._answer(start_response, False, "database error; try again later", None, "503 Service Unavailable")

    def _details(self, workflow_id: int) -> dict:
        with self._db_lock:
            db = self._database()
            shown = show_workflow(db, workflow_id)
            task_ids = [int(s["jedi_task_id"]) for s in shown["steps"] if s["jedi_task_id"]]
            progress = {t: p for t, c in jedi_tasks.input_progress(db, task_ids).items() if (p := progress_of(c)) is not None}
        return native_details(shown, shown["prod_source_label"], shown["parent_workflow_id"], progress)

    def _command(self, command: str, body: dict, identity) -> dict:
        from pandaserver.config import panda_config

        workflow_id = _workflow_id(body)
        params: dict = {}
        if command == "rerun":
            step = body.get("step")
            if not isinstance(step, str) or not step:
                raise _Refusal("400 Bad Request", "rerun needs 'step': the name or node key of the step to run again")
            params["step"] = step
        if command == "finish" and body.get("now") in (True, "true", "True", "1", 1):
            params["now"] = True
        with self._db_lock:
            return command_workflow(self._database(), workflow_id, command, params or None, identity.dn, list(identity.fqans),
                                    production_dns=tuple(getattr(panda_config, "production_dns", ()) or ()))

    def _database(self) -> WfDatabase:
        if self._db is None:
            self._db = self._db_factory()
        return self._db

    def _reset(self) -> None:
        with self._db_lock:
            if self._db is not None:
                self._db.close()
            self._db = None

    @staticmethod
    def _expect(environ, method: str) -> None:
        if environ.get("REQUEST_METHOD", "GET") != method:
            raise _Refusal("405 Method Not Allowed", f"expecting {method}, received {environ.get('REQUEST_METHOD')}")

    @staticmethod
    def _answer(start_response, success: bool, message: str, data, status: str = "200 OK"):
        body = json.dumps({"success": success, "message": message, "data": data}, default=str).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _query(environ) -> dict:
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _body(environ) -> dict:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise _Refusal("400 Bad Request", "bad Content-Length") from None
    if length > MAX_BODY:
        raise _Refusal("413 Payload Too Large", f"request body over {MAX_BODY} bytes")
    raw = environ["wsgi.input"].read(length) if length else b""
    if (environ.get("CONTENT_TYPE") or "").startswith("application/json"):
        try:
            value = json.loads(raw or b"{}")
        except ValueError as exc:
            raise _Refusal("400 Bad Request", f"body is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise _Refusal("400 Bad Request", "body must be a JSON object")
        return value
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


def _workflow_id(values: dict) -> int:
    raw = values.get("workflow_id")
    try:
        workflow_id = int(raw)
    except (TypeError, ValueError):
        raise _Refusal("400 Bad Request", f"workflow_id must be a number, got {raw!r}") from None
    if workflow_id <= 0:
        raise _Refusal("400 Bad Request", f"workflow_id must be positive, got {workflow_id}")
    return workflow_id


def _panda_logger():
    from pandacommon.pandalogger.PandaLogger import PandaLogger

    return PandaLogger().getLogger("pandajedi_wf.server")
