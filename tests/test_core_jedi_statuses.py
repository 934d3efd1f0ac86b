"""pandajedi_wf.core.jedi_statuses against the installed upstream code: each set is the one upstream uses.

Upstream keeps some of these sets as functions or constants (JediTaskSpec.statusToRetry, DataCarousel's
FINAL_TASK_STATUSES) and others only inline in its code (the task-attempt end in updateTask_JEDI, the command checks
in _check_command_allowed): those are read from the source or asked of the function itself, status by status.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from pandajedi_wf.core import jedi_statuses as js
from pandajedi_wf.workflow.lifecycles import STEP_ENDED, jedi_status_to_step_status


def _upstream_source(module: str) -> ast.Module:
    return ast.parse(Path(importlib.util.find_spec(module).origin).read_text())


def _literal_sets_guarding(tree: ast.Module, attribute: str) -> list[frozenset[str]]:
    """The literal lists of ``if <x> in [...]:`` statements whose body calls ``<...>.attribute(...)``."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and isinstance(node.test.ops[0], ast.In)):
            continue
        calls = [c for stmt in node.body for c in ast.walk(stmt) if isinstance(c, ast.Call)]
        if any(isinstance(c.func, ast.Attribute) and c.func.attr == attribute for c in calls):
            found.append(frozenset(ast.literal_eval(node.test.comparators[0])))
    return found


def test_ended_is_where_upstream_ends_a_tasks_attempt():
    tree = _upstream_source("pandaserver.taskbuffer.db_proxy_mods.task_complex_module")
    assert _literal_sets_guarding(tree, "log_task_attempt_end") == [js.ENDED]
    assert js.DONE | js.FINISHED | js.FAILED | js.ABORTED == js.ENDED
    assert len(js.DONE) + len(js.FINISHED) + len(js.FAILED) + len(js.ABORTED) == len(js.ENDED)  # one outcome each


def test_data_carousel_final_statuses_are_ended_or_ending():
    from pandaserver.taskbuffer.DataCarousel import FINAL_TASK_STATUSES

    assert frozenset(FINAL_TASK_STATUSES) == js.ENDED | js.ENDING and not js.ENDED & js.ENDING


def test_spec_sets_are_upstreams():
    from pandaserver.taskbuffer.JediTaskSpec import JediTaskSpec

    assert frozenset(JediTaskSpec.statusToRetry()) == js.TO_RETRY
    assert frozenset(JediTaskSpec.statusNotToPause()) == js.PAUSE_REFUSED
    assert {c: (s["doing"], s["done"]) for c, s in JediTaskSpec.commandStatusMap().items() if c in js.COMMAND_STATUSES} == js.COMMAND_STATUSES
    assert js.COMMANDED == {"aborting", "toabort", "aborted", "finishing", "toretry", "toincexec"}


def _every_status() -> set[str]:
    sets = [js.ENDED, js.ENDING, js.TO_RETRY, js.KILL_REFUSED, js.PAUSE_REFUSED, js.RETRY_ACCEPTED, js.RETRY_ACCEPTED_WITH_PRODUCTION_ROLE]
    return set(jedi_status_to_step_status).union(*sets, *js.COMMAND_STATUSES.values())


@pytest.mark.parametrize("command,production_role,refused", [
    ("kill", False, js.KILL_REFUSED),
    ("finish", False, js.KILL_REFUSED),
    ("pause", False, js.PAUSE_REFUSED),
])
def test_command_refusals_are_what_the_server_checks(command, production_role, refused):
    from pandaserver.taskbuffer.db_proxy_mods.task_event_module import TaskEventModule

    upstream = {s for s in _every_status() if not TaskEventModule._check_command_allowed(None, command, s, production_role, None)[0]}
    assert upstream == refused


def test_retry_is_accepted_where_the_server_accepts_it():
    from pandaserver.taskbuffer.db_proxy_mods.task_event_module import TaskEventModule

    def accepted(production_role):
        return {s for s in _every_status() if TaskEventModule._check_command_allowed(None, "retry", s, production_role, None)[0]}

    assert accepted(False) == js.RETRY_ACCEPTED
    assert accepted(True) == js.RETRY_ACCEPTED | js.RETRY_ACCEPTED_WITH_PRODUCTION_ROLE


def test_an_ended_task_is_an_ended_step_and_only_it():
    """Our JEDI-status -> step-status table (every JEDI status once) ends a step exactly when JEDI ended the task."""
    assert {s for s, step in jedi_status_to_step_status.items() if step in STEP_ENDED} == js.ENDED
    assert js.ENDED | js.ENDING | js.TO_RETRY | js.KILL_REFUSED | js.PAUSE_REFUSED <= set(jedi_status_to_step_status)
