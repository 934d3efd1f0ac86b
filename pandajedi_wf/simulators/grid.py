"""A grid simulator behind the interfaces the real system presents: it drives real JEDI rows in the database.

What is real: task submission (upstream ``insertTaskParamsPanda``), task definition (upstream TaskRefiner run
in-process), the JEDI tables. What is simulated: what JEDI's brokerage, job generation and the pilots would do
afterwards; a task is moved ``defined -> running -> <fate>`` over ticks and writes output files into
JEDI_Dataset_Contents. ``fate`` decides per task name (success, failure, partial; junction results.json).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Callable

from pandajedi_wf.taskbuffer import grid_simulation
from pandajedi_wf.taskbuffer.connection import WfDatabase


@dataclass(frozen=True)
class Fate:
    status: str = "done"  # the JEDI status the task ends in: done, finished, failed, broken, exhausted
    n_files: int = 2  # output files per output dataset
    results: dict | None = None  # results.json of a junction step
    running_ticks: int = 1


def always_done(task_name: str) -> Fate:
    return Fate()


@dataclass
class GridSimulator:
    db: WfDatabase
    task_buffer: object
    vo: str = "wlcg"
    prod_source_label: str = "user"
    fate: Callable[[str], Fate] = always_done
    refine: bool = True
    _running: dict[int, int] = field(default_factory=dict)
    _results: dict[int, dict | None] = field(default_factory=dict)
    events: list[tuple[int, str, str]] = field(default_factory=list)

    def tick(self, now: datetime.datetime | None = None) -> int:
        """Advance every task one stage; return how many tasks changed."""
        now = now or datetime.datetime.utcnow()
        changed = 0
        if self.refine:
            from pandajedi_wf.devdb.upstream_agents import refine_tasks

            refine_tasks(self.task_buffer, self.vo, self.prod_source_label)
        for task in grid_simulation.tasks_in_status(self.db, self.vo, ("defined", "ready", "running")):
            task_id, name, status = int(task["jeditaskid"]), task["taskname"], task["status"]
            fate = self.fate(name)
            if status in ("defined", "ready"):
                self._move(task_id, name, "running", now)
                self._running[task_id] = fate.running_ticks
            elif self._running.get(task_id, 0) > 1:
                self._running[task_id] -= 1
                continue
            else:
                if fate.status in ("done", "finished"):
                    self._write_outputs(task_id, fate)
                self._results[task_id] = fate.results
                self._move(task_id, name, fate.status, now)
            changed += 1
        return changed

    def fetch(self, jedi_task_id: int, task_name: str) -> dict | None:
        """The junction results a real deployment would read from the task's results.json output."""
        return self._results.get(jedi_task_id)

    def _move(self, task_id: int, name: str, status: str, now: datetime.datetime) -> None:
        with self.db.transaction():
            grid_simulation.set_task_status(self.db, task_id, status, now)
        self.events.append((task_id, name, status))

    def _write_outputs(self, task_id: int, fate: Fate) -> None:
        with self.db.transaction():
            for ds in grid_simulation.output_datasets(self.db, task_id):
                if ds["type"] == "output":
                    grid_simulation.add_finished_files(self.db, task_id, int(ds["datasetid"]), ds["datasetname"], fate.n_files, 1)
