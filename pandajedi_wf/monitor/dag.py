"""A workflow's steps as a drawable DAG: scatter copies and loop iterations grouped into one node, sub-workflows,
scatters of sub-workflows and loops collapsible, edges between what is visible, and a left-to-right layout.

Pure (plain dicts in, plain dicts out): the page, the live updates and the tests read the same structure.

Node keys are written by the engine as ``/``-separated segments, one per nesting level; a segment is the definition
node's tag (``003``), a scatter copy adds ``s<k>`` and a loop iteration ``i<n>`` (``003s1i2/001``). Dropping those
suffixes gives the *template* (``003/001``): all copies of one definition node share it, and a template is one node
of the picture. A template with a body (``003`` above) is a container: closed, it is one node standing for its body;
open, its body is drawn inside a frame and edges into it go to the body's first steps, edges out of it leave from the
body's last steps. ``auto_open`` opens containers while the picture stays small, so 2,000 steps become a few dozen
nodes and a three-step chain is drawn as it is.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from pandajedi_wf.workflow.critical_path import template_of


NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 200, 64, 70, 22, 24

# the status a group of copies shows: the first of these its copies have (a failure or live work before calm ends)
AGGREGATE_ORDER = (
    "failed", "cancelling", "retrying", "running", "submitted", "submitting", "finishing", "paused", "ready", "defined",
    "registered", "parsed", "finished", "cancelled", "done", "skipped", "retired",
)
ENDED = frozenset({"done", "finished", "failed", "cancelled", "skipped", "retired"})


def aggregate_status(statuses: Iterable[str]) -> str:
    found = set(statuses)
    for status in AGGREGATE_ORDER:
        if status in found:
            return status
    return sorted(found)[0] if found else "defined"


def _prefixes(template: str) -> list[str]:
    parts = template.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


class _Graph:
    """Templates, their parents (as templates), and which templates are containers."""

    def __init__(self, steps: list[Mapping]):
        self.template = {s["node_key"]: template_of(s["node_key"]) for s in steps}
        self.templates = sorted(set(self.template.values()))
        self.containers = {p for t in self.templates for p in _prefixes(t)[:-1]}
        self.parents: dict[str, set[str]] = {t: set() for t in self.templates}
        for s in steps:
            t = self.template[s["node_key"]]
            for p in s.get("parents") or ():
                pt = self.template.get(p, template_of(p) if isinstance(p, str) else None)
                if pt and pt != t and pt in self.parents:
                    self.parents[t].add(pt)

    def body(self, container: str) -> list[str]:
        depth = container.count("/") + 1
        return [t for t in self.templates if t.startswith(container + "/") and t.count("/") == depth]

    def visible(self, template: str, opened: set[str]) -> str:
        for prefix in _prefixes(template):
            if prefix in self.containers and prefix not in opened:
                return prefix
        return template


def auto_open(steps: list[Mapping], budget: int = 60) -> set[str]:
    """Containers to open, outermost first, while the picture keeps at most ``budget`` nodes."""
    graph = _Graph(steps)
    opened: set[str] = set()
    for container in sorted(graph.containers, key=lambda c: (c.count("/"), c)):
        if any(p not in opened for p in _prefixes(container)[:-1]):
            continue
        trial = opened | {container}
        if len(_visible_nodes(graph, trial)) <= budget:
            opened = trial
    return opened


def _visible_nodes(graph: _Graph, opened: set[str]) -> set[str]:
    return {graph.visible(t, opened) for t in graph.templates} - opened


def build(steps: list[Mapping], opened: Iterable[str] | None = None, budget: int = 60, critical: Iterable[str] = ()) -> dict:
    """The picture: ``nodes`` (with their steps, counts and position), ``edges``, ``frames`` for open containers,
    and the ``step_node`` map the page uses to move a step's new status onto its node.

    ``critical`` names the steps (node keys) on the critical path: a node or frame holding one is marked critical,
    and so is an edge between two critical nodes. A node shows the condition of its step (as written) and why its
    skipped copies were skipped."""
    steps = list(steps)
    graph = _Graph(steps)
    opened_set = set(opened) if opened is not None else auto_open(steps, budget)
    opened_set &= graph.containers
    opened_set = {c for c in opened_set if all(p in opened_set for p in _prefixes(c)[:-1])}
    node_ids = sorted(_visible_nodes(graph, opened_set))

    def entry(t: str) -> set[str]:
        if t in opened_set:
            roots = [b for b in graph.body(t) if not (graph.parents[b] & set(graph.body(t)))]
            return set().union(*(entry(r) for r in roots)) if roots else set()
        return {graph.visible(t, opened_set)}

    def exit_(t: str) -> set[str]:
        if t in opened_set:
            body = graph.body(t)
            used = set().union(*(graph.parents[b] for b in body)) if body else set()
            tails = [b for b in body if b not in used]
            return set().union(*(exit_(x) for x in tails)) if tails else set()
        return {graph.visible(t, opened_set)}

    conditional = {graph.template[s["node_key"]] for s in steps if s.get("condition") or s.get("condition_text")}
    edges: dict[tuple[str, str], dict] = {}
    for t in graph.templates:
        for p in graph.parents[t]:
            for a in exit_(p):
                for b in entry(t):
                    if a != b and (a, b) not in edges:
                        edges[(a, b)] = {"source": a, "target": b, "conditional": t in conditional}

    members: dict[str, list[Mapping]] = {n: [] for n in node_ids}
    inner: dict[str, list[Mapping]] = {n: [] for n in node_ids}
    step_node: dict[int, str] = {}
    for s in steps:
        t = graph.template[s["node_key"]]
        v = graph.visible(t, opened_set)
        if v in opened_set:  # an open container's own step: shown on its frame
            continue
        step_node[int(s["step_id"])] = v
        (members if t == v else inner)[v].append(s)

    critical_keys = set(critical)
    critical_nodes = {step_node[int(s["step_id"])] for s in steps if s["node_key"] in critical_keys and int(s["step_id"]) in step_node}
    critical_frames = {graph.template[k] for k in critical_keys if k in graph.template} & opened_set
    for e in edges.values():
        e["critical"] = e["source"] in critical_nodes and e["target"] in critical_nodes

    layers = _layers(node_ids, edges)
    order = _bands(node_ids, _order(node_ids, edges, layers), layers, opened_set)
    nodes = []
    for n in node_ids:
        own = members[n]
        first = own[0] if own else (inner[n][0] if inner[n] else {})
        counts: dict[str, int] = {}
        for s in own:
            counts[s["status"]] = counts.get(s["status"], 0) + 1
        inner_counts: dict[str, int] = {}
        for s in inner[n]:
            inner_counts[s["status"]] = inner_counts.get(s["status"], 0) + 1
        single = own[0] if len(own) == 1 else None
        nodes.append({
            "id": n,
            "name": first.get("name") or n,
            "step_type": first.get("step_type"),
            "container": n in graph.containers,
            "status": aggregate_status(counts) if counts else aggregate_status(inner_counts),
            "n_steps": len(own),
            "counts": counts,
            "inner_counts": inner_counts,
            "step_ids": [int(s["step_id"]) for s in own],
            "jedi_task_id": single.get("jedi_task_id") if single else None,
            "jedi_status": single.get("jedi_status") if single else None,
            "condition": bool(first.get("condition") or first.get("condition_text")),
            "condition_text": first.get("condition_text"),
            "skip_reasons": sorted({s.get("skip_reason") or "no reason recorded" for s in own if s["status"] == "skipped"})[:3],
            "critical": n in critical_nodes,
            "errors": [{"node_key": s["node_key"], "error": s["error_dialog"]} for s in own if s.get("error_dialog")][:5],
            "step_name": first.get("name"),
            "layer": layers[n],
            "row": order[n],
            "x": MARGIN + layers[n] * (NODE_W + GAP_X),
            "y": MARGIN + order[n] * (NODE_H + GAP_Y),
        })
    by_id = {n["id"]: n for n in nodes}
    frames = []
    for c in sorted(opened_set, key=lambda c: (c.count("/"), c)):
        inside = [by_id[n] for n in node_ids if n.startswith(c + "/")]
        if not inside:
            continue
        depth = c.count("/") + 1
        own = [s for s in steps if graph.template[s["node_key"]] == c]
        pad = 10 + 6 * (3 - min(depth, 3))
        frames.append({
            "id": c,
            "name": own[0].get("name") if own else c,
            "status": aggregate_status(s["status"] for s in own) if own else "defined",
            "copies": len(own),
            "critical": c in critical_frames,
            "x": min(n["x"] for n in inside) - pad,
            "y": min(n["y"] for n in inside) - pad - 14,
            "w": max(n["x"] for n in inside) - min(n["x"] for n in inside) + NODE_W + 2 * pad,
            "h": max(n["y"] for n in inside) - min(n["y"] for n in inside) + NODE_H + 2 * pad + 14,
        })
    width = MARGIN * 2 + (max(layers.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = MARGIN * 2 + (max(order.values(), default=0) + 1) * (NODE_H + GAP_Y) - GAP_Y
    # frames of nested bodies reach beyond the margin: move everything so the outermost frame is inside the picture
    dx = max([0] + [4 - f["x"] for f in frames])
    dy = max([0] + [4 - f["y"] for f in frames])
    for item in nodes + frames:
        item["x"] += dx
        item["y"] += dy
    width, height = width + 2 * dx, height + 2 * dy
    return {
        "nodes": nodes,
        "edges": sorted(edges.values(), key=lambda e: (e["source"], e["target"])),
        "frames": frames,
        "opened": sorted(opened_set),
        "containers": sorted(graph.containers),
        "step_node": step_node,
        "n_steps": len(steps),
        "width": max(width, NODE_W + 2 * MARGIN),
        "height": max(height, NODE_H + 2 * MARGIN),
    }


def _layers(node_ids: list[str], edges: Mapping[tuple[str, str], dict]) -> dict[str, int]:
    """Longest path from a source; an edge closing a cycle (never written by the engine) is ignored."""
    parents: dict[str, list[str]] = {n: [] for n in node_ids}
    for a, b in edges:
        if a in parents and b in parents:
            parents[b].append(a)
    layer: dict[str, int] = {}
    for start in node_ids:
        stack, on_path = [(start, False)], set()
        while stack:
            n, done = stack.pop()
            if n in layer:
                continue
            if done:
                on_path.discard(n)
                layer[n] = 1 + max((layer.get(p, -1) for p in parents[n] if p not in on_path), default=-1)
                continue
            on_path.add(n)
            stack.append((n, True))
            stack.extend((p, False) for p in parents[n] if p not in layer and p not in on_path)
    return layer


def _order(node_ids: list[str], edges: Mapping[tuple[str, str], dict], layers: Mapping[str, int]) -> dict[str, int]:
    """Row of each node in its layer: key order first (keeps a body together), then two barycentre sweeps."""
    by_layer: dict[int, list[str]] = {}
    for n in node_ids:
        by_layer.setdefault(layers[n], []).append(n)
    row = {n: i for nodes in by_layer.values() for i, n in enumerate(nodes)}
    parents: dict[str, list[str]] = {n: [] for n in node_ids}
    children: dict[str, list[str]] = {n: [] for n in node_ids}
    for a, b in edges:
        parents[b].append(a)
        children[a].append(b)
    for neighbours, sweep in ((parents, sorted(by_layer)), (children, sorted(by_layer, reverse=True)), (parents, sorted(by_layer))):
        for lay in sweep:
            nodes = by_layer[lay]
            key = {n: (sum(row[p] for p in neighbours[n]) / len(neighbours[n]) if neighbours[n] else row[n], row[n]) for n in nodes}
            nodes.sort(key=lambda n: key[n])
            for i, n in enumerate(nodes):
                row[n] = i
    return row


def _bands(node_ids: list[str], row: Mapping[str, int], layers: Mapping[str, int], opened: set[str]) -> dict[str, int]:
    """Rows again so that the body of each outermost open container is a band of rows no other node enters (its
    frame then holds only its body), plus a free row above it for the frame's label. Groups (a body, or one node
    outside any body) are placed in the order the sweeps gave them, each at the first rows free over its layers."""
    groups: dict[str, list[str]] = {}
    for n in node_ids:
        outer = next((p for p in _prefixes(n)[:-1] if p in opened), None)
        groups.setdefault(outer or n, []).append(n)
    taken: dict[int, set[int]] = {}  # layer -> rows used
    final: dict[str, int] = {}
    for key, members in sorted(groups.items(), key=lambda kv: (sum(row[m] for m in kv[1]) / len(kv[1]), len(kv[1]), min(layers[m] for m in kv[1]), kv[0])):
        span = range(min(layers[m] for m in members), max(layers[m] for m in members) + 1)
        inner: dict[str, int] = {}
        for lay in span:
            for i, m in enumerate(sorted((m for m in members if layers[m] == lay), key=lambda m: row[m])):
                inner[m] = i
        height = max(inner.values()) + 1
        label = 1 if key in opened else 0
        top = 0
        while any(r in taken.get(lay, ()) for lay in span for r in range(top - label, top + height)):
            top += 1
        for lay in span:
            taken.setdefault(lay, set()).update(range(top - label, top + height))
        for m in members:
            final[m] = top + inner[m]
    return final
