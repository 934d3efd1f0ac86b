"""Errors raised while reading a workflow description.

Every problem names the file and, when known, the step, so a user who submitted a
bad workflow learns exactly what to fix without reading server logs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a workflow description."""

    message: str
    file: str | None = None
    step: str | None = None
    code: str = "invalid"

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
