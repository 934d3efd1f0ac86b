"""How a pass runs: batches on several connections at once, with Python's cyclic collector out of the way."""

from __future__ import annotations

import contextlib
import gc
import threading
import time

from pandajedi_wf.taskbuffer.connection import WfDatabase


def in_workers(db: WfDatabase, workers: int, work) -> None:
    """``work(connection)`` on ``workers`` threads, each with its own connection; the first failure is raised after
    all have ended (run_cycle records it)."""
    connections = [db, *db.siblings(workers - 1)]
    if len(connections) == 1:
        work(db)
        return
    failures: list[BaseException] = []

    def guarded(worker_db: WfDatabase) -> None:
        try:
            work(worker_db)
        except BaseException as exc:  # handed to the caller after the join
            failures.append(exc)
            with contextlib.suppress(Exception):
                worker_db.reconnect(attempts=1)

    threads = [threading.Thread(target=guarded, args=(c,), name=f"wf-processor-{i}") for i, c in enumerate(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector off for the pass; after it, what is still alive is frozen out of its view.

    A pass builds and drops hundreds of thousands of short-lived, acyclic rows and records (reference counting frees
    them), while the parsed definitions of every active workflow stay alive for the next pass: each full collection
    walked all of them again (about 40% of a creation pass, and 2.5 s after each pass over 10,000 workflows). So
    the collector is off during the pass, and at its end the survivors go to the permanent generation
    (``gc.freeze``), where collections no longer visit them; acyclic ones are still freed by reference counting.
    Every ``THAW_SECONDS`` the permanent generation is thawed and fully collected once, after a pass, so cyclic
    garbage frozen there is not kept for ever.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if time.monotonic() - thawed[0] > THAW_SECONDS:
            gc.unfreeze()
            gc.collect()  # the one full collection per THAW_SECONDS (2.5 s over 10,000 workflows' definitions)
            thawed[0] = time.monotonic()
        gc.freeze()
        if was_enabled:
            gc.enable()


THAW_SECONDS = 3600
thawed = [time.monotonic()]
