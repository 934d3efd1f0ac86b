"""What a user meant by commanding a workflow's tasks one by one (``pbook kill/retry/finish <reqID>``).

``pbook`` treats an id below 10^7 as a reqID and sends the task command to every task of the user that carries it;
our tasks carry the workflow id as reqID, so that is the user speaking to the workflow. Upstream records each task
command in DEFT ``PRODSYS_COMM`` as ``"[qualifier ]<command> by <compact DN>"`` (``sendCommandTaskPanda``), renamed
``<command>ing`` once JEDI took it. Read next to the steps, those rows become the workflow command the user meant,
queued as if they had sent it: a kill cancels the whole workflow (no automatic retry of the killed steps), a finish
lets it end, a retry has the processor follow the retried tasks (and reset what depends on them).

Pure: rows in, commands out. Commands the processor itself sent carry its own comment and are not read as intents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from ..core import jedi_statuses
from ..workflow.lifecycles import STEP_ACTIVE, jedi_status_to_step_status
from .commands import COMMANDS

# PRODSYS_COMM comm_cmd (as sent, and as JEDI renames it when taken) -> the workflow command it means
TASK_COMMAND_INTENT = {
    "kill": "kill",
    "killing": "kill",
    "finish": "finish",
    "finishing": "finish",
    "retry": "retry",
    "retrying": "retry",
    "incexec": "retry",
    "incexecing": "retry",
}
OUR_COMMENT_PREFIX = "pandajedi_wf "
_BY = re.compile(r"\b(?P<command>[a-z]+) by (?P<who>.+)$")


@dataclass(frozen=True)
class Intent:
    command: str  # workflow command to queue
    requester: str  # the compact DN upstream recorded for the task command
    task_id: int  # the task command it was read from

    @property
    def params(self) -> dict:
        return {"from_task_command": self.task_id}

    @property
    def key(self) -> tuple[str, str, int]:
        """What makes a refused intent the same one again (``commands.refused_origins``)."""
        return (self.command, self.requester, self.task_id)


def requester_of(comment: str | None) -> str | None:
    """Who sent a task command, from upstream's comment; None for our own commands and unreadable comments."""
    if not comment or comment.startswith(OUR_COMMENT_PREFIX):
        return None
    match = _BY.search(comment.strip())
    return match.group("who").strip() if match else None


def tasks_to_read(workflow_status: str, step_rows: Iterable[Mapping]) -> list[int]:
    """Tasks whose PRODSYS_COMM row may hold a user's command: commanded statuses, or active again under an ended step."""
    wanted = []
    for s in step_rows:
        task_id, jedi_status = s.get("jedi_task_id"), s.get("jedi_status")
        if not task_id or jedi_status is None:
            continue
        if jedi_status in jedi_statuses.COMMANDED or (s["status"] in ("failed", "finished") and _active(jedi_status)):
            wanted.append(int(task_id))
    return wanted


def intents(workflow_status: str, step_rows: Iterable[Mapping], task_commands: Mapping[int, tuple[str, str | None]],
            queued: Iterable[str] = ()) -> list[Intent]:
    """Workflow commands to queue: at most one per kind, only where the workflow's state accepts it and none of that
    kind is already queued. ``task_commands`` is task id -> (comm_cmd, comm_comment)."""
    found: dict[str, Intent] = {}
    for s in step_rows:
        task_id = s.get("jedi_task_id")
        if not task_id or int(task_id) not in task_commands:
            continue
        command, comment = task_commands[int(task_id)]
        meant = TASK_COMMAND_INTENT.get((command or "").strip().lower())
        who = requester_of(comment)
        if meant is None or who is None or meant in found:
            continue
        if meant == "retry" and not (s["status"] in ("failed", "finished") or s.get("jedi_status") in ("toretry", "toincexec")):
            continue  # a retry already followed by the step needs nothing more
        found[meant] = Intent(meant, who, int(task_id))
    queued = set(queued)
    wanted = [i for i in found.values() if i.command not in queued and workflow_status in COMMANDS[i.command].accepted]
    if any(i.command == "kill" for i in wanted):  # a kill says it all: finishing or retrying what is killed is moot
        wanted = [i for i in wanted if i.command == "kill"]
    return wanted


def _active(jedi_status: str) -> bool:
    return jedi_status_to_step_status.get(jedi_status) in STEP_ACTIVE
