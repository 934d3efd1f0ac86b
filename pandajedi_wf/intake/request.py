"""What a ``pchain_native`` request must hold before its sandbox is worth fetching (FIELD_GUIDE §10)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import urlsplit

LANGUAGES = ("cwl", "snakemake", "yaml")
# field -> what it must be; every one is sent by pchain_native (PChainScript_native.py)
REQUIRED_TEXT = ("sourceURL", "sandbox", "workflowSpecFile", "language", "outDS")


@dataclass(frozen=True)
class RequestProblem:
    field: str
    message: str

    def to_dict(self) -> dict:
        return {"code": "request", "message": f"{self.field}: {self.message}"}


def check_request(request: dict) -> list[RequestProblem]:
    """Every problem of the request at once (the user fixes them in one go); [] when it can be taken in."""
    problems = []
    for name in REQUIRED_TEXT:
        value = request.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(RequestProblem(name, "missing" if value in (None, "") else f"must be text, got {type(value).__name__}"))
    language = request.get("language")
    if isinstance(language, str) and language and language not in LANGUAGES:
        problems.append(RequestProblem("language", f"{language!r} is not one of {', '.join(LANGUAGES)}"))
    sandbox = request.get("sandbox")
    if isinstance(sandbox, str) and sandbox and (posixpath.basename(sandbox) != sandbox or sandbox in (".", "..") or "\\" in sandbox):
        problems.append(RequestProblem("sandbox", f"{sandbox!r} must be a plain file name"))
    source = request.get("sourceURL")
    if isinstance(source, str) and source and urlsplit(source).scheme not in ("http", "https"):
        problems.append(RequestProblem("sourceURL", f"{source!r} is not an http(s) URL"))
    for name in ("workflowSpecFile", "workflowInputFile"):
        path = request.get(name)
        if isinstance(path, str) and path and (posixpath.isabs(path) or ".." in posixpath.normpath(path).split("/")):
            problems.append(RequestProblem(name, f"{path!r} must be a path inside the sandbox"))
    input_file = request.get("workflowInputFile")
    if input_file is not None and not isinstance(input_file, str):
        problems.append(RequestProblem("workflowInputFile", f"must be text, got {type(input_file).__name__}"))
    templates = request.get("taskParams")
    if templates is not None and not isinstance(templates, dict):
        problems.append(RequestProblem("taskParams", f"must be an object of step type -> task parameters, got {type(templates).__name__}"))
    name = request.get("workflow_name")
    if name is not None and not isinstance(name, str):
        problems.append(RequestProblem("workflow_name", f"must be text, got {type(name).__name__}"))
    return problems


def sandbox_url(request: dict) -> str:
    """Where the server's cache serves the sandbox: ``<sourceURL>/cache/<sandbox>``, as upstream's own parser builds it."""
    return f"{request['sourceURL'].rstrip('/')}/cache/{request['sandbox']}"
