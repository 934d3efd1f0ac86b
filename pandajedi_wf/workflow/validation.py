"""Validate-only API: read a description and report its steps or every problem, never raise.

Used by a dry-run submission (``pchain --check``-like) and by the processor before a
workflow leaves ``registered``.  Caps (``Limits``) are part of validation: a
description over ``max_bytes`` is refused before YAML is read, one with more
than ``max_steps`` steps or whose YAML aliases expand it beyond ``max_yaml_size``
is refused while its files are read, so a 100,000-step workflow or a billion-laughs
file costs milliseconds, not minutes or gigabytes.  After parsing, the values known
at submission are followed through the workflow (``definition_checks``): parameter
types, scatter widths, empty bodies.

Nothing raises out of ``validate_workflow``: every known mistake is a ``WorkflowError``
with file, step and message; anything else (a bug of ours met on this description)
becomes a problem naming the exception, code ``internal``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .build import Limits
from .definition_checks import check_definition
from .errors import Problem, WorkflowError, clip
from .model import Workflow
from .parse import parse_workflow_with_warnings


@dataclass
class StepSummary:
    id: int
    name: str
    type: str
    parents: list[str]
    file: str | None
    path: str  # enclosing sub-workflow steps, e.g. "work_loop/inner_work_top"
    loop: bool = False
    scatter: list[str] = field(default_factory=list)
    condition: str | None = None


@dataclass
class ValidationResult:
    ok: bool
    workflow: Workflow | None = None
    steps: list[StepSummary] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "steps": [vars(s) for s in self.steps],
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [p.to_dict() for p in self.warnings],
        }


def _summaries(workflow: Workflow, path: str = "") -> list[StepSummary]:
    names = {n.id: n.name for n in workflow.nodes}
    out = []
    for node in workflow.nodes:
        out.append(
            StepSummary(
                id=node.id,
                name=node.name,
                type=node.type,
                parents=[names[p] for p in node.parents],
                file=node.source_file,
                path=f"{path}{node.name}",
                loop=node.loop,
                scatter=list(node.scatter),
                condition=str(node.condition) if node.condition else None,
            )
        )
        if node.sub_workflow is not None:
            out.extend(_summaries(node.sub_workflow, f"{path}{node.name}/"))
    return out


def validate_workflow(language: str, spec: str, input_values: dict | None = None, base_dir: str | None = None, limits: Limits | None = None) -> ValidationResult:
    try:
        workflow, warnings = parse_workflow_with_warnings(language, spec, input_values, base_dir, limits)
        return ValidationResult(ok=True, workflow=workflow, steps=_summaries(workflow), warnings=warnings)
    except Exception as exc:
        return ValidationResult(ok=False, problems=_problems_of(exc))


def validate_definition(definition: dict | Workflow, limits: Limits | None = None) -> ValidationResult:
    """The same answer for an already-parsed definition (``Workflow`` or its ``to_dict()``), e.g. one a client
    built itself: it must read back as a ``Workflow`` and pass the checks a parsed description passes."""
    try:
        workflow = definition if isinstance(definition, Workflow) else Workflow.from_dict(definition)
        problems = check_definition(workflow, limits)
        if problems:
            return ValidationResult(ok=False, problems=problems)
        return ValidationResult(ok=True, workflow=workflow, steps=_summaries(workflow))
    except Exception as exc:
        if isinstance(exc, WorkflowError):
            return ValidationResult(ok=False, problems=list(exc.problems))
        message = f"definition is not a workflow definition ({type(exc).__name__}: {clip(str(exc), 200)})"
        return ValidationResult(ok=False, problems=[Problem(message, code="syntax")])


def _problems_of(exc: Exception) -> list[Problem]:
    """What to tell the user for an exception out of parsing.  Every known mistake raises ``WorkflowError`` with
    its file and step; anything else is a bug of ours met on this description, still answered, never raised."""
    if isinstance(exc, WorkflowError):
        return list(exc.problems)
    if isinstance(exc, RecursionError):
        return [Problem("description is nested too deeply", code="too_large")]
    if isinstance(exc, MemoryError):
        return [Problem("description needs too much memory to read", code="out_of_memory")]
    message = f"description could not be read: unexpected {type(exc).__name__}: {clip(str(exc), 200)}"
    return [Problem(message, code="internal")]
