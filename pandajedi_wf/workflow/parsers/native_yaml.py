"""Reader of PanDA's native workflow description (``pchain_native --wfd`` YAML).

Keys per step: ``type`` (default prun), ``inDS``, ``inDsType``, ``secondaryDSs``,
``secondaryDsTypes``, ``exec``, ``args``, ``containerImage``, ``useAthenaPackages``
(and the phpo/gitlab ``opt_*`` names without the prefix); a ``type: workflow``
step has inline ``inputs``/``outputs``/``steps`` or a ``workflow_ref`` file, and
may scatter with ``scatter_inputs`` (child input -> list input) and
``scatter_mode: zip``.  Beyond upstream, ``when`` and ``loop: true`` give native
workflows the same conditions and loops as CWL.

Values: ``"{name}"`` is a workflow input, ``"<step>/outDS"`` a sibling's output,
anything else a literal dataset name.
"""

from __future__ import annotations

import os
from typing import Any

from ..build import ALLOWED_INPUTS, Budget, RawStep, RawWorkflow
from ..errors import WorkflowError, kind_of, shown
from ..model import StepInput
from .source import label_of, load_yaml, read_text, resolve_ref

_ALL_OPTS = sorted({k[len("opt_") :] for keys in ALLOWED_INPUTS.values() for k in keys})
_STEP_KEYS = set(_ALL_OPTS) | {"type", "when", "loop", "inputs", "outputs", "steps", "workflow_ref", "scatter_inputs", "scatter_mode", "name", "options"}
_SOURCE_KEYS = {"inDS", "secondaryDSs", "trainingDS"}


def _source_or_literal(value: Any, step_names: set[str]) -> tuple[str | None, Any]:
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and len(value) > 2:
            return value[1:-1], None
        if "/" in value and value.split("/", 1)[0] in step_names:
            return value, None
    return None, value


def _step_input(key: str, value: Any, step_names: set[str]) -> StepInput:
    name = f"opt_{key}"
    if key not in _SOURCE_KEYS:
        return StepInput(name=name, default=value, is_list=isinstance(value, list))
    values = value if isinstance(value, list) else [value]
    pairs = [_source_or_literal(v, step_names) for v in values]
    if all(src is None for src, _ in pairs):
        return StepInput(name=name, default=value, is_list=isinstance(value, list))
    if any(src is None for src, _ in pairs):
        # mixed literal datasets and references: keep literals as pseudo-sources is not supported
        raise ValueError(f"{key} mixes literal dataset names and step references")
    return StepInput(name=name, sources=[src for src, _ in pairs], is_list=isinstance(value, list))


def _map(value: Any, what: str, file: str, step: str | None = None) -> dict:
    """``value`` when it is a map (nothing given is an empty map), else the problem, naming the key."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WorkflowError.one(f"{what} must be a map, got {kind_of(value)}", file, step, code="syntax")
    return value


def _outputs(value: Any, file: str) -> dict[str, str]:
    outputs = {}
    for out_name, spec in _map(value, "'outputs' (output name -> {from: <step>/outDS})", file).items():
        source = spec.get("from", "") if isinstance(spec, dict) else spec
        if not isinstance(out_name, str) or not isinstance(source, str):
            what = f"output {shown(out_name)}"
            raise WorkflowError.one(f"{what} must name its source as a string '<step>/outDS', got {kind_of(source)}", file, code="syntax")
        outputs[out_name] = source
    return outputs


def parse_document(doc: Any, file: str, doc_dir: str, base_dir: str | None, values: dict, budget: Budget, stack: tuple[str, ...], depth: int) -> RawWorkflow:
    if not isinstance(doc, dict):
        raise WorkflowError.one(f"a workflow description must be a YAML map, got {kind_of(doc)}", file, code="syntax")
    doc = doc.get("workflow", doc)
    if not isinstance(doc, dict):
        raise WorkflowError.one(f"'workflow' must be a map, got {kind_of(doc)}", file, code="syntax")
    steps = doc.get("steps")
    if not isinstance(steps, dict) or not steps:
        raise WorkflowError.one("'steps' must be a non-empty map of step name to step", file, code="syntax")
    budget.take_steps(len(steps), file)
    declared = doc.get("inputs") or {}
    if not isinstance(declared, dict):
        raise WorkflowError.one("'inputs' must be a map of name to value", file, code="syntax")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise WorkflowError.one(f"'name' must be a string, got {kind_of(name)}", file, code="syntax")
    raw = RawWorkflow(
        name=name or os.path.splitext(os.path.basename(file))[0],
        language="yaml",
        inputs={k: values.get(k, v) for k, v in declared.items()},
        outputs=_outputs(doc.get("outputs"), file),
        source_file=file,
        options=dict(_map(doc.get("options"), "'options'", file)),
    )
    step_names = {str(k) for k in steps}
    for name, spec in steps.items():
        if not isinstance(spec, dict):
            raise WorkflowError.one(f"step must be a map, got {kind_of(spec)}", file, str(name), code="syntax")
        unknown = set(spec) - _STEP_KEYS
        if unknown:
            raise WorkflowError.one(f"unknown key(s) {', '.join(sorted(shown(k, 40) for k in unknown))}", file, str(name), code="unknown_input")
        step_type = spec.get("type", "prun")
        loop = spec.get("loop", False)
        if not isinstance(loop, bool):
            raise WorkflowError.one(f"'loop' must be true or false, got {kind_of(loop)}", file, str(name), code="syntax")
        step = RawStep(name=name, type=step_type, when=spec.get("when"), loop=loop, source_file=file)
        for key in _ALL_OPTS:
            if key in spec:
                try:
                    step.inputs.append(_step_input(key, spec[key], step_names))
                except ValueError as exc:
                    raise WorkflowError.one(str(exc), file, str(name)) from None
        if step_type == "workflow":
            step.body = _body(spec, file, str(name), doc_dir, base_dir, budget, stack, depth)
            bound = dict(_map(spec.get("inputs"), "'inputs' of a workflow step", file, str(name))) if "workflow_ref" in spec else {}
            scatter_inputs = _map(spec.get("scatter_inputs"), "'scatter_inputs' (sub-workflow input -> list input)", file, str(name))
            for child_input, parent_input in scatter_inputs.items():
                if not isinstance(child_input, str) or not isinstance(parent_input, str):
                    raise WorkflowError.one(f"scatter_inputs must map input names to input names, got {shown(child_input)}: {shown(parent_input)}", file, str(name), code="syntax")
                step.scatter.append(child_input)
                bound[child_input] = "{" + parent_input + "}"
            if scatter_inputs:
                step.scatter_method = spec.get("scatter_mode", "zip")
            for child_input, value in bound.items():
                src, literal = _source_or_literal(value, step_names)
                if src is None:
                    step.inputs.append(StepInput(name=child_input, default=literal, is_list=isinstance(literal, list)))
                else:
                    step.inputs.append(StepInput(name=child_input, sources=[src]))
        raw.steps.append(step)
    return raw


def _body(spec: dict, file: str, step: str, doc_dir: str, base_dir: str | None, budget: Budget, stack: tuple[str, ...], depth: int) -> RawWorkflow:
    budget.check_depth(depth + 1, file)
    if "steps" in spec:
        inline = {k: spec[k] for k in ("name", "inputs", "outputs", "steps", "options") if k in spec} | {"name": spec.get("name", step)}
        return parse_document(inline, f"{file}#{step}", doc_dir, base_dir, {}, budget, stack, depth + 1)
    if "workflow_ref" not in spec:
        raise WorkflowError.one("a workflow step needs inline 'steps' or a 'workflow_ref'", file, step, code="syntax")
    path = resolve_ref(spec["workflow_ref"], base_dir or doc_dir, base_dir, file, step)
    if path in stack:
        raise WorkflowError.one(f"sub-workflow {shown(spec['workflow_ref'])} includes itself", file, step, code="cycle")
    label = label_of(path, base_dir)
    text = read_text(path, budget, label)
    doc = load_yaml(text, label, budget, "steps")
    return parse_document(doc, label, os.path.dirname(path), base_dir, {}, budget, stack + (path,), depth + 1)


def parse_native(text: str, file: str, spec_dir: str, base_dir: str | None, values: dict, budget: Budget, path: str | None = None) -> RawWorkflow:
    return parse_document(load_yaml(text, file, budget, "steps"), file, spec_dir, base_dir, values, budget, (path,) if path else (), 0)
