"""JEDI task parameters of one step, from the client's prun templates (pure).

Follows upstream ``Node.make_task_params`` (pandaserver/workflow/workflow_utils.py):
copy the ``container`` or ``athena`` template the pchain client sent, name the task
``<outDS>_<NNN>_<step>`` (+ scatter / iteration suffixes), wire ``--inDS`` to the
parents' per-type containers ``<parentTask>_<type>/``, substitute ``%{DSn}``,
``%{DS*}``, ``%{SECDSn}``, loop parameters ``%{x}`` and the iteration ``%{i}``,
and rebuild the command line (``cliParams``), the exec string, the input, output and
log dataset templates.  Upstream additionally re-runs the prun argument parser in dry
mode to get the input job parameters; here the two inputs prun derives from the command
line are built directly, as prun builds them (pandaclient/PrunScript.py): the primary
``IN`` from ``--inDS`` and one hidden ``IN<n>`` per ``--secondaryDSs`` entry, plus the
``--inMap`` that tells runGen which files are which stream.  Without them JEDI would
see the secondaries only in ``cliParams`` and never register them as inputs.

A step that may legitimately get an empty primary input (``StepSpec.allow_empty_input``,
decided by the engine: it runs although a parent it reads failed or was skipped, e.g. a
``!self.x`` branch) gets ``allowEmptyInput``; otherwise JEDI's ContentsFeeder breaks a
task whose primary input is empty.

The workflow id travels in ``reqID`` (TaskRefinerBase copies it into
``JEDI_Tasks.reqID``, the column iDDS-driven pchain already uses for its request
id), and again with the step key under ``pandajedi_wf`` in the stored task params.
"""

from __future__ import annotations

import copy
import functools
import re
import shlex
import uuid
from typing import Any

from . import shellwords
from .errors import StepDefinitionError, shown
from .naming import RESULTS_JSON, dataset_name
from .step_params import value_problem

TASK_PARAM_WORKFLOW_KEY = "pandajedi_wf"


_CACHED_ARGS_CHARS = 4096  # longer argument strings are split each time rather than kept in the cache


@functools.lru_cache(maxsize=1024)
def _split_cached(args: str) -> tuple[str, ...]:
    return tuple(shellwords.split(args))


def _split(args: str) -> tuple[str, ...]:
    """The step's argument string as the shell would split it (the same few strings recur in every workflow)."""
    return _split_cached(args) if len(args) <= _CACHED_ARGS_CHARS else tuple(shellwords.split(args))


class TaskParamsError(StepDefinitionError):
    """A step's task parameters cannot be built from its definition (kept name; a ``StepDefinitionError``)."""


def _refs(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _names(value: Any, types: Any) -> list[str]:
    """Dataset names for an input value (DatasetRef, literal or list), honouring *DsType."""
    items = _refs(value)
    type_list = types if isinstance(types, list) else [types] * len(items)
    names = []
    for item, wanted in zip(items, type_list + [None] * (len(items) - len(type_list))):
        if hasattr(item, "task_name"):
            chosen = wanted or (item.output_types[0] if item.output_types else None)
            names.append(dataset_name(item.task_name, chosen))
        elif item is not None:
            names.append(str(item))
    return names


def _substitute(text: str, mapping: list[tuple[str, str]]) -> str:
    for src, dst in mapping:
        text = text.replace(src, dst)
    return text


def _with_results_json(args: str) -> str:
    m = re.search(r"(--outputs)( +|=)([^ ]+)", args)
    if not m:
        return f"{args} --outputs {RESULTS_JSON}".strip()
    if RESULTS_JSON in m.group(3).split(","):
        return args
    return args.replace(m.group(0), f"{m.group(1)}={m.group(3)},{RESULTS_JSON}")


def _option(command: list[str], name: str) -> str | None:
    """Value of ``name`` in a split prun command line (``--x v`` or ``--x=v``; the last one wins, like argparse)."""
    found = None
    for i, word in enumerate(command):
        if word == name and i + 1 < len(command):
            found = command[i + 1]
        elif word.startswith(f"{name}="):
            found = word[len(name) + 1 :]
    return found


def _count(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 9


def secondary_datasets_problem(value: str, has_primary: bool = True) -> str | None:
    """What is wrong with a ``--secondaryDSs`` value (``StreamName:nFiles:DatasetName[:Pattern[:nSkipFiles]],...``),
    or None; intake checks what it can see before any placeholder is filled, the task builder the final value."""
    streams = {"IN"} if has_primary else set()
    for entry in value.split(","):
        parts = entry.split("#") if "#" in entry else entry.split(":")
        if len(parts) == 6:
            return f"--secondaryDSs entry {shown(entry)} names a local file list, which the server cannot read"
        if not 3 <= len(parts) <= 5 or not parts[0] or not parts[2] or not _count(parts[1]) or (len(parts) == 5 and parts[4] and not _count(parts[4])):
            return (f"bad --secondaryDSs entry {shown(entry)}; expected StreamName:nFiles:DatasetName[:Pattern[:nSkipFiles]]"
                    " (join several datasets of one stream with '^')")
        if parts[0] in streams:
            return f"--secondaryDSs uses stream {shown(parts[0])} twice"
        streams.add(parts[0])
    return None


def _secondary_inputs(spec, command: list[str], has_primary: bool) -> list[dict]:
    """Job parameters for ``--secondaryDSs StreamName:nFiles:DatasetName[:Pattern[:nSkipFiles]],...``, as prun makes
    them (MiscUtils.makeJediJobParam): JEDI's refiner registers each as a secondary input of the primary one."""
    value = _option(command, "--secondaryDSs")
    if not value:
        return []
    reusable = set((_option(command, "--reusableSecondary") or "").split(","))
    as_ratio = "--useNumFilesInSecDSsAsRatio" in command
    expand = "--notExpandSecDSs" not in command
    why = secondary_datasets_problem(value, has_primary)
    if why:
        raise TaskParamsError(f"step {spec.name!r}: {why}")
    items, streams = [], ["IN"] if has_primary else []
    for entry in value.split(","):
        parts = entry.split("#") if "#" in entry else entry.split(":")
        stream, n_files, dataset = parts[0], int(parts[1]), parts[2].replace("^", ",")
        item = {"type": "template", "param_type": "input", "value": f"${{{stream}}}", "dataset": dataset, "hidden": True}
        if len(parts) >= 4 and parts[3]:
            item["include"] = parts[3]
        if len(parts) == 5 and parts[4] and int(parts[4]) > 0:
            item["offset"] = int(parts[4])
        if expand:
            item["expand"] = True
        elif "," in dataset:
            # JEDI gathers several datasets of one stream into this container; named from the task so a resubmission
            # after a crash asks for the same one (prun uses a random uuid)
            scope = ".".join(spec.task_name.split(".")[:2])
            item["consolidate"] = f"{scope}.{uuid.uuid5(uuid.NAMESPACE_URL, f'{spec.task_name}/{stream}')}/"
        if n_files:
            item["ratio" if as_ratio else "nFilesPerJob"] = n_files
        if stream in reusable:
            item["reusable"] = True
        items.append(item)
        streams.append(stream)
    in_map = "{" + ", ".join(f"'{name}': ${{{name}/T}}" for name in streams) + "}"
    items.append({"type": "constant", "value": f'--inMap "{in_map}"'})
    return items


def _own_copy(document):
    """A copy of a client's task template that a step may edit. Templates are JSON documents (dicts, lists and
    immutable scalars), which this copies at a fraction of ``copy.deepcopy``'s cost (no memo of every object: it is
    one per submitted step of every pass); anything else goes to deepcopy."""
    kind = type(document)
    if kind is dict:
        return {key: _own_copy(value) for key, value in document.items()}
    if kind is list:
        return [_own_copy(value) for value in document]
    if kind in _IMMUTABLE:
        return document
    return copy.deepcopy(document)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def _prun_like(spec, ctx) -> dict:
    inputs = spec.inputs
    use_athena = bool(inputs.get("opt_useAthenaPackages")) and spec.type != "reana"
    image = inputs.get("opt_containerImage") or None
    templates = ctx.task_templates or {}
    template = templates.get("athena" if use_athena else "container")
    if template is None:
        raise TaskParamsError(f"step {spec.name!r}: the client sent no {'athena' if use_athena else 'container'} task template")
    params = _own_copy(template)
    exec_str = str(inputs.get("opt_exec") or "")
    args = str(inputs.get("opt_args") or "")
    if spec.type == "junction":
        args = _with_results_json(args)
    in_ds = _names(inputs.get("opt_inDS"), inputs.get("opt_inDsType"))
    sec_ds = _names(inputs.get("opt_secondaryDSs"), inputs.get("opt_secondaryDsTypes"))
    mapping = [(f"%{{DS{i + 1}}}", name) for i, name in enumerate(in_ds)]
    mapping += [(f"%{{SECDS{i + 1}}}", name) for i, name in enumerate(sec_ds)]
    if in_ds:
        mapping.append(("%{DS*}", ",".join(in_ds)))
    if sec_ds:
        mapping.append(("%{SECDS*}", ",".join(sec_ds)))
    mapping += [(f"%{{{k}}}", str(v)) for k, v in spec.placeholders.items() if not isinstance(v, (list, dict))]
    mapping += [(f"%{{{k}}}", ",".join(map(str, v))) for k, v in spec.placeholders.items() if isinstance(v, list)]
    exec_str, args = _substitute(exec_str, mapping), _substitute(args, mapping)
    try:
        command = ["prun", *_split(args)]
    except ValueError as exc:
        raise TaskParamsError(f"step {spec.name!r}: cannot split opt_args: {exc}") from None
    if in_ds and spec.type != "reana":
        command += ["--inDS", ",".join(in_ds), "--notExpandInDS", "--notExpandSecDSs"]
        if spec.type == "junction":
            command += ["--forceStaged", "--forceStagedSecondary"]
    command += ["--exec", exec_str, "--outDS", spec.task_name]
    if image:
        command += ["--containerImage", image]
    if use_athena:
        command.append("--useAthenaPackages")
    params["cliParams"] = shlex.join(command)
    params["execString"] = exec_str
    job_params = []
    for item in params.get("jobParameters", []):
        if item.get("type") == "constant" and item.get("value") == "__dummy_exec_str__":
            item = dict(item, value=exec_str)
        if item.get("type") == "template" and item.get("param_type") in ("input", "output"):
            continue
        job_params.append(item)
    if in_ds and spec.type != "reana":
        params.pop("noInput", None)  # a template from a no-input dry run must not hide the real input
        job_params.append({"type": "template", "param_type": "input", "value": '-i "${IN/T}"', "dataset": ",".join(in_ds), "expand": False, "exclude": "\\.log\\.tgz(\\.\\d+)*$"})
    secondaries = _secondary_inputs(spec, command, bool(in_ds)) if spec.type != "reana" else []
    if secondaries:
        job_params += secondaries
        params["reuseSecOnDemand"] = True
    for out_type in spec.output_types:
        job_params.append(
            {
                "type": "template",
                "param_type": "output",
                "value": f"{spec.task_name}.$JEDITASKID._${{SN/P}}.{out_type}",
                "dataset": f"{spec.task_name}_{out_type}/",
                "container": f"{spec.task_name}_{out_type}/",
                "hidden": True,
            }
        )
    params["jobParameters"] = job_params
    if not in_ds or spec.type == "reana":
        # like prun without --inDS: JEDI makes one pseudo input; keep the client's event counts if it sent them
        params["noInput"] = True
        params.setdefault("nEvents", 1)
        params.setdefault("nEventsPerJob", params["nEvents"])
    if image:
        params["container_name"] = image
        if "multiStepExec" in params:
            params["multiStepExec"].setdefault("containerOptions", {})["containerImage"] = image
    else:
        params.pop("container_name", None)
        params.pop("multiStepExec", None)
    params.pop("basePlatform", None)
    if spec.type in ("junction", "reana"):
        params["runOnInstant"] = True
    return params


def _gitlab(spec, ctx) -> dict:
    import json

    template = (ctx.task_templates or {}).get("container")
    if template is None:
        raise TaskParamsError(f"step {spec.name!r}: the client sent no container task template")
    inputs = spec.inputs
    params = _own_copy(template)
    params.update({"noInput": True, "nEventsPerJob": 1, "nEvents": 1, "useSecrets": True, "site": inputs.get("opt_site"), "cliParams": ""})
    params["processingType"] = re.sub(r"-[^-]+$", "-gitlab", params.get("processingType", "pchain-gitlab"))
    in_ds = _names(inputs.get("opt_inDS"), None)
    params["jobParameters"] = [
        {
            "type": "constant",
            "value": json.dumps(
                {
                    "project_api": inputs.get("opt_api"),
                    "project_id": int(inputs.get("opt_projectID") or 0),
                    "ref": inputs.get("opt_ref"),
                    "trigger_token": inputs.get("opt_triggerToken"),
                    "access_token": inputs.get("opt_accessToken"),
                    "input_datasets": ",".join(in_ds),
                    "input_location": inputs.get("opt_input_location"),
                }
            ),
        }
    ]
    params.pop("container_name", None)
    params.pop("multiStepExec", None)
    return params


def _phpo(spec, ctx) -> dict:
    template = (ctx.task_templates or {}).get("container")
    if template is None:
        raise TaskParamsError(f"step {spec.name!r}: the client sent no container task template")
    params = _own_copy(template)
    training = _names(spec.inputs.get("opt_trainingDS"), spec.inputs.get("opt_trainingDsType"))
    command = ["phpo", *_split(str(spec.inputs.get("opt_args") or ""))]
    if training:
        command += ["--trainingDS", ",".join(training)]
        params["trainingDS"] = ",".join(training)
    command += ["--outDS", spec.task_name]
    params["cliParams"] = shlex.join(command)
    params.pop("container_name", None)
    params.pop("multiStepExec", None)
    return params


def build_task_params(spec, ctx) -> dict:
    """Task parameter dict for ``insertTaskParamsPanda`` from a ``StepSpec`` and a ``RunContext``.

    Raises ``TaskParamsError`` (a ``StepDefinitionError``) when the step's values cannot make a task."""
    for name, value in spec.inputs.items():
        why = value_problem(name, value)
        if why:
            raise TaskParamsError(f"step {spec.name!r}: {why}")
    if spec.type in ("prun", "junction", "reana"):
        params = _prun_like(spec, ctx)
    elif spec.type == "gitlab":
        params = _gitlab(spec, ctx)
    elif spec.type == "phpo":
        params = _phpo(spec, ctx)
    else:
        raise TaskParamsError(f"step {spec.name!r}: type {spec.type!r} has no JEDI task")
    params["taskName"] = spec.task_name
    params["userName"] = ctx.user_name
    params["vo"] = ctx.vo
    params["prodSourceLabel"] = ctx.prod_source_label
    params["log"] = {
        "type": "template",
        "param_type": "log",
        "container": f"{spec.task_name}.log/",
        "dataset": f"{spec.task_name}.log/",
        "value": f"{spec.task_name}.log.$JEDITASKID.${{SN}}.log.tgz",
    }
    if spec.parent_task_name:
        params["noWaitParent"] = True
        params["parentTaskName"] = spec.parent_task_name
    else:
        params.pop("noWaitParent", None)
        params.pop("parentTaskName", None)
    if not spec.is_workflow_output:
        params["noEmail"] = True
    if spec.allow_empty_input:
        params["allowEmptyInput"] = True  # TaskRefinerBase reads its presence only; a client template may carry it too
    if ctx.workflow_id is not None:
        params["reqID"] = ctx.workflow_id
    params[TASK_PARAM_WORKFLOW_KEY] = {"workflow_id": ctx.workflow_id, "node_key": spec.node_key, "step": spec.name}
    return params


def output_containers(task_params: dict | None) -> list[tuple[str, str]]:
    """(container, output type) of every output a step's task writes, read back from its task parameters.

    The type is what follows the task name in the container name (``<task>_<type>/``), i.e. the file type the
    children select with ``opt_inDsType``; JEDI_WF_DATA keeps one row per container.
    """
    if not task_params:
        return []
    task = str(task_params.get("taskName", ""))
    found = []
    for item in task_params.get("jobParameters", []) or []:
        if item.get("type") != "template" or item.get("param_type") != "output":
            continue
        container = item.get("container") or item.get("dataset")
        if not container:
            continue
        kind = container.rstrip("/")
        kind = kind[len(task) + 1 :] if task and kind.startswith(f"{task}_") else kind
        found.append((container, kind))
    return found
