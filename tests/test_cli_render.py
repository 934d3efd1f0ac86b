"""Rendering of pandajedi-wf answers: tables for people, stable JSON for scripts."""

from __future__ import annotations

import datetime
import json

from pandajedi_wf.cli import render

T0 = datetime.datetime(2025, 3, 1, 12, 0, 5, 123456)

SHOWN = {
    "workflow_id": 12,
    "name": "sig_bg",
    "user_name": "Jane Doe",
    "status": "finished",
    "language": "cwl",
    "out_ds": "user.jdoe.sigbg",
    "creation_time": T0,
    "error_dialog": None,
    "steps": [
        {"node_key": "001", "name": "make_signal", "step_type": "prun", "status": "done", "jedi_task_id": 4242, "jedi_status": "done", "attempt_nr": 0},
        {
            "node_key": "002",
            "name": "combine",
            "step_type": "prun",
            "status": "failed",
            "jedi_task_id": 4243,
            "jedi_status": "broken",
            "attempt_nr": 1,
            "error_class": "definition",
            "error_dialog": "task param conversion from json failed with Expecting value: line 1 column 1 (char 0) and a very long tail",
        },
    ],
    "data": [{"name": "user.jdoe.sigbg_001_make_signal", "data_type": "output", "status": "closed", "n_files": 10, "n_files_done": 7}],
    "commands": [{"command_id": 5, "command": "retry", "status": "done", "requester": "Jane Doe", "creation_time": T0, "message": "1 step(s) changed"}],
    "history": [{"time": T0, "entity": "step", "key": "002", "from": "running", "to": "failed", "why": "task broken"}],
}


def test_table_aligns_columns_and_trims():
    text = render.table(["ID", "NAME"], [[1, "a"], [100, None]])
    assert text.splitlines() == ["ID   NAME", "1    a", "100"]


def test_cells_cut_long_text_and_format_times():
    assert render.cell("x" * 100, 10) == "xxxxxxx..."
    assert render.cell(T0) == "2025-03-01 12:00:05"
    assert render.cell(["a", "b"]) == "a,b"
    assert render.cell("two\n  lines") == "two lines"
    assert render.cell(None) == ""


def test_workflow_detail_shows_steps_tasks_data_commands_history():
    text = render.workflow_detail(SHOWN)
    lines = text.splitlines()
    assert lines[0] == "workflow 12  sig_bg  [finished]"
    assert "  user      Jane Doe" in lines and "  outDS     user.jdoe.sigbg" in lines
    assert not any(line.strip().startswith("error") for line in lines)  # no error dialog: no line
    assert "steps (2)" in lines
    step_line = next(line for line in lines if line.strip().startswith("002"))
    assert step_line.split()[:7] == ["002", "combine", "prun", "failed", "4243", "broken", "1"]
    assert "[definition] task param conversion" in step_line and step_line.endswith("...")
    assert "7/10" in text and "data (1)" in lines and "commands (1)" in lines
    assert any("running -> failed" in line and "task broken" in line for line in lines)


def test_workflow_without_steps_or_name():
    text = render.workflow_detail({"workflow_id": 3, "status": "registered"})
    assert text.splitlines() == ["workflow 3  [registered]", "", "steps (0)"]


def test_workflow_list():
    items = [{"workflow_id": 12, "user_name": "Jane Doe", "status": "running", "n_steps": 3, "steps_by_status": {"running": 1, "done": 2}, "modification_time": T0, "name": "x"}]
    lines = render.workflow_list(items).splitlines()
    assert lines[1].split() == ["12", "Jane", "Doe", "running", "3", "done:2", "running:1", "2025-03-01", "12:00:05", "x"]
    assert render.workflow_list([]) == "no workflows found"


def test_validation_and_submission():
    ok = {"ok": True, "steps": [{"id": 1, "name": "top", "type": "prun", "parents": []}, {"id": 2, "name": "bottom", "type": "prun", "parents": ["top"]}]}
    assert render.validation(ok).splitlines()[0] == "workflow description is valid: 2 step(s)"
    bad = {"ok": False, "problems": [{"code": "reference", "message": "unknown source 'x/outDS'", "file": "a.cwl", "step": "bottom"}], "warnings": []}
    assert render.validation(bad).splitlines() == ["workflow description is invalid: 1 problem(s)", "  - file a.cwl, step bottom: unknown source 'x/outDS' [reference]"]
    assert render.submitted(bad) == render.validation(bad)


def test_command_result():
    assert render.command_result(12, "kill", {"command_id": 5, "status": "queued", "message": ""}) == "kill of workflow 12 queued (command 5)"
    assert render.command_result(12, "rerun", {"status": "refused", "message": "no step named 'x'"}) == "rerun of workflow 12 refused: no step named 'x'"


def test_json_is_stable_and_handles_times():
    text = render.to_json(SHOWN)
    assert json.loads(text)["creation_time"] == "2025-03-01T12:00:05.123456"
    assert text == render.to_json(dict(reversed(list(SHOWN.items()))))  # key order does not matter
