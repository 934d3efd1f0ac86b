"""Our calls into upstream's TaskBuffer, in one place: what we send, and what its answer means.

``insertTaskParamsPanda`` is the call pchain's server side uses; with ``uniqueTaskName`` it refuses a second task of
the same name and tells the id of the first, which is how a re-submission after a crash adopts the existing task.
``sendCommandTaskPanda`` queues a task command in DEFT that JEDI's TaskCommando executes.

Only the failures of the way to JEDI are caught here (``TRANSIENT``: the database driver's errors, the network, a
timeout): they are answers ("try again later"). Anything else (a TypeError from a changed upstream signature, a
bug of ours) is not an answer: it propagates to the cycle, which records it on the workflow and logs its traceback,
instead of being retried for ever as if JEDI had been busy.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass


def _transient_errors() -> tuple[type[BaseException], ...]:
    """JEDI's IPC saying "try again" (temporary error, timeout; a broken pipe is an EOFError/OSError) and the
    DB-API error classes of the drivers upstream may use in-process (PEP 249 ``Error``), where installed."""
    found: list[type[BaseException]] = [OSError, TimeoutError, EOFError]  # ConnectionError is an OSError
    for module, name in (("pandajedi.jedicore.Interaction", "JEDITemporaryError"), ("pandajedi.jedicore.Interaction", "JEDITimeoutError"),
                         ("psycopg2", "Error"), ("oracledb", "Error"), ("cx_Oracle", "Error"), ("psycopg", "Error")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


TRANSIENT = _transient_errors()

_TASK_ID = re.compile(r"jediTaskID=(\d+)")
# insertTaskParamsPanda's properErrorCode answers: 0 accepted; 1 queued duplicate; 2 active duplicate;
# 11 parentTaskName not (yet) in JEDI_Tasks: the parent is still waiting in DEFT for TaskRefiner, so try later
_DUPLICATE_CODES = (1, 2)
_PARENT_NOT_YET_DEFINED = 11


@dataclass(frozen=True)
class SubmissionOutcome:
    accepted: bool
    jedi_task_id: int | None
    message: str
    transient: bool = False  # worth trying again later (the way to JEDI failed)
    refusal_code: int | bool | None = None  # insertTaskParamsPanda's code when it refused (None: none readable)


def deft_user_name(user_dn: str) -> str:
    """The ``userName`` ``insertTaskParamsPanda`` writes into DEFT T_TASK (and JEDI_Tasks) for a submission by
    ``user_dn`` without production role: it always replaces the parameters' userName by upstream's cleaned DN
    (``CoreUtils.clean_user_id``, the DN itself when that cleans to nothing). A crash repair must look the task up
    under this name, not under the workflow's ``user_name``."""
    from pandaserver.srvcore.CoreUtils import clean_user_id

    name = clean_user_id(user_dn)
    return user_dn if name in ("", "NULL", None) else name


def submit_task(task_buffer, task_params: dict, user_dn: str, production_role: bool = False, params_text: str | None = None) -> SubmissionOutcome:
    """``params_text``: ``task_params`` already as JSON (the recorded intent), sent as it is with uniqueTaskName added."""
    text = _unique(params_text) if params_text is not None else None
    if text is None:
        text = json.dumps({**task_params, "uniqueTaskName": True})
    try:
        answer = task_buffer.insertTaskParamsPanda(text, user_dn, production_role, [], properErrorCode=True)
    except TRANSIENT as exc:  # DB or network trouble on the way to JEDI: the step stays 'submitting' and is retried
        return SubmissionOutcome(False, None, f"insertTaskParamsPanda raised {type(exc).__name__}: {exc}", transient=True)
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return SubmissionOutcome(False, None, f"unexpected answer from insertTaskParamsPanda: {answer!r}", transient=True)
    code, message = answer
    found = _TASK_ID.search(str(message))
    if code in (0, True) and found:
        return SubmissionOutcome(True, int(found.group(1)), str(message))
    if code in _DUPLICATE_CODES and found:
        return SubmissionOutcome(True, int(found.group(1)), f"adopted existing task: {message}")
    if code == _PARENT_NOT_YET_DEFINED:
        return SubmissionOutcome(False, None, f"JEDI does not know the parent task yet: {message}", transient=True)
    return SubmissionOutcome(False, None, f"JEDI refused the task (code {code}): {message}", refusal_code=_readable_code(code))


def _unique(text: str) -> str | None:
    """A JSON object's text with ``"uniqueTaskName":true`` added (JEDI then adopts a task of the same name instead of
    making a second one); None when the text may already name that key (then the dict is dumped again)."""
    if not (text.startswith("{") and text.endswith("}")) or "uniqueTaskName" in text:
        return None
    return text[:-1] + ("," if text != "{}" else "") + '"uniqueTaskName":true}'


def _readable_code(code) -> int | bool | None:
    """The refusal code the retry classification reads (``control.classify_submission``): False as upstream
    answers it without properErrorCode, an integer, or None for an answer that says nothing (True, None, 0 without
    a task id: classified as transient)."""
    if code is False:
        return False
    if code is None or code is True or not isinstance(code, int) or code == 0:
        return None
    return code


def task_command(task_buffer, task_id: int, user: str, command: str, comment: str) -> str | None:
    """One JEDI task command through ``sendCommandTaskPanda`` as ``user`` (production role: our agents act for the
    workflow's owner, whose right was checked when the workflow command was authorized). None when JEDI took it,
    else why not, in words for the workflow's error."""
    code, answer = task_command_answer(task_buffer, task_id, user, command, comment)
    return None if code in (0, True) else answer


def task_command_answer(task_buffer, task_id: int, user: str, command: str, comment: str) -> tuple[int | bool | None, str]:
    """``sendCommandTaskPanda``'s (code, words); code None when the way to JEDI failed (try again later)."""
    try:
        answer = task_buffer.sendCommandTaskPanda(task_id, user, True, command, comComment=comment, properErrorCode=True)
    except TRANSIENT as exc:
        return None, f"JEDI {command} of task {task_id} raised {type(exc).__name__}: {exc}"
    code = answer[0] if isinstance(answer, (tuple, list)) else answer
    return code, "" if code in (0, True) else f"JEDI {command} of task {task_id} refused: {answer}"


def set_error_dialog(task_buffer, task_id: int, message: str) -> None:
    """What the user reads about the task (pbook, BigMon): ``updateTaskErrorDialogJEDI``, JEDI's 500-character field."""
    task_buffer.updateTaskErrorDialogJEDI(task_id, message[:500])


def release_staged_files(task_buffer, task_id: int, scope: str | None, files: dict) -> int | None:
    """Hand staged files to a task: ``updateInputFilesStaged_JEDI`` moves them from ``staging`` to ``ready``; the
    number moved, or None when JEDI could not (its log says why)."""
    try:
        return task_buffer.updateInputFilesStaged_JEDI(task_id, scope, files, by="pandajedi_wf", check_scope=False)
    except TRANSIENT:
        return None
