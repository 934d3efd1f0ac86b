"""JEDI_WF_STEPS: one row per step instance (node_key) of a workflow.

Every status change is a guarded UPDATE (``AND status=:from_status``): if another processor or a command moved
the row first, the update touches nothing and the caller sees it, so a stale decision is never written.
"""

from __future__ import annotations

import datetime
import functools
import sys
from dataclasses import dataclass

from .connection import WfDatabase, chunks, in_clause, json_text, json_value
from .status_updates import guarded_status_changes

TABLE = "JEDI_WF_STEPS"
SEQUENCE = "JEDI_WF_STEP_ID_SEQ"
LIGHT_COLUMNS = (
    "step_id, workflow_id, node_key, node_id, name, step_type, status, prev_status, iteration, scatter_index, "
    "parent_keys, jedi_task_id, task_name, attempt_nr, generation, auto_retries, retry_after, results, error_class, error_dialog"
)
_LIGHT = tuple(c.strip() for c in LIGHT_COLUMNS.split(","))
_INTERNED = tuple(_LIGHT.index(c) for c in ("node_key", "name", "step_type", "status", "prev_status"))
COLUMNS = (
    "step_id, workflow_id, node_key, node_id, name, step_type, status, prev_status, iteration, scatter_index, "
    "parent_keys, condition, jedi_task_id, task_name, attempt_nr, generation, auto_retries, max_attempts, retry_after, task_params, outputs, "
    "results, error_class, error_dialog, submit_intent_time, creation_time, modification_time, status_change_time"
)
JSON_COLUMNS = ("parent_keys", "condition", "task_params", "outputs", "results")


@dataclass(frozen=True)
class StatusChange:
    step_id: int
    from_status: str
    to_status: str
    error_dialog: str | None = None


def _decode(row: dict) -> dict:
    for col in JSON_COLUMNS:
        row[col] = json_value(row[col])
    return row


def _parent_keys(raw) -> tuple[str, ...]:
    return _parent_keys_of_text(raw) if isinstance(raw, str) else tuple(json_value(raw) or ())


@functools.lru_cache(maxsize=4096)
def _parent_keys_of_text(raw: str) -> tuple[str, ...]:
    return tuple(json_value(raw) or ())


def load_for_workflows(db: WfDatabase, workflow_ids: list[int], light: bool = False) -> dict[int, list[dict]]:
    """All steps of a batch of workflows, in as few statements as the IN-list size allows.

    ``light`` leaves out the bulky columns (task parameters, outputs, condition) a processor cycle does not need.
    """
    if light:
        return load_light(db, workflow_ids, lambda *values: dict(zip(_LIGHT, values)))
    found: dict[int, list[dict]] = {wid: [] for wid in workflow_ids}
    for part in chunks(workflow_ids, 500):
        id_sql, binds = in_clause("wf", part)
        for row in db.query_dicts(f"SELECT {COLUMNS} FROM {db.table(TABLE)} WHERE workflow_id IN {id_sql} ORDER BY step_id", binds):
            found[int(row["workflow_id"])].append(_decode(row))
    return found


def load_light(db: WfDatabase, workflow_ids: list[int], make) -> dict[int, list]:
    """The light rows of a batch of workflows, each made by ``make(*values)`` with the values in ``LIGHT_COLUMNS``
    order (``parent_keys`` and ``results`` decoded): the processor's rows without a dict per row on the way."""
    # (parent lists repeat from workflow to workflow of one shape: decoded once each; so do node keys, names, types
    # and statuses: interned, one string each instead of one per row in the rows the processor keeps between passes)
    parents, results, workflow = _LIGHT.index("parent_keys"), _LIGHT.index("results"), _LIGHT.index("workflow_id")
    found: dict[int, list] = {wid: [] for wid in workflow_ids}
    workflow_of = {wid: wid for wid in found}  # one int object per workflow, not one per row
    for part in chunks(workflow_ids, 500):
        id_sql, binds = in_clause("wf", part)
        for row in db.query(f"SELECT {LIGHT_COLUMNS} FROM {db.table(TABLE)} WHERE workflow_id IN {id_sql} ORDER BY step_id", binds):
            values = list(row)
            values[parents] = _parent_keys(values[parents])
            values[results] = json_value(values[results])
            values[workflow] = workflow_id = workflow_of[int(values[workflow])]
            for i in _INTERNED:
                if values[i] is not None:
                    values[i] = sys.intern(values[i])
            found[workflow_id].append(make(*values))
    return found


def times_of(db: WfDatabase, workflow_ids: list[int]) -> dict[int, dict[str, tuple]]:
    """Per workflow, node key -> (submit_intent_time, status_change_time): how long its steps took, for the critical
    path (read only for workflows about to submit beside other live steps)."""
    found: dict[int, dict[str, tuple]] = {w: {} for w in workflow_ids}
    for part in chunks(workflow_ids, 500):
        id_sql, binds = in_clause("wf", part)
        for workflow_id, key, started, changed in db.query(
            f"SELECT workflow_id, node_key, submit_intent_time, status_change_time FROM {db.table(TABLE)} WHERE workflow_id IN {id_sql}", binds
        ):
            found[int(workflow_id)][key] = (started, changed)
    return found


def task_params_of(db: WfDatabase, step_ids: list[int]) -> dict[int, dict]:
    found: dict[int, dict] = {}
    for part in chunks(step_ids, 500):
        id_sql, binds = in_clause("s", part)
        for step_id, params in db.query(f"SELECT step_id, task_params FROM {db.table(TABLE)} WHERE step_id IN {id_sql}", binds):
            found[int(step_id)] = json_value(params)
    return found


_INSERT_COLUMNS = (
    "step_id", "workflow_id", "node_key", "node_id", "name", "step_type", "status", "iteration", "scatter_index", "parent_keys",
    "task_name", "task_params", "attempt_nr", "submit_intent_time", "creation_time", "modification_time", "status_change_time",
)


def insert_many(db: WfDatabase, rows: list[dict], now: datetime.datetime) -> None:
    """New steps of many workflows with ids already drawn from the sequence, in their final status of this cycle.

    Each row: step_id, workflow_id, node_key, node_id, name, step_type, status, iteration, scatter_index,
    parent_keys, task_name, and for a step created straight into ``submitting``: task_params.
    """
    db.insert_rows(
        TABLE,
        _INSERT_COLUMNS,
        [
            (
                r["step_id"], r["workflow_id"], r["node_key"], r["node_id"], r["name"], r["step_type"], r["status"], r["iteration"],
                r["scatter_index"], _parent_keys_text(tuple(r["parent_keys"])), r["task_name"], json_text(r.get("task_params")),
                1 if r["status"] == "submitting" else 0, now if r["status"] == "submitting" else None, now, now, now,
            )
            for r in rows
        ],
    )


@functools.lru_cache(maxsize=4096)
def _parent_keys_text(keys: tuple[str, ...]) -> str:
    return json_text(list(keys))


def change_status_grouped(db: WfDatabase, changes: list[StatusChange], now: datetime.datetime) -> None:
    """Many guarded status changes in one statement per (from, to) pair and 500 steps; a lost race raises."""
    lost = set(guarded_status_changes(db, TABLE, "step_id", [(c.step_id, c.from_status, c.to_status) for c in changes], now))
    if lost:
        raise StaleStepStatus([c for c in changes if c.step_id in lost])


def record_submit_intents(db: WfDatabase, intents: list[tuple[int, str, str, str]], now: datetime.datetime) -> None:
    """(step_id, from_status, task_name, task_params as JSON text, the very text sent to JEDI): the step goes
    ``submitting`` with what will be sent."""
    changed = db.update_rows(
        TABLE,
        "status='submitting', prev_status=status, task_name=:task_name, task_params=:task_params, submit_intent_time=:now, "
        "status_change_time=:now, modification_time=:now, attempt_nr=attempt_nr+1",
        "step_id=:step_id AND status=:from_status",
        {":task_name": "task_name", ":task_params": "task_params", ":now": "modification_time", ":step_id": "step_id", ":from_status": "status"},
        [{":task_name": n, ":task_params": p, ":now": now, ":step_id": i, ":from_status": f} for i, f, n, p in intents],
    )
    if changed != len(intents):
        raise StaleStepStatus([StatusChange(i, f, "submitting") for i, f, _, _ in intents])


def record_submitted_many(db: WfDatabase, accepted: list[tuple[int, int]], now: datetime.datetime) -> None:
    """(step_id, jedi_task_id): JEDI took the tasks."""
    changed = db.update_rows(
        TABLE,
        "status='submitted', prev_status=status, jedi_task_id=:task, status_change_time=:now, modification_time=:now",
        "step_id=:step_id AND status='submitting'",
        {":task": "jedi_task_id", ":now": "modification_time", ":step_id": "step_id"},
        [{":task": t, ":now": now, ":step_id": i} for i, t in accepted],
    )
    if changed != len(accepted):
        raise StaleStepStatus([StatusChange(i, "submitting", "submitted") for i, _ in accepted])


def set_results_many(db: WfDatabase, results: list[tuple[int, dict | None]], now: datetime.datetime) -> None:
    db.executemany(
        f"UPDATE {db.table(TABLE)} SET results=:results, modification_time=:now WHERE step_id=:step_id ",
        [{":results": json_text(r), ":now": now, ":step_id": i} for i, r in results],
    )


def get_by_task_id(db: WfDatabase, jedi_task_id: int) -> dict | None:
    rows = db.query_dicts(f"SELECT {COLUMNS} FROM {db.table(TABLE)} WHERE jedi_task_id=:task", {":task": jedi_task_id})
    return _decode(rows[0]) if rows else None


def change_status(db: WfDatabase, changes: list[StatusChange], now: datetime.datetime) -> None:
    """Apply guarded status changes one statement each (rowcount tells which lost a race)."""
    lost = []
    for c in changes:
        cur = db.execute(
            f"UPDATE {db.table(TABLE)} SET status=:to_status, prev_status=status, status_change_time=:now, modification_time=:now, "
            "error_dialog=COALESCE(:error_dialog, error_dialog) WHERE step_id=:step_id AND status=:from_status ",
            {":to_status": c.to_status, ":now": now, ":error_dialog": c.error_dialog, ":step_id": c.step_id, ":from_status": c.from_status},
        )
        if cur.rowcount != 1:
            lost.append(c)
    if lost:
        raise StaleStepStatus(lost)


class StaleStepStatus(RuntimeError):
    """A guarded update found the step no longer in the status the decision was based on."""

    def __init__(self, changes: list[StatusChange]):
        self.changes = changes
        super().__init__(f"{len(changes)} step(s) changed under us, e.g. step {changes[0].step_id} is no longer {changes[0].from_status!r}")


def reset_for_new_task(db: WfDatabase, step_id: int, from_status: str, to_status: str, now: datetime.datetime) -> None:
    """A user retry/rerun makes the step a new JEDI task: forget the old one and count a new generation (its name)."""
    cur = db.execute(
        f"UPDATE {db.table(TABLE)} SET status=:to_status, prev_status=status, jedi_task_id=NULL, task_params=NULL, outputs=NULL, "
        "results=NULL, error_class=NULL, error_dialog=NULL, submit_intent_time=NULL, attempt_nr=0, generation=generation+1, "
        "status_change_time=:now, modification_time=:now WHERE step_id=:step_id AND status=:from_status ",
        {":to_status": to_status, ":now": now, ":step_id": step_id, ":from_status": from_status},
    )
    if cur.rowcount != 1:
        raise StaleStepStatus([StatusChange(step_id, from_status, to_status)])


def delete(db: WfDatabase, step_ids: list[int]) -> None:
    """Drop step rows the engine will generate again (later loop iterations after a rerun)."""
    for part in chunks(step_ids, 500):
        id_sql, binds = in_clause("s", part)
        db.execute(f"DELETE FROM {db.table(TABLE)} WHERE step_id IN {id_sql}", binds)


def status_counts(db: WfDatabase, workflow_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per workflow, how many steps are in each status (one grouped statement per 500 workflows)."""
    found: dict[int, dict[str, int]] = {}
    for part in chunks(workflow_ids, 500):
        id_sql, binds = in_clause("wf", part)
        for workflow_id, status, n in db.query(
            f"SELECT workflow_id, status, COUNT(*) FROM {db.table(TABLE)} WHERE workflow_id IN {id_sql} GROUP BY workflow_id, status", binds
        ):
            found.setdefault(int(workflow_id), {})[status] = int(n)
    return found


# ---- automatic retries (daemons/processor/retries.py) --------------------------------------------------------

@dataclass(frozen=True)
class RetryMark:
    """What the processor decided about a step's failure: its class, JEDI's words, and when to try again (None:
    not retried, or retried now)."""

    step_id: int
    error_class: str | None
    error_dialog: str | None
    retry_after: datetime.datetime | None


def count_automatic_retries(db: WfDatabase, step_ids: list[int], now: datetime.datetime) -> None:
    """One more automatic retry started for each of these steps (the retry policy's budget is counted here)."""
    _add_to_auto_retries(db, step_ids, "auto_retries+1", now)


def forget_automatic_retries(db: WfDatabase, step_ids: list[int], now: datetime.datetime) -> None:
    """A user command touched these steps: their automatic retries start again from the policy's full budget."""
    _add_to_auto_retries(db, step_ids, "0", now)


def _add_to_auto_retries(db: WfDatabase, step_ids: list[int], value_sql: str, now: datetime.datetime) -> None:
    for part in chunks(sorted(set(step_ids)), 500):
        id_sql, binds = in_clause("s", part)
        binds[":now"] = now
        db.execute(f"UPDATE {db.table(TABLE)} SET auto_retries={value_sql}, modification_time=:now WHERE step_id IN {id_sql}", binds)


def set_retry_marks(db: WfDatabase, marks: list[RetryMark], now: datetime.datetime) -> None:
    """Record classes and due times; written in the transaction of the guarded status changes they go with."""
    db.executemany(
        f"UPDATE {db.table(TABLE)} SET error_class=:error_class, error_dialog=:error_dialog, retry_after=:retry_after, "
        "modification_time=:now WHERE step_id=:step_id ",
        [
            {":error_class": m.error_class, ":error_dialog": m.error_dialog[:4000] if m.error_dialog else None,
             ":retry_after": m.retry_after, ":now": now, ":step_id": m.step_id}
            for m in marks
        ],
    )


def reset_for_retry_grouped(db: WfDatabase, changes: list[StatusChange], now: datetime.datetime) -> None:
    """An automatic retry as a new JEDI task: like ``reset_for_new_task`` (new generation, so a new task name), but
    the attempt count and the last error stay, and the due time is cleared. Guarded, grouped per from status."""
    lost = set(guarded_status_changes(
        db, TABLE, "step_id", [(c.step_id, c.from_status, c.to_status) for c in changes], now,
        also="jedi_task_id=NULL, task_params=NULL, outputs=NULL, results=NULL, submit_intent_time=NULL, retry_after=NULL, "
        "generation=generation+1",
    ))
    if lost:
        raise StaleStepStatus([c for c in changes if c.step_id in lost])


def set_error_dialogs(db: WfDatabase, dialogs: list[tuple[int, str]], now: datetime.datetime) -> None:
    """Why a step waits (its status unchanged), where ``show`` and the monitor display it."""
    db.executemany(
        f"UPDATE {db.table(TABLE)} SET error_dialog=:error_dialog, modification_time=:now WHERE step_id=:step_id ",
        [{":error_dialog": text[:4000], ":now": now, ":step_id": i} for i, text in dialogs],
    )


def ended_with_task_command(db: WfDatabase, task_commands: tuple[str, ...] | list[str]) -> list[tuple[int, int]]:
    """(workflow_id, jedi_task_id) of ended steps (failed or finished, not held for an automatic retry) whose task has
    one of ``task_commands`` in DEFT PRODSYS_COMM: found from DEFT's few command rows through the task index."""
    command_sql, binds = in_clause("c", task_commands)
    step_sql, step_binds = in_clause("st", ("failed", "finished"))
    binds.update(step_binds)
    rows = db.query(
        f"SELECT s.workflow_id, s.jedi_task_id FROM {db.schema_deft}.PRODSYS_COMM c, {db.table(TABLE)} s "
        f"WHERE c.comm_cmd IN {command_sql} AND s.jedi_task_id=c.comm_task AND s.status IN {step_sql} "
        "AND s.retry_after IS NULL",
        binds,
    )
    return [(int(w), int(t)) for w, t in rows]
