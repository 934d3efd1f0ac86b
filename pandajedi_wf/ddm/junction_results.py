"""Reading a junction step's ``results.json`` (loop control: ``to_continue`` and new ``param_*`` values).

A junction runs as a JEDI task whose job writes ``results.json`` as an output file (the task parameters add
``--outputs results.json``), so its content sits in the task's output container ``<task>_results.json/`` in Rucio.
``RucioJunctionResults`` downloads that container to a scratch directory and reads the file. Every failure is a
``JunctionResultsError`` saying what could not be read; the processor then holds the loop and shows the reason
rather than treating missing results as "stop".
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Callable


class JunctionResultsError(RuntimeError):
    """results.json of a junction could not be read (not there yet, unreadable, not a JSON object)."""


def results_container(task_name: str) -> tuple[str, str]:
    """(scope, container) of a junction task's results.json, following PanDA's user naming (scope user.<name>)."""
    parts = task_name.split(".")
    scope = ".".join(parts[:2]) if parts[0] in ("user", "group") and len(parts) > 1 else parts[0]
    return scope, f"{task_name}_results.json/"


def parse_results(text: str, where: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JunctionResultsError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise JunctionResultsError(f"{where}: must be a JSON object with to_continue and param_* keys, got {type(value).__name__}")
    return value


class RucioJunctionResults:
    """``fetch(jedi_task_id, task_name) -> dict`` over Rucio's download client (injectable for tests)."""

    def __init__(self, download_client_factory: Callable[[], object] | None = None, scratch_dir: str | None = None):
        self._factory = download_client_factory or _rucio_download_client
        self._client = None
        self._scratch = scratch_dir

    def fetch(self, jedi_task_id: int, task_name: str) -> dict:
        scope, container = results_container(task_name)
        did = f"{scope}:{container}"
        if self._client is None:
            try:
                self._client = self._factory()
            except Exception as exc:
                raise JunctionResultsError(f"cannot reach Rucio to read {did}: {type(exc).__name__}: {exc}") from exc
        with tempfile.TemporaryDirectory(dir=self._scratch, prefix="junction_") as base:
            try:
                self._client.download_dids([{"did": did, "base_dir": base, "no_subdir": True}])
            except Exception as exc:
                raise JunctionResultsError(f"download of {did} (task {jedi_task_id}) failed: {type(exc).__name__}: {exc}") from exc
            found = sorted(f for f in os.listdir(base) if f.endswith("results.json"))
            if not found:
                raise JunctionResultsError(f"{did} (task {jedi_task_id}) holds no results.json")
            # one file per job; a junction normally runs one job, and the last file written wins otherwise
            with open(os.path.join(base, found[-1]), encoding="utf-8") as stream:
                return parse_results(stream.read(), f"{did}/{found[-1]}")


def _rucio_download_client():
    from rucio.client.downloadclient import DownloadClient

    return DownloadClient()
