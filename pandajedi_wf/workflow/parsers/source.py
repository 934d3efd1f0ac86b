"""Reading description files safely: size cap, sandbox confinement, strict YAML.

Descriptions come from users, so a referenced file must stay inside the sandbox
(``base_dir``), YAML is read with a safe loader that refuses duplicate keys
(a duplicated step name would otherwise silently replace the first step) and
documents whose aliases expand them beyond a size budget (a 1 KB file of nested
anchors is gigabytes once stored), and every error carries the file and line.
"""

from __future__ import annotations

import json
import os

import yaml

from ..build import Budget, Limits
from ..errors import WorkflowError, clip, kind_of, shown

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
# what JSON can store (a definition is stored as JSON)
_ALLOWED_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map"))


class _StrictLoader(_Loader):
    pass


def _mapping(loader, node, deep=False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, f"unhashable key {shown(key)}", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {shown(key)} (first at line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping_plain(node, deep=deep)


_StrictLoader.construct_mapping_plain = _Loader.construct_mapping
_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
# a date-looking value stays the string it is (a datetime cannot be stored as JSON)
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TAG + "timestamp"] for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}


_FLOAT_SPECIALS = frozenset((".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"))
_STARTS = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_ENDS = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _refuse(message: str, event, file: str | None, code: str = "syntax"):
    mark = event.start_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    raise WorkflowError.one(message.replace("{where}", where, 1), file, code=code)


def scan_yaml(text: str, file: str | None, budget: Budget, steps_key: str | None = None) -> None:
    """Refuse, from the YAML event stream and before any value is built, a document that is too costly to read
    or to store: with the documents already read for the workflow (``budget``), more values than
    ``max_yaml_values`` or more characters than ``max_yaml_size`` once every ``*alias`` is replaced by what its
    ``&anchor`` names (a 1 KB "billion laughs" file is gigabytes once stored),
    nesting deeper than ``max_yaml_depth``, an alias inside the value it names, a tag JSON cannot store, a
    merge key; with ``steps_key``, more entries under that top-level key than the step cap allows (stopping as
    soon as it is crossed: building a 100,000-step document would cost seconds).

    An anchored value is measured once, so the scan costs one step per event, whatever the expansion.
    Syntax errors are left to the real load, which reports them with their position."""
    limits = budget.limits
    max_values, max_chars, max_depth = limits.max_yaml_values, limits.max_yaml_size, limits.max_yaml_depth
    anchors: dict[str, tuple[int, int, int]] = {}  # anchor -> (values, characters, height) of what it names
    frames: list[list] = []  # open lists and maps: [values, characters, height, anchor]
    values, chars = budget.values, budget.chars  # of every document read for this workflow, expanded
    step_cap = limits.max_steps - budget.steps
    steps_depth, steps_done, armed, items, per_step = None, False, False, 0, 1
    loader = _Loader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            depth = len(frames)
            is_start, is_end = isinstance(event, _STARTS), isinstance(event, _ENDS)
            if steps_depth is not None and depth == steps_depth and not is_end:
                items += 1
                if items > step_cap * per_step:
                    budget.take_steps(step_cap + 1, file)
            if is_start:
                if armed:
                    steps_depth, armed = depth + 1, False
                    per_step = 2 if isinstance(event, yaml.MappingStartEvent) else 1
                if event.tag not in (None, "!") and event.tag not in _ALLOWED_TAGS:
                    _refuse(f"YAML tag {shown(event.tag)}{{where}} is not supported; values must be strings, numbers, booleans, lists or maps", event, file)
                if depth + 1 > max_depth:
                    _refuse(f"YAML values nested deeper than {max_depth} levels{{where}}", event, file, "too_large")
                frames.append([1, 1, 0, event.anchor])
                if event.anchor:
                    anchors.pop(event.anchor, None)  # a redefined anchor names the new value from here on
                added = (1, 1, 0)
            elif is_end:
                size, length, height, anchor = frames.pop()
                if steps_depth is not None and depth - 1 < steps_depth:
                    steps_depth, steps_done = None, True
                if anchor:
                    anchors[anchor] = (size, length, height + 1)
                if frames:
                    parent = frames[-1]
                    parent[0] += size
                    parent[1] += length
                    parent[2] = max(parent[2], height + 1)
                continue
            elif isinstance(event, yaml.ScalarEvent):
                armed = steps_key is not None and not steps_done and steps_depth is None and depth == 1 and event.value == steps_key
                if event.tag not in (None, "!") and event.tag not in _ALLOWED_TAGS:
                    _refuse(f"YAML tag {shown(event.tag)}{{where}} is not supported; values must be strings, numbers, booleans, lists or maps", event, file)
                if event.implicit[0] and event.tag is None:
                    if event.value in _FLOAT_SPECIALS:
                        _refuse(f"YAML value {event.value}{{where}} is not a number that can be stored", event, file)
                    if event.value == "<<":
                        _refuse("YAML merge keys ('<<'){where} are not supported; write the keys out", event, file)
                added = (1, len(event.value) + 1, 1)
                if event.anchor:
                    anchors[event.anchor] = added
            elif isinstance(event, yaml.AliasEvent):
                if any(frame[3] == event.anchor for frame in frames):
                    _refuse(f"YAML alias *{shown(event.anchor, 40)}{{where}} is inside the value it names; such a value never ends", event, file)
                added = anchors.get(event.anchor, (1, 1, 1))  # an unknown anchor is reported by the real load
                if depth + added[2] > max_depth:
                    _refuse(f"YAML values nested deeper than {max_depth} levels through alias *{shown(event.anchor, 40)}{{where}}", event, file, "too_large")
            else:
                continue
            values += added[0]
            chars += added[1]
            if values > max_values or chars > max_chars:
                through = " through its aliases ('&anchor' / '*alias')" if anchors else ""
                what = f"more than {max_values} values" if values > max_values else f"more than {max_chars} characters"
                _refuse(f"YAML holds {what}{through}{{where}} (counting every file of the workflow); the limit keeps a description cheap to read and store", event, file, "too_large")
            if frames and not is_start:
                frame = frames[-1]
                frame[0] += added[0]
                frame[1] += added[1]
                frame[2] = max(frame[2], added[2])
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()
        budget.values, budget.chars = values, chars


def load_yaml(text: str, file: str | None, budget: Budget | None = None, steps_key: str | None = None):
    """The document in ``text`` as Python values; ``WorkflowError`` naming the line for anything unreadable,
    a duplicate key, or a document too costly to read or store (see ``scan_yaml``)."""
    scan_yaml(text, file, budget or Budget(Limits()), steps_key)
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise WorkflowError.one(f"broken YAML{where}: {clip(str(exc.problem or exc.context), 200)}", file, code="syntax") from None
    except yaml.YAMLError as exc:
        raise WorkflowError.one(f"broken YAML: {clip(str(exc), 200)}", file, code="syntax") from None
    except (ValueError, OverflowError) as exc:  # an integer of thousands of digits, a float out of range
        raise WorkflowError.one(f"YAML value cannot be read: {clip(str(exc), 200)}", file, code="syntax") from None
    except RecursionError:
        raise WorkflowError.one("YAML values nested too deeply", file, code="too_large") from None


def load_json(text: str, file: str | None):
    """A JSON document (a Snakemake config), with the problem and its position when it is not JSON."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise WorkflowError.one(f"broken JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file, code="syntax") from None
    except (ValueError, RecursionError) as exc:
        raise WorkflowError.one(f"JSON value cannot be read: {clip(str(exc) or type(exc).__name__, 200)}", file, code="syntax") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number that can be stored")


def read_values_file(path: str, limits: Limits | None = None, label: str | None = None, base_dir: str | None = None) -> dict:
    """The input values the client sends as ``workflowInputFile`` (YAML or JSON): a map of input name to value.
    With ``base_dir`` (the sandbox), a path that leads out of it is refused before anything is read."""
    limits = limits or Limits()
    label = label or os.path.basename(path)
    if base_dir is not None and not within(path, base_dir):
        raise WorkflowError.one("the input values file is outside the workflow directory", label, code="outside_sandbox")
    if not os.path.isfile(path):
        raise WorkflowError.one("the input values file does not exist", label, code="missing_file")
    budget = Budget(limits)
    text = read_text(path, budget, label)
    values = load_yaml(text, label, budget)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise WorkflowError.one(f"workflow input values must be a map of input name to value, got {kind_of(values)}", label, code="syntax")
    return values


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
        raise WorkflowError.one(f"bad file reference {shown(ref)}", file, step, code="missing_file")
    if ref.startswith("file://"):
        ref = ref[len("file://") :]
    if "\0" in ref:
        raise WorkflowError.one(f"bad file reference {shown(ref)}", file, step, code="missing_file")
    path = os.path.realpath(os.path.join(from_dir, ref))
    if base_dir is not None and not within(path, base_dir):
        raise WorkflowError.one(f"file {shown(ref)} is outside the workflow directory", file, step, code="outside_sandbox")
    if not os.path.isfile(path):
        raise WorkflowError.one(f"referenced file {shown(ref)} does not exist", file, step, code="missing_file")
    return path


def within(path: str, base_dir: str) -> bool:
    """Whether the real ``path`` lies inside the sandbox ``base_dir``."""
    root = os.path.realpath(base_dir)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


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
