"""Snakefile reader for pchain workflows, without executing the Snakefile.

Upstream runs the user's Snakefile through Snakemake (arbitrary Python on the
server).  pchain Snakefiles only use a declarative subset, so this reader splits
the file into ``rule`` blocks and sections and evaluates each section with a
whitelist evaluator over the Python AST: literals, lists, dicts, f-strings, ``+``,
``config[...]``, ``rules.<rule>.output[...]``, ``param_of(...)``, ``param_exp(...)``,
``str(...)`` and ``lambda wildcards: <literal>``.  Anything else is refused with
the file and line, which is also the protection against code injection.

Top level: ``configfile:`` (JSON or YAML, inside the sandbox), imports of
``param_of`` / ``param_exp`` and ``rule`` blocks.  Rule ``all`` declares the
workflow inputs (``params``) and targets (``input``); other rules run ``shell:``
``prun``/``phpo``/``junction``/``reana``/``gitlab`` or a sub-workflow Snakefile,
with ``params`` (step inputs), ``input`` (extra dependencies), ``output``,
``when``, ``scatter`` and ``loop``.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from typing import Any

from ..build import Budget, RawStep, RawWorkflow
from ..errors import WorkflowError, clip, kind_of, shown
from ..model import LEAF_TYPES, WORKFLOW_TYPE, StepInput
from .source import label_of, load_json, load_yaml, read_text, resolve_ref

_RULE = re.compile(r"^rule\s+([^\s:]+)\s*:\s*(#.*)?$")
_SECTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)$")
_IMPORT = re.compile(r"^from\s+[\w.]+\s+import\s+(.+)$")  # (no nested repeats: a long line costs linear time)
_SECTIONS = {"params", "input", "output", "shell", "when", "scatter", "loop", "log", "message", "threads", "resources"}
_IMPORTABLE = {"param_of", "param_exp"}
# Python's parser needs hundreds of bytes per token: a section is read only if its code (strings aside) is short
MAX_SECTION_CODE = 20_000
_STRING_LITERAL = re.compile(r"'[^'\\\n]*(?:\\.[^'\\\n]*)*'" + r'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"')  # (unrolled: no stack per character)
PHPO_ONLY_INPUTS = {"opt_trainingDS", "opt_trainingDsType"}


@dataclass(frozen=True)
class RuleOutput:
    rule: str


@dataclass(frozen=True)
class ParamRef:
    name: str
    source: str | None  # rule name, None = the rule itself

    def __str__(self) -> str:  # lets when: str(param_of("x")) read "self.x" like CWL
        return f"self.{self.name}"


@dataclass(frozen=True)
class RuleProxy:
    rule: str


class _Unsupported(ValueError):
    pass


def _size(value: Any, cap: int) -> int:
    """Characters ``value`` takes once written out (plus one per value), counted up to just over ``cap``."""
    total, pending = 0, [value]
    while pending and total <= cap:
        item = pending.pop()
        total += 1
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return total


class _Evaluator:
    """Evaluates one section expression over a tiny whitelist of Python.

    Every value taken from the config and every string built counts against the workflow's ``Budget``:
    ``[config["big"], config["big"], ...]`` costs nothing to evaluate but would be gigabytes once stored."""

    def __init__(self, config: dict, rule_names: set[str], budget: Budget, file: str | None = None):
        self.config = config
        self.rule_names = rule_names
        self.budget = budget
        self.file = file

    def __call__(self, node: ast.AST) -> Any:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise _Unsupported(f"{type(node).__name__} expressions are not supported")
        self.budget.values += 1
        if self.budget.values > self.budget.limits.max_yaml_values:
            raise _Unsupported(f"the workflow's values are more than {self.budget.limits.max_yaml_values}")
        return method(node)

    def spend(self, value: Any) -> Any:
        self.budget.take_chars(_size(value, self.budget.limits.max_yaml_size), self.file, "config values used by the Snakefile")
        return value

    def _Constant(self, node):
        if not isinstance(node.value, (str, int, float, bool, type(None))):
            raise _Unsupported(f"{type(node.value).__name__} constants are not supported")
        return node.value

    def _List(self, node):
        return [self(e) for e in node.elts]

    _Tuple = _List

    def _Dict(self, node):
        if any(k is None for k in node.keys):
            raise _Unsupported("'**' in a map is not supported")
        return {self(k): self(v) for k, v in zip(node.keys, node.values)}

    def _JoinedStr(self, node):
        return self.spend("".join(str(self(v)) for v in node.values))

    def _FormattedValue(self, node):
        if node.format_spec is not None:
            raise _Unsupported("format specifications in f-strings are not supported")
        return str(self(node.value))

    def _BinOp(self, node):
        if not isinstance(node.op, ast.Add):
            raise _Unsupported("only '+' is supported between values")
        left, right = self(node.left), self(node.right)
        if not (isinstance(left, str) and isinstance(right, str)) and not (isinstance(left, list) and isinstance(right, list)):
            raise _Unsupported(f"'+' joins two strings or two lists, not {kind_of(left)} and {kind_of(right)}")
        return self.spend(left + right)

    def _Name(self, node):
        if node.id == "config":
            return self.spend(self.config)
        if node.id == "rules":
            return "rules"
        raise _Unsupported(f"unknown name {shown(node.id)}")

    def _Attribute(self, node):
        base = self(node.value)
        if base == "rules":
            if node.attr not in self.rule_names:
                raise _Unsupported(f"rules.{node.attr} refers to an unknown rule")
            return RuleProxy(node.attr)
        if isinstance(base, RuleProxy) and node.attr == "output":
            return RuleOutput(base.rule)
        raise _Unsupported(f"attribute .{shown(node.attr)} is not supported")

    def _Subscript(self, node):
        return self.spend(self._lookup(node))

    def _lookup(self, node):
        """``base[key]`` without counting it: only the value a chain of subscripts ends on counts."""
        inner = node.value
        if isinstance(inner, ast.Name) and inner.id == "config":
            base = self.config
        elif isinstance(inner, ast.Subscript):
            base = self._lookup(inner)
        else:
            base = self(inner)
        key = self(node.slice)
        if isinstance(base, RuleOutput):
            return base
        if not isinstance(base, (dict, list, str)):
            raise _Unsupported(f"cannot take [{shown(key)}] of {kind_of(base)}")
        try:
            return base[key]
        except (KeyError, IndexError, TypeError):
            raise _Unsupported(f"cannot take [{shown(key)}] of {kind_of(base)}") from None

    def _Lambda(self, node):
        return self(node.body)

    def _Call(self, node):
        if not isinstance(node.func, ast.Name):
            raise _Unsupported("only param_of, param_exp and str can be called")
        if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
            raise _Unsupported("'*' and '**' in calls are not supported")
        args = [self(a) for a in node.args]
        kwargs = {k.arg: self(k.value) for k in node.keywords}
        if node.func.id == "param_of":
            source = kwargs.get("source")
            if len(args) != 1 or not isinstance(args[0], str) or set(kwargs) - {"source"}:
                raise _Unsupported("param_of takes one parameter name (a string) and source=rules.<rule>")
            return ParamRef(args[0], source.rule if isinstance(source, RuleProxy) else None)
        if node.func.id == "param_exp":
            if len(args) != 1 or kwargs:
                raise _Unsupported("param_exp takes one value")
            return args[0]
        if node.func.id == "str" and len(args) == 1 and not kwargs:
            return self.spend(str(args[0]))
        raise _Unsupported(f"calling {shown(node.func.id)}() is not supported")


@dataclass
class _Rule:
    name: str
    line: int
    sections: dict[str, tuple[int, str]]


def _split(text: str, file: str) -> tuple[list[tuple[int, str]], list[_Rule]]:
    """Top-level directives and rule blocks with their raw section texts."""
    lines = text.splitlines()
    directives: list[tuple[int, str]] = []
    rules: list[_Rule] = []
    current: _Rule | None = None
    section: str | None = None
    section_indent = None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            current, section, section_indent = None, None, None
            m = _RULE.match(stripped)
            if m:
                current = _Rule(m.group(1), number, {})
                rules.append(current)
            else:
                directives.append((number, stripped))
            continue
        if current is None:
            raise WorkflowError.one(f"line {number}: unexpected indented text outside a rule", file, code="syntax")
        m = _SECTION.match(stripped)
        if m and (section_indent is None or indent <= section_indent or section is None) and m.group(1) in _SECTIONS and "=" not in m.group(1):
            section, section_indent = m.group(1), indent
            if section in current.sections:
                raise WorkflowError.one(f"line {number}: section {shown(section)} given twice", file, current.name, code="syntax")
            current.sections[section] = (number, m.group(2).strip())
            continue
        if section is None or indent <= section_indent:
            raise WorkflowError.one(f"line {number}: expected a section such as params:, output:, shell:, got {shown(stripped)}", file, current.name, code="syntax")
        start, body = current.sections[section]
        current.sections[section] = (start, f"{body}\n{line}")
    return directives, rules


def _evaluate(evaluator: _Evaluator, rule: _Rule, section: str, file: str) -> tuple[list, dict]:
    line, body = rule.sections[section]
    body = "\n".join(part for part in body.splitlines() if not part.strip().startswith("#"))
    code = len(_STRING_LITERAL.sub("", body))
    if code > MAX_SECTION_CODE:
        raise WorkflowError.one(f"line {line}: {section}: section holds {code} characters of code outside strings; at most {MAX_SECTION_CODE} are read",
                                file, rule.name, code="too_large")
    try:
        call = ast.parse(f"_(\n{body}\n)", mode="eval").body
    except SyntaxError as exc:
        raise WorkflowError.one(f"line {line}: broken {section}: section ({clip(str(exc.msg), 200)})", file, rule.name, code="syntax") from None
    except (ValueError, MemoryError, RecursionError) as exc:  # a literal of thousands of digits, NUL bytes, deep nesting
        raise WorkflowError.one(f"line {line}: broken {section}: section ({clip(str(exc) or type(exc).__name__, 200)})", file, rule.name, code="syntax") from None
    if not isinstance(call, ast.Call):  # the section closed the call early, e.g. 'x) + (y'
        raise WorkflowError.one(f"line {line}: broken {section}: section", file, rule.name, code="syntax")
    try:
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            raise _Unsupported("'*' and '**' are not supported")
        return [evaluator(a) for a in call.args], {k.arg: evaluator(k.value) for k in call.keywords}
    except _Unsupported as exc:
        raise WorkflowError.one(f"line {line}: {section}: {exc}", file, rule.name, code="syntax") from None
    except RecursionError:
        raise WorkflowError.one(f"line {line}: {section}: expression nested too deeply", file, rule.name, code="syntax") from None


def _single(evaluator: _Evaluator, rule: _Rule, section: str, file: str) -> Any:
    """The one value a section such as ``when:``, ``scatter:`` or ``loop:`` holds."""
    args, kwargs = _evaluate(evaluator, rule, section, file)
    if len(args) != 1 or kwargs:
        line = rule.sections[section][0]
        raise WorkflowError.one(f"line {line}: {section}: expects one value, got {len(args) + len(kwargs)}", file, rule.name, code="syntax")
    return args[0]


def _as_input(name: str, value: Any, rule: _Rule, file: str) -> StepInput:
    values = value if isinstance(value, list) else [value]
    refs = [v for v in values if isinstance(v, (RuleOutput, ParamRef))]
    if not refs:
        return StepInput(name=name, default=value, is_list=isinstance(value, list))
    if len(refs) != len(values):
        raise WorkflowError.one(f"param {shown(name)} mixes literals and references", file, rule.name)
    sources = []
    for ref in refs:
        if isinstance(ref, RuleOutput):
            sources.append(f"{ref.rule}/outDS")
        elif ref.source == "all":
            sources.append(ref.name)
        else:
            raise WorkflowError.one(f"param {shown(name)}: param_of({shown(ref.name)}) must use source=rules.all", file, rule.name)
    return StepInput(name=name, sources=sources, is_list=isinstance(value, list))


def _config(directive: str, number: int, file: str, snake_dir: str, base_dir: str | None, budget: Budget) -> dict:
    """The values of a ``configfile: "name"`` line (JSON or YAML inside the sandbox): a map of name to value."""
    written = directive.split(":", 1)[1].strip()
    try:
        ref = ast.literal_eval(written)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        ref = None
    if not isinstance(ref, str):
        raise WorkflowError.one(f"line {number}: configfile: takes a quoted file name, e.g. configfile: \"config.json\"; got {shown(written)}", file, code="syntax")
    config_path = resolve_ref(ref, snake_dir, base_dir, file, None)
    label = label_of(config_path, base_dir)
    config_text = read_text(config_path, budget, label)
    if config_path.endswith(".json"):
        budget.take_chars(len(config_text), label, "config files")
        loaded = load_json(config_text, label)
    else:
        loaded = load_yaml(config_text, label, budget)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise WorkflowError.one(f"a config file must hold a map of names to values, got {kind_of(loaded)}", label, code="syntax")
    return loaded


def parse_snakefile(path: str, base_dir: str | None, values: dict, budget: Budget, stack: tuple[str, ...] = (), depth: int = 0, text: str | None = None) -> RawWorkflow:
    file = label_of(path, base_dir)
    if text is None:
        text = read_text(path, budget, file)
    snake_dir = os.path.dirname(path)
    directives, rules = _split(text, file)
    budget.take_chars(len(text), file, "Snakefiles")
    config: dict = {}
    for number, directive in directives:
        if directive.startswith("configfile:"):
            config.update(_config(directive, number, file, snake_dir, base_dir, budget))
            continue
        m = _IMPORT.match(directive)
        if m and {n.strip() for n in m.group(1).split(",")} <= _IMPORTABLE:
            continue
        raise WorkflowError.one(f"line {number}: unsupported statement {shown(directive)} (only configfile:, imports of param_of/param_exp and rules)", file, code="syntax")
    config.update(values)
    names = [r.name for r in rules]
    evaluator = _Evaluator(config, set(names), budget, file)
    root = next((r for r in rules if r.name == "all"), None)
    if root is None:
        raise WorkflowError.one("no 'rule all' declaring the workflow inputs and targets", file, code="syntax")
    budget.take_steps(len(rules) - 1, file)
    _check_unused_sections(evaluator, root, file)
    inputs: dict[str, Any] = {}
    if "params" in root.sections:
        _, inputs = _evaluate(evaluator, root, "params", file)
    inputs = {k: values.get(k, v) for k, v in inputs.items()}
    raw = RawWorkflow(name=os.path.basename(snake_dir) or "snakemake", language="snakemake", inputs=inputs, source_file=file)
    outputs_of: dict[str, list] = {}
    for rule in rules:
        if rule is root:
            continue
        outputs_of[rule.name] = _evaluate(evaluator, rule, "output", file)[0] if "output" in rule.sections else []
    targets = _evaluate(evaluator, root, "input", file)[0] if "input" in root.sections else []
    for target in targets:
        for name, outs in outputs_of.items():
            if target in outs or target == RuleOutput(name):
                raw.outputs[f"{target}"] = f"{name}/outDS"
    if raw.outputs:
        raw.outputs = {"outDS" if i == 0 else k: v for i, (k, v) in enumerate(raw.outputs.items())}
    for rule in rules:
        if rule is root:
            continue
        raw.steps.append(_step(rule, evaluator, outputs_of, file, snake_dir, base_dir, budget, stack + (path,), depth))
    return raw


_UNUSED_SECTIONS = ("log", "message", "threads", "resources")


def _check_unused_sections(evaluator: _Evaluator, rule: _Rule, file: str) -> None:
    """Sections a pchain step does not use are still only plain values: code there is refused, not skipped."""
    for section in _UNUSED_SECTIONS:
        if section in rule.sections:
            _evaluate(evaluator, rule, section, file)


def _step(rule, evaluator, outputs_of, file, snake_dir, base_dir, budget, stack, depth) -> RawStep:
    if "shell" not in rule.sections:
        raise WorkflowError.one("rule has no shell: naming the step type or sub-workflow", file, rule.name, code="syntax")
    shell = _single(evaluator, rule, "shell", file)
    step = RawStep(name=rule.name, type="", source_file=file)
    if "params" in rule.sections:
        _, params = _evaluate(evaluator, rule, "params", file)
        step.inputs = [_as_input(k, v, rule, file) for k, v in params.items()]
    if "input" in rule.sections:
        for value in _evaluate(evaluator, rule, "input", file)[0]:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, RuleOutput):
                    step.after.append(item.rule)
                else:
                    step.after += [name for name, outs in outputs_of.items() if item in outs]
    if "when" in rule.sections:
        when = _single(evaluator, rule, "when", file)
        step.when = str(when) if isinstance(when, (str, ParamRef)) else when
    if "scatter" in rule.sections:
        scatter = _single(evaluator, rule, "scatter", file)
        step.scatter = [s.name if isinstance(s, ParamRef) else s for s in (scatter if isinstance(scatter, list) else [scatter])]
        if not all(isinstance(s, str) for s in step.scatter):
            raise WorkflowError.one("scatter: names parameters, e.g. scatter: [param_of(\"x\")]", file, rule.name, code="bad_scatter")
    if "loop" in rule.sections:
        step.loop = _single(evaluator, rule, "loop", file)
        if not isinstance(step.loop, bool):
            raise WorkflowError.one(f"loop: must be True or False, got {kind_of(step.loop)}", file, rule.name, code="syntax")
    _check_unused_sections(evaluator, rule, file)
    if isinstance(shell, str) and shell.strip() in LEAF_TYPES:
        step.type = shell.strip()
        if step.type == "prun" and any(i.name in PHPO_ONLY_INPUTS for i in step.inputs):
            # the documented hpo Snakefile says shell: "prun" for its phpo step; its inputs say phpo
            step.type = "phpo"
    elif isinstance(shell, str) and os.path.basename(shell.strip()).lower() == "snakefile":
        budget.check_depth(depth + 1, file)
        sub_path = resolve_ref(shell.strip(), snake_dir, base_dir, file, rule.name)
        if sub_path in stack:
            raise WorkflowError.one(f"sub-workflow {shown(shell)} includes itself", file, rule.name, code="cycle")
        step.type = WORKFLOW_TYPE
        step.body = parse_snakefile(sub_path, base_dir, {}, budget, stack, depth + 1)
    elif isinstance(shell, str):
        step.type = shell
    else:
        raise WorkflowError.one(f"shell: must name the step type ({', '.join(LEAF_TYPES)}) or a sub-workflow Snakefile, got {kind_of(shell)}", file, rule.name, code="syntax")
    return step
