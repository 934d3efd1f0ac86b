"""A small HTTP server for the monitoring pages (stdlib ``http.server``, loopback by default).

Routes: ``/`` overview (``?user=NAME`` keeps one person's workflows); ``/workflow/<id>`` one workflow drawn as a DAG
(``?open=KEY,KEY`` opens sub-workflow bodies, ``-`` none) with its actions; ``/workflow/<id>/live?since=CURSOR`` what
changed after the version CURSOR of the page (JSON, polled by the page; ``live.py``); ``/workflow/<id>/dag`` the DAG alone (redrawn when steps appear);
``POST /workflow/<id>/command`` an action (``actions.py``); ``/workflows?user=&status=&name=&task=`` finding
workflows; ``/carousel?hours=N`` the carousel over time. JSON for scripts and BigMon: ``/json``,
``/workflow/<id>/json``, ``/workflows/json``, ``/carousel/json``.
Requests share one DB connection, one request at a time; a failed query answers 503 and the next request reconnects.
Actions exist only for a request carrying the identity header the deployment names (``identity.py``).
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from . import actions, html, page
from .collect import WorkflowNotFound
from .identity import Identity, IdentityHeaders

_WORKFLOW = re.compile(r"^/workflow/([^/]+)(/json|/live|/dag|/command)?/?$")
MAX_FORM = 16 * 1024
log = logging.getLogger("pandajedi_wf.monitor")


class SnapshotSource(Protocol):
    def overview(self, user_name: str | None = None) -> dict: ...

    def workflow(self, workflow_id: int) -> dict: ...

    def dag(self, workflow_id: int, opened: list[str] | None = None) -> dict: ...


def to_json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, (datetime.datetime, datetime.date)):
            return obj.isoformat(sep=" ")
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    return json.dumps(value, default=default, ensure_ascii=False, indent=1, allow_nan=False)


class _Redirect(Exception):
    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


class MonitorHandler(BaseHTTPRequestHandler):
    server_version = "pandajedi_wf-monitor"
    source: SnapshotSource  # set on the subclass made by make_server
    on_error: Any = None  # called after a failed query (drops the DB connection)
    identity_headers: IdentityHeaders = IdentityHeaders()
    tokens: actions.CsrfTokens
    task_url: str | None = None
    poll_ms: int = 5000
    production_dns: tuple[str, ...] = ()
    db_lock: threading.Lock

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_POST(self) -> None:
        self._answer(send_body=True, post=True)

    def _identity(self) -> Identity | None:
        return self.identity_headers.identity(self.headers)

    def _answer(self, send_body: bool, post: bool = False) -> None:
        url = urlsplit(self.path)
        wants_json = url.path.endswith("/json") or url.path.endswith("/live") or "application/json" in (self.headers.get("Accept") or "")
        try:
            with self.db_lock:
                code, body = self._post(url.path) if post else self._route(url.path, parse_qs(url.query))
        except _Redirect as redirect:
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", redirect.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        except actions.ActionRefused as exc:
            code, body = HTTPStatus(exc.http_status), {"command_id": None, "status": "refused", "message": str(exc)} if wants_json else str(exc)
        except Exception as exc:  # the page must say what broke instead of dropping the connection
            log.exception("monitor request %s failed", self.path)
            if self.on_error:
                self.on_error()
            code, body = HTTPStatus.SERVICE_UNAVAILABLE, f"cannot read the database: {type(exc).__name__}: {exc}"
        if isinstance(body, str) and code != HTTPStatus.OK:
            body = to_json({"error": body, "status": int(code)}) if wants_json else html.render_error(int(code), body)
        payload = (to_json(body) if wants_json and not isinstance(body, str) else body).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8" if wants_json else "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Frame-Options", "DENY")
        self.end_headers()
        if send_body:
            self.wfile.write(payload)

    def _route(self, path: str, query: dict) -> tuple[HTTPStatus, Any]:
        arg = lambda name: (query.get(name) or [""])[0].strip() or None  # noqa: E731
        if path in ("/", "/json"):
            snap = self.source.overview(user_name=arg("user"))
            return HTTPStatus.OK, snap if path == "/json" else html.render_overview(snap)
        if path in ("/workflows", "/workflows/json"):
            task = arg("task")
            if task:
                if not task.isdigit():
                    return HTTPStatus.NOT_FOUND, f"{task!r} is not a JEDI task id (a number)"
                workflow_id = self.source.workflow_of_task(int(task))
                if workflow_id is None:
                    return HTTPStatus.NOT_FOUND, f"JEDI task {task} is not a step of any pandajedi_wf workflow"
                raise _Redirect(f"/workflow/{workflow_id}" + ("/json" if path.endswith("/json") else ""))
            found = self.source.find(user_name=arg("user"), status=arg("status"), name=arg("name"))
            return HTTPStatus.OK, found if path.endswith("/json") else page.render_find(found, self._identity())
        if path in ("/carousel", "/carousel/json"):
            try:
                hours = min(max(float(arg("hours") or 24), 1.0), 24 * 31)
            except ValueError:
                hours = 24.0
            view = self.source.carousel_history(hours=hours)
            return HTTPStatus.OK, view if path.endswith("/json") else page.render_carousel(view, self._identity())
        match = _WORKFLOW.match(path)
        if match:
            raw_id, tail = match.groups()
            if not raw_id.isdigit():
                return HTTPStatus.NOT_FOUND, f"{raw_id!r} is not a workflow id (a positive number, e.g. /workflow/42)"
            workflow_id = int(raw_id)
            if tail == "/command":
                return HTTPStatus.METHOD_NOT_ALLOWED, "commands are POSTed from the workflow page"
            try:
                if tail == "/live":
                    answer = self.source.live(workflow_id, arg("since"))
                    if answer.get("staging") is not None:  # a request moved: the section again, as the page draws it
                        answer["staging_html"] = page.staging_section(answer["staging"])
                    if answer.get("prestages") is not None:  # a pre-stage moved: its section again
                        answer["prestages_html"] = page.prestage_section(answer["prestages"])
                    return HTTPStatus.OK, answer
                raw_open = arg("open")
                opened = None if raw_open is None else [k for k in raw_open.split(",") if k and k != "-"]
                detail = self.source.dag(workflow_id, opened)
            except WorkflowNotFound as exc:
                return HTTPStatus.NOT_FOUND, str(exc)
            if tail == "/json":
                return HTTPStatus.OK, detail
            if tail == "/dag":
                return HTTPStatus.OK, page.dag_fragment(detail, self.task_url)
            identity = self._identity()
            csrf = self.tokens.issue(identity) if identity is not None else None
            return HTTPStatus.OK, page.render_workflow_page(detail, identity, csrf, self.task_url, self.poll_ms)
        return HTTPStatus.NOT_FOUND, f"no page {path!r}: try / , /json , /workflows , /carousel , /workflow/<id> or /workflow/<id>/json"

    def _post(self, path: str) -> tuple[HTTPStatus, Any]:
        match = _WORKFLOW.match(path)
        if not match or match.group(2) != "/command" or not match.group(1).isdigit():
            return HTTPStatus.NOT_FOUND, "only POST /workflow/<id>/command is accepted"
        workflow_id = int(match.group(1))
        actions.check_origin(self.headers)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise actions.ActionRefused("bad Content-Length", 400) from None
        if length > MAX_FORM:
            raise actions.ActionRefused(f"form over {MAX_FORM} bytes", 413)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
        identity = self._identity()
        try:
            answer = actions.run(self.source.db, workflow_id, form, identity, self.tokens, self.production_dns)
        except LookupError as exc:
            return HTTPStatus.NOT_FOUND, str(exc)
        log.info("action %s on workflow %s by %s: %s %s", form.get("command"), workflow_id, identity.dn if identity else None,
                 answer["status"], answer["message"])
        if "application/json" in (self.headers.get("Accept") or ""):
            return HTTPStatus.OK, answer
        return HTTPStatus.OK, page.render_action_answer(workflow_id, answer, identity, form)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def make_server(source: SnapshotSource, host: str = "127.0.0.1", port: int = 8080, on_error=None, *,
                identity_headers: IdentityHeaders = IdentityHeaders(), task_url: str | None = None, poll_ms: int = 5000,
                production_dns: tuple[str, ...] = (), tokens: actions.CsrfTokens | None = None) -> ThreadingHTTPServer:
    """Bind (port 0 picks a free one: read ``server.server_address``); call ``serve_forever`` or use ``serve_in_thread``.

    ``identity_headers`` names the trusted front end's headers (none: read-only); ``task_url`` links a JEDI task to
    PanDA's monitor (``{task_id}`` is replaced)."""
    handler = type("BoundMonitorHandler", (MonitorHandler,), {
        "source": source, "on_error": staticmethod(on_error) if on_error else None, "identity_headers": identity_headers,
        "tokens": tokens or actions.CsrfTokens(), "task_url": task_url, "poll_ms": poll_ms, "production_dns": tuple(production_dns),
        "db_lock": threading.Lock(),
    })
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="pandajedi_wf-monitor", daemon=True)
    thread.start()
    return thread
