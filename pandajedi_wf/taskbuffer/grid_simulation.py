"""SQL of the grid simulator: it plays the part of JEDI's later agents and of the pilots on real JEDI rows.

Only ``pandajedi_wf.simulators.grid`` uses this module; production code never writes JEDI task statuses itself.
"""

from __future__ import annotations

import datetime

from .connection import WfDatabase, in_clause


def tasks_in_status(db: WfDatabase, vo: str, statuses: tuple[str, ...]) -> list[dict]:
    status_sql, binds = in_clause("st", statuses)
    binds[":vo"] = vo
    return db.query_dicts(
        f"SELECT jediTaskID, taskName, status FROM {db.table('JEDI_Tasks')} WHERE vo=:vo AND status IN {status_sql} ORDER BY jediTaskID",
        binds,
    )


def set_task_status(db: WfDatabase, jedi_task_id: int, status: str, now: datetime.datetime) -> None:
    db.execute(
        f"UPDATE {db.table('JEDI_Tasks')} SET oldStatus=status, status=:status, modificationTime=:now, stateChangeTime=:now "
        "WHERE jediTaskID=:task ",
        {":status": status, ":now": now, ":task": jedi_task_id},
    )


def output_datasets(db: WfDatabase, jedi_task_id: int) -> list[dict]:
    return db.query_dicts(
        f"SELECT datasetID, datasetName, type FROM {db.table('JEDI_Datasets')} WHERE jediTaskID=:task AND type IN ('output','log') ",
        {":task": jedi_task_id},
    )


def add_finished_files(db: WfDatabase, jedi_task_id: int, dataset_id: int, dataset_name: str, n_files: int, first_serial: int) -> None:
    """Files a simulated job wrote: rows in JEDI_Dataset_Contents with status 'finished', counters bumped."""
    base = dataset_name.rstrip("/")
    db.executemany(
        f"INSERT INTO {db.table('JEDI_Dataset_Contents')} (jediTaskID, datasetID, fileID, creationDate, lastAttemptTime, lfn, "
        "GUID, type, status, fsize, scope, attemptNr, maxAttempt, nEvents, keepTrack) "
        f"VALUES (:task, :ds, {db.table('JEDI_DATASET_CONT_FILEID_SEQ')}.nextval, :now, :now, :lfn, :guid, 'output', 'finished', "
        ":fsize, 'user.sim', 0, 3, 100, 1) ",
        [
            {
                ":task": jedi_task_id,
                ":ds": dataset_id,
                ":now": datetime.datetime(2000, 1, 1),
                ":lfn": f"{base}.{first_serial + i:06d}.root",
                ":guid": f"00000000-0000-0000-{jedi_task_id % 10000:04d}-{first_serial + i:012d}",
                ":fsize": 1000000,
            }
            for i in range(n_files)
        ],
    )
    db.execute(
        f"UPDATE {db.table('JEDI_Datasets')} SET nFiles=COALESCE(nFiles,0)+:n, nFilesFinished=COALESCE(nFilesFinished,0)+:n "
        "WHERE jediTaskID=:task AND datasetID=:ds ",
        {":n": n_files, ":task": jedi_task_id, ":ds": dataset_id},
    )
