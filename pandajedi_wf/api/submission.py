"""Intake: a pchain request (or an already-parsed definition) becomes a workflow row.

A description that does not parse is still recorded, as a ``failed`` workflow whose error_dialog lists every
problem (file, step, what is wrong), so the user finds the reason where they look for their workflow; nothing
else is written for it. ``check_only`` parses and answers without touching the database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from pandajedi_wf.control import RetryPolicyError, parse_retry_policy
from pandajedi_wf.core.clock import utcnow
from pandajedi_wf.taskbuffer import transitions, workflows
from pandajedi_wf.taskbuffer.connection import WfDatabase
from pandajedi_wf.taskbuffer.transitions import TransitionRecord
from pandajedi_wf.workflow import Limits, Workflow, read_values_file, validate_definition, validate_workflow


@dataclass
class SubmitResult:
    ok: bool
    workflow_id: int | None
    status: str | None
    problems: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    name: str | None = None  # the stored workflow's name (None when nothing was stored)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "workflow_id": self.workflow_id, "status": self.status, "problems": self.problems, "steps": self.steps}


def submit_workflow(
    db: WfDatabase | None,
    *,
    language: str,
    spec: str | None = None,
    definition: dict | Workflow | None = None,
    input_values: dict | None = None,
    base_dir: str | None = None,
    out_ds: str,
    user_name: str,
    user_dn: str | None = None,
    vo: str = "atlas",
    prod_source_label: str = "user",
    task_templates: dict | None = None,
    name: str | None = None,
    request: dict | None = None,
    check_only: bool = False,
    limits: Limits | None = None,
    actor: str = "submit",
    retry_policy: dict | None = None,
    workflow_id: int | None = None,
) -> SubmitResult:
    """Parse (``spec``) or take (``definition``) a workflow and store it ``parsed``, ready for the processor.

    ``retry_policy`` (see ``control.parse_retry_policy``) overrides the default automatic step retries for this
    workflow; an invalid one refuses the submission (``ok`` False, nothing stored) with the offending key named.
    ``workflow_id`` is the id the PanDA server already gave the request (intake); by default a new one is drawn.
    """
    if retry_policy is not None:
        try:
            parse_retry_policy(retry_policy)
            if not isinstance(retry_policy, dict):
                raise RetryPolicyError(f"retry_policy: must be an object, got {type(retry_policy).__name__}")
        except RetryPolicyError as exc:
            return SubmitResult(False, None, None, [{"code": "retry_policy", "message": str(exc)}])
    if definition is not None:
        result = validate_definition(definition, limits)  # the type checks a parsed description passes
        parsed = result.workflow if result.ok else None
        problems = [p.to_dict() for p in result.problems]
        summaries: list[dict] = []
    else:
        if spec is None:
            raise ValueError("submit_workflow needs either spec (a description to parse) or definition")
        result = validate_workflow(language, spec, input_values, base_dir, limits)
        parsed = result.workflow if result.ok else None
        problems = [p.to_dict() for p in result.problems]
        summaries = result.to_dict().get("steps", [])
    if check_only:
        return SubmitResult(parsed is not None, None, None, problems, summaries)
    if db is None:
        raise ValueError("submit_workflow needs a database unless check_only is set")
    if parsed is not None and task_templates is None and (request or {}).get("taskParams") is None:
        # every step becomes a JEDI task built from these; without them nothing could ever be submitted
        return SubmitResult(False, None, None, [{"code": "templates", "message": "no task parameter templates: give the "
                                                 "pchain client's taskParams (pandajedi-wf submit --templates FILE)"}])
    now = utcnow()
    status = "parsed" if parsed is not None else "failed"
    error_dialog = None if parsed is not None else "invalid workflow description: " + "; ".join(_problem_text(p) for p in problems)
    stored_request = dict(request or {})
    stored_request.setdefault("taskParams", task_templates)
    stored_request.setdefault("language", language)
    name = name or (parsed.name if parsed is not None and parsed.name else out_ds)
    with db.transaction():
        workflow_id = workflows.insert(
            db,
            workflow_id=workflow_id,
            name=name,
            user_name=user_name,
            user_dn=user_dn,
            vo=vo,
            prod_source_label=prod_source_label,
            language=language,
            status=status,
            out_ds=out_ds,
            definition=parsed.to_dict() if parsed is not None else None,
            request=stored_request,
            error_dialog=error_dialog,
            now=now,
            retry_policy=retry_policy,
        )
        reason = "description parsed and valid" if parsed is not None else error_dialog
        transitions.record(db, [TransitionRecord("workflow", workflow_id, workflow_id, None, status, reason, actor, now)])
    return SubmitResult(parsed is not None, workflow_id, status, problems, summaries, name[:256])


def submit_client_request(db: WfDatabase | None, client_request: dict, user_name: str, user_dn: str | None, sandbox_dir: str, **kwargs: Any) -> SubmitResult:
    """What the ``pchain`` client sends (FIELD_GUIDE §6), with its sandbox already unpacked in ``sandbox_dir``."""
    missing = [k for k in ("workflowSpecFile", "language", "outDS") if not client_request.get(k)]
    if missing:
        raise ValueError(f"pchain request lacks {', '.join(missing)}")
    input_values: dict = {}
    input_file = client_request.get("workflowInputFile")
    if input_file:
        input_values = _read_input_values(os.path.join(sandbox_dir, input_file), sandbox_dir)
    request = {k: v for k, v in client_request.items() if k != "taskParams"}
    return submit_workflow(
        db,
        language=client_request["language"],
        spec=client_request["workflowSpecFile"],
        input_values=input_values,
        base_dir=sandbox_dir,
        out_ds=client_request["outDS"],
        user_name=user_name,
        user_dn=user_dn,
        task_templates=client_request.get("taskParams"),
        name=client_request.get("workflow_name"),
        request=request,
        **kwargs,
    )


def record_refused_request(db: WfDatabase, workflow_id: int, request: dict | None, user_name: str, vo: str,
                           prod_source_label: str, reason: str, now, actor: str) -> None:
    """A request that never got as far as a description (unreadable, no sandbox, bad fields) is still a workflow the
    user can look up: ``failed`` under the id they were given, with the reason as its error."""
    request = request or {}
    out_ds = request.get("outDS") if isinstance(request.get("outDS"), str) else None
    name = request.get("workflow_name") if isinstance(request.get("workflow_name"), str) else None
    language = request.get("language") if request.get("language") in ("cwl", "snakemake", "yaml") else "unknown"
    dialog = f"request refused: {reason}"
    with db.transaction():
        workflows.insert(
            db, workflow_id=workflow_id, name=name or out_ds or f"request {workflow_id}", user_name=user_name,
            user_dn=request.get("user_dn") if isinstance(request.get("user_dn"), str) else None, vo=vo,
            prod_source_label=prod_source_label, language=language, status="failed", out_ds=out_ds, definition=None,
            request={k: v for k, v in request.items() if k != "taskParams"}, error_dialog=dialog, now=now,
        )
        transitions.record(db, [TransitionRecord("workflow", workflow_id, workflow_id, None, "failed", dialog[:4000], actor, now)])


def _read_input_values(path: str, sandbox_dir: str) -> dict:
    """The CWL job file / Snakemake config the client names as workflowInputFile (YAML or JSON), read with the
    description's limits (size, aliases) from inside the sandbox; a ``WorkflowError`` (a ValueError) names what is wrong."""
    return read_values_file(path, base_dir=sandbox_dir)


def _problem_text(problem: dict) -> str:
    where = ", ".join(f"{k} {problem[k]}" for k in ("file", "step") if problem.get(k))
    return f"{problem.get('message')}" + (f" ({where})" if where else "")
