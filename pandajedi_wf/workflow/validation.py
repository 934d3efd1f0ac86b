"""Validate-only API: read a description and report its steps or every problem, never raise.

Used by a dry-run submission (``pchain --check``-like) and by the processor before a
workflow leaves ``registered``.  Caps (``Limits``) are part of validation: a
description over ``max_bytes`` is refused before YAML is read and one with more
than ``max_steps`` steps is refused while its files are read, so a 100,000-step
workflow costs milliseconds, not minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .build import Limits
from .errors import Problem, WorkflowError
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
    except WorkflowError as exc:
        return ValidationResult(ok=False, problems=list(exc.problems))
    except RecursionError:
        return ValidationResult(ok=False, problems=[Problem("description is nested too deeply", code="too_large")])
    return ValidationResult(ok=True, workflow=workflow, steps=_summaries(workflow), warnings=warnings)
