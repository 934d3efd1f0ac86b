"""Errors raised while reading a workflow description.

Every problem names the file and, when known, the step, so a user who submitted a
bad workflow learns exactly what to fix without reading server logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# a value echoed in a message is cut to this many characters: a 1 MB argument must not make a 1 MB message
SHOWN_CHARS = 80
MAX_MESSAGE_CHARS = 1000


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters (with the full length said when cut).

    Containers are not repr'd whole (a list of a million items would be), only their type and size."""
    if isinstance(value, (list, tuple, dict, set)):
        return f"a {type(value).__name__} of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying so."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def kind_of(value: Any) -> str:
    """What a value is, in the words of the description's author (YAML/JSON types, not Python's)."""
    if value is None:
        return "nothing (null)"
    if hasattr(value, "task_name"):
        return "the output of a step"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({shown(value)})"
    if isinstance(value, str):
        return f"a string ({shown(value)})"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"a map of {len(value)} key{'' if len(value) == 1 else 's'}"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a workflow description."""

    message: str
    file: str | None = None
    step: str | None = None
    code: str = "invalid"

    def __post_init__(self):
        # whatever a caller echoed, a problem stays readable (and storable in an error dialog)
        object.__setattr__(self, "message", clip(str(self.message), MAX_MESSAGE_CHARS))
        if self.file is not None:
            object.__setattr__(self, "file", clip(str(self.file), 300))
        if self.step is not None:
            object.__setattr__(self, "step", clip(str(self.step), 100))

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(f"file {self.file}")
        if self.step:
            where.append(f"step {self.step!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        return f"{prefix}{self.message}"

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "file": self.file, "step": self.step}


class WorkflowError(ValueError):
    """A workflow description that cannot be accepted; ``problems`` lists every reason found."""

    def __init__(self, problems: list[Problem] | Problem):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @classmethod
    def one(cls, message: str, file: str | None = None, step: str | None = None, code: str = "invalid") -> "WorkflowError":
        return cls(Problem(message, file, step, code))


class WorkflowTooLarge(WorkflowError):
    """The description exceeds a configured size cap (bytes, steps or scatter width)."""


class StepDefinitionError(WorkflowError):
    """A step of a stored definition cannot be made into a JEDI task (a value of the wrong type, arguments that do
    not split, a scatter wider than the cap known only at run time).  Raised by ``next_actions`` and
    ``build_task_params``; it is a definition error: retrying the same definition cannot help."""

    def __init__(self, problems: "list[Problem] | Problem | str", step: str | None = None, file: str | None = None):
        if isinstance(problems, str):
            problems = Problem(problems, file, step, "bad_definition")
        super().__init__(problems)
