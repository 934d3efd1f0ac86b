"""Read the database and build the snapshots (``snapshot.py``): the only module of the monitor that does I/O.

Every query is read-only and bounded (``taskbuffer/monitoring.py``), so a page costs about a dozen statements
however many workflows and staging requests exist.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Mapping

from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel.config import CarouselConfig, CarouselConfigError, load_config
from pandajedi_wf.core.clock import utcnow
from pandajedi_wf.taskbuffer import agent_heartbeats, carousel_jedi, monitoring
from pandajedi_wf.taskbuffer.connection import WfDatabase


from pandajedi_wf.api.errors import WorkflowNotFound

from . import dag, live, plots, snapshot


@dataclass(frozen=True)
class Limits:
    """How much one page may show; lists beyond these are cut (and the page says so)."""

    recent_workflows: int = 30
    failed_workflows: int = 15
    users: int = 500
    steps: int = 5000
    history: int = 300
    troubled_requests: int = 50
    staging: int = 500
    prestages: int = 500
    commands: int = 20
    found_workflows: int = 200
    history_requests: int = 20000


@dataclass
class MonitorSource:
    """Where the server gets its snapshots: a DB handle, the agents' periods, the VO of the carousel config."""

    db: WfDatabase
    periods: Mapping[str, int] = field(default_factory=lambda: dict(snapshot.DEFAULT_PERIODS))
    vo: str | None = None
    limits: Limits = Limits()
    versions: live.LiveVersions = field(default_factory=live.LiveVersions)

    def overview(self, user_name: str | None = None, now: datetime.datetime | None = None) -> dict:
        return overview(self.db, self.periods, user_name=user_name, vo=self.vo, now=now, limits=self.limits)

    def workflow(self, workflow_id: int, now: datetime.datetime | None = None) -> dict:
        return workflow_detail(self.db, workflow_id, now=now, limits=self.limits)

    def dag(self, workflow_id: int, opened: list[str] | None = None, now: datetime.datetime | None = None) -> dict:
        return workflow_dag(self.db, workflow_id, opened=opened, now=now, limits=self.limits, versions=self.versions)

    def live(self, workflow_id: int, since: str | None = None, now: datetime.datetime | None = None) -> dict:
        return workflow_live(self.db, workflow_id, since, limits=self.limits, versions=self.versions, now=now)

    def find(self, user_name: str | None = None, status: str | None = None, name: str | None = None, now: datetime.datetime | None = None) -> dict:
        return find_workflows(self.db, user_name=user_name, status=status, name=name, now=now, limits=self.limits)

    def workflow_of_task(self, jedi_task_id: int) -> int | None:
        return monitoring.workflow_of_task(self.db, jedi_task_id)

    def carousel_history(self, hours: float = 24, now: datetime.datetime | None = None) -> dict:
        return carousel_history(self.db, self.vo, hours=hours, now=now, limits=self.limits)


def _config(db: WfDatabase, vo: str | None) -> tuple[CarouselConfig, str | None, str]:
    """The carousel's config as the carousel reads it (CONFIG table), or the defaults plus the error when it does not
    validate; and where it came from, so an operator sees when the page (or the carousel) runs on defaults."""
    where = f"CONFIG app={carousel_jedi.CONFIG_APP} component={carousel_jedi.CONFIG_COMPONENT} key={carousel_jedi.CONFIG_KEY} vo={vo or '(none)'}"
    document = carousel_jedi.read_config_document(db, vo)
    source = where if document is not None else f"defaults: no row {where}"
    try:
        return load_config(document), None, source
    except CarouselConfigError as exc:
        return CarouselConfig(), f"{exc} (limits below are the defaults; the carousel admits nothing until this is fixed)", source


def overview(
    db: WfDatabase,
    periods: Mapping[str, int],
    *,
    user_name: str | None = None,
    vo: str | None = None,
    now: datetime.datetime | None = None,
    limits: Limits = Limits(),
) -> dict:
    now = now or utcnow()
    agents = snapshot.agent_health(agent_heartbeats.list_heartbeats(db), periods, now)
    recent = monitoring.recent_workflows(db, limits.recent_workflows, user_name)
    workflows = snapshot.workflows_panel(
        monitoring.workflow_counts(db, user_name, limits.users),
        recent,
        monitoring.step_counts(db, [int(r["workflow_id"]) for r in recent]),
        monitoring.recent_workflows(db, limits.failed_workflows, user_name, status="failed"),
        now,
    )
    config, config_error, config_source = _config(db, vo)
    stalled_before = now - datetime.timedelta(seconds=config.stuck_timeout_seconds)
    carousel = snapshot.carousel_panel(
        config,
        config_error,
        config_source,
        monitoring.requests_by_status(db),
        monitoring.load_by_tape(db),
        monitoring.buffer_use(db),
        monitoring.tape_throughput(db),
        monitoring.troubled_requests(db, stalled_before, limits.troubled_requests),
        now,
    )
    return snapshot.overview(agents, workflows, carousel, now, user_name)


def workflow_detail(db: WfDatabase, workflow_id: int, *, now: datetime.datetime | None = None, limits: Limits = Limits()) -> dict:
    now = now or utcnow()
    wf = monitoring.workflow(db, workflow_id)
    if wf is None:
        raise WorkflowNotFound(f"no workflow with id {workflow_id}")
    steps = monitoring.workflow_steps(db, workflow_id, limits.steps)
    history = monitoring.workflow_history(db, workflow_id, limits.history)
    return snapshot.workflow_detail(wf, steps, history, now, step_limit=limits.steps, history_limit=limits.history)


def workflow_dag(db: WfDatabase, workflow_id: int, *, opened: list[str] | None = None, now: datetime.datetime | None = None,
                 limits: Limits = Limits(), versions: live.LiveVersions | None = None) -> dict:
    """``workflow_detail`` plus the drawn DAG (``dag.build``) with its critical path marked, why skipped steps were
    skipped, the staging progress of the steps' tasks, the newest commands and the live cursor (``versions``)."""
    now = now or utcnow()
    wf = monitoring.workflow(db, workflow_id)
    if wf is None:
        raise WorkflowNotFound(f"no workflow with id {workflow_id}")
    rows = monitoring.dag_steps(db, workflow_id, limits.steps)
    history = monitoring.workflow_history(db, workflow_id, limits.history)
    reasons = monitoring.skip_reasons(db, workflow_id, limits.steps) if any(r["status"] == "skipped" for r in rows) else {}
    conditions = snapshot.definition_conditions(monitoring.workflow_definition(db, workflow_id))
    detail = snapshot.workflow_detail(wf, rows, history, now, step_limit=limits.steps, history_limit=limits.history, skip_reasons=reasons,
                                      conditions=conditions)
    summary, critical, slack = snapshot.critical_summary(rows, now)
    for item in detail["steps"]:
        item["critical"] = item["node_key"] in critical
        item["slack_seconds"] = round(slack[item["node_key"]]) if item["node_key"] in slack else None
    detail["critical_path"] = summary
    detail["dag"] = dag.build(detail["steps"], opened, critical=critical)
    keys = {int(r["step_id"]): r["node_key"] for r in rows}
    staging = monitoring.staging_of_workflow(db, workflow_id, limits.staging)
    detail["staging"] = _staging(staging, keys, now)
    prestages = monitoring.prestages_of_workflow(db, workflow_id, limits.prestages)
    detail["prestages"] = snapshot.prestage_panel(prestages, now)
    detail["prestages_truncated"] = len(prestages) >= limits.prestages
    detail["commands"] = [_command(c) for c in monitoring.latest_commands(db, workflow_id, limits.commands)]
    versions = versions if versions is not None else live.LiveVersions()
    detail["cursor"], _ = versions.advance(workflow_id, _live_state(rows, reasons, summary, staging, prestages), None)
    return detail


def _staging(rows: list[dict], keys: Mapping[int, str], now: datetime.datetime) -> dict[str, list[dict]]:
    return {str(k): v for k, v in snapshot.staging_panel(rows, keys, now).items()}


def _command(row: dict) -> dict:
    return {
        "command_id": int(row["command_id"]), "command": row["command"], "params": row.get("params"),
        "requester": row.get("requester"), "role": row.get("requester_role"), "status": row["status"],
        "message": row.get("message") or "", "created": snapshot.when(row.get("creation_time")), "done": snapshot.when(row.get("done_time")),
    }


# the live state's items for the critical path, the staging table and the pre-stages (steps: ids)
_CRITICAL, _STAGING, _PRESTAGES = "critical", "staging", "prestages"


def _live_state(rows: list[dict], reasons: Mapping[int, str], summary: Mapping, staging: list[dict], prestages: list[dict]) -> dict:
    state: dict = {
        int(r["step_id"]): (r["status"], r.get("jedi_status"), r.get("jedi_task_id"), r.get("error_dialog"), reasons.get(int(r["step_id"])))
        for r in rows
    }
    # the ETA to the minute: the remaining time shrinks every second a running step runs, its end does not move
    state[_CRITICAL] = ((summary.get("eta") or "")[:16], tuple(summary.get("templates") or ()), summary.get("unknown"), summary.get("error"))
    state[_STAGING] = tuple((r["request_id"], r["jedi_task_id"], r["status"], r.get("staged_files"), r.get("staged_size"), r.get("error_dialog"),
                             r.get("released_time") is not None, r.get("last_progress_time")) for r in staging)
    state[_PRESTAGES] = tuple((r["dataset"], r.get("request_id"), r.get("outcome"), r.get("taken_time"), r.get("released_time"),
                               r.get("request_status"), r.get("staged_size"), r.get("request_error")) for r in prestages)
    return state


def workflow_live(db: WfDatabase, workflow_id: int, since: str | None, *, limits: Limits = Limits(),
                  versions: live.LiveVersions | None = None, now: datetime.datetime | None = None) -> dict:
    """What changed since ``since`` (a cursor of the page or of this function): the workflow's status, only the
    steps whose status, JEDI task, JEDI status, error or skip reason changed (all of them for an unknown cursor),
    the critical path, the staging of the steps' tasks and the pre-stages when they moved, the step count (a new count means new
    steps: redraw) and the newest commands."""
    now = now or utcnow()
    wf = monitoring.workflow_live(db, workflow_id)
    if wf is None:
        raise WorkflowNotFound(f"no workflow with id {workflow_id}")
    rows = monitoring.dag_steps(db, workflow_id, limits.steps)
    reasons = monitoring.skip_reasons(db, workflow_id, limits.steps) if any(r["status"] == "skipped" for r in rows) else {}
    summary, _, _ = snapshot.critical_summary(rows, now)
    staging = monitoring.staging_of_workflow(db, workflow_id, limits.staging)
    prestages = monitoring.prestages_of_workflow(db, workflow_id, limits.prestages)
    versions = versions if versions is not None else live.LiveVersions()
    cursor, changed = versions.advance(workflow_id, _live_state(rows, reasons, summary, staging, prestages), since)
    wanted = None if changed is None else set(changed)
    steps = [
        {"step_id": int(r["step_id"]), "node_key": r["node_key"], "status": r["status"], "jedi_status": r.get("jedi_status"),
         "jedi_task_id": int(r["jedi_task_id"]) if r.get("jedi_task_id") is not None else None, "error_dialog": r.get("error_dialog"),
         "skip_reason": reasons.get(int(r["step_id"]))}
        for r in rows if wanted is None or int(r["step_id"]) in wanted
    ]
    return {
        "workflow": {"workflow_id": workflow_id, "status": wf["status"], "error_dialog": wf.get("error_dialog"),
                     "changed": snapshot.when(wf.get("status_change_time"))},
        "cursor": cursor,
        "full": wanted is None,
        "n_steps": len(rows),
        "steps": steps,
        "critical_path": summary if wanted is None or _CRITICAL in wanted else None,
        "staging": _staging(staging, {int(r["step_id"]): r["node_key"] for r in rows}, now) if wanted is None or _STAGING in wanted else None,
        "prestages": snapshot.prestage_panel(prestages, now) if wanted is None or _PRESTAGES in wanted else None,
        "truncated": len(rows) >= limits.steps,
        "commands": [_command(c) for c in monitoring.latest_commands(db, workflow_id, 5)],
    }


def find_workflows(db: WfDatabase, *, user_name: str | None = None, status: str | None = None, name: str | None = None,
                   now: datetime.datetime | None = None, limits: Limits = Limits()) -> dict:
    now = now or utcnow()
    rows = monitoring.find_workflows(db, limits.found_workflows, user_name=user_name, status=status, name_part=name)
    counts = monitoring.step_counts(db, [int(r["workflow_id"]) for r in rows])
    panel = snapshot.workflows_panel([], rows, counts, [], now)
    return {"generated_at": snapshot.when(now), "filters": {"user": user_name, "status": status, "name": name},
            "workflows": panel["recent"], "truncated": len(rows) >= limits.found_workflows}


def carousel_history(db: WfDatabase, vo: str | None, *, hours: float = 24, now: datetime.datetime | None = None, limits: Limits = Limits()) -> dict:
    """The carousel now (the overview's panel) and over the last ``hours`` (``plots.series``)."""
    now = now or utcnow()
    config, config_error, config_source = _config(db, vo)
    stalled_before = now - datetime.timedelta(seconds=config.stuck_timeout_seconds)
    panel = snapshot.carousel_panel(
        config, config_error, config_source, monitoring.requests_by_status(db), monitoring.load_by_tape(db), monitoring.buffer_use(db),
        monitoring.tape_throughput(db), monitoring.troubled_requests(db, stalled_before, limits.troubled_requests), now,
    )
    since = now - datetime.timedelta(hours=hours)
    rows = monitoring.request_intervals(db, since, limits.history_requests)
    # the carousel's own history of the requests that moved: switch times cut their tape intervals, reasons listed
    moved = [int(r["request_id"]) for r in rows if int(r.get("n_source_switches") or 0) > 0 or r["status"] in (lc.QUEUED, lc.FAILED)]
    events = monitoring.request_events(db, moved, (lc.SWITCHING, lc.QUEUED, lc.FAILED)) if moved else []
    switches: dict[int, list[datetime.datetime]] = {}
    for e in events:
        if e["to_status"] == lc.SWITCHING:
            switches.setdefault(int(e["request_id"]), []).append(e["transition_time"])
    history = plots.series(rows, now, hours=hours, switches=switches)
    history["events"] = plots.switch_events(rows, events, since, limits.troubled_requests)
    history["truncated"] = len(rows) >= limits.history_requests
    # the requests workflow pre-stages made or joined (active, or released in the period), with their workflows
    prestaged = monitoring.prestage_requests(db, since, limits.prestages)
    prestages = {"requests": snapshot.prestage_requests_panel(prestaged, now), "truncated": len(prestaged) >= limits.prestages}
    return {"generated_at": snapshot.when(now), "carousel": panel, "history": history, "prestages": prestages}
