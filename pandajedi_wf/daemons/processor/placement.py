"""Workflow-aware placement of the tasks a pass submits (``placement.choose_sites`` decides; this gathers its inputs).

A step about to be submitted whose parents have JEDI tasks, or whose input datasets are being recalled from tape by
our carousel, gets ``includedSite`` in its task parameters: a few sites where it is expected to end soonest, given
where its parents' outputs are (JEDI's output datasets per site), where its tape recall lands, each queue's jobs and
the measured rate of the links from where the inputs are to each queue's storage (upstream's network matrix).
Why here and not only in the job broker: see ``pandajedi_wf.placement.task_sites``. The user's own ``site``,
``includedSite`` and ``excludedSite`` always win (``placement.steer``). Reads happen only for a batch that submits such
a step: the parents' outputs and the recalls once per batch, then the queues and their jobs and the links from the
inputs' storages once per batch. A failed read never holds a submission back: the step goes without ``includedSite``
and upstream chooses alone; an unread network matrix only leaves every link at the default rate. The queues are read
only when some parent output or recall was found (a parent's output dataset at a site counts, even before its first
file: a noWaitParent child follows where its parent runs).
"""

from __future__ import annotations

import datetime
import logging

from pandajedi_wf import placement as policy
from pandajedi_wf.placement.task_sites import estimate_work, site_load, with_assigned
from pandajedi_wf.taskbuffer import placement_inputs
from pandajedi_wf.taskbuffer.connection import DatabaseError, chunks

from .plan import Plan
from .step_row import StepRow

log = logging.getLogger(__name__)


def input_datasets(task_params: dict) -> list[str]:
    """The input datasets a step's task reads (the ``dataset`` of its input templates, comma-separated lists split)."""
    found = []
    for item in task_params.get("jobParameters", []) or []:
        if isinstance(item, dict) and item.get("param_type") == "input":
            found += [d.strip() for d in str(item.get("dataset") or "").split(",") if d.strip()]
    return found


def parent_output(dataset: str, task_name: str) -> bool:
    """Whether ``dataset`` is a container the parent task ``task_name`` writes (``naming.dataset_name``): followed
    through the parent's JEDI datasets, never a tape recall, so not looked up among the carousel's requests (a
    chain's every child would cost that read)."""
    return dataset == task_name or (dataset.startswith(task_name + "_") and dataset.endswith("/"))


def _names(dataset: str) -> tuple[str, ...]:
    """A dataset as our carousel may have recorded it: as written, and without its scope."""
    bare = dataset.split(":", 1)[-1]
    return (dataset, bare) if bare != dataset else (dataset,)


def apply(db, plans: list[Plan], step_rows: dict[int, list[StepRow]], now: datetime.datetime, stats) -> None:
    wanting: list[tuple[Plan, StepRow, list[int], list[str]]] = []
    for plan in plans:
        submitting = plan.submissions()
        if not submitting:
            continue
        rows = {s.node_key: s for s in step_rows.get(plan.workflow_id, ())} | {s.node_key: s for s in plan.created}
        for s in submitting:
            if not s.task_params or s.task_params.get("site"):  # the user placed it
                continue
            parents = [int(rows[k].jedi_task_id) for k in s.parent_keys if k in rows and rows[k].jedi_task_id]
            made_here = [rows[k].task_name for k in s.parent_keys if k in rows and rows[k].task_name]
            datasets = [d for d in input_datasets(s.task_params) if not any(parent_output(d, t) for t in made_here)]
            if parents or datasets:
                wanting.append((plan, s, parents, datasets))
    if not wanting:
        return
    try:
        parent_ids = sorted({t for _, _, p, _ in wanting for t in p})
        outputs = {r.task_id: r for part in chunks(parent_ids, placement_inputs.MAX_PARENTS)
                   for r in placement_inputs.parent_outputs(db, part)}
        recalls = placement_inputs.staging_destinations(db, {n for _, _, _, ds in wanting for d in ds for n in _names(d)})
        located = any(r.bytes_at_site for r in outputs.values()) or bool(recalls)
        queues = placement_inputs.site_loads(db) if located else []  # the queues only when there is data to follow
        if not queues:
            return
    except DatabaseError as exc:
        stats.add("placements_unread")
        log.warning("workflow placement skipped for %d steps, upstream chooses: %s", len(wanting), exc)
        return
    storage_of = {q.queue: q.storage for q in queues}
    sources = {storage_of.get(site, site) for r in outputs.values() for site in r.bytes_at_site} | {d for d, _ in recalls.values()}
    try:
        rates = placement_inputs.link_rates(db, sources, now)
    except DatabaseError as exc:  # the links at the default rate: the data and the queues still decide
        stats.add("link_rates_unread")
        log.warning("network matrix not read, every link taken at the default rate: %s", exc)
        rates = {}
    links: dict[str, dict[str, float]] = {}
    for (source, destination), rate in rates.items():
        links.setdefault(destination, {})[source] = rate
    loads = [site_load(q.queue, q.storage, q.running, q.waiting, links=links.get(q.storage)) for q in queues]
    chosen: dict[int, str] = {}
    for plan, s, parents, datasets in wanting:
        rows = [(r.task_id, r.ended, r.bytes_at_site) for t in parents if (r := outputs.get(t)) is not None]
        inputs = policy.parents_at_storages(rows, lambda site: storage_of.get(site, site))
        for d in datasets:
            recall = next((recalls[n] for n in _names(d) if n in recalls), None)
            if recall is not None:
                inputs += policy.external_input(*recall)
        work = estimate_work(sum(p.finished_bytes + p.pending_bytes for p in inputs))
        choice = policy.choose_sites(loads, inputs, work)
        update, why = policy.steer(s.task_params, choice)
        if not update:
            continue
        s.task_params = {**s.task_params, **update}
        loads = with_assigned(loads, choice, work)
        chosen[id(s)] = why
        stats.add("placements_set")
    if chosen:
        for plan in {id(p): p for p, _, _, _ in wanting}.values():
            plan.explain_submissions(chosen)
