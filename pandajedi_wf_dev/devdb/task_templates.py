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


def tape_task_params(name: str, dataset: str, priority: int = 1000) -> dict:
    """A production task (vo wlcg, label managed) reading ``dataset`` from tape with ``inputPreStaging``, one file per
    job, on the development queue: what the carousel tests and the demo submit."""
    return {
        "taskName": name,
        "userName": "dev.user",
        "vo": "wlcg",
        "prodSourceLabel": "managed",
        "taskType": "prod",
        "taskPriority": priority,
        "architecture": "",
        "transUses": "",
        "transHome": None,
        "transPath": "https://example.org/runGen",
        "processingType": "reprocessing",
        "site": "DEV_QUEUE",
        "inputPreStaging": True,
        "nFilesPerJob": 1,
        "log": {"type": "template", "param_type": "log", "value": f"{name}.log.${{SN}}.tgz", "dataset": f"{name}.log/", "container": f"{name}.log/"},
        "jobParameters": [
            {"type": "constant", "value": "echo hello"},
            {"type": "template", "param_type": "input", "value": "-i ${IN}", "dataset": dataset, "expand": True},
        ],
    }
