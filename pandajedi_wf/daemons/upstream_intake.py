"""Intake: workflows users submitted with ``pchain_native`` become ours, under the id the PanDA server gave them.

The PanDA server stores the request in upstream's ``workflows`` table (``registered``, no definition). Each cycle
claims a bounded batch of such rows, fetches each sandbox from the server's cache the way upstream's parser does
(HTTP, here with a timeout and a size cap), parses it with our parsers under the DN the server recorded, stores the
workflow in our tables with the same id, and answers on the upstream row. A request that cannot be taken in is a
``failed`` workflow of ours with the precise problems (``show <id>`` and the monitor find it) and a ``failed`` row
upstream; a transient failure (server cache unreachable, database error) leaves the row ``registered`` and is tried
again later, at most ``max_attempts`` times. Rows already ours (a crash after our insert) are only answered.

Upstream's own ``AtlasWorkflowManagerWatchDog`` takes the same rows: when panda_jedi.cfg lists it, intake refuses to
run and says so in the heartbeat and the log.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import dataclass

from pandajedi_wf.api.submission import record_refused_request, submit_client_request
from pandajedi_wf.intake import SandboxError, SandboxLimits, check_request, extract_sandbox, sandbox_url
from pandajedi_wf.taskbuffer import upstream_workflows, workflows
from pandajedi_wf.taskbuffer.connection import WfDatabase
from pandajedi_wf.taskbuffer.upstream_workflows import ENGINE, UPSTREAM_STATUS, RegisteredRequest

from .common import CycleStats, int_options, log_failure

UPSTREAM_MANAGER = "AtlasWorkflowManagerWatchDog"
ACTOR = "intake of a PanDA server request"
UNPACKED_RATIO = 8  # a sandbox may unpack to this many times its download cap (compressed text), not more


@dataclass(frozen=True)
class IntakeSettings:
    """``panda_jedi.cfg [watchdog] wf_processor_intake*``: off unless ``wf_processor_intake = on``."""

    enabled: bool = False
    vo: str | None = None  # VO of the workflows taken in (default: the plugin's VO)
    batch_size: int = 20
    lock_seconds: int = 600  # a claim older than this is free again (upstream's lock convention)
    timeout_seconds: int = 60  # per sandbox download (connect and each read)
    max_sandbox_mb: int = 200
    max_attempts: int = 10  # transient failures before the request is answered failed
    ca_path: str | None = None  # CA file or directory the server's certificate is checked with (default: requests')

    @classmethod
    def from_options(cls, options: dict[str, str]) -> "IntakeSettings":
        """From ``name -> text`` with the ``wf_processor_`` prefix already removed; a bad value is refused by name."""
        flag = str(options.get("intake", "off")).strip().lower()
        if flag not in ("on", "off", "true", "false", "yes", "no", "1", "0", ""):
            raise ValueError(f"panda_jedi.cfg [watchdog] wf_processor_intake must be on or off, got {options.get('intake')!r}")
        values: dict = {"enabled": flag in ("on", "true", "yes", "1"), "vo": (str(options.get("intake_vo") or "").strip() or None),
                        "ca_path": (str(options.get("intake_ca_path") or "").strip() or None)}
        names = ("batch_size", "lock_seconds", "timeout_seconds", "max_sandbox_mb", "max_attempts")
        return cls(**values, **int_options(options, names, prefix="intake_"))


def conflicting_manager(watchdog_mod_config: str | None) -> str | None:
    """Why intake must not run: upstream's workflow manager is configured too (both would take the same rows)."""
    if watchdog_mod_config and UPSTREAM_MANAGER in watchdog_mod_config:
        return (f"intake refused: upstream's {UPSTREAM_MANAGER} is listed in panda_jedi.cfg [watchdog] modConfig and would "
                "take the same registered workflows; remove it or set wf_processor_intake = off")
    return None


class TransientIntakeError(Exception):
    """Worth trying again later (the server's cache did not answer, a 5xx)."""


class RefusedRequest(Exception):
    """The request can never be taken in; the message is for the user."""


def cycle(db: WfDatabase, stats: CycleStats, settings: IntakeSettings, owner: str, vo: str, now: datetime.datetime,
          fetch=None, log=None) -> str:
    """One batch of registered requests. ``fetch(url, path, settings)`` downloads a sandbox (default: HTTP)."""
    fetch = fetch or download_sandbox
    claimed = upstream_workflows.claim_registered(db, owner, now, settings.lock_seconds, settings.batch_size)
    stats.add("intake_claimed", len(claimed))
    outcome: dict[str, int] = {}
    for row in claimed:
        try:
            result = _take_in(db, row, settings, owner, vo, now, fetch)
        except Exception as exc:  # a database error or a bug: the row stays registered and is tried again
            log_failure(log, f"intake of request {row.workflow_id}: {type(exc).__name__}: {exc}")
            result = _postpone(db, row, owner, settings, vo, now, f"{type(exc).__name__}: {exc}")
        outcome[result] = outcome.get(result, 0) + 1
        stats.add(f"intake_{result}")
    mirrored = upstream_workflows.mirror_statuses(db, now)
    stats.add("intake_mirrored", mirrored)
    parts = [f"{n} {what}" for what, n in sorted(outcome.items())]
    return f"intake: {len(claimed)} requests ({', '.join(parts) or 'none'}), {mirrored} statuses mirrored"


def _take_in(db: WfDatabase, row: RegisteredRequest, settings: IntakeSettings, owner: str, vo: str, now, fetch) -> str:
    existing = workflows.load(db, [row.workflow_id], skip_definition={row.workflow_id})
    if row.workflow_id in existing:  # ours already (a crash before the answer): answer only
        wf = existing[row.workflow_id]
        _answer(db, row, owner, wf["status"], wf["error_dialog"], now, wf["name"])
        return "answered"
    try:
        request = _checked_request(row)
        user_dn = request.get("user_dn") or None
        user_name = row.user_name or user_dn
        if not user_name:
            raise RefusedRequest("the server recorded no user for this request")
        with tempfile.TemporaryDirectory(prefix=f"wf_intake_{row.workflow_id}_") as tmp:
            archive = os.path.join(tmp, request["sandbox"])
            fetch(sandbox_url(request), archive, settings)
            unpacked = os.path.join(tmp, "sandbox")
            os.mkdir(unpacked)
            try:
                extract_sandbox(archive, unpacked, SandboxLimits(max_unpacked_bytes=settings.max_sandbox_mb * UNPACKED_RATIO * 1024**2))
            except SandboxError as exc:
                raise RefusedRequest(str(exc)) from None
            try:
                result = submit_client_request(
                    db, request, user_name, user_dn, unpacked, workflow_id=row.workflow_id, vo=vo,
                    prod_source_label=row.prod_source_label or "user", actor=ACTOR,
                )
            except (ValueError, OSError) as exc:  # the inputs file named by the request is missing or not a map
                raise RefusedRequest(str(exc)) from None
    except RefusedRequest as exc:
        record_refused_request(db, row.workflow_id, row.request, row.user_name or "unknown", vo,
                               row.prod_source_label or "user", str(exc), now, actor=ACTOR)
        _answer(db, row, owner, "failed", f"request refused: {exc}", now, None)
        return "refused"
    except TransientIntakeError as exc:
        return _postpone(db, row, owner, settings, vo, now, str(exc))
    _answer(db, row, owner, result.status, None if result.ok else "invalid workflow description", now,
            result.name, problems=result.problems)
    return "accepted" if result.ok else "invalid"


def _checked_request(row: RegisteredRequest) -> dict:
    if row.request is None:
        raise RefusedRequest(row.raw_text_error or "the request cannot be read")
    problems = check_request(row.request)
    if problems:
        raise RefusedRequest("; ".join(f"{p.field}: {p.message}" for p in problems))
    return row.request


def _answer(db: WfDatabase, row: RegisteredRequest, owner: str, our_status: str, error: str | None, now, name: str | None,
            problems: list[dict] | None = None) -> None:
    parameters = dict(row.parameters)
    parameters.update({"engine": ENGINE, "wf_status": our_status})
    parameters.pop("intake_error", None)
    if error:
        parameters["error"] = error[:2000]
    if problems:
        parameters["problems"] = [{k: p.get(k) for k in ("message", "file", "step") if p.get(k)} for p in problems[:50]]
    upstream_workflows.answer(db, row.workflow_id, owner, UPSTREAM_STATUS.get(our_status, "running"), parameters, now, name)


def _postpone(db: WfDatabase, row: RegisteredRequest, owner: str, settings: IntakeSettings, vo: str, now, why: str) -> str:
    attempts = int(row.parameters.get("intake_attempts") or 0) + 1
    if attempts >= settings.max_attempts:
        message = f"request could not be taken in after {attempts} attempts; last error: {why}"
        if row.workflow_id not in workflows.load(db, [row.workflow_id], skip_definition={row.workflow_id}):
            record_refused_request(db, row.workflow_id, row.request, row.user_name or "unknown", vo,
                                   row.prod_source_label or "user", message, now, actor=ACTOR)
        _answer(db, row, owner, "failed", message, now, None)
        return "given_up"
    parameters = dict(row.parameters, intake_attempts=attempts, intake_error=why[:2000])
    upstream_workflows.postpone(db, row.workflow_id, owner, parameters)
    return "postponed"


def download_sandbox(url: str, path: str, settings: IntakeSettings) -> None:
    """GET the sandbox into ``path``: 400/404 mean it is not there (refused), other failures are transient."""
    import requests

    cap = settings.max_sandbox_mb * 1024**2
    try:
        verify = settings.ca_path if settings.ca_path else True
        with requests.get(url, stream=True, timeout=settings.timeout_seconds, allow_redirects=True, verify=verify) as answer:
            if answer.status_code in (400, 403, 404, 410):
                raise RefusedRequest(f"sandbox {url} is not on the server (HTTP {answer.status_code})")
            if answer.status_code != 200:
                raise TransientIntakeError(f"sandbox {url}: HTTP {answer.status_code}")
            size = 0
            with open(path, "wb") as out:
                for chunk in answer.iter_content(1024 * 1024):
                    size += len(chunk)
                    if size > cap:
                        raise RefusedRequest(f"sandbox {url} is larger than {settings.max_sandbox_mb} MB")
                    out.write(chunk)
    except requests.RequestException as exc:
        raise TransientIntakeError(f"sandbox {url}: {type(exc).__name__}: {exc}") from None

