"""The task templates the pchain client would send (prun dry-run output), as the development setup needs them.

Real clients send these in ``taskParams``; the demo, the tests and the benchmarks use this one, pointed at the
development queue ``DEV_QUEUE`` of the seeded schema, so every task refines with upstream's generic plugins.
"""

from __future__ import annotations

import copy

DEV_TEMPLATES = {
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


def dev_templates() -> dict:
    """A private copy: the server fills templates per step and must not share state between workflows."""
    return copy.deepcopy(DEV_TEMPLATES)
