"""Checks of a built definition against the values known at submission, before anything runs.

The builder checks the shape of a description (names, references, cycles); what a step will really get
depends on the input values the user sent.  ``check_definition`` follows those values through the
workflow the way the engine will (literal defaults, workflow inputs, sub-workflow bindings, one entry
per scattered copy, a loop's first iteration) and refuses:

- a workflow or sub-workflow without steps (it would stay ``running`` for ever);
- a step parameter of the wrong type (``step_params.PARAM_KINDS``): a map as ``opt_args``, a list as
  ``opt_containerImage``, a number as ``opt_inDS``, a step's output as ``opt_exec``;
- a scatter wider than ``Limits.max_scatter``, or scatters and sub-workflows that together make more than
  ``Limits.max_instances`` step copies;
- prun arguments the task builder would refuse (an unbalanced quote, a malformed ``--secondaryDSs``).

What is known only at run time (a loop parameter a junction changes, a value read from a step's output)
is checked by the engine when the step is submitted.  The walk stops at ``max_instances`` step copies, so
a wide nested scatter costs no more than a large workflow.
"""

from __future__ import annotations

from typing import Any

from . import shellwords
from .build import Limits
from .errors import Problem, shown
from .model import Node, StepInput, Workflow
from .step_params import PARAM_KINDS, TAKES_STEP_OUTPUT, value_problem
from .taskparams import secondary_datasets_problem


class _StepOutput:
    """Stands for the output of another step (the engine's ``DatasetRef``): a dataset, known at run time."""

    task_name = "<output of a step>"

    def __repr__(self) -> str:
        return "the output of a step"


class _RunTime:
    """A value known only at run time."""

    def __repr__(self) -> str:
        return "a value known at run time"


STEP_OUTPUT = _StepOutput()
RUN_TIME = _RunTime()


def check_definition(workflow: Workflow, limits: Limits | None = None) -> list[Problem]:
    """Every problem found (empty bodies, parameter types, scatter widths), in workflow order."""
    checker = _Checker(limits or Limits())
    checker.body(workflow, dict(workflow.inputs), None)
    return checker.problems


def scatter_width(node: Node, values: dict[str, Any]) -> int | None:
    """How many copies a scattered node makes from its input values (the shortest scattered list; a single
    value counts as one), or None while one of them is known only at run time."""
    lengths = []
    for name in node.scatter:
        value = values.get(name)
        if value is RUN_TIME or value is STEP_OUTPUT:
            return None
        lengths.append(len(value) if isinstance(value, list) else 1)
    return min(lengths) if lengths else 0


class _Checker:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.problems: list[Problem] = []
        self.reported: set[tuple] = set()  # (node id, what) already reported: one problem per step and parameter
        self.copies = 0  # step copies met so far (scatter copies of every node, sub-workflow bodies included)
        self.stopped = False

    def problem(self, key: tuple, message: str, file: str | None, step: str | None, code: str) -> None:
        if key not in self.reported:
            self.reported.add(key)
            self.problems.append(Problem(message, file, step, code))

    def body(self, body: Workflow, values: dict[str, Any], container: Node | None) -> None:
        if not body.nodes:
            where = "workflow" if container is None else "sub-workflow"
            self.problem(("empty", id(body)), f"{where} has no steps; it would never end", body.source_file, container.name if container else None, "empty")
            return
        for node in body.nodes:
            if self.stopped:
                return
            if node.is_leaf and ("args", node.id) not in self.reported:
                self.reported.add(("args", node.id))
                self.arguments(node)
            resolved = {name: _value(inp, values) for name, inp in node.inputs.items()}
            instances = self.instances(node, resolved)
            self.copies += len(instances)
            if self.copies > self.limits.max_instances:
                self.stopped = True
                self.problem(("copies",), f"the workflow makes more than {self.limits.max_instances} step copies (scatters times sub-workflow steps); "
                             "split it or ask for a higher cap", node.source_file, node.name, "too_large")
                return
            for instance in instances:
                if node.is_leaf:
                    self.leaf(node, instance)
                else:
                    self.body(node.sub_workflow, dict(node.sub_workflow.inputs) | instance, node)
                if self.stopped:
                    return

    def arguments(self, node: Node) -> None:
        """The literal prun arguments of a step, split as the task builder will (once per step)."""
        args = node.inputs.get("opt_args")
        text = args.default if args is not None and not args.sources else None
        if not isinstance(text, str) or "%{" in text:
            return
        try:
            words = shellwords.split(text)
        except ValueError:
            return  # the builder already reported it ("cannot split opt_args")
        value = None
        for i, word in enumerate(words):
            if word == "--secondaryDSs" and i + 1 < len(words):
                value = words[i + 1]
            elif word.startswith("--secondaryDSs="):
                value = word[len("--secondaryDSs="):]
        if value:
            why = secondary_datasets_problem(value, "opt_inDS" in node.inputs)
            if why:
                self.problem((node.id, "opt_args"), f"opt_args: {why}", node.source_file, node.name, "bad_value")

    def instances(self, node: Node, resolved: dict[str, Any]) -> list[dict[str, Any]]:
        """The input values of each copy of ``node`` (one unless scattered; none when the scatter is refused)."""
        if not node.scatter:
            return [resolved]
        width = scatter_width(node, resolved)
        if width is None:
            return [{k: RUN_TIME if k in node.scatter else v for k, v in resolved.items()}]
        cap = self.limits.max_scatter
        if width > cap:
            names = ", ".join(node.scatter)
            self.problem(
                (node.id, "scatter"), f"scatter over {names} makes {width} copies of the step; the limit is {cap}", node.source_file, node.name, "too_large"
            )
            return []
        return [{k: v[i] if k in node.scatter and isinstance(v, list) else v for k, v in resolved.items()} for i in range(width)]

    def leaf(self, node: Node, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name not in PARAM_KINDS:
                continue
            why = _type_problem(name, value)
            if why:
                self.problem((node.id, name), why + _origin(node.inputs[name]), node.source_file, node.name, "bad_value")


def _value(inp: StepInput, values: dict[str, Any]) -> Any:
    """What the engine's ``input_value`` will give, with ``STEP_OUTPUT`` for a step's output."""
    if not inp.sources:
        return inp.default
    found = []
    for src, parent in zip(inp.sources, inp.parents or [None] * len(inp.sources)):
        found.append(STEP_OUTPUT if parent is not None else values.get(src))
    if inp.is_list:
        flat: list = []
        for value in found:
            flat.extend(value if isinstance(value, list) else [value])
        return flat
    return found[0]


def _type_problem(name: str, value: Any) -> str | None:
    if value is RUN_TIME:
        return None
    if isinstance(value, list) and any(v is RUN_TIME for v in value):
        value = [v for v in value if v is not RUN_TIME]
    if name not in TAKES_STEP_OUTPUT and (value is STEP_OUTPUT or (isinstance(value, list) and any(v is STEP_OUTPUT for v in value))):
        return f"{name} cannot take the output of a step; only {', '.join(sorted(TAKES_STEP_OUTPUT))} can"
    return value_problem(name, value)


def _origin(inp: StepInput) -> str:
    names = [src for src, parent in zip(inp.sources, inp.parents or [None] * len(inp.sources)) if parent is None]
    return f" (value of input {shown(names[0])})" if names else ""
