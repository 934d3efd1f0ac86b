"""CWL reader for pchain workflows (no cwltool run, no files written).

pchain uses a small, fixed corner of CWL: a ``class: Workflow`` whose steps
``run`` one of the PanDA step types (``prun``, ``phpo``, ``junction``, ``reana``,
``gitlab``) or another ``.cwl`` workflow file, with ``in`` / ``out`` / ``when`` /
``scatter`` / ``hints: [loop]``.  Reading that corner directly from YAML (instead
of upstream's cwl-utils path, which touches placeholder executables in the
user's directory) keeps parsing side-effect free and lets errors name the step.
"""

from __future__ import annotations

import os
from typing import Any

from ..build import Budget, RawStep, RawWorkflow
from ..errors import WorkflowError, kind_of, shown
from ..model import LEAF_TYPES, WORKFLOW_TYPE, StepInput
from .source import label_of, load_yaml, resolve_ref


def _named_items(value: Any, what: str, file: str, step: str | None = None) -> list[tuple[str, Any]]:
    """CWL allows maps keyed by id or lists of objects with ``id``; give (id, body) pairs."""
    if value is None:
        return []
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list):
        items = []
        for entry in value:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                items.append((entry["id"].lstrip("#"), entry))
            elif isinstance(entry, str):
                items.append((entry, {}))
            else:
                raise WorkflowError.one(f"each entry of {what} needs an id (a string), got {kind_of(entry)}", file, step, code="syntax")
        return items
    raise WorkflowError.one(f"{what} must be a map or a list, got {kind_of(value)}", file, step, code="syntax")


def _declared_inputs(doc: dict, file: str, values: dict) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for name, spec in _named_items(doc.get("inputs"), "inputs", file):
        default = spec.get("default") if isinstance(spec, dict) else None
        inputs[name] = values.get(name, default)
    return inputs


def _outputs(doc: dict, file: str) -> dict[str, str]:
    outputs: dict[str, str] = {}
    for name, spec in _named_items(doc.get("outputs"), "outputs", file):
        source = spec.get("outputSource") if isinstance(spec, dict) else None
        if isinstance(source, list):
            source = source[0] if source else None
        outputs[name] = source.lstrip("#") if isinstance(source, str) else ""
    return outputs


def _step_input(name: str, spec: Any, file: str, step: str) -> StepInput:
    if isinstance(spec, dict):
        source = spec.get("source")
        default = spec.get("default")
        unknown = set(spec) - {"source", "default", "id", "valueFrom", "linkMerge", "pickValue", "loadContents"}
        if unknown:
            raise WorkflowError.one(f"input {shown(name)} has unknown key(s) {', '.join(sorted(shown(k, 40) for k in unknown))}", file, step, code="syntax")
    else:
        source, default = spec, None
    if source is None:
        return StepInput(name=name, default=default, is_list=isinstance(default, list))
    is_list = isinstance(source, list)
    sources = source if is_list else [source]
    for src in sources:
        if not isinstance(src, str):
            raise WorkflowError.one(f"input {shown(name)} has a source that is not a string: {kind_of(src)}", file, step, code="syntax")
    return StepInput(name=name, sources=[s.lstrip("#") for s in sources], default=default, is_list=is_list)


def _scatter(value: Any, file: str, step: str) -> list[str]:
    """``scatter:`` names one step input or a list of them."""
    if value is None:
        return []
    names = value if isinstance(value, list) else [value]
    for name in names:
        if not isinstance(name, str) or not name.lstrip("#"):
            raise WorkflowError.one(f"scatter must name step inputs (a string or a list of strings), got {kind_of(name)}", file, step, code="bad_scatter")
    return [name.lstrip("#") for name in names]


def _has_loop_hint(hints: Any) -> bool:
    if isinstance(hints, list):
        return any(h == "loop" or (isinstance(h, dict) and h.get("class") == "loop") for h in hints)
    if isinstance(hints, dict):
        return "loop" in hints
    return hints == "loop"


def _run_target(run: Any) -> str:
    """``prun.cwl`` and ``prun`` both mean the prun step type."""
    name = os.path.basename(run) if isinstance(run, str) else ""
    stem = name[:-4] if name.endswith(".cwl") else name
    return stem if stem in LEAF_TYPES else ""


def parse_document(doc: Any, file: str, cwl_dir: str, base_dir: str | None, values: dict, budget: Budget, stack: tuple[str, ...], depth: int) -> RawWorkflow:
    if not isinstance(doc, dict):
        raise WorkflowError.one(f"a CWL workflow must be a YAML map, got {kind_of(doc)}", file, code="syntax")
    if doc.get("class") != "Workflow":
        raise WorkflowError.one(f"expected 'class: Workflow', found class {shown(doc.get('class'))}", file, code="syntax")
    steps_doc = _named_items(doc.get("steps"), "steps", file)
    budget.take_steps(len(steps_doc), file)
    raw = RawWorkflow(
        name=os.path.splitext(os.path.basename(file))[0],
        language="cwl",
        inputs=_declared_inputs(doc, file, values),
        outputs=_outputs(doc, file),
        source_file=file,
    )
    for name, spec in steps_doc:
        if not isinstance(spec, dict):
            raise WorkflowError.one(f"step must be a map, got {kind_of(spec)}", file, name, code="syntax")
        if "run" not in spec:
            raise WorkflowError.one("step has no 'run'", file, name, code="syntax")
        run = spec["run"]
        if not isinstance(run, (str, dict)):
            raise WorkflowError.one(f"'run' must name a step type ({', '.join(LEAF_TYPES)}), a .cwl file or hold a workflow, got {kind_of(run)}", file, name, code="syntax")
        inputs = [_step_input(k, v, file, name) for k, v in _named_items(spec.get("in"), "in", file, name)]
        outputs = [k for k, _ in _named_items(spec.get("out"), "out", file, name)]
        step = RawStep(
            name=name,
            type=_run_target(run),
            inputs=inputs,
            outputs=outputs,
            when=spec.get("when"),
            loop=_has_loop_hint(spec.get("hints")),
            scatter=_scatter(spec.get("scatter"), file, name),
            scatter_method=spec.get("scatterMethod", "dotproduct"),
            source_file=file,
        )
        if not step.type:
            step.type = WORKFLOW_TYPE
            step.body = _sub_workflow(run, file, name, cwl_dir, base_dir, budget, stack, depth)
            if step.body is None:
                step.type = run if isinstance(run, str) else "?"
        raw.steps.append(step)
    return raw


def _sub_workflow(run: Any, file: str, step: str, cwl_dir: str, base_dir: str | None, budget: Budget, stack: tuple[str, ...], depth: int) -> RawWorkflow | None:
    budget.check_depth(depth + 1, file)
    if isinstance(run, dict):
        return parse_document(run, f"{file}#{step}", cwl_dir, base_dir, {}, budget, stack, depth + 1)
    if not isinstance(run, str) or not run.endswith(".cwl"):
        return None
    path = resolve_ref(run, cwl_dir, base_dir, file, step)
    if path in stack:
        raise WorkflowError.one(f"sub-workflow {shown(run)} includes itself", file, step, code="cycle")
    from .source import read_text

    label = label_of(path, base_dir)
    text = read_text(path, budget, label)
    doc = load_yaml(text, label, budget, "steps")
    return parse_document(doc, label, os.path.dirname(path), base_dir, {}, budget, stack + (path,), depth + 1)


def parse_cwl(text: str, file: str, spec_dir: str, base_dir: str | None, values: dict, budget: Budget, path: str | None = None) -> RawWorkflow:
    doc = load_yaml(text, file, budget, "steps")
    return parse_document(doc, file, spec_dir, base_dir, values, budget, (path,) if path else (), 0)
