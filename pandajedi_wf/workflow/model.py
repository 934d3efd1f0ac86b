"""The parsed form of a pchain workflow: a DAG of nodes, stored as JSON in the DB.

One ``Workflow`` per description file: its declared inputs (with the values the
user gave), its outputs and its nodes in topological order.  A node of type
``workflow`` carries its own ``Workflow`` (the sub-workflow body), so nesting is
plain recursion.  Scatter and loops are kept as declarations, not expanded: the
engine expands them per instance because their width and parameters can change
from one loop iteration to the next.

Node ids are unique in the whole tree and numbered like upstream PanDA: depth
first in topological order, a sub-workflow node numbered right after its body.
They give the ``NNN`` in task and dataset names ``<outDS>_<NNN>_<step>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

LEAF_TYPES = ("prun", "phpo", "junction", "reana", "gitlab")
WORKFLOW_TYPE = "workflow"
NODE_TYPES = LEAF_TYPES + (WORKFLOW_TYPE,)

# condition kinds: a leaf tests the parents feeding one input; the others combine
COND_SUCCEEDED = "succeeded"  # self.x   : the parent(s) of input x succeeded
COND_FAILED = "failed"  # !self.x  : the parent(s) of input x failed
COND_NOT = "not"  # !( ... )
COND_AND = "and"
COND_OR = "or"
CONDITION_KINDS = (COND_SUCCEEDED, COND_FAILED, COND_NOT, COND_AND, COND_OR)


@dataclass
class Condition:
    """A ``when`` expression as a tree; leaves name a step input and the parent nodes behind it."""

    kind: str
    param: str | None = None
    index: int | None = None
    parents: list[int] = field(default_factory=list)
    args: list["Condition"] = field(default_factory=list)

    def parent_ids(self) -> set[int]:
        found = set(self.parents)
        for arg in self.args:
            found |= arg.parent_ids()
        return found

    def leaves(self) -> Iterator["Condition"]:
        if self.kind in (COND_SUCCEEDED, COND_FAILED):
            yield self
        for arg in self.args:
            yield from arg.leaves()

    def __str__(self) -> str:
        if self.kind in (COND_SUCCEEDED, COND_FAILED):
            ref = f"self.{self.param}" + (f"[{self.index}]" if self.index is not None else "")
            return ref if self.kind == COND_SUCCEEDED else f"!{ref}"
        if self.kind == COND_NOT:
            return f"!({self.args[0]})"
        joiner = " && " if self.kind == COND_AND else " || "
        return "(" + joiner.join(str(a) for a in self.args) + ")"

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind}
        if self.param is not None:
            out["param"] = self.param
        if self.index is not None:
            out["index"] = self.index
        if self.parents:
            out["parents"] = list(self.parents)
        if self.args:
            out["args"] = [a.to_dict() for a in self.args]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Condition":
        return cls(
            kind=data["kind"],
            param=data.get("param"),
            index=data.get("index"),
            parents=list(data.get("parents", [])),
            args=[cls.from_dict(a) for a in data.get("args", [])],
        )


@dataclass
class StepInput:
    """One input of a step: literal ``default`` and/or references in ``sources``.

    A source is either ``"<step>/<port>"`` (output of a sibling step, whose id is
    in ``parents`` at the same position) or the name of an input of the enclosing
    workflow (``None`` in ``parents``).  ``is_list`` keeps whether the user wrote a
    list, since a single dataset and a one-element list build different task params.
    """

    name: str
    sources: list[str] = field(default_factory=list)
    default: Any = None
    is_list: bool = False
    parents: list[int | None] = field(default_factory=list)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"name": self.name}
        if self.sources:
            out["sources"] = list(self.sources)
            out["parents"] = list(self.parents)
        if self.default is not None:
            out["default"] = self.default
        if self.is_list:
            out["is_list"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "StepInput":
        return cls(
            name=data["name"],
            sources=list(data.get("sources", [])),
            default=data.get("default"),
            is_list=bool(data.get("is_list", False)),
            parents=list(data.get("parents", [])),
        )


@dataclass
class Node:
    """One step of a workflow (a JEDI task) or a sub-workflow (``type == "workflow"``)."""

    id: int
    name: str
    type: str
    inputs: dict[str, StepInput] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=lambda: ["outDS"])
    output_types: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    condition: Condition | None = None
    loop: bool = False
    scatter: list[str] = field(default_factory=list)
    scatter_method: str = "dotproduct"
    sub_workflow: "Workflow | None" = None
    is_tail: bool = False
    source_file: str | None = None

    @property
    def is_leaf(self) -> bool:
        return self.type != WORKFLOW_TYPE

    def template_params(self) -> dict[str, Any]:
        """The literal ``opt_*`` values of the step (exec, args, containerImage, ...)."""
        return {k: v.default for k, v in self.inputs.items() if not v.sources and v.default is not None}

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "inputs": [i.to_dict() for i in self.inputs.values()],
            "outputs": list(self.outputs),
            "output_types": list(self.output_types),
            "parents": list(self.parents),
        }
        if self.condition is not None:
            out["condition"] = self.condition.to_dict()
        if self.loop:
            out["loop"] = True
        if self.scatter:
            out["scatter"] = list(self.scatter)
            out["scatter_method"] = self.scatter_method
        if self.sub_workflow is not None:
            out["sub_workflow"] = self.sub_workflow.to_dict()
        if self.is_tail:
            out["is_tail"] = True
        if self.source_file:
            out["source_file"] = self.source_file
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Node":
        inputs = [StepInput.from_dict(i) for i in data.get("inputs", [])]
        return cls(
            id=int(data["id"]),
            name=data["name"],
            type=data["type"],
            inputs={i.name: i for i in inputs},
            outputs=list(data.get("outputs", ["outDS"])),
            output_types=list(data.get("output_types", [])),
            parents=[int(p) for p in data.get("parents", [])],
            condition=Condition.from_dict(data["condition"]) if data.get("condition") else None,
            loop=bool(data.get("loop", False)),
            scatter=list(data.get("scatter", [])),
            scatter_method=data.get("scatter_method", "dotproduct"),
            sub_workflow=Workflow.from_dict(data["sub_workflow"]) if data.get("sub_workflow") else None,
            is_tail=bool(data.get("is_tail", False)),
            source_file=data.get("source_file"),
        )


@dataclass
class Workflow:
    """A workflow body: declared inputs (name -> value or default), outputs and nodes."""

    name: str
    language: str
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    source_file: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"workflow {self.name!r} has no step {name!r}")

    def walk(self) -> Iterator[Node]:
        """Every node of the tree, sub-workflow bodies included (body before its node)."""
        for node in self.nodes:
            if node.sub_workflow is not None:
                yield from node.sub_workflow.walk()
            yield node

    def by_id(self) -> dict[int, Node]:
        return {n.id: n for n in self.walk()}

    def loop_params(self) -> dict[str, Any]:
        """Inputs named ``param_*``: the variables a loop junction may update."""
        return {k: v for k, v in self.inputs.items() if k.startswith("param_")}

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "name": self.name,
            "language": self.language,
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
            "nodes": [n.to_dict() for n in self.nodes],
        }
        if self.source_file:
            out["source_file"] = self.source_file
        if self.options:
            out["options"] = dict(self.options)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Workflow":
        return cls(
            name=data["name"],
            language=data["language"],
            inputs=dict(data.get("inputs", {})),
            outputs=dict(data.get("outputs", {})),
            nodes=[Node.from_dict(n) for n in data.get("nodes", [])],
            source_file=data.get("source_file"),
            options=dict(data.get("options", {})),
        )
