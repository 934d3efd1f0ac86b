"""What each step parameter (``opt_*``) may hold, checked at intake and again when a task is built.

One table, ``PARAM_KINDS``: a parameter is text (``opt_exec``, ``opt_args``, ``opt_containerImage``, the
gitlab strings), a flag (``opt_useAthenaPackages``), datasets (a dataset name, a list of them, or a
step's output), dataset types (a file type or a list of them) or a number (``opt_projectID``).
``value_problem(name, value)`` says what is wrong with one value, or None; the validator runs it on
literal values and on the workflow input values known at submission, ``build_task_params`` on the
values a step instance really gets (loop parameters from a junction are known only then).
"""

from __future__ import annotations

from typing import Any

from .errors import kind_of

TEXT = "text"
FLAG = "flag"
DATASETS = "datasets"
TYPES = "types"
NUMBER = "number"

PARAM_KINDS: dict[str, str] = {
    "opt_exec": TEXT,
    "opt_args": TEXT,
    "opt_containerImage": TEXT,
    "opt_useAthenaPackages": FLAG,
    "opt_inDS": DATASETS,
    "opt_secondaryDSs": DATASETS,
    "opt_trainingDS": DATASETS,
    "opt_inDsType": TYPES,
    "opt_secondaryDsTypes": TYPES,
    "opt_trainingDsType": TYPES,
    "opt_api": TEXT,
    "opt_ref": TEXT,
    "opt_triggerToken": TEXT,
    "opt_accessToken": TEXT,
    "opt_site": TEXT,
    "opt_input_location": TEXT,
    "opt_projectID": NUMBER,
}

EXPECTED = {
    TEXT: "a string",
    FLAG: "true or false",
    DATASETS: "a dataset name or a list of dataset names",
    TYPES: "a file type or a list of file types",
    NUMBER: "a whole number",
}

# parameters that may take another step's output
TAKES_STEP_OUTPUT = frozenset(name for name, kind in PARAM_KINDS.items() if kind == DATASETS)


def _is_dataset(item: Any) -> bool:
    """A dataset name, or a step output (the engine's ``DatasetRef``, which has ``task_name``)."""
    return (isinstance(item, str) and item != "") or hasattr(item, "task_name")


def value_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be the value of step parameter ``name``, or None (None itself means not given)."""
    kind = PARAM_KINDS.get(name)
    if kind is None or value is None:
        return None
    if kind == TEXT:
        ok = isinstance(value, str)
    elif kind == FLAG:
        ok = isinstance(value, bool)
    elif kind == NUMBER:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isascii() and value.isdigit())
    elif kind == DATASETS:
        items = value if isinstance(value, list) else [value]
        bad = next((item for item in items if not _is_dataset(item)), None)
        if bad is not None:
            what = kind_of(value) if not isinstance(value, list) else f"a list holding {kind_of(bad)}"
            return f"{name} must be {EXPECTED[kind]}, got {what}"
        return None
    else:  # TYPES
        items = value if isinstance(value, list) else [value]
        bad = next((item for item in items if not isinstance(item, str)), None)
        if bad is not None:
            what = kind_of(value) if not isinstance(value, list) else f"a list holding {kind_of(bad)}"
            return f"{name} must be {EXPECTED[kind]}, got {what}"
        return None
    return None if ok else f"{name} must be {EXPECTED[kind]}, got {kind_of(value)}"
