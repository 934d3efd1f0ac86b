"""Turn what a parser read (``RawWorkflow``) into the checked ``Workflow`` model.

Parsers only deal with syntax; everything that is the same for CWL, Snakemake and
native YAML lives here: step names, step types, references between steps,
cycles, conditions, scatter, loops, sub-workflow bindings, numbering and output
types.  All problems of a description are collected and raised together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .conditions import ConditionSyntaxError, parse_condition
from .errors import Problem, WorkflowError, WorkflowTooLarge, kind_of, shown
from .model import NODE_TYPES, WORKFLOW_TYPE, Condition, Node, StepInput, Workflow
from .naming import output_types_from_args, step_name_problem

# step inputs upstream accepts per step type (pandaserver/workflow/workflow_utils.py Node.verify)
ALLOWED_INPUTS = {
    "prun": {"opt_inDS", "opt_inDsType", "opt_secondaryDSs", "opt_secondaryDsTypes", "opt_args", "opt_exec", "opt_useAthenaPackages", "opt_containerImage"},
    "junction": {"opt_inDS", "opt_inDsType", "opt_args", "opt_exec", "opt_containerImage"},
    "reana": {"opt_inDS", "opt_inDsType", "opt_args", "opt_exec", "opt_containerImage"},
    "phpo": {"opt_trainingDS", "opt_trainingDsType", "opt_args"},
    "gitlab": {"opt_inDS", "opt_args", "opt_api", "opt_projectID", "opt_ref", "opt_triggerToken", "opt_accessToken", "opt_site", "opt_input_location"},
}
RESERVED_LOOP_PARAMS = {"param_i"}  # %{i} is the iteration number


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile or mistaken description from costing minutes or GBs.

    ``max_bytes`` is checked before any YAML is read, ``max_steps`` counts every step
    of every (sub-)workflow file as it is read, ``max_depth`` bounds sub-workflow
    nesting; ``max_scatter`` and ``max_iterations`` bound what the engine expands, ``max_instances`` the step
    copies the scatters and sub-workflows known at submission make together.  ``max_yaml_values`` and
    ``max_yaml_size`` bound what the YAML documents of one workflow (its files, and Snakemake config values a
    Snakefile refers to) hold once their aliases are expanded (values; characters of its values plus one per
    value): a 1 KB "billion laughs" file expands to gigabytes when stored.  ``max_yaml_depth`` bounds nesting.
    """

    max_bytes: int = 1_000_000
    max_steps: int = 2_000
    max_depth: int = 8
    max_scatter: int = 1_000
    max_instances: int = 20_000
    max_iterations: int = 100
    max_yaml_values: int = 100_000
    max_yaml_size: int = 4_000_000
    max_yaml_depth: int = 64


class Budget:
    """Running count of steps read so far, shared by all files of one workflow."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.steps = 0
        self.values = 0  # YAML values read so far (aliases expanded)
        self.chars = 0  # characters of those values, plus one per value

    def take_chars(self, count: int, file: str | None, what: str) -> None:
        """Count ``count`` more characters of values against ``max_yaml_size``; ``what`` says where they come from."""
        self.chars += count
        if self.chars > self.limits.max_yaml_size:
            raise WorkflowTooLarge.one(
                f"{what} make the workflow's values larger than {self.limits.max_yaml_size} characters; the limit keeps a description cheap to read and store",
                file,
                code="too_large",
            )

    def check_bytes(self, size: int, file: str | None) -> None:
        if size > self.limits.max_bytes:
            raise WorkflowTooLarge.one(f"description is {size} bytes; the limit is {self.limits.max_bytes} bytes", file, code="too_large")

    def take_steps(self, count: int, file: str | None) -> None:
        self.steps += count
        if self.steps > self.limits.max_steps:
            raise WorkflowTooLarge.one(
                f"workflow has more than {self.limits.max_steps} steps (counting sub-workflows); split it or ask for a higher cap",
                file,
                code="too_large",
            )

    def check_depth(self, depth: int, file: str | None) -> None:
        if depth > self.limits.max_depth:
            raise WorkflowTooLarge.one(f"sub-workflows nested deeper than {self.limits.max_depth} levels", file, code="too_large")


@dataclass
class RawStep:
    name: Any
    type: str
    inputs: list[StepInput] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    when: str | None = None
    loop: bool = False
    scatter: list[str] = field(default_factory=list)
    scatter_method: str = "dotproduct"
    body: "RawWorkflow | None" = None
    after: list[str] = field(default_factory=list)  # extra parents by step name (Snakemake ``input:``)
    source_file: str | None = None


@dataclass
class RawWorkflow:
    name: str
    language: str
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[RawStep] = field(default_factory=list)
    source_file: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


class _Builder:
    def __init__(self):
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.next_id = 0

    def problem(self, message, file=None, step=None, code="invalid"):
        self.problems.append(Problem(message, file, step, code))

    # ---- one body -------------------------------------------------------
    def body(self, raw: RawWorkflow, bound: set[str] | None) -> Workflow:
        """Check and number one body; ``bound`` = inputs the enclosing node binds (None at top)."""
        file = raw.source_file
        if not self._names_are_text(raw):
            return Workflow(name=str(raw.name), language=raw.language, source_file=file)
        for name, value in raw.inputs.items():
            if value is None and (bound is None or name not in bound):
                what = "workflow input" if bound is None else "sub-workflow input"
                hint = "give it in the input file" if bound is None else "the calling step does not pass it and it has no default"
                self.problem(f"{what} {shown(name)} has no value ({hint})", file, code="missing_input")
        steps_by_name: dict[str, RawStep] = {}
        usable: list[RawStep] = []
        for step in raw.steps:
            why = step_name_problem(step.name)
            if why:
                self.problem(why, step.source_file or file, str(step.name), code="bad_name")
                continue
            if step.name in steps_by_name:
                self.problem("duplicate step name", step.source_file or file, step.name, code="duplicate")
                continue
            if step.type not in NODE_TYPES:
                self.problem(f"unknown step type {shown(step.type)}; expected one of {', '.join(NODE_TYPES)} or a sub-workflow file", step.source_file or file, step.name, code="unknown_type")
                continue
            steps_by_name[step.name] = step
            usable.append(step)

        parents_by_name = {s.name: self._references(s, steps_by_name, raw) for s in usable}
        ordered = self._sort(usable, parents_by_name, file)

        nodes: dict[str, Node] = {}
        for step in ordered:
            sub = None
            if step.type == WORKFLOW_TYPE:
                if step.body is None:
                    self.problem("sub-workflow step has no body", step.source_file or file, step.name)
                    continue
                sub = self.body(step.body, {i.name for i in step.inputs})
                self._check_bindings(step, sub)
            self.next_id += 1
            node = Node(
                id=self.next_id,
                name=step.name,
                type=step.type,
                inputs={i.name: i for i in step.inputs},
                outputs=list(step.outputs) or ["outDS"],
                loop=step.loop,
                scatter=list(step.scatter),
                scatter_method=step.scatter_method,
                sub_workflow=sub,
                source_file=step.source_file or file,
            )
            node.parents = [nodes[p].id for p in parents_by_name[step.name] if p in nodes]
            for inp in node.inputs.values():
                inp.parents = [self._source_parent(src, nodes) for src in inp.sources]
            node.output_types = self._output_types(node)
            self._check_step(node, step, raw)
            nodes[step.name] = node
        tails = {ref.split("/", 1)[0] for ref in raw.outputs.values() if isinstance(ref, str)}
        for node in nodes.values():
            node.is_tail = node.name in tails
        return Workflow(
            name=raw.name,
            language=raw.language,
            inputs=dict(raw.inputs),
            outputs=dict(raw.outputs),
            nodes=list(nodes.values()),
            source_file=file,
            options=dict(raw.options),
        )

    def _names_are_text(self, raw: RawWorkflow) -> bool:
        """Input, output and scatter names are strings (YAML also has numbers and booleans as keys, which would
        not survive storage as JSON); a problem for each that is not."""
        found = len(self.problems)
        file = raw.source_file
        if not isinstance(raw.name, str):
            self.problem(f"workflow name must be a string, got {kind_of(raw.name)}", file, code="syntax")
        for name in raw.inputs:
            if not isinstance(name, str) or not name:
                self.problem(f"workflow input name {shown(name)} must be a non-empty string", file, code="syntax")
        for name, ref in raw.outputs.items():
            if not isinstance(name, str) or not isinstance(ref, str):
                self.problem(f"workflow output {shown(name)} must be a name with a '<step>/<output>' string, got {kind_of(ref)}", file, code="syntax")
        for step in raw.steps:
            where = step.source_file or file
            label = step.name if isinstance(step.name, str) else shown(step.name)
            for inp in step.inputs:
                if not isinstance(inp.name, str) or not inp.name:
                    self.problem(f"input name {shown(inp.name)} must be a non-empty string", where, label, code="syntax")
            for name in [*step.outputs, *step.scatter, *step.after]:
                if not isinstance(name, str) or not name:
                    self.problem(f"output, scatter and dependency names must be non-empty strings, got {kind_of(name)}", where, label, code="syntax")
            if not isinstance(step.type, str):
                self.problem(f"step type must be a string, got {kind_of(step.type)}", where, label, code="unknown_type")
        return len(self.problems) == found

    @staticmethod
    def _source_parent(src: str, nodes: dict[str, Node]) -> int | None:
        if "/" in src:
            step = nodes.get(src.split("/", 1)[0])
            return step.id if step else None
        return None

    def _references(self, step: RawStep, steps: dict[str, RawStep], raw: RawWorkflow) -> list[str]:
        """Parent step names of ``step``; every dangling reference becomes a problem."""
        file = step.source_file or raw.source_file
        parents: list[str] = []
        for inp in step.inputs:
            for src in inp.sources:
                if not isinstance(src, str) or not src:
                    self.problem(f"input {shown(inp.name)} has an empty or non-string source {shown(src)}", file, step.name, code="dangling")
                    continue
                if "/" in src:
                    name, port = src.split("/", 1)
                    target = steps.get(name)
                    if target is None:
                        self.problem(f"input {shown(inp.name)} refers to unknown step {shown(name)} (in {shown(src)})", file, step.name, code="dangling")
                        continue
                    if name == step.name:
                        self.problem(f"input {shown(inp.name)} refers to the step itself", file, step.name, code="cycle")
                        continue
                    if port not in (target.outputs or ["outDS"]):
                        self.problem(f"input {shown(inp.name)} refers to output {shown(port)} that step {shown(name)} does not declare", file, step.name, code="dangling")
                        continue
                    if name not in parents:
                        parents.append(name)
                elif src not in raw.inputs:
                    self.problem(f"input {shown(inp.name)} refers to {shown(src)}, which is neither a workflow input nor '<step>/<output>'", file, step.name, code="dangling")
        for name in step.after:
            if name not in steps:
                self.problem(f"depends on unknown step {shown(name)}", file, step.name, code="dangling")
            elif name != step.name and name not in parents:
                parents.append(name)
        return parents

    def _sort(self, steps: list[RawStep], parents: dict[str, list[str]], file) -> list[RawStep]:
        """Upstream's order: repeated passes in declaration order, taking steps whose parents are placed."""
        placed: set[str] = set()
        ordered: list[RawStep] = []
        pending = list(steps)
        while pending:
            rest = []
            for step in pending:
                if all(p in placed for p in parents[step.name]):
                    placed.add(step.name)
                    ordered.append(step)
                else:
                    rest.append(step)
            if len(rest) == len(pending):
                cycle = self._find_cycle({s.name for s in rest}, parents)
                self.problem(f"steps form a cycle: {' -> '.join(cycle)}", file, cycle[0], code="cycle")
                break
            pending = rest
        return ordered

    @staticmethod
    def _find_cycle(names: set[str], parents: dict[str, list[str]]) -> list[str]:
        start = sorted(names)[0]
        path, seen = [start], {start: 0}
        current = start
        while True:
            nxt = next(p for p in parents[current] if p in names)
            if nxt in seen:
                return path[seen[nxt]:] + [nxt]
            seen[nxt] = len(path)
            path.append(nxt)
            current = nxt

    def _check_bindings(self, step: RawStep, sub: Workflow) -> None:
        for inp in step.inputs:
            if inp.name not in sub.inputs:
                self.problem(f"passes input {shown(inp.name)} which sub-workflow {shown(sub.name)} does not declare", step.source_file, step.name, code="dangling")

    def _output_types(self, node: Node) -> list[str]:
        if node.sub_workflow is not None:
            body = node.sub_workflow
            ref = body.outputs.get(node.outputs[0]) if node.outputs else None
            tail = None
            if isinstance(ref, str) and "/" in ref and ref.split("/", 1)[0]:
                try:
                    tail = body.node(ref.split("/", 1)[0])
                except KeyError:
                    self.problem(f"output {shown(node.outputs[0])} comes from unknown step {shown(ref)}", body.source_file, node.name, code="dangling")
            else:
                self.warnings.append(Problem(f"sub-workflow output {shown(node.outputs[0])} has no usable source ({shown(ref)}); its last steps are used", body.source_file, node.name, "warning"))
            return list(tail.output_types) if tail else []
        if node.type in ("prun", "junction", "reana"):
            args = node.inputs.get("opt_args")
            try:
                return output_types_from_args(args.default if args and isinstance(args.default, str) else None, node.type)
            except ValueError as exc:
                self.problem(f"cannot split opt_args: {exc}", node.source_file, node.name)
        return []

    def _check_step(self, node: Node, step: RawStep, raw: RawWorkflow) -> None:
        file = node.source_file
        if node.is_leaf:
            unknown = sorted(set(node.inputs) - ALLOWED_INPUTS[node.type])
            if unknown:
                self.problem(f"unknown input parameter(s) {', '.join(unknown)} for a {node.type} step; allowed: {', '.join(sorted(ALLOWED_INPUTS[node.type]))}", file, node.name, code="unknown_input")
        if node.loop:
            if node.is_leaf:
                self.problem("a loop needs a sub-workflow (hints: loop on a workflow step)", file, node.name, code="bad_loop")
            else:
                junctions = [n for n in node.sub_workflow.nodes if n.type == "junction"]
                if not junctions:
                    self.problem("loop body has no junction step to decide whether to continue", node.sub_workflow.source_file, node.name, code="bad_loop")
                reserved = RESERVED_LOOP_PARAMS & set(node.sub_workflow.inputs)
                if reserved:
                    self.problem(f"loop parameter {shown(sorted(reserved)[0])} is reserved (%{{i}} is the iteration number)", node.sub_workflow.source_file, node.name, code="bad_loop")
        if node.scatter:
            if node.scatter_method not in ("dotproduct", "zip"):
                self.problem(f"scatterMethod {shown(node.scatter_method)} is not supported; use dotproduct", file, node.name, code="bad_scatter")
            node.scatter_method = "dotproduct"
            for name in node.scatter:
                inp = node.inputs.get(name)
                if inp is None:
                    self.problem(f"scatter over {shown(name)}, which is not an input of the step", file, node.name, code="bad_scatter")
                elif any(p is not None for p in inp.parents):
                    self.problem(f"scatter over {shown(name)}, which comes from a step output; scatter needs a list of values from the workflow inputs", file, node.name, code="bad_scatter")
        if step.when is not None:
            try:
                cond = parse_condition(step.when)
            except ConditionSyntaxError as exc:
                self.problem(f"bad condition: {exc}", file, node.name, code="bad_condition")
                return
            node.condition = self._resolve_condition(cond, node)

    def _resolve_condition(self, cond: Condition, node: Node) -> Condition | None:
        ok = True
        for leaf in cond.leaves():
            inp = node.inputs.get(leaf.param)
            if inp is None:
                self.problem(f"condition refers to self.{leaf.param}, which is not an input of the step", node.source_file, node.name, code="bad_condition")
                ok = False
                continue
            parent_ids = [p for p in inp.parents if p is not None]
            if leaf.index is not None:
                parent_ids = parent_ids[leaf.index : leaf.index + 1]
            if not parent_ids:
                self.problem(f"condition self.{leaf.param} needs that input to come from another step's output", node.source_file, node.name, code="bad_condition")
                ok = False
                continue
            leaf.parents = parent_ids
        return cond if ok else None


def build_workflow(raw: RawWorkflow) -> tuple[Workflow, list[Problem]]:
    """Checked model and warnings, or WorkflowError listing every problem found."""
    builder = _Builder()
    workflow = builder.body(raw, None)
    if builder.problems:
        raise WorkflowError(builder.problems)
    return workflow, builder.warnings
