"""Rucio's own server-side code, run in the Rucio server's virtualenv (``.venv-rucio``) for tests: not part of
``pandajedi_wf``'s runtime and never imported by it.

:mod:`pandajedi_wf_dev.devdb.rucio_server` runs this file by path with ``.venv-rucio/bin/python`` and ``RUCIO_CONFIG``
naming the server's ``rucio.cfg``; it uses only the standard library and ``rucio`` (server package 41.x), so it
imports nothing from this project (whose dependencies live in another virtualenv).

Commands::

    python rucio_server_ops.py bootstrap   # rucio's build_database(), create_base_vo(), create_root_account()
    python rucio_server_ops.py serve       # JSON lines on stdin -> one JSON answer line each on stdout

``serve`` keeps Rucio's core imported, so each operation costs what Rucio's code costs (0.1-2 s), not an
interpreter start. A request is ``{"op": NAME, "args": {...}}``; the answer ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "...", "traceback": "..."}``. Operations (what FTS and Rucio's daemons would do):

- ``finish_transfers(rule_id, names=None, state="DONE", error=None)``: the transfer requests of a rule (all, or those
  of the file names given) are put in ``state`` (``DONE``: the file arrived; ``NO_SOURCES``, ``FAILED``, ...: it did
  not, with ``error``, by default the text Rucio's conveyor writes for that state, ``get_transfer_error``) by
  ``rucio.core.request.update_request``, then one ``conveyor-finisher`` pass
  (``finisher(once=True)``) applies them: replica, lock and rule states, as in production.
  A ``abacus-collection-replica`` pass follows, so dataset replicas count the arrived files.
- ``repair_rules(delta=-1)``: one ``judge-repairer`` pass over STUCK rules not updated for ``delta`` seconds
  (-1: all; Rucio's own default is 1800, which a ``boost_rule`` moves a rule past): their STUCK locks requeued.
- ``clean_rules()``: one ``judge-cleaner`` pass: expired rules removed, their replicas released.
- ``update_collection_replicas()``: one ``abacus-collection-replica`` pass (dataset replica counts).
- ``transfer_requests(rule_id)``: the rule's requests (id, scope, name, state, destination RSE, error).
- ``ping()``.

Everything Rucio prints goes to stderr (the caller's log file); stdout carries only the answers.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def bootstrap() -> dict:
    """The schema and the root account, as ``rucio-reset-database`` / Rucio's own test setup make them."""
    from rucio.db.sqla.util import build_database, create_base_vo, create_root_account

    build_database()
    create_base_vo()
    create_root_account()
    return {"bootstrapped": True}


def _request_rows(rule_id: str, names: list[str] | None = None) -> list:
    from sqlalchemy import select

    from rucio.db.sqla import models
    from rucio.db.sqla.session import get_session

    session = get_session()()
    try:
        stmt = select(models.Request).where(models.Request.rule_id == rule_id)
        rows = list(session.execute(stmt).scalars())
        session.expunge_all()
    finally:
        session.close()
    if names is not None:
        wanted = set(names)
        rows = [row for row in rows if row.name in wanted]
    return rows


def transfer_requests(rule_id: str) -> list[dict]:
    from rucio.core.rse import get_rse_name

    return [
        {
            "id": str(row.id),
            "scope": str(row.scope),
            "name": row.name,
            "state": row.state.name,
            "dest_rse": get_rse_name(rse_id=row.dest_rse_id),
            "source_rse": get_rse_name(rse_id=row.source_rse_id) if row.source_rse_id else None,
            "source_replica_expression": json.loads(row.attributes or "{}").get("source_replica_expression"),
            "priority": row.priority,
            "error": row.err_msg,
        }
        for row in _request_rows(rule_id)
    ]


def finish_transfers(rule_id: str, names: list[str] | None = None, state: str = "DONE", error: str | None = None) -> dict:
    """What FTS reports for the rule's transfers, then one finisher pass. Returns the requests updated per state."""
    import datetime

    from rucio.core.request import get_transfer_error, update_request
    from rucio.daemons.conveyor.finisher import finisher
    from rucio.db.sqla.constants import RequestState

    target = RequestState[state]
    rows = _request_rows(rule_id, names)
    if names is not None and len({row.name for row in rows}) != len(set(names)):
        missing = sorted(set(names) - {row.name for row in rows})
        raise LookupError(f"rule {rule_id} has no transfer request for {missing}")
    now = datetime.datetime.utcnow()
    updated = 0
    for row in rows:
        if row.state in (RequestState.QUEUED, RequestState.SUBMITTED, RequestState.WAITING, RequestState.SUBMITTING):
            extra = {"transferred_at": now, "started_at": now} if target == RequestState.DONE else {"err_msg": error or get_transfer_error(target) or f"{state} (simulated)"}
            update_request(row.id, state=target, **extra)
            updated += 1
    finisher(once=True, partition_wait_time=0)
    update_collection_replicas()
    return {"updated": updated, "requests": transfer_requests(rule_id)}


def _daemon_pass(daemon_name: str, run_once, **kwargs):
    """One pass of a Rucio daemon's ``run_once`` under its heartbeat, without ``run_daemon``'s partition wait."""
    from rucio.daemons.common import HeartbeatHandler

    with HeartbeatHandler(executable=daemon_name, renewal_interval=60) as heartbeat_handler:
        return run_once(heartbeat_handler=heartbeat_handler, **kwargs)


def repair_rules(delta: int = -1) -> dict:
    """One judge-repairer pass over the STUCK rules not updated for ``delta`` seconds (-1: however recently)."""
    from rucio.daemons.judge import repairer

    _daemon_pass(repairer.DAEMON_NAME, repairer.run_once, paused_rules={}, delta=delta)
    return {"repaired": True}


def clean_rules() -> dict:
    """One judge-cleaner pass: every expired rule is removed (its locks gone, its replicas given a tombstone)."""
    from rucio.daemons.judge import cleaner

    _daemon_pass(cleaner.DAEMON_NAME, cleaner.run_once, paused_rules={})
    return {"cleaned": True}


def update_collection_replicas() -> dict:
    """One abacus-collection-replica pass: dataset replicas (``list_dataset_replicas``) count their files again."""
    from rucio.daemons.abacus import collection_replica

    _daemon_pass(collection_replica.DAEMON_NAME, collection_replica.run_once, limit=10000)
    return {"updated": True}


def ping() -> dict:
    return {"pid": os.getpid()}


OPERATIONS = {f.__name__: f for f in (finish_transfers, repair_rules, clean_rules, update_collection_replicas, transfer_requests, ping)}


def serve(answers) -> None:
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
            result = OPERATIONS[request["op"]](**request.get("args", {}))
            answer = {"ok": True, "result": result}
        except Exception as exc:  # the caller raises with this text
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        answers.write(json.dumps(answer, default=str) + "\n")
        answers.flush()


def main(argv: list[str]) -> int:
    if "RUCIO_CONFIG" not in os.environ:
        print("RUCIO_CONFIG must name the server's rucio.cfg", file=sys.stderr)
        return 2
    # answers on the real stdout; anything else that writes to fd 1 (Rucio's logging, prints) lands in stderr
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    command = argv[0] if argv else ""
    if command == "bootstrap":
        answers.write(json.dumps(bootstrap()) + "\n")
        return 0
    if command == "serve":
        serve(answers)
        return 0
    print(f"usage: rucio_server_ops.py bootstrap|serve (got {argv!r})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
