"""The ``when`` language of pchain steps: parse it into a tree, evaluate it on parent outcomes.

Grammar (CWL v1.2 ``when: $(...)`` as pchain uses it, and the Snakemake ``when:`` string)::

    expr  := and ('||' and)*
    and   := unary ('&&' unary)*
    unary := '!' unary | '(' expr ')' | 'self.' NAME ['[' INT ']']

``self.x`` holds when the parent step(s) feeding input ``x`` succeeded, ``!self.x``
when they failed; ``!`` before a parenthesised expression is a plain negation.
Evaluation is three-valued (True / False / None = not known yet) so the engine can
decide as soon as the answer is certain, without waiting for unrelated parents.
"""

from __future__ import annotations

import re
from typing import Callable

from .errors import shown
from .model import COND_AND, COND_FAILED, COND_NOT, COND_OR, COND_SUCCEEDED, Condition

_TOKEN = re.compile(r"\s*(?:(\|\|)|(&&)|(!)|(\()|(\))|self\.([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d{1,6})\])?)")
MAX_NESTING = 50  # '!' and '(' a condition may nest: deeper is a mistake or an attack, and would exhaust the stack
MAX_TERMS = 200  # self.x references in one condition
MAX_CHARS = 10_000  # far more than MAX_TERMS references need; checked before anything is read


class ConditionSyntaxError(ValueError):
    pass


def _tokens(text: str) -> list[tuple]:
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConditionSyntaxError(f"unexpected {shown(text[pos:].strip()[:20])} at position {pos} in condition {shown(text)}")
        if m.group(1):
            out.append(("or",))
        elif m.group(2):
            out.append(("and",))
        elif m.group(3):
            out.append(("!",))
        elif m.group(4):
            out.append(("(",))
        elif m.group(5):
            out.append((")",))
        else:
            out.append(("ref", m.group(6), int(m.group(7)) if m.group(7) else None))
        pos = m.end()
    return out


def strip_expression(text: str) -> str:
    """Remove the CWL ``$( ... )`` wrapper if present."""
    text = text.strip()
    if text.startswith("$(") and text.endswith(")"):
        return text[2:-1]
    return text


def parse_condition(text: str) -> Condition:
    """Parse a when-string; leaves are left without parents (the builder resolves them)."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionSyntaxError(f"empty or non-string condition {shown(text)}")
    if len(text) > MAX_CHARS:
        raise ConditionSyntaxError(f"condition is {len(text)} characters long; at most {MAX_CHARS} are allowed")
    tokens = _tokens(strip_expression(text))
    terms = sum(1 for token in tokens if token[0] == "ref")
    if terms > MAX_TERMS:
        raise ConditionSyntaxError(f"condition has {terms} terms; at most {MAX_TERMS} are allowed")
    pos = 0

    def peek():
        return tokens[pos][0] if pos < len(tokens) else None

    def take(kind):
        nonlocal pos
        if peek() != kind:
            found = tokens[pos][0] if pos < len(tokens) else "end of condition"
            raise ConditionSyntaxError(f"expected {shown(kind)} but found {shown(found)} in condition {shown(text)}")
        pos += 1
        return tokens[pos - 1]

    def parse_or():
        args = [parse_and()]
        while peek() == "or":
            take("or")
            args.append(parse_and())
        return args[0] if len(args) == 1 else Condition(COND_OR, args=args)

    def parse_and():
        args = [parse_unary()]
        while peek() == "and":
            take("and")
            args.append(parse_unary())
        return args[0] if len(args) == 1 else Condition(COND_AND, args=args)

    depth = 0

    def parse_unary():
        nonlocal depth
        kind = peek()
        if kind in ("!", "("):
            depth += 1
            if depth > MAX_NESTING:
                raise ConditionSyntaxError(f"condition nests '!' and '(' more than {MAX_NESTING} deep")
        if kind == "!":
            take("!")
            inner = parse_unary()
            depth -= 1
            if inner.kind == COND_SUCCEEDED:
                return Condition(COND_FAILED, param=inner.param, index=inner.index)
            return Condition(COND_NOT, args=[inner])
        if kind == "(":
            take("(")
            inner = parse_or()
            take(")")
            depth -= 1
            return inner
        _, name, index = take("ref")
        return Condition(COND_SUCCEEDED, param=name, index=index)

    tree = parse_or()
    if pos != len(tokens):
        raise ConditionSyntaxError(f"unexpected {shown(tokens[pos][0])} after the end of condition {shown(text)}")
    return tree


# outcome of a parent as seen by a condition: "succeeded", "failed", "skipped" or None (not final)
def evaluate(cond: Condition, outcome: Callable[[int], str | None]) -> bool | None:
    """True/False once certain, None while it depends on parents that are not final."""
    if cond.kind in (COND_SUCCEEDED, COND_FAILED):
        wanted = "succeeded" if cond.kind == COND_SUCCEEDED else "failed"
        results = [outcome(p) for p in cond.parents]
        if any(r is not None and r != wanted for r in results):
            return False
        if any(r is None for r in results):
            return None
        return True
    values = [evaluate(a, outcome) for a in cond.args]
    if cond.kind == COND_NOT:
        return None if values[0] is None else not values[0]
    if cond.kind == COND_AND:
        if any(v is False for v in values):
            return False
        return None if any(v is None for v in values) else True
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False
