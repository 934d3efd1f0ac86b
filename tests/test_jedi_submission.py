"""What insertTaskParamsPanda answered, read once: accepted, adopted, transient, or refused with its code.

The refusal code travels in the outcome to the retry classification (it used to be written into the message and
parsed back with a regex, so rewording the message would have changed retries silently)."""

from __future__ import annotations

import pytest

from pandajedi_wf.daemons.jedi_submission import submit_task


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
        (RuntimeError("IPC down"), False, None, True, None),
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
