"""Lifecycles written as data: one table of allowed transitions per entity.

The workflow, the step and the staging request each declare their lifecycle as a
``Lifecycle`` built from a list of ``(from, to, why)`` rows, so the whole state
machine reads on one screen and every refusal says which rule was missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


class IllegalTransition(ValueError):
    """A proposed change of status that the lifecycle table does not allow."""

    def __init__(self, lifecycle: str, source: str, target: str, allowed: Iterable[str]):
        self.lifecycle = lifecycle
        self.source = source
        self.target = target
        self.allowed = sorted(allowed)
        super().__init__(
            f"{lifecycle}: {source!r} -> {target!r} is not allowed (from {source!r} only {', '.join(self.allowed) or 'nothing'})"
        )


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    why: str


class Lifecycle:
    """States, final states and the allowed transitions of one kind of entity."""

    def __init__(self, name: str, states: dict[str, str], transitions: Iterable[tuple[str, str, str]], final: Iterable[str]):
        self.name = name
        self.states = dict(states)
        self.final = frozenset(final)
        self._by_source: dict[str, dict[str, Transition]] = {s: {} for s in self.states}
        for source, target, why in transitions:
            for state in (source, target):
                if state not in self.states:
                    raise ValueError(f"{name}: transition {source}->{target} names unknown state {state!r}")
            if source in self.final:
                raise ValueError(f"{name}: final state {source!r} cannot have outgoing transitions")
            self._by_source[source][target] = Transition(source, target, why)
        unknown_final = self.final - set(self.states)
        if unknown_final:
            raise ValueError(f"{name}: unknown final states {sorted(unknown_final)}")

    def allowed(self, source: str) -> frozenset[str]:
        return frozenset(self._by_source.get(source, {}))

    def can(self, source: str, target: str) -> bool:
        return target in self._by_source.get(source, {})

    def check(self, source: str, target: str) -> Transition:
        """Return the rule allowing source -> target, or raise IllegalTransition."""
        try:
            return self._by_source[source][target]
        except KeyError:
            raise IllegalTransition(self.name, source, target, self.allowed(source)) from None

    def is_final(self, state: str) -> bool:
        return state in self.final

    def transitions(self) -> list[Transition]:
        return [t for by_target in self._by_source.values() for t in by_target.values()]

    def sources_of(self, target: str) -> frozenset[str]:
        """States from which ``target`` can be reached in one step (used to build guarded UPDATEs)."""
        return frozenset(t.source for t in self.transitions() if t.target == target)
