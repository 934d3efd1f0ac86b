"""What insertTaskParamsPanda answered, read once: accepted, adopted, transient, or refused with its code.

The refusal code travels in the outcome to the retry classification (it used to be written into the message and
parsed back with a regex, so rewording the message would have changed retries silently)."""

from __future__ import annotations

import pytest

from pandajedi.jedicore.Interaction import JEDITemporaryError, JEDITimeoutError

from pandajedi_wf.daemons.jedi_calls import submit_task, task_command


class Answering:
    def __init__(self, answer):
        self.answer = answer
        self.sent = None

    def insertTaskParamsPanda(self, params, dn, prod_role, *args, **kwargs):
        self.sent = (params, dn, prod_role, kwargs)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    "answer, accepted, task_id, transient, code",
    [
        ((0, "succeeded. new jediTaskID=42"), True, 42, False, None),
        ((2, "task already exists jediTaskID=41"), True, 41, False, None),
        ((11, "parent not there"), False, None, True, None),
        ((3, "bad task parameters"), False, None, False, 3),
        ((False, "refused"), False, None, False, False),
        ((True, "no id"), False, None, False, None),  # says nothing: classified as transient by the policy
        ((0, "no id either"), False, None, False, None),
        ("garbage", False, None, True, None),
        (JEDITemporaryError("VO=atlas DB busy"), False, None, True, None),
        (JEDITimeoutError("did not get response for 600sec"), False, None, True, None),
        (EOFError(), False, None, True, None),  # JEDI's IPC pipe broke
    ],
)
def test_answers(answer, accepted, task_id, transient, code):
    buffer = Answering(answer)
    outcome = submit_task(buffer, {"taskName": "t"}, "/CN=Jane Doe")
    assert (outcome.accepted, outcome.jedi_task_id, outcome.transient, outcome.refusal_code) == (accepted, task_id, transient, code)
    assert '"uniqueTaskName": true' in buffer.sent[0] and buffer.sent[3] == {"properErrorCode": True}


def test_the_classification_reads_the_code_not_the_words():
    from pandajedi_wf.control import classify_submission

    worded_differently = submit_task(Answering((3, "something reworded entirely")), {"taskName": "t"}, "/CN=x")
    assert classify_submission(worded_differently.refusal_code, worded_differently.message) == classify_submission(3, "x")


def test_an_error_that_is_not_the_way_to_jedi_failing_is_not_retried_silently():
    """A TypeError (say, upstream changed the call's signature) is a bug, not JEDI being busy: it propagates to the
    cycle, which records it on the workflow with its traceback in the log."""
    with pytest.raises(TypeError):
        submit_task(Answering(TypeError("unexpected keyword argument 'properErrorCode'")), {"taskName": "t"}, "/CN=x")


class Commanded:
    def __init__(self, answer):
        self.answer, self.sent = answer, None

    def sendCommandTaskPanda(self, task_id, user, prod_role, command, **kwargs):
        self.sent = (task_id, user, prod_role, command, kwargs)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("answer, refused", [
    ((0, "command=kill is registered"), None),
    ((True, "done"), None),
    ((2, "jediTaskID=7 is not allowed to be killed"), "JEDI kill of task 7 refused: (2, 'jediTaskID=7 is not allowed to be killed')"),
    (JEDITemporaryError("busy"), "JEDI kill of task 7 raised JEDITemporaryError: busy"),
])
def test_task_commands(answer, refused):
    buffer = Commanded(answer)
    assert task_command(buffer, 7, "/CN=Jane", "kill", "why") == refused
    assert buffer.sent == (7, "/CN=Jane", True, "kill", {"comComment": "why", "properErrorCode": True})


def test_a_task_command_that_breaks_is_not_an_answer():
    with pytest.raises(AttributeError):
        task_command(Commanded(AttributeError("no such method")), 7, "/CN=Jane", "kill", "why")
