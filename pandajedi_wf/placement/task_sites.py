"""Which sites a workflow step's task is offered to (task parameter ``includedSite``), chosen by our processor when it
submits the step: the task-level seam of workflow-aware placement.

Why the task level and not only the job broker: upstream's ``GenJobBroker`` keeps only its five least-loaded candidates
(``maxNumSites``, by job counts) before any plug-in sees them, so the site holding a step's input is usually gone by
the time ``WorkflowJobBroker`` could prefer it; a production task's nucleus is chosen by the task broker before any
job broker runs; and a step's external input (a disk dataset, or the destination its tape recall lands on) is known
to the workflow, not to a job broker cutting a chunk. So the processor names a few good sites in the task parameters,
the way a user would, and upstream's brokerage (its checks, its load weights) chooses among them.

Pure: plain data in, plain data out. ``choose_sites`` ranks every site by the step's expected completion there
(``decision.expected_completion``: the input's transfer over the site's WAN overlapped with the wait for its slots,
plus the run time). The good sites are those expected to end within ``slack`` of the soonest; of those it keeps the
ones moving the least input (at most ``max_sites``), then adds the next soonest sites up to ``min_sites``: never
one site alone, so upstream's broker still balances and a site its checks reject (offline, full disk) leaves
another; the job broker plugin (``decision.decide``) then cuts upstream's survivors with fresher load figures.
``steer`` turns the choice into task parameters without ever overriding the user: a step that names ``site`` is left
alone, a user's ``includedSite`` is intersected (or kept as written when nothing of ours is in it), a user's
``excludedSite`` removes sites from ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

from .decision import DEFAULT_SLACK, ParentOutput, SiteLoad, StepWork, bytes_to_move, expected_completion, within_slack

EXTERNAL_INPUT = 0  # ParentOutput.task_id of a step's external input (a dataset no step of the workflow makes)


@dataclass(frozen=True)
class SitePolicy:
    min_sites: int = 2
    max_sites: int = 3
    slack: float = DEFAULT_SLACK


@dataclass(frozen=True)
class SiteChoice:
    sites: tuple[str, ...]  # the sites to include, best first; () = nothing to follow, upstream chooses alone
    reason: str
    completion: Mapping[str, float] = field(default_factory=dict)  # site -> expected seconds (every site ranked)
    moved: Mapping[str, int] = field(default_factory=dict)  # site -> bytes that would move there


def external_input(storage: str | None, n_bytes: int) -> list[ParentOutput]:
    """A step's external input located at ``storage`` (its disk replica, or where its tape recall lands) as the
    decision sees inputs; nothing when its place is unknown."""
    if not storage or n_bytes <= 0:
        return []
    return [ParentOutput(EXTERNAL_INPUT, running=False, bytes_at={storage: int(n_bytes)})]


def _what(inputs: Sequence[ParentOutput]) -> str:
    parents = [str(p.task_id) for p in inputs if p.task_id != EXTERNAL_INPUT]
    parts = ([f"parents {','.join(parents)}"] if parents else []) + (["its input"] if len(parents) < len(inputs) else [])
    return " and ".join(parts) or "nothing"


def choose_sites(sites: Sequence[SiteLoad], inputs: Sequence[ParentOutput], work: StepWork = StepWork(),
                 policy: SitePolicy = SitePolicy()) -> SiteChoice:
    """``sites``: every site the step may run at with its load figures; ``inputs``: its parents' outputs and its
    external input (``external_input``), each by storage."""
    if not sites:
        return SiteChoice((), "no site known: upstream chooses")
    held = sum(p.finished_bytes + p.pending_bytes for p in inputs)
    if not held:
        return SiteChoice((), f"{_what(inputs)} at no known site yet: upstream chooses" if inputs else "no input to follow: upstream chooses")
    moved = {s.name: bytes_to_move(s.storage, inputs) for s in sites}
    if len(set(moved.values())) == 1:
        return SiteChoice((), f"every site moves {next(iter(moved.values()))} B of {_what(inputs)}: upstream chooses", moved=moved)
    completion = {s.name: expected_completion(s, inputs, work) for s in sites}
    ranked = sorted(completion, key=lambda n: (completion[n], moved[n], n))
    good = within_slack(completion, policy.slack)
    least = min(moved[n] for n in good)
    chosen = [n for n in ranked if n in good and moved[n] == least][: policy.max_sites]
    for n in ranked:  # more sites for upstream to balance over and to fall back on: the next soonest to end
        if len(chosen) >= min(policy.min_sites, policy.max_sites):
            break
        if n not in chosen:
            chosen.append(n)
    chosen = tuple(chosen)
    reason = (f"follows {_what(inputs)} and the sites' load: {chosen[0]} moves {moved[chosen[0]]} B and is expected to end in "
              f"{_hours(completion[chosen[0]])} (the soonest of all sites: {_hours(completion[ranked[0]])})"
              + (f"; also {','.join(chosen[1:])} (next soonest or as cheap)" if len(chosen) > 1 else ""))
    return SiteChoice(chosen, reason, completion, moved)


def _hours(seconds: float) -> str:
    return "never" if seconds == float("inf") else f"{seconds / 3600:.1f} h"


def site_list(value) -> list[str]:
    """A task parameter's site list as upstream reads it (``AtlasAnalJobBroker``: a list, or a comma-separated
    string; empty entries ignored)."""
    if value is None or value == "":
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(i).strip() for i in items if str(i).strip()]


def matches(site: str, patterns: Sequence[str]) -> bool:
    """Upstream's ``AtlasBrokerUtils.isMatched``: a pattern with ``*`` is a regular expression searched in the name
    (``*`` read as ``.*``), any other pattern must equal the name."""
    for pattern in patterns:
        if "*" in pattern:
            if re.search(pattern.replace("*", ".*"), site):
                return True
        elif pattern == site:
            return True
    return False


def steer(task_params: Mapping, choice: SiteChoice) -> tuple[dict, str]:
    """(task parameters to add, why) for ``choice``; nothing to add when there is no choice or the user decided."""
    if not choice.sites:
        return {}, choice.reason
    if task_params.get("site"):
        return {}, f"the step names site {task_params['site']}: left to it ({choice.reason})"
    sites = list(choice.sites)
    user_included = site_list(task_params.get("includedSite"))
    if user_included:
        if "AUTO" in user_included:
            return {}, "the step's includedSite has AUTO: left as the user wrote it"
        sites = [s for s in sites if matches(s, user_included)]
        if not sites:
            return {}, f"none of {','.join(choice.sites)} is in the step's includedSite: left as the user wrote it"
    user_excluded = site_list(task_params.get("excludedSite"))
    if user_excluded:
        sites = [s for s in sites if not matches(s, user_excluded)]
        if not sites:
            return {}, f"the step's excludedSite excludes {','.join(choice.sites)}: left to upstream"
    how = " (within the user's includedSite)" if user_included else ""
    return {"includedSite": sites}, f"includedSite {','.join(sites)}{how}: {choice.reason}"


BYTES_PER_JOB = 5 * 10**9  # a job's input when nothing better is known (JEDI splits later)
JOB_SECONDS = 3600.0  # a job's run when nothing better is known


def estimate_work(input_bytes: int, bytes_per_job: int = BYTES_PER_JOB, job_seconds: float = JOB_SECONDS) -> StepWork:
    """The step's work as far as it is known before JEDI splits it: one job per ``bytes_per_job`` of input."""
    return StepWork(max(1, -(-int(input_bytes) // max(1, bytes_per_job))), job_seconds)


DEFAULT_SLOTS = 50  # slots a queue is taken to have free when nothing shows its limit (an idle queue is not a full one)


def site_load(queue: str, storage: str, running: int, waiting: int, min_slots: int = DEFAULT_SLOTS,
              links: Mapping[str, float] | None = None) -> SiteLoad:
    """A queue's load figures from its job counts. Jobs waiting there show it full: its slots are the jobs it runs
    (at least ``min_slots``). With none waiting it has shown no limit: it takes every job it gets, so it is taken to
    have ``min_slots`` free beyond the jobs it runs (an idle queue is not a full one, nor is a busy one that nothing
    waits at: counting its running jobs as all its slots would make every site that runs something look full, and
    the site holding a workflow's data is usually busy with the workflow's earlier steps).
    ``links``: source storage -> measured bytes per second from it to ``storage`` (the network matrix, ``links``)."""
    running, waiting = int(running), int(waiting)
    slots = max(running, min_slots) if waiting > 0 else running + min_slots
    return SiteLoad(queue, storage, slots, running, waiting, link_bytes_per_second=dict(links or {}))


def with_assigned(sites: Sequence[SiteLoad], choice: SiteChoice, work: StepWork) -> list[SiteLoad]:
    """``sites`` as the next step of the same pass should see them: the step's jobs added to the waiting jobs of the
    sites chosen for it, spread evenly (the job counts read once per pass do not show them yet)."""
    if not choice.sites:
        return list(sites)
    share = -(-work.n_jobs // len(choice.sites))
    return [replace(s, queued=s.queued + share) if s.name in choice.sites else s for s in sites]
