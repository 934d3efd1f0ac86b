"""One entry point for the three languages: ``parse_workflow``.

The pchain client sends ``language`` (``cwl``, ``snakemake`` or ``yaml``), the
spec file name inside the uploaded sandbox and the input values; the server
reads the spec from the unpacked sandbox (``base_dir``).
"""

from __future__ import annotations

import os
from typing import Any

from .build import Budget, Limits, build_workflow
from .definition_checks import check_definition
from .errors import Problem, WorkflowError, kind_of, shown
from .model import Workflow
from .parsers.cwl import parse_cwl
from .parsers.native_yaml import parse_native
from .parsers.snakemake import parse_snakefile
from .parsers.source import label_of, looks_like_path, read_text, within

LANGUAGES = {"cwl": "cwl", "snakemake": "snakemake", "snake": "snakemake", "yaml": "yaml", "native": "yaml", "wfd": "yaml"}


def parse_workflow_with_warnings(
    language: str, spec: str, input_values: dict[str, Any] | None = None, base_dir: str | None = None, limits: Limits | None = None
) -> tuple[Workflow, list[Problem]]:
    lang = LANGUAGES.get(str(language).lower())
    if lang is None:
        raise WorkflowError.one(f"unknown workflow language {shown(language)}; expected cwl, snakemake or yaml", code="unknown_language")
    if input_values is not None and not isinstance(input_values, dict):
        raise WorkflowError.one("input values must be a map of input name to value", code="syntax")
    if not isinstance(spec, str):
        raise WorkflowError.one(f"workflow description must be text or a file path, got {kind_of(spec)}", code="syntax")
    values = dict(input_values or {})
    limits = limits or Limits()
    budget = Budget(limits)
    if base_dir is not None and not looks_like_path(spec) and not os.path.isabs(spec) and os.path.isfile(os.path.join(base_dir, spec)):
        spec = os.path.join(base_dir, spec)
    if looks_like_path(spec):
        path = os.path.realpath(spec)
        if base_dir is not None and not within(path, base_dir):
            raise WorkflowError.one("the workflow file is outside the workflow directory", os.path.basename(path), code="outside_sandbox")
        file = label_of(path, base_dir)
        text = read_text(path, budget, file)
        spec_dir = os.path.dirname(path)
    else:
        budget.check_bytes(len(spec.encode("utf-8", "replace")), "<text>")
        path, text, file = None, spec, "<text>"
        spec_dir = base_dir or os.getcwd()
    if lang == "cwl":
        raw = parse_cwl(text, file, spec_dir, base_dir, values, budget, path)
    elif lang == "yaml":
        raw = parse_native(text, file, spec_dir, base_dir, values, budget, path)
    else:
        raw = parse_snakefile(path or os.path.join(spec_dir, "Snakefile"), base_dir, values, budget, text=text)
    workflow, warnings = build_workflow(raw)
    problems = check_definition(workflow, limits)
    if problems:
        raise WorkflowError(problems)
    return workflow, warnings


def parse_workflow(language: str, spec: str, input_values: dict[str, Any] | None = None, base_dir: str | None = None, limits: Limits | None = None) -> Workflow:
    """Parse a CWL / Snakemake / native YAML description (text or file path) into a ``Workflow``.

    Raises ``WorkflowError`` (``.problems`` lists file, step and message of each problem),
    ``WorkflowTooLarge`` when a cap in ``limits`` is exceeded.
    """
    return parse_workflow_with_warnings(language, spec, input_values, base_dir, limits)[0]
