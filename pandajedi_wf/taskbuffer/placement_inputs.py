"""What the placement decision needs to know about a JEDI task's parents, read from the database.

Parents come from our workflow tables (``JEDI_WF_STEPS``: the task's step and its ``parent_keys``), or, for a task
that iDDS runs (legacy pchain, iDDS ``workload_id`` = JEDI task id), from iDDS's shared ``COLLECTIONS``/``TRANSFORMS``
through our read-only views: a parent is a transform of the same request whose output collection is one of this
task's input collections. Where the parents' outputs are comes from JEDI's own tables: upstream instantiates an
output dataset per site its jobs run at (``JEDI_Datasets.site``) and records each finished file with its size
(``JEDI_Dataset_Contents.fsize``).

For the processor's task-level choice (``site_loads``, ``staging_destinations``): every online queue with the storage
it writes to (``panda_ddm_relation`` default write endpoint) and its jobs by status (``jobsActive4``,
``jobsDefined4``), where the tape recalls of a step's input datasets land (our carousel's ``JEDI_DC_REQUESTS``), and
the measured rate of each link from the storages holding the inputs to the queues' storages (``link_rates``: upstream's
network matrix, ``network_matrix_kv``, between the sites of the endpoints, ``ddm_endpoint.site_name``).

Bounded: at most ``MAX_PARENTS`` parents are read, in one IN list per statement; datasets in IN lists of 500.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from pandajedi_wf.core import jedi_statuses
from pandajedi_wf.placement import links

from pandajedi_wf.carousel import lifecycle as staging_lifecycle

from .connection import WfDatabase, chunks, in_clause, json_value
from .idds_tables import COLLECTIONS_VIEW, TRANSFORMS_VIEW

MAX_PARENTS = 500  # one IN list per statement, as our other reads by key (a batch of 500 workflows: one read)
RUNNING_JOBS = ("running", "starting", "sent", "holding", "transferring")  # a job holding a slot
WAITING_JOBS = ("activated", "assigned", "defined", "throttled")  # a job waiting for a slot (or its input)
# recalls whose data is or will be on the destination: every status but the ones that gave up
LANDING = tuple(sorted(set(staging_lifecycle.STAGING_REQUEST.states) - {staging_lifecycle.CANCELLED, staging_lifecycle.FAILED,
                                                                          staging_lifecycle.RETIRED}))
IDDS_INPUT, IDDS_OUTPUT = 0, 1  # iDDS collection relation types (idds_tables.RELATION_TYPE)
NETWORK_VALIDITY = datetime.timedelta(minutes=60)  # older network figures are not read (upstream's getNetworkMetrics)


@dataclass(frozen=True)
class ParentRow:
    task_id: int
    status: str
    bytes_at_site: dict[str, int]  # PanDA site (queue) of an output dataset -> bytes of its finished files
    ended: bool


def workflow_parents(db: WfDatabase, jedi_task_id: int) -> tuple[int, list[int]] | None:
    """``(workflow id, JEDI task ids of the parent steps)`` of the step that runs ``jedi_task_id``; ``None`` when
    the task belongs to none of our workflows."""
    rows = db.query(
        f"SELECT workflow_id, parent_keys FROM {db.table('JEDI_WF_STEPS')} WHERE jedi_task_id=:task ORDER BY step_id",
        {":task": jedi_task_id},
    )
    if not rows:
        return None
    workflow_id, raw_keys = rows[-1]
    keys = [str(k) for k in (json_value(raw_keys) or [])][:MAX_PARENTS]
    if not keys:
        return int(workflow_id), []
    key_sql, binds = in_clause("key", keys)
    binds[":wf"] = workflow_id
    parents = db.query(
        f"SELECT jedi_task_id FROM {db.table('JEDI_WF_STEPS')} "
        f"WHERE workflow_id=:wf AND node_key IN {key_sql} AND jedi_task_id IS NOT NULL ORDER BY step_id",
        binds,
    )
    return int(workflow_id), sorted({int(r[0]) for r in parents})


def idds_parents(db: WfDatabase, jedi_task_id: int) -> list[int]:
    """JEDI task ids of the transforms whose output collections ``jedi_task_id``'s transform reads (same request)."""
    rows = db.query(
        f"SELECT DISTINCT p.workload_id FROM {db.table(COLLECTIONS_VIEW)} ci "
        f"JOIN {db.table(COLLECTIONS_VIEW)} co ON co.request_id=ci.request_id AND co.scope=ci.scope AND co.name=ci.name "
        "AND co.relation_type=:out_rel "
        f"JOIN {db.table(TRANSFORMS_VIEW)} p ON p.transform_id=co.transform_id "
        "WHERE ci.workload_id=:task AND ci.relation_type=:in_rel AND p.workload_id IS NOT NULL AND p.workload_id<>:task",
        {":task": jedi_task_id, ":in_rel": IDDS_INPUT, ":out_rel": IDDS_OUTPUT},
    )
    return sorted(int(r[0]) for r in rows)[:MAX_PARENTS]


def parent_outputs(db: WfDatabase, task_ids: list[int]) -> list[ParentRow]:
    """Status of each parent task and the bytes of its finished output files per site of its output datasets (a
    site with an output dataset and no finished file yet is listed with 0 bytes: the parent's jobs write there)."""
    ids = sorted({int(t) for t in task_ids})[:MAX_PARENTS]
    if not ids:
        return []
    id_sql, binds = in_clause("task", ids)
    # one statement (a batch with children pays it): each task's status, and per site of its output datasets the
    # bytes of their finished files (a task without output datasets comes with a NULL site)
    statuses: dict[int, str] = {}
    by_task: dict[int, dict[str, int]] = {}
    for task_id, status, site, size in db.query(
        "SELECT t.jediTaskID, t.status, d.site, SUM(c.fsize) "
        f"FROM {db.table('JEDI_Tasks')} t LEFT OUTER JOIN {db.table('JEDI_Datasets')} d "
        "ON d.jediTaskID=t.jediTaskID AND d.type=:output AND d.site IS NOT NULL "
        f"LEFT OUTER JOIN {db.table('JEDI_Dataset_Contents')} c "
        "ON c.jediTaskID=d.jediTaskID AND c.datasetID=d.datasetID AND c.status=:finished "
        f"WHERE t.jediTaskID IN {id_sql} "
        "GROUP BY t.jediTaskID, t.status, d.site",
        {**binds, ":finished": "finished", ":output": "output"},
    ):
        statuses[int(task_id)] = status
        if site is not None:
            at = by_task.setdefault(int(task_id), {})
            at[site] = at.get(site, 0) + int(size or 0)
    return [
        ParentRow(int(t), str(statuses[t]), by_task.get(int(t), {}), str(statuses[t]) in jedi_statuses.ENDED)
        for t in sorted(statuses)
    ]


@dataclass(frozen=True)
class QueueRow:
    queue: str  # PanDA queue (computingSite)
    storage: str  # its default write endpoint (the queue's name where none is recorded)
    running: int
    waiting: int


def site_loads(db: WfDatabase) -> list[QueueRow]:
    """Every online queue, the storage it writes to and its jobs holding or waiting for a slot (three statements)."""
    online = []
    for queue, data in db.query(f"SELECT panda_queue, data FROM {db.table('schedconfig_json')} ORDER BY panda_queue"):
        doc = json_value(data) or {}
        if isinstance(doc, dict) and str(doc.get("status", "")).lower() == "online":
            online.append(str(queue))
    if not online:
        return []
    storage = dict(db.query(
        f"SELECT panda_site_name, MIN(ddm_endpoint_name) FROM {db.table('panda_ddm_relation')} "
        "WHERE default_write=:yes GROUP BY panda_site_name", {":yes": "Y"}))
    running: dict[str, int] = {}
    waiting: dict[str, int] = {}
    for table in ("jobsActive4", "jobsDefined4"):
        for site, status, n in db.query(
                f"SELECT computingSite, jobStatus, COUNT(*) FROM {db.table(table)} GROUP BY computingSite, jobStatus"):
            into = running if status in RUNNING_JOBS else waiting if status in WAITING_JOBS else None
            if into is not None and site:
                into[site] = into.get(site, 0) + int(n)
    return [QueueRow(q, storage.get(q) or q, running.get(q, 0), waiting.get(q, 0)) for q in online]


def staging_destinations(db: WfDatabase, datasets) -> dict[str, tuple[str, int]]:
    """dataset -> (destination endpoint, bytes) of our carousel's recall of it, for those being or already recalled
    (a dataset asked for twice: the latest request)."""
    found: dict[str, tuple[str, int]] = {}
    status_sql, status_binds = in_clause("st", LANDING)
    for part in chunks(sorted({str(d) for d in datasets if d}), 500):
        ds_sql, binds = in_clause("ds", part)
        rows = db.query(
            f"SELECT dataset, destination_rse, dataset_size FROM {db.table('JEDI_DC_REQUESTS')} "
            f"WHERE dataset IN {ds_sql} AND status IN {status_sql} AND destination_rse IS NOT NULL ORDER BY request_id",
            {**binds, **status_binds})
        for dataset, destination, size in rows:
            found[str(dataset)] = (str(destination), int(size or 0))
    return found


def link_rates(db: WfDatabase, sources, now: datetime.datetime) -> dict[tuple[str, str], float]:
    """``(source storage, queue storage)`` -> measured bytes per second from each of ``sources`` (storages: DDM
    endpoints holding a step's input) to every queue's default write endpoint, from upstream's network matrix: its FTS
    throughput between the endpoints' sites over the last hour, day or week (``placement.links``), rows written within
    ``NETWORK_VALIDITY`` of ``now`` (naive UTC, as upstream's configurator stamps them). One statement per 500 sources;
    a link the matrix does not measure is absent (placement takes the site's default rate)."""
    found: dict[tuple[str, str], float] = {}
    key_sql, key_binds = in_clause("key", links.FTS_MBPS_KEYS)
    for part in chunks(sorted({str(s) for s in sources if s}), 500):
        src_sql, binds = in_clause("src", part)
        rows = db.query(
            "SELECT se.ddm_endpoint_name, de.ddm_endpoint_name, m.key, m.value "
            f"FROM {db.table('network_matrix_kv')} m "
            f"JOIN {db.table('ddm_endpoint')} se ON se.site_name=m.src "
            f"JOIN {db.table('ddm_endpoint')} de ON de.site_name=m.dst "
            f"WHERE se.ddm_endpoint_name IN {src_sql} AND m.key IN {key_sql} AND m.ts>:valid "
            f"AND de.ddm_endpoint_name IN (SELECT ddm_endpoint_name FROM {db.table('panda_ddm_relation')} WHERE default_write=:yes)",
            {**binds, **key_binds, ":valid": now - NETWORK_VALIDITY, ":yes": "Y"})
        found.update(links.link_rates(rows))
    return found
