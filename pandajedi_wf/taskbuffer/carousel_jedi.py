"""Reads of upstream JEDI tables the carousel needs: tasks waiting for tape inputs, their files still in ``staging``,
and the carousel's JSON document in PanDA's CONFIG table.

A task needs staging in two ways upstream 1.0.4 produces:

- file level: it has the ``inputPreStaging`` split rule (``IS=1``, set by upstream's refiner, under our refiner plugin
  for every task with tape inputs) and master-input files in status ``staging`` in JEDI_Dataset_Contents (inserted so
  by upstream's ContentsFeeder; jobs use them once they are ``pending``);
- parked: upstream's TaskRefiner put it in status ``staging`` before registering it, because its stored parameters
  say ``toStaging`` (``carousel.task_routing.parked_by_its_parameters``): splitRule NULL, no JEDI_Datasets, so the
  dataset names come from the task parameters, as upstream's DataCarousel reads them.  A task upstream's own carousel
  block parked (no ``toStaging`` stored) is upstream's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pandajedi_wf.carousel import task_routing
from pandajedi_wf.core import jedi_statuses

from .connection import WfDatabase, chunks, in_clause, json_value
from .staging_requests import to_epoch

CONFIG_APP = "pandajedi_wf"
CONFIG_COMPONENT = "data_carousel"
CONFIG_KEY = "config"

_PRESTAGING = re.compile(r"(^|,)IS=1(,|$)")


@dataclass(frozen=True)
class TaskNeed:
    """One JEDI task and the tape datasets it waits for."""

    jedi_task_id: int
    status: str
    user: str
    gshare: str
    priority: int
    datasets: tuple[str, ...]
    # parked before registration: the names come from its parameters, containers not expanded yet (the carousel asks
    # DDM, ``StagingDDM.expand_containers``); a registered task's containers are expanded by JEDI (in_constituent rows)
    parked: bool = False


def read_config_document(db: WfDatabase, vo: str | None) -> object | None:
    """The carousel's config (decoded JSON or raw text), VO-specific row first; None when no row exists.

    Read directly rather than through ``getConfigValue``, which returns None for a document it cannot decode and so
    hides the operator's mistake.  ATLAS_PANDA is rewritten to the deployment's schemaPANDA by WrappedCursor.
    """
    rows = db.query(
        "SELECT value, value_json, vo FROM ATLAS_PANDA.CONFIG WHERE app=:app AND component=:component AND key=:key "
        "AND (vo=:vo OR vo IS NULL)",
        {":app": CONFIG_APP, ":component": CONFIG_COMPONENT, ":key": CONFIG_KEY, ":vo": vo},
    )
    if not rows:
        return None
    value, value_json, _ = sorted(rows, key=lambda r: r[2] is None)[0]
    return json_value(value_json) if value_json is not None else value


def _is_master_to_stage(dataset_type: str, master_id, attributes: str | None, name: str) -> bool:
    tokens = set((attributes or "").split(","))
    return dataset_type == "input" and master_id is None and "ns=1" not in tokens and "pseudo" not in tokens and name not in ("pseudo_dataset", "seq_number")


# JediDatasetSpec.get_constituent_input_type(): the datasets of a container a task reads as one master dataset
CONSTITUENT = "in_constituent"
# the master dataset of this name (with a constituent of :name) or named :name itself
_OF_DATASET = (
    "(tabD.datasetName=:name OR (tabD.containerName IS NOT NULL AND EXISTS (SELECT 1 FROM {d} tabK WHERE tabK.jediTaskID=tabD.jediTaskID "
    "AND tabK.type=:constituent AND tabK.datasetName=:name AND tabK.containerName=tabD.containerName)))"
)


def _params(raw: str | None) -> dict:
    params = json_value(raw) if raw else None
    return params if isinstance(params, dict) else {}


def tasks_needing_staging(db: WfDatabase) -> list[TaskNeed]:
    """Tasks parked in ``staging`` by their parameters' ``toStaging``, and tasks with inputPreStaging that have
    master-input files in ``staging``."""
    t = db.table("JEDI_Tasks")
    d = db.table("JEDI_Datasets")
    c = db.table("JEDI_Dataset_Contents")
    ended_sql, ended_binds = in_clause("end", sorted(jedi_statuses.ENDED))  # they read no more input (a retry re-stages)
    tasks: dict[int, tuple] = {}
    for row in db.query(
        f"SELECT jediTaskID, status, userName, gshare, currentPriority, taskPriority, splitRule FROM {t} WHERE status=:status",
        {":status": "staging"},
    ):
        tasks[int(row[0])] = row
    binds = {":staging": "staging", ":input": "input", **ended_binds}
    for row in db.query(
        f"SELECT DISTINCT tabT.jediTaskID, tabT.status, tabT.userName, tabT.gshare, tabT.currentPriority, tabT.taskPriority, tabT.splitRule "
        f"FROM {t} tabT, {d} tabD WHERE tabD.jediTaskID=tabT.jediTaskID AND tabD.type=:input AND tabD.masterID IS NULL "
        f"AND tabT.status NOT IN {ended_sql} "
        f"AND EXISTS (SELECT 1 FROM {c} tabC WHERE tabC.jediTaskID=tabD.jediTaskID AND tabC.datasetID=tabD.datasetID AND tabC.status=:staging)",
        binds,
    ):
        tasks.setdefault(int(row[0]), row)
    masters: dict[int, list[tuple[str, str | None]]] = {tid: [] for tid in tasks}
    constituents: dict[int, dict[str, list[str]]] = {tid: {} for tid in tasks}
    params: dict[int, dict] = {}
    for part in chunks(sorted(tasks), 500):
        id_sql, binds = in_clause("t", part)
        for tid, name, kind, master, attributes, container in db.query(
            f"SELECT jediTaskID, datasetName, type, masterID, attributes, containerName FROM {d} WHERE jediTaskID IN {id_sql} ORDER BY datasetID", binds
        ):
            if _is_master_to_stage(kind, master, attributes, name):
                masters[int(tid)].append((name, container))
            elif kind == CONSTITUENT and container:
                constituents[int(tid)].setdefault(container, []).append(name)
        unregistered = [tid for tid in part if not masters[tid]]
        if unregistered:
            id_sql, binds = in_clause("p", unregistered)
            for tid, raw in db.query(f"SELECT jediTaskID, taskParams FROM {db.table('JEDI_TaskParams')} WHERE jediTaskID IN {id_sql}", binds):
                params[int(tid)] = _params(raw)
    needs = []
    for tid, (_, status, user, gshare, current_priority, task_priority, split_rule) in sorted(tasks.items()):
        parked = False
        if masters[tid]:
            names = task_routing.datasets_to_recall(masters[tid], constituents[tid]) if split_rule and _PRESTAGING.search(split_rule) else []
        else:
            parked = status == "staging" and task_routing.parked_by_its_parameters(params.get(tid, {}))
            names = task_routing.input_datasets(params[tid]) if parked else []
        if names:
            priority = current_priority if current_priority is not None else task_priority
            needs.append(TaskNeed(tid, status, user or "", gshare or "", int(priority or 0), tuple(dict.fromkeys(names)), parked))
    return needs


def staging_files(db: WfDatabase, jedi_task_ids: list[int], dataset: str) -> dict[int, dict[str, int]]:
    """Per task, the files of ``dataset`` still in ``staging``: lfn -> datasetID (what updateInputFilesStaged_JEDI takes).
    For a container read as one master dataset, its files still staging (those of ``dataset`` among them; which ones
    arrived is the rule's to say)."""
    found: dict[int, dict[str, int]] = {}
    d = db.table("JEDI_Datasets")
    for part in chunks(sorted(set(jedi_task_ids)), 500):
        id_sql, binds = in_clause("t", part)
        binds.update({":name": dataset, ":input": "input", ":staging": "staging", ":constituent": CONSTITUENT})
        rows = db.query(
            f"SELECT tabC.jediTaskID, tabC.lfn, tabC.datasetID FROM {d} tabD, {db.table('JEDI_Dataset_Contents')} tabC "
            f"WHERE tabD.jediTaskID IN {id_sql} AND {_OF_DATASET.format(d=d)} AND tabD.type=:input "
            "AND tabC.jediTaskID=tabD.jediTaskID AND tabC.datasetID=tabD.datasetID AND tabC.status=:staging",
            binds,
        )
        for tid, lfn, dataset_id in rows:
            found.setdefault(int(tid), {})[lfn] = int(dataset_id)
    return found


def file_counts(db: WfDatabase, jedi_task_ids: list[int], dataset: str) -> dict[int, tuple[int, int]]:
    """Per task, (files of ``dataset`` registered, of which still ``staging``): a task is done with the carousel for
    the dataset once it has files and none of them waits (for a container read as one master dataset: none of the
    container's files waits)."""
    found: dict[int, tuple[int, int]] = {}
    d = db.table("JEDI_Datasets")
    for part in chunks(sorted(set(jedi_task_ids)), 500):
        id_sql, binds = in_clause("t", part)
        binds.update({":name": dataset, ":input": "input", ":staging": "staging", ":constituent": CONSTITUENT})
        rows = db.query(
            f"SELECT tabC.jediTaskID, COUNT(*), SUM(CASE WHEN tabC.status=:staging THEN 1 ELSE 0 END) "
            f"FROM {d} tabD, {db.table('JEDI_Dataset_Contents')} tabC "
            f"WHERE tabD.jediTaskID IN {id_sql} AND {_OF_DATASET.format(d=d)} AND tabD.type=:input "
            "AND tabC.jediTaskID=tabD.jediTaskID AND tabC.datasetID=tabD.datasetID GROUP BY tabC.jediTaskID",
            binds,
        )
        for tid, total, staging in rows:
            found[int(tid)] = (int(total), int(staging or 0))
    return found


def held_by_our_carousel(db: WfDatabase, jedi_task_ids: list[int]) -> set[int]:
    """Of these tasks, those whose tape files our carousel still holds: related to one of our requests and not yet
    released from it, or with ``IS=1`` and master-input files still ``staging`` (our intake takes them at its next
    cycle; until then nobody may release those files, as no rule of ours has put them on disk)."""
    held: set[int] = set()
    d, c = db.table("JEDI_Datasets"), db.table("JEDI_Dataset_Contents")
    for part in chunks(sorted(set(jedi_task_ids)), 500):
        id_sql, binds = in_clause("t", part)
        held |= {int(tid) for (tid,) in db.query(
            f"SELECT DISTINCT jedi_task_id FROM {db.table('JEDI_DC_RELATIONS')} WHERE jedi_task_id IN {id_sql} AND released_time IS NULL", binds
        )}
        binds.update({":input": "input", ":staging": "staging"})
        for tid, split_rule in db.query(
            f"SELECT tabT.jediTaskID, tabT.splitRule FROM {db.table('JEDI_Tasks')} tabT WHERE tabT.jediTaskID IN {id_sql} "
            f"AND EXISTS (SELECT 1 FROM {d} tabD, {c} tabC WHERE tabD.jediTaskID=tabT.jediTaskID AND tabD.type=:input AND tabD.masterID IS NULL "
            "AND tabC.jediTaskID=tabD.jediTaskID AND tabC.datasetID=tabD.datasetID AND tabC.status=:staging)",
            binds,
        ):
            if split_rule and _PRESTAGING.search(split_rule):
                held.add(int(tid))
    return held


def failed_stagings(db: WfDatabase, jedi_task_ids: list[int]) -> list[task_routing.FailedStaging]:
    """The relations of these tasks to staging requests that failed for good, with when each task was told
    (``released_time``, set by ``end_tasks_of_failed``) and the request's error."""
    found: list[task_routing.FailedStaging] = []
    for part in chunks(sorted(set(jedi_task_ids)), 500):
        id_sql, binds = in_clause("t", part)
        binds[":failed"] = "failed"
        for tid, dataset, rid, error, released in db.query(
            f"SELECT rel.jedi_task_id, req.dataset, req.request_id, req.error_dialog, rel.released_time "
            f"FROM {db.table('JEDI_DC_RELATIONS')} rel, {db.table('JEDI_DC_REQUESTS')} req "
            f"WHERE rel.request_id=req.request_id AND rel.jedi_task_id IN {id_sql} AND req.status=:failed",
            binds,
        ):
            found.append(task_routing.FailedStaging(int(tid), dataset, int(rid), error or "", to_epoch(released)))
    return found


def attempt_start_times(db: WfDatabase, jedi_task_ids: list[int]) -> dict[int, float]:
    """When each task's latest attempt started, from upstream's TASK_ATTEMPTS (one row per attempt, written by
    JEDI's registration and by ``retryTask_JEDI``'s ``log_task_attempt_start``); tasks without a row are absent."""
    found: dict[int, float] = {}
    for part in chunks(sorted(set(jedi_task_ids)), 500):
        id_sql, binds = in_clause("t", part)
        for tid, started in db.query(
            f"SELECT jediTaskID, MAX(startTime) FROM {db.table('TASK_ATTEMPTS')} WHERE jediTaskID IN {id_sql} GROUP BY jediTaskID", binds
        ):
            if started is not None:
                found[int(tid)] = to_epoch(started)
    return found
