"""A small read-only HTTP server for the monitoring pages (stdlib ``http.server``, loopback by default).

Routes: ``/`` overview (``?user=NAME`` keeps one person's workflows), ``/workflow/<id>`` one workflow, and the same
snapshots as JSON under ``/json`` and ``/workflow/<id>/json`` for scripts. Only GET and HEAD; nothing is written.
Requests share one DB connection (``WfDatabase`` serialises statements); a failed query answers 503 and the next
request reconnects.
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

from . import html
from .collect import WorkflowNotFound

_WORKFLOW = re.compile(r"^/workflow/([^/]+)(/json)?/?$")
log = logging.getLogger("pandajedi_wf.monitor")


class SnapshotSource(Protocol):
    def overview(self, user_name: str | None = None) -> dict: ...

    def workflow(self, workflow_id: int) -> dict: ...


def to_json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, (datetime.datetime, datetime.date)):
            return obj.isoformat(sep=" ")
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable")

    return json.dumps(value, default=default, ensure_ascii=False, indent=1, allow_nan=False)


class MonitorHandler(BaseHTTPRequestHandler):
    server_version = "pandajedi_wf-monitor"
    source: SnapshotSource  # set on the subclass made by make_server
    on_error: Any = None  # called after a failed query (drops the DB connection)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, send_body: bool) -> None:
        url = urlsplit(self.path)
        wants_json = url.path == "/json" or url.path.endswith("/json")
        try:
            code, body = self._route(url.path, parse_qs(url.query))
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
        self.end_headers()
        if send_body:
            self.wfile.write(payload)

    def _route(self, path: str, query: dict) -> tuple[HTTPStatus, Any]:
        if path in ("/", "/json"):
            user = (query.get("user") or [""])[0].strip() or None
            snap = self.source.overview(user_name=user)
            return HTTPStatus.OK, snap if path == "/json" else html.render_overview(snap)
        match = _WORKFLOW.match(path)
        if match:
            raw_id, as_json = match.groups()
            if not raw_id.isdigit():
                return HTTPStatus.NOT_FOUND, f"{raw_id!r} is not a workflow id (a positive number, e.g. /workflow/42)"
            try:
                detail = self.source.workflow(int(raw_id))
            except WorkflowNotFound as exc:
                return HTTPStatus.NOT_FOUND, str(exc)
            return HTTPStatus.OK, detail if as_json else html.render_workflow(detail)
        return HTTPStatus.NOT_FOUND, f"no page {path!r}: try / , /json , /workflow/<id> or /workflow/<id>/json"

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def make_server(source: SnapshotSource, host: str = "127.0.0.1", port: int = 8080, on_error=None) -> ThreadingHTTPServer:
    """Bind (port 0 picks a free one: read ``server.server_address``); call ``serve_forever`` or use ``serve_in_thread``."""
    handler = type("BoundMonitorHandler", (MonitorHandler,), {"source": source, "on_error": staticmethod(on_error) if on_error else None})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="pandajedi_wf-monitor", daemon=True)
    thread.start()
    return thread
