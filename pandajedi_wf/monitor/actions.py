"""Commands from the page: a POSTed form becomes the same stored command ``pbook`` and the workflow endpoints make
(``api.control.command_workflow``), for the identity the front end verified, never for a name in the form.

A form carries a CSRF token bound to that identity (an HMAC of the DN and the time it was issued, with a secret the
server holds), so another site cannot make a signed-in user's browser send a command; a request whose ``Origin``
names another host is refused too. Destructive commands (kill, finish, rerun) need ``confirmed=1``: the page asks
first. The answer (queued, or refused with the reason) is what ``command_workflow`` says; refusals are stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from .identity import Identity

# command -> (button label, what the confirmation says; None: no confirmation)
ACTIONS = {
    "pause": ("Pause", None),
    "resume": ("Resume", None),
    "retry": ("Retry failed steps", None),
    "finish": ("Finish", "Finish workflow {wf}: running steps end, nothing new is submitted, the workflow ends."),
    "kill": ("Kill", "Kill workflow {wf}: steps not ended are cancelled and their JEDI tasks killed. This cannot be undone."),
    "rerun": ("Rerun from here", "Rerun step {step} of workflow {wf}: it and every step after it run again as new JEDI tasks."),
}
WORKFLOW_ACTIONS = ("pause", "resume", "retry", "finish", "kill")
TOKEN_TTL = 8 * 3600


class ActionRefused(Exception):
    """Not even stored: no identity, a bad or stale token, a foreign origin, a malformed form."""

    def __init__(self, message: str, http_status: int = 403):
        super().__init__(message)
        self.http_status = http_status


@dataclass
class CsrfTokens:
    secret: bytes = field(default_factory=lambda: os.urandom(32))
    ttl: int = TOKEN_TTL

    def issue(self, identity: Identity, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        return f"{issued}.{self._mac(identity, issued)}"

    def check(self, token: str, identity: Identity, now: float | None = None) -> None:
        now = now if now is not None else time.time()
        issued_text, _, mac = (token or "").partition(".")
        if not issued_text.isdigit() or not mac:
            raise ActionRefused("missing or malformed form token; reload the page")
        issued = int(issued_text)
        if not hmac.compare_digest(mac, self._mac(identity, issued)):
            raise ActionRefused("form token does not belong to you; reload the page")
        if not -60 <= now - issued <= self.ttl:
            raise ActionRefused("form token expired; reload the page")

    def _mac(self, identity: Identity, issued: int) -> str:
        return hmac.new(self.secret, f"{issued}|{identity.dn}".encode(), hashlib.sha256).hexdigest()[:40]


def check_origin(headers: Mapping[str, str]) -> None:
    """A browser sends Origin on a POST: it must be this server (its Host header), as seen by the user."""
    origin = headers.get("Origin")
    if not origin or origin == "null":
        return
    host = headers.get("X-Forwarded-Host") or headers.get("Host") or ""
    if urlsplit(origin).netloc.lower() != host.split(",")[0].strip().lower():
        raise ActionRefused(f"request from another site ({origin}) refused")


def needs_confirmation(command: str) -> bool:
    return ACTIONS.get(command, ("", None))[1] is not None


def confirmation_text(command: str, workflow_id: int, step: str | None) -> str:
    text = ACTIONS[command][1] or ""
    return text.format(wf=workflow_id, step=step or "?")


def run(db, workflow_id: int, form: Mapping[str, str], identity: Identity | None, tokens: CsrfTokens,
        production_dns: tuple[str, ...] = ()) -> dict:
    """Check the form and store the command. Returns ``command_workflow``'s answer, or
    ``{"status": "confirm", "message"}`` when a destructive command comes without ``confirmed=1``."""
    from pandajedi_wf.api.control import command_workflow

    if identity is None:
        raise ActionRefused("read-only: the front end sent no verified identity, so nothing can be commanded from here")
    tokens.check(form.get("csrf", ""), identity)
    command = form.get("command", "")
    if command not in ACTIONS:
        raise ActionRefused(f"unknown command {command!r}; the page offers {', '.join(ACTIONS)}", 400)
    params: dict = {}
    step = (form.get("step") or "").strip() or None
    if command == "rerun":
        if not step:
            raise ActionRefused("rerun needs the step to run again from", 400)
        params["step"] = step
    if needs_confirmation(command) and form.get("confirmed") != "1":
        return {"command_id": None, "status": "confirm", "message": confirmation_text(command, workflow_id, step)}
    return command_workflow(db, workflow_id, command, params or None, identity.dn, list(identity.fqans), production_dns=production_dns)

