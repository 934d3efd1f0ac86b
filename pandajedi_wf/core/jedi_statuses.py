"""JEDI's task statuses: every set of them our code tests a task's status against, defined once.

Each set names where upstream defines it (panda-server-source, files under ``pandaserver/``); the installed upstream
code is read by tests/test_core_jedi_statuses.py, so an upgrade that moves a status between sets is seen there. Pure:
nothing here imports upstream. SQL binds these sets (``taskbuffer.connection.in_clause``), never spells them out.
"""

from __future__ import annotations

# ---- how a task ended ---------------------------------------------------------------------------------------
# The statuses after which upstream ends a task's attempt (taskbuffer/db_proxy_mods/task_complex_module.py,
# updateTask_JEDI: ``log_task_attempt_end``), split by outcome. A task in one of them runs no more jobs and reads no
# more input until someone retries it.
DONE = frozenset({"done"})  # every input processed
FINISHED = frozenset({"finished"})  # ended with part of its inputs processed (a finish command, or failures)
FAILED = frozenset({"failed", "broken", "exhausted"})  # failed; could not run at all (broken); stopped at its limits
ABORTED = frozenset({"aborted"})  # killed
ENDED = DONE | FINISHED | FAILED | ABORTED

# On their way to ``aborted`` or ``broken``: upstream's Data Carousel counts them final already
# (taskbuffer/DataCarousel.py FINAL_TASK_STATUSES is ENDED | ENDING).
ENDING = frozenset({"toabort", "aborting", "tobroken"})

# ---- what JEDI does with a task in a status -------------------------------------------------------------------
# JediTaskSpec.statusToRetry() (taskbuffer/JediTaskSpec.py): statuses JEDI's own retry logic starts again from
TO_RETRY = frozenset({"finished", "failed", "aborted", "exhausted"})

# The task commands the server accepts per status (taskbuffer/db_proxy_mods/task_event_module.py,
# TaskEventModule._check_command_allowed; sendCommandTaskPanda answers 4 otherwise):
KILL_REFUSED = frozenset({"finished", "done", "prepared", "broken", "aborted", "toabort", "aborting", "failed"})  # also finish
PAUSE_REFUSED = frozenset({"finished", "failed", "done", "aborted", "broken", "paused"})  # JediTaskSpec.statusNotToPause()
RETRY_ACCEPTED = frozenset({"finished", "failed"})
RETRY_ACCEPTED_WITH_PRODUCTION_ROLE = frozenset({"exhausted"})  # only for a production role

# JediTaskSpec.commandStatusMap(): a command's status while JEDI carries it out, and once it is done
COMMAND_STATUSES = {
    "kill": ("aborting", "toabort"),
    "finish": ("finishing", "passed"),
    "retry": ("toretry", "ready"),
    "incexec": ("toincexec", "rerefine"),
}
# a task command is on its way or has just acted: kill, finish, retry and incexec while JEDI does them, a kill done
# (toabort) and its end (aborted); the task's DEFT PRODSYS_COMM row says which command and who sent it
COMMANDED = frozenset({COMMAND_STATUSES[c][0] for c in ("kill", "finish", "retry", "incexec")}) | {COMMAND_STATUSES["kill"][1]} | ABORTED
