"""What a pbook task command means for the workflow (pure: DEFT command rows and step rows in, commands out)."""

from __future__ import annotations

import pytest

from pandajedi_wf.control.task_intents import Intent, intents, requester_of, tasks_to_read


def step(task_id, status="running", jedi_status="running"):
    return {"jedi_task_id": task_id, "status": status, "jedi_status": jedi_status}


@pytest.mark.parametrize(
    "comment, who",
    [
        ("kill by Jane Doe", "Jane Doe"),
        ("soft kill by Jane Doe", "Jane Doe"),
        ("finish by Jane Doe", "Jane Doe"),
        ("retry by John by Smith", "John by Smith"),  # the first ' by ' after the command word
        ("pandajedi_wf workflow 7: kill by operator:root", None),  # the processor's own command
        ("pandajedi_wf workflow 7 is cancelled", None),
        ("", None),
        (None, None),
        ("killed because of reasons", None),
    ],
)
def test_who_sent_a_task_command(comment, who):
    assert requester_of(comment) == who


def test_a_users_kill_of_any_task_is_a_workflow_kill():
    rows = [step(1, jedi_status="aborting"), step(2)]
    found = intents("running", rows, {1: ("killing", "kill by Jane Doe")})
    assert found == [Intent("kill", "Jane Doe", 1)]
    assert found[0].params == {"from_task_command": 1}


def test_a_kill_is_not_queued_twice_nor_where_the_workflow_cannot_be_killed():
    rows = [step(1, jedi_status="aborting"), step(2, jedi_status="aborting")]
    commands = {1: ("killing", "kill by Jane Doe"), 2: ("kill", "kill by Jane Doe")}
    assert len(intents("running", rows, commands)) == 1
    assert intents("running", rows, commands, queued=["kill"]) == []
    assert intents("cancelling", rows, commands) == []
    assert intents("cancelled", rows, commands) == []


def test_our_own_commands_are_not_intents():
    rows = [step(1, jedi_status="aborting")]
    assert intents("running", rows, {1: ("killing", "pandajedi_wf workflow 3: kill by Jane Doe")}) == []


def test_finish_and_retry():
    rows = [step(1, jedi_status="finishing"), step(2, status="failed", jedi_status="toretry")]
    found = intents("running", rows, {1: ("finishing", "finish by Jane Doe"), 2: ("retrying", "retry by Jane Doe")})
    assert sorted(i.command for i in found) == ["finish", "retry"]
    assert intents("failed", rows, {2: ("retrying", "retry by Jane Doe")}) == [Intent("retry", "Jane Doe", 2)]
    # a retry the step already follows needs nothing
    assert intents("running", [step(2, status="retrying", jedi_status="running")], {2: ("retrying", "retry by Jane Doe")}) == []


def test_a_kill_makes_other_intents_moot():
    rows = [step(1, jedi_status="aborting"), step(2, status="failed", jedi_status="toretry")]
    found = intents("running", rows, {1: ("killing", "kill by Jane Doe"), 2: ("retrying", "retry by Jane Doe")})
    assert [i.command for i in found] == ["kill"]


def test_only_commanded_or_revived_tasks_are_read():
    rows = [
        step(1, jedi_status="running"),
        step(2, jedi_status="aborting"),
        step(3, status="failed", jedi_status="failed"),
        step(4, status="failed", jedi_status="ready"),  # retried in JEDI behind the ended step
        step(None, status="defined", jedi_status=None),
        step(5, jedi_status="finishing"),
    ]
    assert tasks_to_read("running", rows) == [2, 4, 5]
