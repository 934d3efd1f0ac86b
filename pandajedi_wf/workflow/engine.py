"""What to do next for one workflow: a pure function of the parsed workflow and its step rows.

``next_actions(workflow, steps, context)`` walks the workflow in topological order,
expands scatter and loop instances as their inputs become known, and returns the
actions the DB processor must apply.  Within one call it applies its own actions to
a private view of the statuses, so a chain advances as far as it can in one cycle
(create -> ready -> submit); called again on the state after those actions were
applied it returns nothing new: work is never duplicated.

Step instances are keyed by ``node_key``: path segments ``NNN`` (node id), plus
``s<k>`` for the k-th scatter instance, plus ``i<n>/`` before the body of loop
iteration n; e.g. ``004s1i2/001`` is node 1 in iteration 2 of the second scattered
copy of loop node 4.

A failed step is *handled* when the workflow planned for its failure: a step whose condition
fires on that failure (``!self.x``, also inside ``&&``/``||`` or under a negation) ended with
output, and every step that reads the failed one conditions on it (so none was skipped for lack
of input).  A handled failure counts like a branch not taken when the workflow's (or a body's)
final status is decided: cond.cwl whose ``top`` fails and whose ``bottom_NG`` succeeds ends
``done``, as the user wrote it to.  A user-cancelled step is never counted as handled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..core import jedi_statuses
from .build import Limits
from .conditions import evaluate
from .errors import StepDefinitionError, clip
from .lifecycles import STEP_ACTIVE, STEP_ENDED, step_outcome
from .model import COND_FAILED, COND_NOT, COND_SUCCEEDED, Condition, Node, Workflow
from .naming import task_name


@dataclass(slots=True)
class StepRecord:
    """The engine's view of one step row."""

    node_key: str
    node_id: int
    status: str
    iteration: int = 0
    scatter_index: int | None = None
    task_id: int | None = None
    jedi_status: str | None = None
    outputs: list[str] = field(default_factory=list)
    results: dict | None = None  # a junction's results.json
    generation: int = 0  # how many times a user command made this step a new JEDI task


@dataclass(frozen=True)
class DatasetRef:
    """Output of a step instance: its task name and the file types it writes."""

    task_name: str
    output_types: tuple[str, ...] = ()


@dataclass
class StepSpec:
    """Everything needed to build the JEDI task of one step instance (see taskparams)."""

    node_key: str
    node_id: int
    name: str
    type: str
    task_name: str
    inputs: dict[str, Any]  # opt_* name -> literal, DatasetRef or list of them
    placeholders: dict[str, Any]  # %{name} -> value (workflow inputs, loop params, i)
    parent_task_name: str | None = None  # set when the step may read a running parent (noWaitParent)
    is_workflow_output: bool = False
    output_types: tuple[str, ...] = ()
    allow_empty_input: bool = False  # it may read the empty output of a failed or skipped parent (allowEmptyInput)


@dataclass
class RunContext:
    out_ds: str
    user_name: str = ""
    vo: str = "atlas"
    workflow_id: int | None = None
    workflow_status: str = "running"
    task_templates: dict | None = None
    prod_source_label: str = "user"
    no_wait_parent: bool = True
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class CreateStep:
    node_key: str
    node_id: int
    name: str
    type: str
    iteration: int
    scatter_index: int | None
    parents: tuple[str, ...]
    container: str | None  # key of the enclosing sub-workflow instance
    task_name: str | None


@dataclass(frozen=True)
class MakeReady:
    node_key: str
    reason: str


@dataclass(frozen=True)
class Skip:
    node_key: str
    reason: str


@dataclass(frozen=True)
class SubmitStep:
    node_key: str
    task_name: str
    spec: StepSpec = field(compare=False)
    task_params: dict | None = field(default=None, compare=False)


@dataclass(frozen=True)
class SetStepStatus:
    """Status of a sub-workflow or loop instance, derived from its body."""

    node_key: str
    status: str
    reason: str


@dataclass(frozen=True)
class CancelStep:
    node_key: str
    reason: str


@dataclass(frozen=True)
class SetWorkflowStatus:
    status: str
    reason: str


Action = CreateStep | MakeReady | Skip | SubmitStep | SetStepStatus | CancelStep | SetWorkflowStatus


def aggregate_status(statuses: list[str]) -> str:
    """Status of a finished group: done if all done/skipped, finished if some output, else failed.

    The engine passes a handled failure (see the module docstring) as ``skipped``."""
    if all(s in ("done", "skipped") for s in statuses):
        return "done"
    if any(s in ("done", "finished") for s in statuses):
        return "finished"
    return "failed"


def failure_triggers(cond: Condition, negated: bool = False) -> set[int]:
    """Parent ids whose failure can make ``cond`` true: ``!self.x`` leaves, and ``self.x`` leaves under a negation."""
    if cond.kind == COND_FAILED:
        return set() if negated else set(cond.parents)
    if cond.kind == COND_SUCCEEDED:
        return set(cond.parents) if negated else set()
    flip = not negated if cond.kind == COND_NOT else negated
    found: set[int] = set()
    for arg in cond.args:
        found |= failure_triggers(arg, flip)
    return found


@dataclass
class _Scope:
    """One body instance being walked: the top workflow, a sub-workflow copy or a loop iteration."""

    workflow: Workflow
    prefix: str
    values: dict[str, Any]
    scatter_path: tuple[int, ...]
    iterations: tuple[int, ...]
    container: str | None
    keys: dict[int, list[str]] = field(default_factory=dict)  # node id -> instance keys


@dataclass(frozen=True)
class _Index:
    """What the walk needs to know about a definition that never changes: computed once per parsed workflow
    (the processor keeps its parsed definitions), not once per walk."""

    nodes_by_id: dict[int, Node]  # node ids are unique in the whole tree
    consumed: frozenset[int]  # nodes some other node reads
    cond_parents: dict[int, frozenset[int]]  # node id -> parents its condition names
    early_parents: dict[int, int]  # node id -> the parent whose partial output it may read (noWaitParent)
    tags: dict[int, str]  # node id -> its segment of a node key ("004")
    # node id -> its one parent, for a node without scatter or condition whose readiness is that parent's outcome
    # alone: while the parent has none, the node has nothing to decide (the walk passes it without a call)
    waits_on: dict[int, int]
    waits_on_no_early: dict[int, int]  # the same without the nodes that may start early (noWaitParent)

    @classmethod
    def of(cls, workflow: Workflow) -> "_Index":
        found = workflow.__dict__.get("_engine_index")
        if found is None:
            nodes = list(workflow.walk())
            by_id = {n.id: n for n in nodes}
            early = {}
            for body in [workflow, *(n.sub_workflow for n in nodes if n.sub_workflow is not None)]:
                for n in body.nodes:
                    parent = _early_parent(n, body, by_id)
                    if parent is not None:
                        early[n.id] = parent
            found = cls(
                tags={n.id: f"{n.id:03d}" for n in nodes},
                early_parents=early,
                nodes_by_id=by_id,
                consumed=frozenset(p for n in nodes for p in n.parents),
                cond_parents={n.id: frozenset(n.condition.parent_ids()) if n.condition else frozenset() for n in nodes},
                waits_on=(waits := {n.id: n.parents[0] for n in nodes if not n.scatter and n.condition is None and len(n.parents) == 1}),
                waits_on_no_early={k: p for k, p in waits.items() if k not in early},
            )
            workflow.__dict__["_engine_index"] = found
        return found


def _walk_rows(body: Workflow, tags: dict[int, str]) -> tuple[tuple, bool]:
    """A body's nodes as the walk reads them, (node, id, key segment, scattered, leaf), and whether any is scattered:
    made once per parsed body (the walk visits every node of every workflow of every pass)."""
    found = body.__dict__.get("_walk_rows")
    if found is None:
        rows = tuple((n, n.id, tags[n.id], bool(n.scatter), n.is_leaf) for n in body.nodes)
        found = body.__dict__["_walk_rows"] = (rows, any(r[3] for r in rows))
    return found


def _early_parent(node: Node, body: Workflow, by_id: dict[int, Node]) -> int | None:
    """The parent whose partial output ``node`` may read while it runs (JEDI's noWaitParent), by the definition."""
    if node.condition is not None or node.type not in ("prun", "phpo") or len(node.parents) != 1:
        return None
    parent = by_id[node.parents[0]]
    if not parent.is_leaf or parent.scatter or body.options.get("allow_partial_inputs") is False:
        return None
    # only a parent feeding the primary input: JEDI streams a growing primary input file by file, but builds
    # jobs from a secondary input as it is when the task is defined
    primary = node.inputs.get("opt_inDS")
    if primary is None or parent.id not in primary.parents:
        return None
    return parent.id


class _Walk:
    def __init__(self, workflow: Workflow, steps: Mapping[str, StepRecord], ctx: RunContext, statuses: Mapping[str, str] | None = None):
        self.workflow = workflow
        self.records = steps
        self.ctx = ctx
        self.status = dict(statuses) if statuses is not None else {k: r.status for k, r in steps.items()}
        self.actions: list[Action] = []
        index = _Index.of(workflow)
        self.consumed = index.consumed
        self.nodes_by_id = index.nodes_by_id
        self.cond_parents = index.cond_parents
        self.early_parents = index.early_parents
        self.tags = index.tags
        self.waits_on = index.waits_on_no_early if ctx.no_wait_parent else index.waits_on
        self.mode = ctx.workflow_status
        self.empty: dict[tuple[str, int], bool] = {}  # may_be_empty of ended nodes, per body instance

    # ---- emitting ----------------------------------------------------------
    def emit(self, action: Action, key: str | None = None, status: str | None = None) -> None:
        self.actions.append(action)
        if key is not None and status is not None:
            self.status[key] = status

    # ---- scopes ------------------------------------------------------------
    def scope(self, scope: _Scope) -> list[str]:
        """Walk one body; return the statuses of its instances ([] entries mean not all known).

        Raises ``_ScatterTooWide`` before anything of the body is created when one of its scatters would be
        wider than ``max_scatter`` (widths depend only on the body's values, known when it opens)."""
        rows, scattered_body = _walk_rows(scope.workflow, self.tags)
        if scattered_body:
            for node in scope.workflow.nodes:
                if node.scatter:
                    width = self.scatter_width(node, scope, capped=False)
                    if width > self.ctx.limits.max_scatter:
                        names = ", ".join(node.scatter)
                        raise _ScatterTooWide(f"scatter of step {node.name!r} over {names} would make {width} copies; the limit is {self.ctx.limits.max_scatter}")
        statuses: list[str] = []
        status_of, prefix, waits_on, keys_of = self.status, scope.prefix, self.waits_on, scope.keys
        for node, node_id, tag, scattered, leaf in rows:
            if scattered:
                keys = keys_of[node_id] = self.instances(node, scope)
                for index, key in enumerate(keys):
                    self.step(node, key, index, scope)
                    statuses.append(status_of.get(key, "defined"))
                continue
            key = prefix + tag
            keys_of[node_id] = [key]
            status = status_of.get(key)
            if status == "defined" and (parent := waits_on.get(node_id)) is not None:
                parent_keys = keys_of.get(parent)
                if parent_keys is not None and len(parent_keys) == 1 and _OUTCOME.get(status_of.get(parent_keys[0])) is None:
                    statuses.append(status)  # (what ``decide`` finds: its one parent has not ended, nothing to decide)
                    continue
            if status in _UNDECIDED or not leaf:  # (a task step past 'ready' has nothing to decide: most steps of a pass)
                self.step(node, key, None, scope)
                status = status_of.get(key, "defined")
            statuses.append(status)
        return statuses

    def instances(self, node: Node, scope: _Scope) -> list[str]:
        base = scope.prefix + self.tags[node.id]
        if not node.scatter:
            return [base]
        width = self.scatter_width(node, scope)
        return [f"{base}s{k}" for k in range(width)]

    def scatter_width(self, node: Node, scope: _Scope, capped: bool = True) -> int:
        """Copies of a scattered node: the shortest of its scattered lists (a single value counts as one). A walked
        body never holds a wider one (``scope`` refuses it); ``capped`` only bounds what naming a refused body's
        outputs costs."""
        lengths = []
        for name in node.scatter:
            value = self.input_value(node.inputs[name], scope)
            lengths.append(len(value) if isinstance(value, list) else 1)
        width = min(lengths) if lengths else 0
        return min(width, self.ctx.limits.max_scatter) if capped else width

    # ---- one instance ------------------------------------------------------
    def step(self, node: Node, key: str, scatter_index: int | None, scope: _Scope) -> None:
        if key not in self.status:
            parents = tuple(k for p in node.parents for k in scope.keys.get(p, []))
            iteration = scope.iterations[-1] if scope.iterations else 0
            name = self.task_name(node, scope, scatter_index) if node.is_leaf else None
            self.emit(CreateStep(key, node.id, node.name, node.type, iteration, scatter_index, parents, scope.container, name), key, "defined")
        status = self.status[key]
        if status == "defined":
            self.decide(node, key, scope)
            status = self.status[key]
        if status == "ready":
            if self.mode == "finishing":
                self.emit(Skip(key, "workflow is finishing"), key, "skipped")
            elif node.is_leaf:
                if self.mode in ("running", "parsed"):
                    spec, params = self.submission(node, key, scatter_index, scope)
                    self.emit(SubmitStep(key, spec.task_name, spec, params), key, "submitting")
            else:
                self.emit(SetStepStatus(key, "running", "parents satisfied; body opened"), key, "running")
        if self.status[key] == "running" and not node.is_leaf:
            self.body(node, key, scatter_index, scope)

    def decide(self, node: Node, key: str, scope: _Scope) -> None:
        """defined -> ready / skipped, from parents' outcomes and the condition."""
        if node.condition is None and len(node.parents) == 1 and not (self.ctx.no_wait_parent and node.id in self.early_parents):
            if self.node_outcome(node.parents[0], scope) is None:
                return  # the one parent has not ended and is not streamed to this step: nothing to decide yet
        outcomes = {p: self.node_outcome(p, scope) for p in node.parents}
        cond_parents = self.cond_parents[node.id]
        for pid, outcome in outcomes.items():
            if pid not in cond_parents and outcome in ("failed", "skipped"):
                name = self.nodes_by_id[pid].name
                self.emit(Skip(key, f"parent {name!r} {'failed' if outcome == 'failed' else 'was skipped'}"), key, "skipped")
                return
        if node.condition is not None:
            verdict = evaluate(node.condition, lambda pid: outcomes.get(pid))
            if verdict is False:
                self.emit(Skip(key, f"condition {node.condition} is false"), key, "skipped")
                return
            # a true condition does not start the step while a parent it reads is running or held for a retry:
            # `self.a || self.b` is true once b succeeded, but the step reads a's output too (no noWaitParent here)
            if verdict is None or any(outcomes[p] is None for p in node.parents):
                return
            self.emit(MakeReady(key, f"condition {node.condition} is true"), key, "ready")
            return
        if all(o == "succeeded" for o in outcomes.values()):
            self.emit(MakeReady(key, "parents succeeded" if node.parents else "no parents"), key, "ready")
            return
        parent = self.early_parent(node, scope)
        if parent is not None and self.status.get(parent) in ("submitted", "running"):
            self.emit(MakeReady(key, f"parent {parent} running; reads its outputs as they come (noWaitParent)"), key, "ready")

    def early_parent(self, node: Node, scope: _Scope) -> str | None:
        """Key of the one running parent whose partial output this step may consume, if allowed."""
        if not self.ctx.no_wait_parent:
            return None
        parent_id = self.early_parents.get(node.id)
        return None if parent_id is None else scope.keys[parent_id][0]

    def node_outcome(self, node_id: int, scope: _Scope) -> str | None:
        keys = scope.keys.get(node_id)
        if keys is not None and len(keys) == 1:  # the common case: neither scattered nor missing
            return _OUTCOME.get(self.status.get(keys[0]))
        outcomes = [_OUTCOME.get(self.status.get(k)) for k in keys or []]
        if not outcomes:
            return "skipped"
        if any(o is None for o in outcomes):
            return None
        if all(o == "succeeded" for o in outcomes):
            return "succeeded"
        return "failed" if "failed" in outcomes else "skipped"

    # ---- sub-workflows and loops ------------------------------------------
    def body_values(self, node: Node, scope: _Scope, scatter_index: int | None) -> dict[str, Any]:
        values = dict(node.sub_workflow.inputs)
        for inp in node.inputs.values():
            value = self.input_value(inp, scope)
            if scatter_index is not None and inp.name in node.scatter and isinstance(value, list):
                value = value[scatter_index]
            values[inp.name] = value
        return values

    def body(self, node: Node, key: str, scatter_index: int | None, scope: _Scope) -> None:
        values = self.body_values(node, scope, scatter_index)
        path = scope.scatter_path + ((scatter_index,) if scatter_index is not None else ())
        if not node.loop:
            sub = _Scope(node.sub_workflow, f"{key}/", values, path, scope.iterations, key)
            try:
                statuses = self.scope(sub)
            except _ScatterTooWide as exc:
                self.emit(SetStepStatus(key, "failed", str(exc)), key, "failed")
                return
            if all(s in STEP_ENDED for s in statuses):
                status = self.body_status(sub)
                self.emit(SetStepStatus(key, status, "body ended"), key, status)
            return
        params = {k: v for k, v in values.items() if k.startswith("param_")}
        iteration = 1
        while True:
            sub_values = dict(values) | params
            sub = _Scope(node.sub_workflow, f"{key}i{iteration}/", sub_values, path, scope.iterations + (iteration,), key)
            try:
                statuses = self.scope(sub)
            except _ScatterTooWide as exc:
                self.emit(SetStepStatus(key, "failed", f"iteration {iteration}: {exc}"), key, "failed")
                return
            if not all(s in STEP_ENDED for s in statuses):
                return
            status = self.body_status(sub)
            results = self.junction_results(node, sub)
            if status == "failed":
                self.emit(SetStepStatus(key, "failed", f"iteration {iteration} failed"), key, "failed")
                return
            if not (results or {}).get("to_continue"):
                self.emit(SetStepStatus(key, status, f"junction ended the loop after iteration {iteration}"), key, status)
                return
            if iteration >= self.ctx.limits.max_iterations:
                self.emit(SetStepStatus(key, "finished", f"loop stopped at the cap of {iteration} iterations"), key, "finished")
                return
            if self.mode == "finishing":
                self.emit(SetStepStatus(key, "finished", f"workflow finishing; loop stopped after iteration {iteration}"), key, "finished")
                return
            for name, value in results.items():
                target = name if name.startswith("param_") else f"param_{name}"
                if target in params:
                    params[target] = value
            iteration += 1

    def body_status(self, sub: _Scope) -> str:
        """A body without output from its tail steps failed, whatever else it did."""
        status = aggregate_status(self.settled(sub))
        if status == "done":
            return status
        tails = self.tails(sub.workflow)
        if all(self.node_outcome(t.id, sub) == "succeeded" for t in tails):
            return status
        return "failed"

    # ---- handled failures ---------------------------------------------------
    def handled_failures(self, scope: _Scope) -> dict[int, str]:
        """Failed nodes of a walked body whose failure a condition branch handled -> name of the handling step."""
        handled: dict[int, str] = {}
        for node in scope.workflow.nodes:
            if self.node_outcome(node.id, scope) != "failed":
                continue
            readers = [n for n in scope.workflow.nodes if node.id in n.parents]
            if not readers or any(r.condition is None or node.id not in r.condition.parent_ids() for r in readers):
                continue
            handler = next((r for r in readers if node.id in failure_triggers(r.condition) and self.node_outcome(r.id, scope) == "succeeded"), None)
            if handler is not None:
                handled[node.id] = handler.name
        return handled

    def settled(self, scope: _Scope) -> list[str]:
        """Statuses of a walked body's instances for its final verdict: a handled failure counts as skipped."""
        handled = self.handled_failures(scope)
        out = []
        for node in scope.workflow.nodes:
            for key in scope.keys.get(node.id, []):
                status = self.status.get(key, "defined")
                out.append("skipped" if status == "failed" and node.id in handled else status)
        return out

    def may_be_empty(self, node_id: int, scope: _Scope) -> bool:
        """Whether a node's output may legitimately be empty: it failed or was skipped (a step runs after that only
        through its condition), or it ran on input that may have been empty.  A running node (a noWaitParent
        parent) is not: JEDI holds its child until it writes files."""
        outcome = self.node_outcome(node_id, scope)
        if outcome is None:
            return False
        if outcome != "succeeded":
            return True
        if (scope.prefix, node_id) not in self.empty:
            node = self.nodes_by_id[node_id]
            self.empty[(scope.prefix, node_id)] = any(self.may_be_empty(p, scope) for p in node.parents)
        return self.empty[(scope.prefix, node_id)]

    def junction_results(self, node: Node, sub: _Scope) -> dict | None:
        for child in node.sub_workflow.nodes:
            if child.type == "junction":
                record = self.records.get(sub.keys[child.id][0]) if sub.keys.get(child.id) else None
                return record.results if record else None
        return None

    # ---- values -----------------------------------------------------------
    def input_value(self, inp, scope: _Scope) -> Any:
        if not inp.sources:
            return inp.default
        values = []
        for src, parent in zip(inp.sources, inp.parents or [None] * len(inp.sources)):
            if parent is not None:
                refs = self.outputs_of(parent, scope)
                values.append(refs[0] if len(refs) == 1 else refs)
            else:
                values.append(scope.values.get(src))
        if inp.is_list:
            flat = []
            for v in values:
                flat.extend(v if isinstance(v, list) else [v])
            return flat
        return values[0]

    def outputs_of(self, node_id: int, scope: _Scope) -> list[DatasetRef]:
        node = self.nodes_by_id[node_id]
        keys = scope.keys.get(node_id) or self.instances(node, scope)
        refs: list[DatasetRef] = []
        for index, key in enumerate(keys):
            scatter_index = index if node.scatter else None
            if node.is_leaf:
                refs.append(DatasetRef(self.task_name(node, scope, scatter_index), tuple(node.output_types)))
                continue
            body = node.sub_workflow
            path = scope.scatter_path + ((scatter_index,) if scatter_index is not None else ())
            if node.loop:
                last = self.last_iteration(key)
                sub = _Scope(body, f"{key}i{last}/", {}, path, scope.iterations + (last,), key)
            else:
                sub = _Scope(body, f"{key}/", {}, path, scope.iterations, key)
            sub.values = self.body_values(node, scope, scatter_index)
            for tail in self.tails(body):
                sub.keys[tail.id] = self.instances(tail, sub)
                refs.extend(self.outputs_of(tail.id, sub))
        return refs

    def last_iteration(self, key: str) -> int:
        marker = f"{key}i"
        found = [int(k[len(marker) :].split("/", 1)[0]) for k in self.status if k.startswith(marker) and k[len(marker) :].split("/", 1)[0].isdigit()]
        return max(found, default=1)

    @staticmethod
    def tails(body: Workflow) -> list[Node]:
        ref = next(iter(body.outputs.values()), "")
        name = ref.split("/", 1)[0] if isinstance(ref, str) else ""
        named = [n for n in body.nodes if n.name == name]
        if named:
            return named
        used = {p for n in body.nodes for p in n.parents}
        return [n for n in body.nodes if n.id not in used]

    def task_name(self, node: Node, scope: _Scope, scatter_index: int | None) -> str:
        path = scope.scatter_path + ((scatter_index,) if scatter_index is not None else ())
        key = f"{scope.prefix}{node.id:03d}" + (f"s{scatter_index}" if scatter_index is not None else "")
        record = self.records.get(key)
        return task_name(self.ctx.out_ds, node.id, node.name, path, scope.iterations, record.generation if record else 0)

    def spec(self, node: Node, key: str, scatter_index: int | None, scope: _Scope) -> StepSpec:
        inputs = {}
        for inp in node.inputs.values():
            value = self.input_value(inp, scope)
            if scatter_index is not None and inp.name in node.scatter and isinstance(value, list):
                value = value[scatter_index]
            inputs[inp.name] = value
        placeholders: dict[str, Any] = {}
        for name, value in scope.values.items():
            if isinstance(value, (DatasetRef, list)) and any(isinstance(v, DatasetRef) for v in (value if isinstance(value, list) else [value])):
                continue
            placeholders[name[len("param_") :] if name.startswith("param_") else name] = value
        if scope.iterations:
            placeholders["i"] = scope.iterations[-1]
        parent_key = self.early_parent(node, scope)
        parent_name = None
        if parent_key is not None:
            parent = self.nodes_by_id[node.parents[0]]
            parent_name = self.task_name(parent, scope, None)
        return StepSpec(
            node_key=key,
            node_id=node.id,
            name=node.name,
            type=node.type,
            task_name=self.task_name(node, scope, scatter_index),
            inputs=inputs,
            placeholders=placeholders,
            parent_task_name=parent_name,
            is_workflow_output=node.id not in self.consumed,
            output_types=tuple(node.output_types),
            allow_empty_input=any(self.may_be_empty(p, scope) for p in node.parents),
        )

    def submission(self, node: Node, key: str, scatter_index: int | None, scope: _Scope) -> tuple[StepSpec, dict | None]:
        """The step spec and task parameters of one instance; ``StepDefinitionError`` when its definition cannot
        make a JEDI task (a value of the wrong type that intake could not see, e.g. a junction's loop parameter)."""
        try:
            spec = self.spec(node, key, scatter_index, scope)
            return spec, self.task_params(spec)
        except StepDefinitionError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError) as exc:
            raise StepDefinitionError(
                f"step {node.name!r} ({key}) cannot be made into a JEDI task: {type(exc).__name__}: {clip(str(exc), 200)}", node.name, node.source_file
            ) from exc

    def task_params(self, spec: StepSpec) -> dict | None:
        if self.ctx.task_templates is None:
            return None
        from .taskparams import build_task_params

        return build_task_params(spec, self.ctx)


def next_actions(workflow: Workflow, steps: Mapping[str, StepRecord], context: RunContext | None = None,
                 statuses: Mapping[str, str] | None = None) -> list[Action]:
    """Actions that move ``workflow`` forward given its step rows ``steps`` (keyed by node_key).

    ``statuses``: every step's status (``steps[key].status``) given apart, when the caller has them without the
    records: the walk reads every status, but a record only to name a step's task or read a junction's results, so
    ``steps`` may then make its records as they are asked for."""
    ctx = context or RunContext(out_ds=f"user.unknown.{workflow.name}")
    if ctx.workflow_status in ("done", "finished", "failed", "cancelled", "registered"):
        return []
    if ctx.workflow_status == "cancelling":
        return _cancel(steps)
    if not workflow.nodes:  # intake refuses it; one stored before would otherwise stay running for ever
        return _unrunnable(ctx, "workflow has no steps")
    walk = _Walk(workflow, steps, ctx, statuses)
    top = _Scope(workflow, "", dict(workflow.inputs), (), (), None)
    try:
        statuses = walk.scope(top)
    except _ScatterTooWide as exc:  # intake refuses it too; nothing of the workflow was created
        return _unrunnable(ctx, str(exc))
    if ctx.workflow_status == "parsed":
        walk.actions.insert(0, SetWorkflowStatus("running", "steps defined"))
    if all(s in STEP_ENDED for s in statuses):
        final = aggregate_status(walk.settled(top))
        if ctx.workflow_status == "finishing" and final == "done" and "skipped" in statuses:
            final = "finished"
        reason = _ended_reason(workflow, top)
        handled = walk.handled_failures(top)
        if handled:
            names = {n.id: n.name for n in workflow.nodes}
            told = [f"failure of {names[f]!r} handled by {h!r}" for f, h in sorted(handled.items())]
            reason += "; " + ", ".join(told[:5]) + (f" and {len(told) - 5} more" if len(told) > 5 else "")
        walk.actions.append(SetWorkflowStatus(final, reason))
    return walk.actions


def _unrunnable(ctx: RunContext, reason: str) -> list[Action]:
    """A stored definition that cannot run at all ends failed (a paused one when it is resumed)."""
    return [SetWorkflowStatus("failed", reason)] if ctx.workflow_status in ("parsed", "running", "finishing") else []


def _ended_reason(workflow: Workflow, top: _Scope) -> str:
    """'all 3 top-level steps ended', counting steps of the definition (a scattered step once, with its copies
    said apart; a scatter over an empty list made none)."""
    count = len(workflow.nodes)
    copies = sum(len(top.keys.get(n.id, [])) for n in workflow.nodes if n.scatter)
    scattered = sum(1 for n in workflow.nodes if n.scatter)
    text = f"all {count} top-level step{'' if count == 1 else 's'} ended"
    if scattered:
        text += f" ({scattered} scattered into {copies} cop{'y' if copies == 1 else 'ies'})"
    return text


# a task step the walk still decides (new, waiting for its parents, or to be submitted); in any other status its
# task is JEDI's and ``step`` would do nothing with it
_UNDECIDED = frozenset({None, "defined", "ready"})
# step_outcome as a lookup (it is asked for every parent of every waiting step of every pass); None while not ended
_OUTCOME = {status: step_outcome(status) for status in STEP_ENDED}


class _ScatterTooWide(Exception):
    """A scatter wider than ``Limits.max_scatter``, found when its body opens (its width came from values known
    only then, e.g. a loop parameter a junction set)."""


def _cancel(steps: dict[str, StepRecord]) -> list[Action]:
    """Cancel every step; the workflow is cancelled only once no step's JEDI task can still run.

    A task submitted moments before the kill may not be in JEDI_Tasks yet (``jedi_status`` None), and JEDI refuses
    to kill what it does not know: the processor repeats the kill each cycle until the task is seen ended.
    """
    actions: list[Action] = []
    for key in sorted(steps):
        if steps[key].status not in STEP_ENDED:
            actions.append(CancelStep(key, "workflow cancelled" + (" (kill task)" if steps[key].status in STEP_ACTIVE else "")))
    alive = [k for k, r in steps.items() if r.task_id is not None and r.jedi_status not in jedi_statuses.ENDED]
    if not actions and not alive:
        actions.append(SetWorkflowStatus("cancelled", "all steps ended and their JEDI tasks with them"))
    return actions
