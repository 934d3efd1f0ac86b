"""A workflow processor process for the crash tests (tests/test_workflow_crash_kill.py); not a test module.

Run with the test session's environment (PANDA_HOME, PANDA_DB_*, PYTHONPATH set by tests/conftest.py), it builds
upstream's JediTaskBuffer and our WfDatabase on the database the environment names and prints one JSON line per
event on stdout, flushed, so the parent can kill it at a known moment:

  ``passes``    run processor passes (``cycle_all``) until two in a row move nothing or ``--max-passes``; the clock
                is the wall clock plus ``--clock-offset-hours`` (each new process after a kill starts later than the
                leases the killed one held). ``PANDAJEDI_WF_FAULT_POINT`` makes it SIGKILL itself at a named point.
  ``heartbeat`` run ``run_cycle`` (what the JEDI plugin runs) every 0.3 s for ever, with the time limits given by
                ``--timeouts connect,statement,lock`` (seconds), reporting each cycle's outcome and duration.
  ``zygote``    import everything once, then for each JSON command read on stdin (``{"fault": "point:n" or null,
                "offset": hours, "cap": n}``) fork a process that runs ``passes`` as above (its own connections,
                opened after the fork); report the forked pid, then how it ended. Saves the second of imports per
                processor the crash test starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time


def say(**fields) -> None:
    sys.stdout.write(json.dumps(fields, default=str) + "\n")
    sys.stdout.flush()


class _NoPause:
    """``time`` for upstream's DBProxyPool without its fixed 1 s pause after opening each connection (a processor
    started per kill would spend most of its life in it); everything else is the real module."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        return None


def task_buffer_without_pause():
    import pandaserver.taskbuffer.DBProxyPool as pool_module
    from pandajedi.jedicore.JediTaskBuffer import JediTaskBuffer

    pool_module.time = _NoPause()
    try:
        return JediTaskBuffer(None, nDBConnection=1)
    finally:
        pool_module.time = time


WORK_COUNTERS = ("jedi_submissions", "steps_created", "step_transitions", "workflow_transitions", "intents_repaired")


def run_passes(offset_hours: float, cap: int, max_passes: int = 30) -> None:
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.taskbuffer.connection import WfDatabase

    db = WfDatabase()
    task_buffer = task_buffer_without_pause()
    processor = workflow_processor.ProcessorSettings(max_submissions_per_workflow=cap, workers=2, recheck_seconds=0)
    say(event="started", pid=os.getpid())
    offset = datetime.timedelta(hours=offset_hours)
    idle = 0
    for number in range(max_passes):
        stats = CycleStats()
        summary = workflow_processor.cycle_all(db, stats, task_buffer, now=utcnow() + offset + datetime.timedelta(seconds=number), settings=processor)
        say(event="pass", pid=os.getpid(), summary=summary, stats=stats.counters)
        idle = 0 if any(stats.counters.get(key) for key in WORK_COUNTERS) else idle + 1
        if idle >= 2:  # two passes in a row in which nothing moved: the grid (the parent) has to move first
            break
    db.close()
    say(event="done", pid=os.getpid())


def zygote() -> None:
    from pandajedi_wf.daemons import common, workflow_processor  # noqa: F401 - imported once, before the forks
    from pandajedi_wf.taskbuffer import connection  # noqa: F401

    say(event="ready")
    for line in sys.stdin:
        command = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the processor: everything it opens is its own
            code = 0
            try:
                os.environ.pop(workflow_processor.FAULT_POINT_ENV, None)
                if command.get("fault"):
                    os.environ[workflow_processor.FAULT_POINT_ENV] = command["fault"]
                run_passes(command["offset"], command["cap"])
            except BaseException as exc:  # noqa: BLE001 - reported to the parent as a failed run
                say(event="error", error=f"{type(exc).__name__}: {exc}")
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        say(event="forked", pid=pid)
        _, status = os.waitpid(pid, 0)
        say(event="ended", pid=pid, signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("passes", "heartbeat", "zygote"))
    parser.add_argument("--clock-offset-hours", type=float, default=0.0)
    parser.add_argument("--max-passes", type=int, default=30)
    parser.add_argument("--cap", type=int, default=200)
    parser.add_argument("--timeouts", default="")
    args = parser.parse_args(argv)

    from pandajedi_wf_dev.devdb.upstream_agents import make_zombie_cleaner_harmless

    make_zombie_cleaner_harmless()
    from pandajedi.jedicore.JediTaskBuffer import JediTaskBuffer

    if args.mode == "zygote":
        zygote()
        return 0
    if args.mode == "passes":
        run_passes(args.clock_offset_hours, args.cap, args.max_passes)
        return 0

    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import run_cycle
    from pandajedi_wf.taskbuffer.connection import ConnectionSettings, WfDatabase

    settings = ConnectionSettings.from_panda_config()
    if args.timeouts:
        connect, statement, lock = (float(v) for v in args.timeouts.split(","))
        settings = dataclasses.replace(settings, connect_timeout=connect, statement_timeout=statement, lock_timeout=lock)
    db = WfDatabase(settings)
    task_buffer = JediTaskBuffer(None, nDBConnection=1)
    processor = workflow_processor.ProcessorSettings(max_submissions_per_workflow=args.cap, workers=2, recheck_seconds=0)
    say(event="started")

    while True:  # heartbeat
        started = time.monotonic()
        ok = run_cycle("wf_processor", db, lambda d, stats: workflow_processor.cycle_all(d, stats, task_buffer, settings=processor))
        say(event="cycle", ok=ok, seconds=round(time.monotonic() - started, 2), at=time.time())
        time.sleep(0.3)


if __name__ == "__main__":
    sys.exit(main())
