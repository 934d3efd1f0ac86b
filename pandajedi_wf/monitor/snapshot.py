"""Query results -> one plain "snapshot": the data the monitoring page shows, as JSON-ready dicts and lists.

Pure functions (no DB, no JEDI): the page, the ``/json`` answer and the tests all read the same structure.
Times are strings ``YYYY-MM-DD HH:MM:SS`` (naive UTC, PanDA's convention) with ages in seconds beside them.
"""

from __future__ import annotations

import datetime
from typing import Iterable, Mapping

from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel.config import CarouselConfig
from pandajedi_wf.carousel.source_choice import byte_window, mean_file_bytes
from pandajedi_wf.carousel.state import Load
from pandajedi_wf.taskbuffer import staging_prestages
from pandajedi_wf.workflow.critical_path import (  # noqa: F401 (container_of: the monitor's name for it)
    CriticalPathError,
    container_of,
    effective_parents,
    of_step_rows,
    template_of,
)
from pandajedi_wf.workflow.model import COND_AND, COND_OR, Condition, Workflow

# seconds between cycles of our WatchDog plugins when panda_jedi.cfg does not say (README: procConfig example)
DEFAULT_PERIODS = {"wf_processor": 60, "wf_carousel": 300}
LATE_FACTOR = 3  # an agent whose last cycle is older than this many periods is flagged


def when(value: datetime.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else None


def age_seconds(value: datetime.datetime | None, now: datetime.datetime) -> float | None:
    return round((now - value).total_seconds(), 1) if value is not None else None


# ---- agents ------------------------------------------------------------------------------------------------


def agent_periods(proc_config: str | None) -> dict[str, int]:
    """Cycle period per WatchDog subType from ``[watchdog] procConfig`` (``vo:label:nProc:subType:period;...``).

    Entries without a period or with a non-numeric one are skipped; the defaults fill in our two agents.
    """
    periods = dict(DEFAULT_PERIODS)
    for entry in (proc_config or "").split(";"):
        parts = [p.strip() for p in entry.strip().split(":")]
        if len(parts) >= 5 and parts[3] and parts[4].isdigit() and int(parts[4]) > 0:
            periods[parts[3]] = int(parts[4])
    return periods


def agent_vo(proc_config: str | None, agent: str) -> str | None:
    """The VO an agent runs for, from its ``procConfig`` entry (the carousel reads its CONFIG row for that VO)."""
    for entry in (proc_config or "").split(";"):
        parts = [p.strip() for p in entry.strip().split(":")]
        if len(parts) >= 4 and parts[3] == agent and parts[0]:
            return parts[0]
    return None


def agent_health(heartbeats: Iterable[Mapping], periods: Mapping[str, int], now: datetime.datetime) -> list[dict]:
    """One entry per heartbeat row, plus one per expected agent (a key of ``periods``) that has none.

    ``problem`` is None for a healthy agent, else why it is flagged: its last cycle failed, or it ended longer
    ago than ``LATE_FACTOR`` periods (the agent is dead, hung, or JEDI is not running it).
    """
    found: list[dict] = []
    seen = set()
    for hb in heartbeats:
        agent = hb["agent"]
        seen.add(agent)
        period = periods.get(agent)
        age = age_seconds(hb.get("cycle_end"), now)
        stats = hb.get("stats") or {}
        problems = []
        if hb.get("last_status") != "ok":
            problems.append(f"last cycle {hb.get('last_status') or 'unknown'}: {hb.get('last_message') or 'no message'}")
        if age is None:
            problems.append("never finished a cycle")
        elif period is not None and age > LATE_FACTOR * period:
            problems.append(f"no cycle for {duration(age)} (period {duration(period)}, flagged after {LATE_FACTOR}x)")
        found.append(
            {
                "agent": agent,
                "pid": hb.get("pid"),
                "host": hb.get("host"),
                "status": hb.get("last_status"),
                "message": hb.get("last_message") or "",
                "last_cycle_end": when(hb.get("cycle_end")),
                "age_seconds": age,
                "period_seconds": period,
                "n_cycles": int(hb.get("n_cycles") or 0),
                "cycle_seconds": stats.get("cycle_seconds") if isinstance(stats, dict) else None,
                "problem": "; ".join(problems) or None,
            }
        )
    for agent in sorted(set(periods) - seen):
        found.append(
            {
                "agent": agent, "pid": None, "host": None, "status": None, "message": "", "last_cycle_end": None,
                "age_seconds": None, "period_seconds": periods[agent], "n_cycles": 0, "cycle_seconds": None,
                "problem": "no heartbeat recorded: the agent has never run against this database",
            }
        )
    return sorted(found, key=lambda a: (a["agent"], a["pid"] or ""))


def duration(seconds: float | None) -> str:
    """Short human duration: 45s, 12m, 3h05m, 2d04h."""
    if seconds is None:
        return "-"
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


# ---- workflows ---------------------------------------------------------------------------------------------


def _workflow_row(row: Mapping, now: datetime.datetime) -> dict:
    return {
        "workflow_id": int(row["workflow_id"]),
        "name": row.get("name") or "",
        "user_name": row.get("user_name") or "",
        "status": row["status"],
        "language": row.get("language"),
        "created": when(row.get("creation_time")),
        "changed": when(row.get("status_change_time")),
        "changed_age_seconds": age_seconds(row.get("status_change_time"), now),
        "error_dialog": row.get("error_dialog"),
    }


def workflows_panel(
    counts: Iterable[tuple[str, str, int]],
    recent: Iterable[Mapping],
    step_counts: Mapping[int, Mapping[str, int]],
    failed: Iterable[Mapping],
    now: datetime.datetime,
) -> dict:
    """Status counts per user, the newest workflows with their steps per status, and the latest failures."""
    by_user: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for user, status, n in counts:
        by_user.setdefault(user, {})[status] = by_user.get(user, {}).get(status, 0) + n
        totals[status] = totals.get(status, 0) + n
    recent_rows = []
    for row in recent:
        item = _workflow_row(row, now)
        steps = dict(step_counts.get(item["workflow_id"], {}))
        item["steps_by_status"] = dict(sorted(steps.items(), key=lambda kv: (status_rank(kv[0]), kv[0])))
        item["n_steps"] = sum(steps.values())
        recent_rows.append(item)
    return {
        "by_user": [{"user_name": user, "counts": dict(sorted(c.items())), "total": sum(c.values())} for user, c in sorted(by_user.items())],
        "totals": dict(sorted(totals.items())),
        "recent": recent_rows,
        "failed": [_workflow_row(row, now) for row in failed],
    }


# statuses in the order they are shown in bars and legends: ended well, ended badly, moving, waiting
_STATUS_ORDER = (
    "done", "finished", "failed", "cancelled", "cancelling", "finishing", "running", "retrying", "submitted", "submitting",
    "staging", "switching", "paused", "ready", "parsed", "registered", "defined", "queued", "skipped", "retired",
)


def status_rank(status: str) -> int:
    return _STATUS_ORDER.index(status) if status in _STATUS_ORDER else len(_STATUS_ORDER)


def dag_depths(steps: Iterable[Mapping]) -> dict[str, int]:
    """Depth of each step in its DAG: 0 without parents among the steps, else one more than its deepest parent.

    Body steps of a sub-workflow (or scatter/loop) come after their container, and a step that depends on a container
    comes after the container's whole body (``critical_path.effective_parents``), so the levels read in execution
    order. Parent keys naming no listed step (a truncated list) are ignored; a cycle, which the engine never writes,
    is cut rather than looped on.
    """
    parents = effective_parents({s["node_key"]: s.get("parent_keys") or [] for s in steps})
    depth: dict[str, int] = {}
    for start in parents:
        stack = [(start, False)]
        on_path: set[str] = set()
        while stack:
            key, expanded = stack.pop()
            if key in depth:
                continue
            known = [p for p in parents[key] if p not in on_path]
            if expanded:
                on_path.discard(key)
                depth[key] = 1 + max((depth.get(p, 0) for p in known), default=-1)
                continue
            on_path.add(key)
            stack.append((key, True))
            stack.extend((p, False) for p in known if p not in depth)
    return depth


def workflow_detail(
    wf: Mapping,
    steps: list[Mapping],
    history: list[Mapping],
    now: datetime.datetime,
    *,
    step_limit: int,
    history_limit: int,
    skip_reasons: Mapping[int, str] | None = None,
    conditions: Mapping[int, str] | None = None,
) -> dict:
    """One workflow: its steps as DAG levels (by depth) and its latest transitions (newest first); a conditional
    step carries its condition as the user wrote it, a skipped one why it was skipped."""
    depths = dag_depths(steps)
    keys = {int(s["step_id"]): s["node_key"] for s in steps}
    step_items = [
        {
            "step_id": int(s["step_id"]),
            "node_key": s["node_key"],
            "name": s.get("name") or "",
            "step_type": s.get("step_type"),
            "status": s["status"],
            "depth": depths.get(s["node_key"], 0),
            "parents": list(s.get("parent_keys") or []),
            "iteration": int(s.get("iteration") or 0),
            "scatter_index": s.get("scatter_index"),
            "jedi_task_id": int(s["jedi_task_id"]) if s.get("jedi_task_id") is not None else None,
            "jedi_status": s.get("jedi_status"),
            "task_name": s.get("task_name"),
            "attempt_nr": int(s.get("attempt_nr") or 0),
            "error_dialog": s.get("error_dialog"),
            "changed": when(s.get("status_change_time")),
            "condition_text": (conditions or {}).get(s.get("node_id")) or condition_text(s.get("condition")),
            "skip_reason": (skip_reasons or {}).get(int(s["step_id"])) if s["status"] == "skipped" else None,
        }
        for s in steps
    ]
    levels: dict[int, list[str]] = {}
    for item in sorted(step_items, key=lambda i: (i["depth"], i["node_key"])):
        levels.setdefault(item["depth"], []).append(item["node_key"])
    by_status: dict[str, int] = {}
    for item in step_items:
        by_status[item["status"]] = by_status.get(item["status"], 0) + 1
    summary = _workflow_row(wf, now)
    summary["out_ds"] = wf.get("out_ds")
    summary["parent_workflow_id"] = int(wf["parent_workflow_id"]) if wf.get("parent_workflow_id") is not None else None
    return {
        "generated_at": when(now),
        "workflow": summary,
        "steps": step_items,
        "steps_by_status": dict(sorted(by_status.items(), key=lambda kv: (status_rank(kv[0]), kv[0]))),
        "levels": [levels[d] for d in sorted(levels)],
        "steps_truncated": len(steps) >= step_limit,
        "history": [
            {
                "time": when(h["transition_time"]),
                "entity": h["entity_type"],
                "key": keys.get(int(h["entity_id"]), str(h["entity_id"])) if h["entity_type"] == "step" else str(h["entity_id"]),
                "from": h.get("from_status"),
                "to": h["to_status"],
                "why": h.get("reason") or "",
                "actor": h.get("actor") or "",
            }
            for h in history
        ],
        "history_truncated": len(history) >= history_limit,
    }


def definition_conditions(definition: Mapping | None) -> dict[int, str]:
    """Node id -> its ``when`` text, for every conditional node of a stored definition (sub-workflows included)."""
    if not definition:
        return {}
    try:
        workflow = Workflow.from_dict(dict(definition))
    except (KeyError, TypeError, ValueError, AttributeError):
        return {}
    return {node.id: condition_text(node.condition.to_dict()) for node in workflow.walk() if node.condition is not None}


def condition_text(condition: Mapping | None) -> str | None:
    """A stored step condition (``Condition.to_dict``) as the ``when`` text it came from: ``self.a && !self.b``."""
    if not condition:
        return None
    try:
        text = str(Condition.from_dict(dict(condition)))
    except (KeyError, TypeError, ValueError, AttributeError):
        return "(unreadable condition)"
    return text[1:-1] if condition.get("kind") in (COND_AND, COND_OR) and text.startswith("(") and text.endswith(")") else text


# ---- critical path -----------------------------------------------------------------------------------------


def critical_summary(rows: list[Mapping], now: datetime.datetime, defaults: Mapping[str, float] | None = None,
                     shown: int = 200) -> tuple[dict, frozenset[str], dict[str, float]]:
    """The workflow's remaining time and its critical steps (``workflow.critical_path``), estimates taken from the
    measured durations of like steps in the same workflow (``critical_path.estimates``), as JSON-ready summary
    (``templates``: the definition nodes of the critical steps, what the drawn DAG marks), plus the critical step
    keys and each step's slack in seconds."""
    try:
        cp = of_step_rows(rows, now, defaults)
    except CriticalPathError as exc:
        return ({"error": str(exc), "remaining_seconds": None, "remaining": None, "eta": None, "known": False, "unknown": 0, "overdue": [],
                 "n_critical": 0, "steps": [], "templates": []}, frozenset(), {})
    remaining = round(cp.remaining)
    summary = {
        "error": None,
        "remaining_seconds": remaining,
        "remaining": duration(remaining),
        "eta": when(now + datetime.timedelta(seconds=remaining)),
        "known": cp.known,
        "unknown": len(cp.unknown),
        "overdue": list(cp.overdue[:shown]),
        "n_critical": len(cp.critical),
        "steps": list(cp.critical[:shown]),
        "templates": sorted({template_of(k) for k in cp.critical}),
    }
    return summary, frozenset(cp.critical), dict(cp.slack)


# ---- staging of a workflow's tasks ---------------------------------------------------------------------------


def staging_panel(rows: Iterable[Mapping], keys: Mapping[int, str], now: datetime.datetime) -> dict[int, list[dict]]:
    """Per step id, the staging requests its JEDI task waits on: files and bytes staged against the dataset's, the
    request's status, source tape and why it is stuck or switching when it is."""
    found: dict[int, list[dict]] = {}
    for r in rows:
        total, staged = int(r.get("total_files") or 0), int(r.get("staged_files") or 0)
        size, staged_size = int(r.get("dataset_size") or 0), int(r.get("staged_size") or 0)
        progress = r.get("last_progress_time") or r.get("start_time")
        found.setdefault(int(r["step_id"]), []).append({
            "node_key": keys.get(int(r["step_id"])),
            "jedi_task_id": int(r["jedi_task_id"]),
            "request_id": int(r["request_id"]),
            "dataset": r["dataset"],
            "status": r["status"],
            "released": r.get("released_time") is not None,
            "tape": r.get("source_rse"),
            "destination": r.get("destination_rse"),
            "files_staged": staged, "files_total": total,
            "bytes_staged": staged_size, "bytes_total": size,
            "fraction": staged_size / size if size else (staged / total if total else None),
            "switches": int(r.get("n_source_switches") or 0),
            "last_progress": when(progress),
            "idle_seconds": age_seconds(progress, now) if r["status"] in lc.IN_FLIGHT else None,
            "error": r.get("error_dialog"),
        })
    return found


# ---- workflow-level pre-staging -----------------------------------------------------------------------------

PLANNED, RELEASED = "planned", "released"
# a pre-stage's state while its request lives: the request's status, in the words of the pre-stage
_REQUEST_STATE = {lc.QUEUED: "queued", lc.SUBMITTING: "staging", lc.STAGING: "staging", lc.SWITCHING: "staging", lc.DONE: "done"}
# taken in without a request: the carousel's finding
_NO_REQUEST_STATE = {staging_prestages.ON_DISK: "on disk", staging_prestages.UNAVAILABLE: "unavailable"}


def prestage_state(row: Mapping) -> str:
    """planned (not taken in by the carousel yet), then queued / staging / done as its request moves, released once
    the workflow no longer needs it; "on disk" or "unavailable" when the carousel found nothing to recall, and the
    request's own status when it gave up (cancelled, failed, retired)."""
    if row.get("released_time") is not None:
        return RELEASED
    if row.get("taken_time") is None:
        return PLANNED
    if row.get("request_id") is None:
        return _NO_REQUEST_STATE.get(row.get("outcome"), str(row.get("outcome") or PLANNED))
    return _REQUEST_STATE.get(row.get("request_status"), str(row.get("request_status")))


def prestage_entry(row: Mapping, now: datetime.datetime) -> dict:
    size, staged = int(row.get("dataset_size") or 0), int(row.get("staged_size") or 0)
    need_by = row["need_by_time"]
    return {
        "workflow_id": int(row["workflow_id"]),
        "dataset": row["dataset"],
        "node_key": row["node_key"],
        "state": prestage_state(row),
        "need_by": when(need_by),
        "ready_by": when(row.get("ready_time")),
        "due_in_seconds": (need_by - now).total_seconds() if need_by is not None else None,
        "planned": when(row.get("creation_time")),
        "taken": when(row.get("taken_time")),
        "released": when(row.get("released_time")),
        "request_id": int(row["request_id"]) if row.get("request_id") is not None else None,
        # made the request, or joined one that existed (another workflow's pre-stage, or a task's)
        "joined": row.get("outcome") == staging_prestages.SHARED,
        "outcome": row.get("outcome"),
        "request_status": row.get("request_status"),
        "tape": row.get("source_rse"),
        "destination": row.get("destination_rse"),
        "files_staged": int(row.get("staged_files") or 0), "files_total": int(row.get("total_files") or 0),
        "bytes_staged": staged, "bytes_total": size,
        "request_need_by": when(row.get("request_need_by_time")),
        "error": row.get("request_error"),
    }


def prestage_panel(rows: Iterable[Mapping], now: datetime.datetime) -> list[dict]:
    """A workflow's pre-stages as the page shows them, in the order read (earliest need-by first)."""
    return [prestage_entry(r, now) for r in rows]


def prestage_requests_panel(rows: Iterable[Mapping], now: datetime.datetime) -> list[dict]:
    """Per staging request that pre-stages made or joined: the request and, for each workflow whose pre-stage it
    serves, that pre-stage (its need-by, state, released or not); earliest need-by first."""
    found: dict[int, dict] = {}
    for r in rows:
        entry = prestage_entry(r, now)
        request = found.setdefault(entry["request_id"], {
            "request_id": entry["request_id"], "dataset": r["dataset"], "status": r.get("request_status"), "tape": entry["tape"],
            "destination": entry["destination"], "bytes_staged": entry["bytes_staged"], "bytes_total": entry["bytes_total"],
            "need_by": entry["request_need_by"], "workflows": [],
        })
        request["workflows"].append({"workflow_id": entry["workflow_id"], "name": r.get("workflow_name"), "user_name": r.get("user_name"),
                                     "workflow_status": r.get("workflow_status"), "node_key": entry["node_key"], "need_by": entry["need_by"],
                                     "state": entry["state"], "joined": entry["joined"]})
    return list(found.values())


# ---- data carousel -----------------------------------------------------------------------------------------


def _fill(used: int, limit: int | None) -> float | None:
    """Fraction of ``limit`` in use; None when there is no limit (None) or it is zero (nothing may be admitted)."""
    if not limit:
        return None
    return used / limit


def carousel_panel(
    config: CarouselConfig,
    config_error: str | None,
    config_source: str,
    by_status: Iterable[tuple[str, int, datetime.datetime | None]],
    tape_load: Iterable[Mapping],
    buffers: Iterable[tuple[str, int]],
    throughput: Iterable[Mapping],
    troubled: Iterable[Mapping],
    now: datetime.datetime,
) -> dict:
    """Per tape: files and bytes in flight against its limits and the release threshold, requests by status and the
    measured throughput; then disk buffers, the oldest queued request and the requests that need a look."""
    status_counts: dict[str, int] = {}
    oldest_queued = None
    for status, n, oldest in by_status:
        status_counts[status] = n
        if status == lc.QUEUED:
            oldest_queued = oldest
    tapes: dict[str, dict] = {}

    def tape_entry(name: str) -> dict:
        if name not in tapes:
            limits = config.tape(name)
            tapes[name] = {
                "tape": name, "max_files": limits.max_files, "max_bytes": limits.max_bytes,
                "active": limits.active, "excluded": name in config.excluded_tapes,
                "files_in_flight": 0, "bytes_in_flight": 0, "requests": {},
                "throughput_bps": None, "throughput_samples": 0, "throughput_updated": None,
            }
        return tapes[name]

    for name in config.tapes:
        tape_entry(name)
    unassigned: dict[str, int] = {}
    waiting = []  # files and bytes still to stage, as the admission averages them to size the byte windows
    for row in tape_load:
        waiting.append(Load(int(row["files_left"] or 0), int(row["bytes_left"] or 0)))
        if row["tape"] is None:  # queued (or pinned disk replicas): no tape chosen yet
            unassigned[row["status"]] = unassigned.get(row["status"], 0) + int(row["n_requests"])
            continue
        entry = tape_entry(row["tape"])
        entry["requests"][row["status"]] = entry["requests"].get(row["status"], 0) + int(row["n_requests"])
        if row["status"] in lc.IN_FLIGHT:
            entry["files_in_flight"] += int(row["files_left"] or 0)
            entry["bytes_in_flight"] += int(row["bytes_left"] or 0)
    for row in throughput:
        entry = tape_entry(row["tape"])
        entry["throughput_bps"] = float(row["throughput_bps"]) if row.get("throughput_bps") is not None else None
        entry["throughput_samples"] = int(row.get("n_samples") or 0)
        entry["throughput_updated"] = when(row.get("updated_at"))
    # the bytes a tape is given are its bandwidth-delay window (source_choice.byte_window), at most max_bytes:
    # the fill shown is against the window the admission uses, or a tape would look half empty while refused
    measured = {t["tape"]: t["throughput_bps"] for t in tapes.values() if t["throughput_bps"]}
    mean = mean_file_bytes(waiting)
    for entry in tapes.values():
        entry["byte_window"] = int(byte_window(entry["tape"], mean, measured, config))
        entry["files_fill"] = _fill(entry["files_in_flight"], entry["max_files"])
        entry["bytes_fill"] = _fill(entry["bytes_in_flight"], entry["byte_window"])
        fills = [f for f in (entry["files_fill"], entry["bytes_fill"]) if f is not None]
        worst = max(fills, default=0.0)
        closed = entry["max_files"] == 0 or entry["max_bytes"] == 0
        entry["accepts_new_work"] = entry["active"] and not entry["excluded"] and not closed and worst < config.release_threshold
        entry["state"] = (
            "excluded" if entry["excluded"] else "inactive" if not entry["active"] else "closed (a limit is 0)" if closed
            else "over limit" if worst > 1 else "above release threshold" if worst >= config.release_threshold else "accepting"
        )
        entry["requests"] = dict(sorted(entry["requests"].items(), key=lambda kv: status_rank(kv[0])))
    stuck_after = config.stuck_timeout_seconds
    return {
        "config_error": config_error,
        "config_source": config_source,
        "release_threshold": config.release_threshold,
        "stuck_timeout_seconds": stuck_after,
        "tapes": sorted(tapes.values(), key=lambda t: (-max(t["files_fill"] or 0, t["bytes_fill"] or 0), t["tape"])),
        "requests_by_status": dict(sorted(status_counts.items(), key=lambda kv: (status_rank(kv[0]), kv[0]))),
        "requests_without_tape": dict(sorted(unassigned.items())),
        "oldest_queued_since": when(oldest_queued),
        "oldest_queued_age_seconds": age_seconds(oldest_queued, now),
        "buffers": [
            {"destination": dest, "bytes_held": held, "limit_bytes": config.disk_buffer_bytes(dest), "fill": _fill(held, config.disk_buffer_bytes(dest))}
            for dest, held in sorted(buffers)
        ],
        "troubled": [_troubled(row, stuck_after, now) for row in troubled],
    }


def _troubled(row: Mapping, stuck_after: int, now: datetime.datetime) -> dict:
    progress = row.get("last_progress_time") or row.get("start_time") or row.get("creation_time")
    idle = age_seconds(progress, now)
    if row["status"] == lc.SWITCHING:
        reason = f"switching source: {row.get('error_dialog') or 'no reason recorded'}"
    elif row["status"] == lc.STAGING:
        reason = f"no new file for {duration(idle)} (stuck timeout {duration(stuck_after)})"
    else:
        reason = f"back in the queue: {row.get('error_dialog')}"
    return {
        "request_id": int(row["request_id"]),
        "dataset": row["dataset"],
        "status": row["status"],
        "tape": row.get("source_rse"),
        "destination": row.get("destination_rse"),
        "files": f"{int(row.get('staged_files') or 0)}/{int(row.get('total_files') or 0)}",
        "switches": int(row.get("n_source_switches") or 0),
        "last_progress": when(progress),
        "idle_seconds": idle,
        "reason": reason,
    }


def overview(agents: list[dict], workflows: dict, carousel: dict, now: datetime.datetime, user_name: str | None = None) -> dict:
    """The whole overview snapshot; ``healthy`` is False when any agent is flagged or the carousel config is bad."""
    return {
        "generated_at": when(now),
        "user_name": user_name,
        "healthy": not any(a["problem"] for a in agents) and not carousel.get("config_error"),
        "agents": agents,
        "workflows": workflows,
        "carousel": carousel,
    }
