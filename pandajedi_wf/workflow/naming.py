"""Names of steps, tasks and datasets.

A step name ends up inside JEDI task names and Rucio dataset names
(``<outDS>_<NNN>_<step>`` and per-type containers ``<...>_<type>/``), so it may
only use characters Rucio accepts in a DID name and that keep our own suffixes
unambiguous: ASCII letters, digits, ``_`` and ``-``, starting with a letter or a
digit.  Dots are refused because ``.N`` marks loop iterations, ``/`` because it
separates step and port in references; quotes, spaces and non-ASCII letters
cannot appear in a DID at all.
"""

from __future__ import annotations

import re

from . import shellwords

STEP_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
MAX_STEP_NAME_LENGTH = 64
MAX_DID_NAME_LENGTH = 255  # Rucio's limit on a DID name
RESULTS_JSON = "results.json"


def step_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a step name, or None when it is fine."""
    if not isinstance(name, str) or not name:
        return f"step name {name!r} must be a non-empty string"
    if len(name) > MAX_STEP_NAME_LENGTH:
        return f"step name is {len(name)} characters long; at most {MAX_STEP_NAME_LENGTH} are allowed"
    if not STEP_NAME_PATTERN.match(name):
        bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c in "_-"))})
        if bad:
            shown = ", ".join(repr(c) for c in bad)
            return f"step name {name!r} contains {shown}; only ASCII letters, digits, '_' and '-' can go into task and dataset names"
        return f"step name {name!r} must start with a letter or a digit"
    return None


def output_types_from_args(args: str | None, step_type: str) -> list[str]:
    """File types a step writes, from ``--outputs`` in its prun arguments.

    ``--outputs a.root,SUF:b.txt`` gives ``["a.root", "SUF"]`` (prun names the container
    ``<outDS>_<suffix>/`` when ``suffix:file`` is used); wildcards become ``XYZ...tgz``
    like upstream.  A junction always also writes ``results.json``.
    """
    types: list[str] = []
    if args:
        items = shellwords.split(args)
        value = None
        for i, item in enumerate(items):
            if item == "--outputs" and i + 1 < len(items):
                value = items[i + 1]
            elif item.startswith("--outputs="):
                value = item.split("=", 1)[1]
        if value:
            for part in value.split(","):
                part = part.strip()
                if not part:
                    continue
                if ":" in part:
                    part = part.split(":", 1)[0]
                if "*" in part:
                    part = part.replace("*", "XYZ") + ".tgz"
                types.append(part)
    if step_type == "junction" and RESULTS_JSON not in types:
        types.append(RESULTS_JSON)
    return types


def task_name(
    out_ds: str, node_id: int, step_name: str, scatter_path: tuple[int, ...] = (), iterations: tuple[int, ...] = (), generation: int = 0
) -> str:
    """``<outDS>_<NNN>_<step>``, then ``_s<k>`` per enclosing scatter, ``.<n>`` per loop iteration, and ``_r<g>`` when a
    user retry or rerun made the step a new task (JEDI would otherwise treat the old name as a re-execution)."""
    name = f"{out_ds.rstrip('/')}_{node_id:03d}_{step_name}"
    name += "".join(f"_s{k}" for k in scatter_path)
    name += "".join(f".{n}" for n in iterations)
    if generation:
        name += f"_r{generation}"
    return name


def dataset_name(task: str, output_type: str | None) -> str:
    """The container a consumer reads: ``<task>_<type>/`` (bare task name if the type is unknown)."""
    if not output_type:
        return task
    if "*" in output_type:
        output_type = output_type.replace("*", "XYZ") + ".tgz"
    return f"{task}_{output_type}/"
