"""Reading description files safely: size cap, sandbox confinement, strict YAML.

Descriptions come from users, so a referenced file must stay inside the sandbox
(``base_dir``), YAML is read with a safe loader that refuses duplicate keys
(a duplicated step name would otherwise silently replace the first step), and
every error carries the file and line.
"""

from __future__ import annotations

import os

import yaml

from ..build import Budget
from ..errors import WorkflowError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_Loader):
    pass


def _mapping(loader, node, deep=False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, f"unhashable key {key!r}", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping_plain(node, deep=deep)


_StrictLoader.construct_mapping_plain = _Loader.construct_mapping
_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text: str, file: str | None):
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise WorkflowError.one(f"broken YAML{where}: {exc.problem or exc.context}", file, code="syntax") from None
    except yaml.YAMLError as exc:
        raise WorkflowError.one(f"broken YAML: {exc}", file, code="syntax") from None


def looks_like_path(spec: str) -> bool:
    return "\n" not in spec and len(spec) < 4096 and os.path.isfile(spec)


def read_text(path: str, budget: Budget, label: str | None = None) -> str:
    label = label or path
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise WorkflowError.one(f"cannot read file: {exc.strerror}", label, code="missing_file") from None
    budget.check_bytes(size, label)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError:
        raise WorkflowError.one("file is not UTF-8 text", label, code="syntax") from None
    except OSError as exc:
        raise WorkflowError.one(f"cannot read file: {exc.strerror}", label, code="missing_file") from None


def resolve_ref(ref: object, from_dir: str, base_dir: str | None, file: str | None, step: str | None) -> str:
    """Absolute path of a referenced file, refused if it leaves the sandbox."""
    if not isinstance(ref, str) or not ref:
        raise WorkflowError.one(f"bad file reference {ref!r}", file, step, code="missing_file")
    if ref.startswith("file://"):
        ref = ref[len("file://") :]
    path = os.path.realpath(os.path.join(from_dir, ref))
    if base_dir is not None:
        root = os.path.realpath(base_dir)
        if os.path.commonpath([root, path]) != root:
            raise WorkflowError.one(f"file {ref!r} is outside the workflow directory", file, step, code="outside_sandbox")
    if not os.path.isfile(path):
        raise WorkflowError.one(f"referenced file {ref!r} does not exist", file, step, code="missing_file")
    return path


def label_of(path: str, base_dir: str | None) -> str:
    """Path shown in messages: relative to the sandbox when possible."""
    if base_dir:
        try:
            rel = os.path.relpath(path, os.path.realpath(base_dir))
            if not rel.startswith(".."):
                return rel
        except ValueError:
            pass
    return os.path.basename(path)


def precheck_steps(text: str, file: str | None, budget: Budget, key: str = "steps") -> None:
    """Refuse a file with too many top-level steps from the YAML event stream, stopping early.

    Building Python objects for a 100,000-step document costs seconds; counting the
    entries under the top-level ``steps`` key stops as soon as the cap is crossed.
    """
    cap = budget.limits.max_steps - budget.steps
    depth, steps_depth, items, per_step, armed = 0, None, 0, 1, False
    try:
        for event in yaml.parse(text, Loader=_Loader):
            is_start = isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent))
            is_end = isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent))
            if steps_depth is not None and depth == steps_depth and not is_end:
                items += 1
                if items > cap * per_step:
                    budget.take_steps(cap + 1, file)
            if is_start:
                depth += 1
                if armed:
                    steps_depth, armed = depth, False
                    per_step = 2 if isinstance(event, yaml.MappingStartEvent) else 1
            elif is_end:
                depth -= 1
                if steps_depth is not None and depth < steps_depth:
                    return
            elif isinstance(event, yaml.ScalarEvent):
                armed = depth == 1 and steps_depth is None and event.value == key
    except yaml.YAMLError:
        return  # the real load reports syntax errors with their position
