"""The failures the API reports, one class each, shared by every front (operator CLI, server endpoints, monitor)."""

from __future__ import annotations


class ClientError(Exception):
    """Base of the failures a client of the API reports."""


class WorkflowNotFound(ClientError, LookupError):
    """No workflow (or no step, or no workflow for a JEDI task) with the id asked for."""


class InvalidWorkflow(ClientError):
    """The description was refused; ``problems`` holds one dict per problem (code, message, file, step)."""

    def __init__(self, message: str, problems: list[dict] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class BackendError(ClientError):
    """The database or JEDI could not be reached or failed."""


class ClientNotConfigured(BackendError):
    """No backend to talk to (no PanDA configuration)."""
