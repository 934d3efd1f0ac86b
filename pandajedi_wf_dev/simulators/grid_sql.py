"""SQL of the grid simulator: it plays the part of JEDI's later agents and of the pilots on real JEDI rows.

Used by ``grid.py`` and ``jedi_ddm.py`` here, and by tests that play JEDI's TaskCommando; production code never writes JEDI
task statuses itself (this module was ``pandajedi_wf/taskbuffer/grid_simulation.py``).
"""

from __future__ import annotations

import datetime

from pandajedi_wf.taskbuffer.connection import WfDatabase, in_clause


def refresh_min_task_ids(db: WfDatabase) -> None:
    """What pg_cron runs upstream: many JEDI queries only see tasks at or above JEDI_AUX_Status_MinTaskID."""
    if db.backend == "postgres":
        db.execute(f"CALL {db.schema}.jedi_refresh_min_taskid_by_status()")


def tasks_in_status(db: WfDatabase, vo: str, statuses: tuple[str, ...]) -> list[dict]:
    """Tasks of ``vo`` in ``statuses`` with their parent's status (NULL without a parent)."""
    status_sql, binds = in_clause("st", statuses)
    binds[":vo"] = vo
    return db.query_dicts(
        f"SELECT t.jediTaskID, t.taskName, t.status, t.parent_tid, p.status AS parent_status FROM {db.table('JEDI_Tasks')} t "
        f"LEFT JOIN {db.table('JEDI_Tasks')} p ON p.jediTaskID=t.parent_tid AND t.parent_tid<>t.jediTaskID "
        f"WHERE t.vo=:vo AND t.status IN {status_sql} ORDER BY t.jediTaskID",
        binds,
    )


def set_task_status(db: WfDatabase, jedi_task_id: int, status: str, now: datetime.datetime, from_status: str | None = None) -> bool:
    """Guarded when ``from_status`` is given (JEDI's own agents may have moved the task meanwhile)."""
    sql = (
        f"UPDATE {db.table('JEDI_Tasks')} SET oldStatus=status, status=:status, modificationTime=:now, stateChangeTime=:now "
        "WHERE jediTaskID=:task "
    )
    binds = {":status": status, ":now": now, ":task": jedi_task_id}
    if from_status is not None:
        sql += "AND status=:from_status "
        binds[":from_status"] = from_status
    return db.execute(sql, binds).rowcount == 1


def output_templates(db: WfDatabase, jedi_task_id: int) -> list[dict]:
    """Output datasets as the refiner defined them: templates (``tmpl_output``) or plain ``output`` rows."""
    return db.query_dicts(
        f"SELECT datasetID, datasetName, containerName, type FROM {db.table('JEDI_Datasets')} "
        "WHERE jediTaskID=:task AND (type='tmpl_output' OR (type='output' AND templateID IS NULL)) ORDER BY datasetID",
        {":task": jedi_task_id},
    )


_DATASET_COPY_COLUMNS = (
    "containerName, creationTime, modificationTime, vo, cloud, site, masterID, provenanceID, status, state, nFiles, "
    "nFilesToBeUsed, nFilesUsed, nFilesFinished, nFilesFailed, nFilesOnHold, nEvents, nEventsToBeUsed, nEventsUsed, "
    "attributes, streamName, storageToken, destination"
)


def instantiate_output_dataset(db: WfDatabase, jedi_task_id: int, template_id: int, site: str) -> tuple[int, str]:
    """A concrete output dataset from a template, named like JEDI's JobGenerator does: ``<container>.<datasetID>``."""
    (dataset_id,) = db.next_ids("JEDI_DATASETS_ID_SEQ", 1)
    rows = db.query(
        f"SELECT datasetName FROM {db.table('JEDI_Datasets')} WHERE jediTaskID=:task AND datasetID=:ds",
        {":task": jedi_task_id, ":ds": template_id},
    )
    name = f"{rows[0][0].rstrip('/')}.{dataset_id}"
    db.execute(
        f"INSERT INTO {db.table('JEDI_Datasets')} (jediTaskID, datasetID, datasetName, type, templateID, {_DATASET_COPY_COLUMNS}) "
        f"SELECT jediTaskID, :new_id, :name, 'output', datasetID, {_DATASET_COPY_COLUMNS} FROM {db.table('JEDI_Datasets')} "
        "WHERE jediTaskID=:task AND datasetID=:ds ",
        {":new_id": dataset_id, ":name": name, ":task": jedi_task_id, ":ds": template_id},
    )
    db.execute(
        f"UPDATE {db.table('JEDI_Datasets')} SET site=:site, destination=COALESCE(destination, :site), nFiles=0, nFilesFinished=0 "
        "WHERE jediTaskID=:task AND datasetID=:ds ",
        {":site": site, ":task": jedi_task_id, ":ds": dataset_id},
    )
    return dataset_id, name


def datasets_in_container(db: WfDatabase, container: str) -> list[dict] | None:
    """Concrete output datasets in a task's output container; None when no task defined that container."""
    rows = db.query_dicts(
        f"SELECT jediTaskID, datasetID, datasetName, type FROM {db.table('JEDI_Datasets')} "
        "WHERE containerName=:name AND type IN ('output','tmpl_output') ORDER BY datasetID",
        {":name": container},
    )
    if not rows:
        return None
    return [r for r in rows if r["type"] == "output"]


def produced_dataset(db: WfDatabase, name: str) -> dict | None:
    rows = db.query_dicts(
        f"SELECT jediTaskID, datasetID, datasetName FROM {db.table('JEDI_Datasets')} WHERE datasetName=:name AND type='output'",
        {":name": name},
    )
    return rows[0] if rows else None


def produced_files(db: WfDatabase, dataset_name: str) -> list[dict]:
    """Files a task finished writing into its output dataset (``dataset_name`` may also be a plain container)."""
    return db.query_dicts(
        f"SELECT c.lfn, c.scope, c.fsize, c.nEvents FROM {db.table('JEDI_Datasets')} d "
        f"JOIN {db.table('JEDI_Dataset_Contents')} c ON c.jediTaskID=d.jediTaskID AND c.datasetID=d.datasetID "
        "WHERE d.datasetName=:name AND d.type='output' AND c.status='finished' ORDER BY c.lfn",
        {":name": dataset_name},
    )


def producer_statuses(db: WfDatabase, name: str) -> list[str]:
    """Statuses of the tasks writing dataset or container ``name`` (an ended producer means a closed dataset)."""
    rows = db.query(
        f"SELECT DISTINCT t.status FROM {db.table('JEDI_Datasets')} d JOIN {db.table('JEDI_Tasks')} t ON t.jediTaskID=d.jediTaskID "
        "WHERE (d.datasetName=:name OR d.containerName=:name) AND d.type IN ('output','tmpl_output')",
        {":name": name},
    )
    return [r[0] for r in rows]


def primary_inputs(db: WfDatabase, jedi_task_id: int) -> list[str]:
    """Names of a task's master input datasets (what ContentsFeeder checks for emptiness)."""
    rows = db.query(
        f"SELECT datasetName FROM {db.table('JEDI_Datasets')} WHERE jediTaskID=:task AND type='input' AND masterID IS NULL ",
        {":task": jedi_task_id},
    )
    return [r[0] for r in rows]


def add_finished_files(
    db: WfDatabase, jedi_task_id: int, dataset_id: int, dataset_name: str, n_files: int, first_serial: int, scope: str = "user.sim"
) -> None:
    """Files a simulated job wrote: rows in JEDI_Dataset_Contents with status 'finished', counters bumped."""
    base = dataset_name.rstrip("/")
    db.executemany(
        f"INSERT INTO {db.table('JEDI_Dataset_Contents')} (jediTaskID, datasetID, fileID, creationDate, lastAttemptTime, lfn, "
        "GUID, type, status, fsize, scope, attemptNr, maxAttempt, nEvents, keepTrack) "
        f"VALUES (:task, :ds, {db.table('JEDI_DATASET_CONT_FILEID_SEQ')}.nextval, :now, :now, :lfn, :guid, 'output', 'finished', "
        ":fsize, :scope, 0, 3, 100, 1) ",
        [
            {
                ":task": jedi_task_id,
                ":ds": dataset_id,
                ":now": datetime.datetime(2000, 1, 1),
                ":lfn": f"{base}.{first_serial + i:06d}.root",
                ":guid": f"00000000-0000-0000-{jedi_task_id % 10000:04d}-{first_serial + i:012d}",
                ":fsize": 1000000,
                ":scope": scope,
            }
            for i in range(n_files)
        ],
    )
    db.execute(
        f"UPDATE {db.table('JEDI_Datasets')} SET nFiles=COALESCE(nFiles,0)+:n, nFilesFinished=COALESCE(nFilesFinished,0)+:n "
        "WHERE jediTaskID=:task AND datasetID=:ds ",
        {":n": n_files, ":task": jedi_task_id, ":ds": dataset_id},
    )


def concrete_outputs(db: WfDatabase, jedi_task_id: int) -> list[dict]:
    """The output datasets files are written into (instantiated from templates, or plain outputs)."""
    return db.query_dicts(
        f"SELECT datasetID, datasetName FROM {db.table('JEDI_Datasets')} WHERE jediTaskID=:task AND type='output' ORDER BY datasetID",
        {":task": jedi_task_id},
    )
