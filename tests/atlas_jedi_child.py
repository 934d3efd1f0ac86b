"""Child process of tests/test_e2e_atlas_user_refine.py: upstream JEDI configured for ATLAS, from its own PANDA_HOME.

Upstream reads panda_jedi.cfg once, at import time, and the test session's PANDA_HOME is the generic VO's; so the
ATLAS configuration (``[ddm] modConfig`` -> AtlasDDMClient, ``[taskrefine] modConfig`` atlas:user ->
AtlasAnalTaskRefiner) is a PANDA_HOME of its own, read by this process as JediMaster's children would read it.

Input: a JSON file (argv[1]) with ``panda_home``, ``db_env`` (the ``PANDA_DB_*`` of the test cluster),
``tasks`` (``{key: task params}``), ``dn``, optional ``report`` (``{key: jediTaskID}`` of tasks submitted earlier),
``reactivate`` (upstream WatchDog's reactivation of pending tasks, before the feed), ``label`` (the prodSourceLabel
whose agents run: ``user`` by default, ``managed`` for production tasks, then submitted with the production role);
``RUCIO_CONFIG`` in the environment names the Rucio client config. Steps: build JEDI's DDM
interface from ``[ddm] modConfig`` (each client in-process, called with IPC semantics), submit the task with
upstream ``insertTaskParamsPanda`` as the PanDA server does for a user (not production role, the user's DN), run
one TaskRefiner cycle for atlas/user (``devdb.upstream_agents.refine_tasks``: the refiner class comes from
``[taskrefine] modConfig`` through upstream's FactoryBase) and, with ``feed``, one ContentsFeeder pass. Output: one JSON line on stdout, per task key its
submission answer, JEDI_Tasks row, JEDI_Datasets rows and the task parameters as the refiner stored them.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Cluster:
    def __init__(self, env):
        self._env = env

    def env(self):
        return dict(self._env)


def ddm_interface_from_config():
    """What ``DDMInterface.setupInterface()`` builds from ``[ddm] modConfig`` (``vo:maxSize:module:Class``), with
    each client made in this process instead of a forked one; calls unwrapped as ``Interaction.MethodClass`` does."""
    import importlib

    from pandajedi.jediconfig import jedi_config

    from pandajedi_wf_dev.simulators.jedi_ddm import InProcessDDMInterface

    clients = {}
    for entry in jedi_config.ddm.modConfig.split(","):
        vo, _max_size, module_name, class_name = entry.strip().split(":")[:4]
        clients[vo] = getattr(importlib.import_module(module_name), class_name)(None)
    return InProcessDDMInterface(clients), {vo: type(c).__module__ + "." + type(c).__name__ for vo, c in clients.items()}


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    from pandajedi_wf_dev.devdb import panda_home

    panda_home.activate(config["panda_home"], _Cluster(config["db_env"]))
    from pandajedi_wf_dev.devdb.upstream_agents import feed_contents, make_zombie_cleaner_harmless, refine_tasks

    make_zombie_cleaner_harmless()
    from pandajedi.jediconfig import jedi_config
    from pandajedi.jedicore.JediTaskBuffer import JediTaskBuffer

    task_buffer = JediTaskBuffer(None, nDBConnection=1)
    ddm_if, ddm_classes = ddm_interface_from_config()
    result = {"ddm_clients": ddm_classes, "taskrefine_modConfig": jedi_config.taskrefine.modConfig}
    result["tasks"] = {}
    label = config.get("label", "user")
    for key, params in config["tasks"].items():
        code, message = task_buffer.insertTaskParamsPanda(json.dumps(params), config["dn"], label == "managed", [], properErrorCode=True)
        match = re.search(r"jediTaskID=(\d+)", str(message))
        result["tasks"][key] = {"submit": [code, message], "jediTaskID": int(match.group(1)) if code == 0 and match else None}
    for key, task_id in config.get("report", {}).items():  # tasks of an earlier run
        result["tasks"][key] = {"jediTaskID": task_id}
    result["picked"] = refine_tasks(task_buffer, "atlas", label, ddm_if)
    if config.get("reactivate"):  # what upstream's WatchDog runs: pending tasks back to their old status
        refresh_min_task_ids(config["db_env"])
        task_buffer.reactivatePendingTasks_JEDI("atlas", label, jedi_config.watchdog.waitForPending, jedi_config.watchdog.timeoutForPending)
    if config.get("feed"):
        refresh_min_task_ids(config["db_env"])
        result["fed"] = feed_contents(task_buffer, "atlas", label, ddm_if)
    for entry in result["tasks"].values():
        if entry["jediTaskID"] is not None:
            entry.update(_task_rows(task_buffer, entry["jediTaskID"]))
    task_buffer.cleanup(requester="atlas_jedi_child")
    print(json.dumps(result, default=str))
    return 0


def refresh_min_task_ids(db_env: dict) -> None:
    """What pg_cron runs in a Postgres deployment: the feeder's query only sees tasks from JEDI_AUX_Status_MinTaskID on."""
    import psycopg2

    conn = psycopg2.connect(
        host=db_env["PANDA_DB_HOST"], port=db_env["PANDA_DB_PORT"], user=db_env["PANDA_DB_USER"], password=db_env["PANDA_DB_PASSWORD"], dbname=db_env["PANDA_DB_NAME"]
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CALL {_jedi_schema().lower()}.jedi_refresh_min_taskid_by_status()")
    finally:
        conn.close()


def _task_rows(task_buffer, task_id: int) -> dict:
    schema = _jedi_schema()
    columns = ("status", "errorDialog", "userName", "taskName", "reqID", "gshare", "workQueue_ID", "site", "splitRule", "taskType", "prodSourceLabel")
    rows = task_buffer.querySQL(f"SELECT {','.join(columns)} FROM {schema}.JEDI_Tasks WHERE jediTaskID=:id", {":id": task_id})
    datasets = task_buffer.querySQL(
        f"SELECT datasetName, containerName, type, status, nFiles, "
        f"(SELECT COUNT(*) FROM {schema}.JEDI_Dataset_Contents c WHERE c.jediTaskID=d.jediTaskID AND c.datasetID=d.datasetID) "
        f"FROM {schema}.JEDI_Datasets d WHERE jediTaskID=:id ORDER BY datasetID",
        {":id": task_id},
    )
    files = task_buffer.querySQL(
        f"SELECT d.datasetName, c.lfn, c.scope, c.fsize, c.checksum, c.GUID, c.status FROM {schema}.JEDI_Dataset_Contents c, {schema}.JEDI_Datasets d "
        f"WHERE c.jediTaskID=:id AND d.jediTaskID=c.jediTaskID AND d.datasetID=c.datasetID ORDER BY c.lfn",
        {":id": task_id},
    )
    stored = task_buffer.getTaskParamsWithID_JEDI(task_id)
    return {
        "files": [list(row) for row in files or []],
        "task": dict(zip(columns, rows[0])) if rows else None,
        "datasets": [list(row) for row in datasets or []],
        "refined_params": json.loads(stored) if stored else None,
    }


def _jedi_schema():
    from pandaserver.config import panda_config

    return panda_config.schemaJEDI


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
