"""Read the database and build the snapshots (``snapshot.py``): the only module of the monitor that does I/O.

Every query is read-only and bounded (``taskbuffer/monitoring.py``), so a page costs about a dozen statements
however many workflows and staging requests exist.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Mapping

from pandajedi_wf.carousel.config import CarouselConfig, CarouselConfigError, load_config
from pandajedi_wf.core.clock import utcnow
from pandajedi_wf.taskbuffer import agent_heartbeats, carousel_jedi, monitoring
from pandajedi_wf.taskbuffer.connection import WfDatabase

from . import snapshot


class WorkflowNotFound(LookupError):
    """No workflow with the id asked for."""


@dataclass(frozen=True)
class Limits:
    """How much one page may show; lists beyond these are cut (and the page says so)."""

    recent_workflows: int = 30
    failed_workflows: int = 15
    users: int = 500
    steps: int = 2000
    history: int = 300
    troubled_requests: int = 50


@dataclass
class MonitorSource:
    """Where the server gets its snapshots: a DB handle, the agents' periods, the VO of the carousel config."""

    db: WfDatabase
    periods: Mapping[str, int] = field(default_factory=lambda: dict(snapshot.DEFAULT_PERIODS))
    vo: str | None = None
    limits: Limits = Limits()

    def overview(self, user_name: str | None = None, now: datetime.datetime | None = None) -> dict:
        return overview(self.db, self.periods, user_name=user_name, vo=self.vo, now=now, limits=self.limits)

    def workflow(self, workflow_id: int, now: datetime.datetime | None = None) -> dict:
        return workflow_detail(self.db, workflow_id, now=now, limits=self.limits)


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
