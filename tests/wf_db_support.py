"""Shared pieces of the workflow DB tests: a WfDatabase on the test server and a driver loop."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "examples" / "pchain"

# task templates as the pchain client sends them (prun dry-run output, trimmed to what the server fills)
TEMPLATES = {
    "container": {
        "taskName": "x",
        "userName": "dev.user",
        "vo": "wlcg",
        "prodSourceLabel": "user",
        "taskType": "anal",
        "taskPriority": 1000,
        "architecture": "",
        "transUses": "",
        "transHome": None,
        "transPath": "https://example.org/runGen",
        "processingType": "panda-client",
        "site": "DEV_QUEUE",
        "nEvents": 10,
        "nEventsPerJob": 10,
        "jobParameters": [{"type": "constant", "value": "-j \"\" --sourceURL ${SURL}"}],
    }
}


def make_db():
    from pandajedi_wf.taskbuffer.connection import WfDatabase

    db = WfDatabase()
    db.connect()
    return db


def run_until_quiet(db, task_buffer, grid, workflow_id, max_rounds=40, junction_results=None):
    """Alternate processor cycles and grid ticks until the workflow ends (or max_rounds)."""
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.taskbuffer import workflows

    from pandajedi_wf.core.clock import utcnow

    now = utcnow()
    for round_nr in range(max_rounds):
        now += datetime.timedelta(minutes=2)
        workflow_processor.cycle(db, CycleStats(), task_buffer, now=now, owner="test-proc", junction_results=junction_results or grid)
        status = workflows.load(db, [workflow_id])[workflow_id]["status"]
        if status in ("done", "finished", "failed", "cancelled"):
            return status, round_nr
        grid.tick(now)
    return workflows.load(db, [workflow_id])[workflow_id]["status"], max_rounds
