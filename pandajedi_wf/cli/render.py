"""Text for the ``pandajedi-wf`` command: readable tables, or JSON for scripts.  Pure: dicts in, str out."""

from __future__ import annotations

import datetime
import json
from typing import Any, Iterable, Sequence

MAX_CELL = 60


def to_json(value: Any) -> str:
    """Stable JSON (sorted keys; times as ISO strings) so scripts and diffs can rely on it."""
    return json.dumps(value, indent=2, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def cell(value: Any, width: int = MAX_CELL) -> str:
    """One table cell: empty for None, times to the second, long texts cut with an ellipsis."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, (list, tuple)):
        text = ",".join(str(v) for v in value)
    else:
        text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], indent: str = "") -> str:
    """Left-aligned columns sized to their widest cell; trailing spaces trimmed."""
    body = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(headers)]
    lines = [headers, *body]
    return "\n".join((indent + "  ".join(c.ljust(w) for c, w in zip(line, widths))).rstrip() for line in lines)


def workflow_list(items: list[dict]) -> str:
    if not items:
        return "no workflows found"
    rows = []
    for wf in items:
        counts = wf.get("steps_by_status") or {}
        progress = " ".join(f"{status}:{n}" for status, n in sorted(counts.items()))
        rows.append([wf.get("workflow_id"), wf.get("user_name"), wf.get("status"), wf.get("n_steps"), progress, wf.get("modification_time"), wf.get("name")])
    return table(["ID", "USER", "STATUS", "STEPS", "PROGRESS", "MODIFIED", "NAME"], rows)


def workflow_detail(wf: dict) -> str:
    name = f"  {wf['name']}" if wf.get("name") else ""
    lines = [f"workflow {wf.get('workflow_id')}{name}  [{wf.get('status')}]"]
    fields = [
        ("user", wf.get("user_name")),
        ("language", wf.get("language")),
        ("outDS", wf.get("out_ds")),
        ("created", wf.get("creation_time")),
        ("modified", wf.get("modification_time")),
        ("error", wf.get("error_dialog")),
    ]
    lines += [f"  {label:<9} {cell(value, 200)}" for label, value in fields if value not in (None, "")]
    steps = wf.get("steps") or []
    lines.append("")
    lines.append(f"steps ({len(steps)})")
    if steps:
        rows = [
            [
                s.get("node_key"),
                s.get("name"),
                s.get("step_type"),
                s.get("status"),
                s.get("jedi_task_id"),
                s.get("jedi_status"),
                s.get("attempt_nr"),
                _error(s),
            ]
            for s in steps
        ]
        lines.append(table(["KEY", "NAME", "TYPE", "STATUS", "JEDITASKID", "TASK STATUS", "ATTEMPT", "ERROR"], rows, "  "))
    data = wf.get("data") or []
    if data:
        lines += ["", f"data ({len(data)})"]
        rows = [[d.get("name"), d.get("data_type"), d.get("status"), _files(d)] for d in data]
        lines.append(table(["NAME", "TYPE", "STATUS", "FILES"], rows, "  "))
    commands = wf.get("commands") or []
    if commands:
        lines += ["", f"commands ({len(commands)})"]
        rows = [[c.get("command_id"), c.get("command"), c.get("status"), c.get("requester"), c.get("creation_time"), c.get("message")] for c in commands]
        lines.append(table(["ID", "COMMAND", "STATUS", "REQUESTER", "TIME", "MESSAGE"], rows, "  "))
    history = wf.get("history") or []
    if history:
        lines += ["", f"history ({len(history)})"]
        rows = [[h.get("time"), h.get("entity"), h.get("key"), f"{h.get('from') or ''} -> {h.get('to')}", h.get("why")] for h in history]
        lines.append(table(["TIME", "ENTITY", "KEY", "CHANGE", "WHY"], rows, "  "))
    return "\n".join(lines)


def _error(step: dict) -> str:
    if step.get("error_class") and step.get("error_dialog"):
        return f"[{step['error_class']}] {step['error_dialog']}"
    return step.get("error_dialog") or step.get("error_class") or ""


def _files(data: dict) -> str:
    total, done = data.get("n_files"), data.get("n_files_done")
    if total is None:
        return ""
    return f"{done or 0}/{total}"


def problems(items: list[dict]) -> str:
    lines = []
    for p in items:
        where = ", ".join(f"{k} {p[k]}" for k in ("file", "step") if p.get(k))
        lines.append(f"  - {(where + ': ') if where else ''}{p.get('message')}" + (f" [{p['code']}]" if p.get("code") else ""))
    return "\n".join(lines)


def validation(result: dict) -> str:
    steps = result.get("steps") or []
    if result.get("ok"):
        lines = [f"workflow description is valid: {len(steps)} step(s)"]
        if steps:
            rows = [[s.get("id"), s.get("name"), s.get("type"), s.get("parents")] for s in steps]
            lines.append(table(["ID", "NAME", "TYPE", "PARENTS"], rows, "  "))
    else:
        found = result.get("problems") or []
        lines = [f"workflow description is invalid: {len(found)} problem(s)", problems(found)]
    warnings = result.get("warnings") or []
    if warnings:
        lines += [f"{len(warnings)} warning(s)", problems(warnings)]
    return "\n".join(lines)


def submitted(result: dict) -> str:
    if not result.get("ok"):
        return validation(result)
    return f"workflow {result.get('workflow_id')} submitted ({result.get('status')}); follow it with: pandajedi-wf show {result.get('workflow_id')}"


def command_result(workflow_id: int, command: str, result: dict) -> str:
    status = result.get("status")
    ref = f" (command {result['command_id']})" if result.get("command_id") is not None else ""
    message = result.get("message") or ""
    if status == "queued":
        head = f"{command} of workflow {workflow_id} queued{ref}"
    elif status == "done":
        head = f"{command} of workflow {workflow_id} done{ref}"
    else:
        head = f"{command} of workflow {workflow_id} {status}{ref}"
    return f"{head}: {message}" if message else head
