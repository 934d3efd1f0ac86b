"""The real upstream path on a real PostgreSQL: a task request becomes a JEDI task.

insertTaskParamsPanda writes DEFT T_TASK and JEDI_TaskParams; one TaskRefiner cycle
(upstream's TaskRefinerThread with GenTaskRefiner, run in-process) creates the
JEDI_Tasks row and registers datasets in one shot. If our schema or config lacked
anything upstream needs, the task would end up ``tobroken`` or stay ``registered``.
"""

import json
import re

from pandajedi_wf_dev.devdb.upstream_agents import refine_tasks


def task_params(name, **extra):
    """The development template (as the pchain client would send it) made a complete no-input task."""
    from pandajedi_wf_dev.devdb.task_templates import dev_templates

    params = dev_templates()["container"]
    params.update(
        taskName=name,
        noInput=True,
        log={"type": "template", "param_type": "log", "value": f"{name}.log.${{SN}}.tgz", "dataset": f"{name}.log/", "container": f"{name}.log/"},
        jobParameters=[{"type": "constant", "value": "echo hello"}],
    )
    params.update(extra)
    return params


def submit(task_buffer, params):
    code, message = task_buffer.insertTaskParamsPanda(json.dumps(params), "dev.user", True, [], properErrorCode=True)
    assert code == 0, message
    match = re.search(r"jediTaskID=(\d+)", message)
    assert match, message
    return int(match.group(1))


def fetch(db_conn, sql, *args):
    with db_conn.cursor() as cur:
        cur.execute(sql, args)
        rows = cur.fetchall()
    db_conn.commit()
    return rows


def test_submitted_request_waits_in_deft_until_refined(jedi_taskbuffer, db_conn):
    task_id = submit(jedi_taskbuffer, task_params("user.dev.harness.submit"))

    (row,) = fetch(
        db_conn, "SELECT status, vo, prodsourcelabel, username, taskname, jedi_task_parameters FROM doma_deft.t_task WHERE taskid = %s", task_id
    )
    assert row[:5] == ("waiting", "wlcg", "user", "dev.user", "user.dev.harness.submit")
    assert json.loads(row[5])["taskName"] == "user.dev.harness.submit"
    assert fetch(db_conn, "SELECT 1 FROM doma_panda.jedi_tasks WHERE jeditaskid = %s", task_id) == []


def test_task_refiner_defines_the_task_with_its_datasets(jedi_taskbuffer, db_conn):
    task_id = submit(jedi_taskbuffer, task_params("user.dev.harness.refine"))

    picked = refine_tasks(jedi_taskbuffer, "wlcg", "user")

    assert picked == [task_id]
    (stored,) = fetch(db_conn, "SELECT taskparams FROM doma_panda.jedi_taskparams WHERE jeditaskid = %s", task_id)
    assert json.loads(stored[0])["taskName"] == "user.dev.harness.refine"
    (task,) = fetch(
        db_conn,
        "SELECT status, errordialog, site, gshare, workqueue_id, username FROM doma_panda.jedi_tasks WHERE jeditaskid = %s",
        task_id,
    )
    status, error_dialog, site, gshare, work_queue, user = task
    assert status == "defined", error_dialog
    assert (site, gshare, work_queue, user) == ("DEV_QUEUE", "User Analysis", 1, "dev.user")
    datasets = fetch(
        db_conn, "SELECT datasetname, type, status FROM doma_panda.jedi_datasets WHERE jeditaskid = %s ORDER BY datasetid", task_id
    )
    assert ("user.dev.harness.refine.log/", "tmpl_log", "defined") in datasets
    assert any(kind == "pseudo_input" for _, kind, _ in datasets)
    (deft_status,) = fetch(db_conn, "SELECT status FROM doma_deft.t_task WHERE taskid = %s", task_id)
    assert deft_status[0] != "waiting"  # picked up, so the next cycle does not refine it again
    assert refine_tasks(jedi_taskbuffer, "wlcg", "user") == []


def test_task_without_a_matching_global_share_is_refused(jedi_taskbuffer, db_conn):
    """A label no seeded share matches: upstream must send the task to tobroken, and say why."""
    task_id = submit(jedi_taskbuffer, task_params("user.dev.harness.noshare", prodSourceLabel="rc_test2"))

    refine_tasks(jedi_taskbuffer, "wlcg", "rc_test2")

    ((status, error_dialog),) = fetch(db_conn, "SELECT status, errordialog FROM doma_panda.jedi_tasks WHERE jeditaskid = %s", task_id)
    assert status == "tobroken"
    assert error_dialog
