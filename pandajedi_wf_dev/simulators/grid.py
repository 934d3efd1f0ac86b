"""A grid simulator behind the interfaces the real system presents: it drives real JEDI rows in the database.

Real (upstream code, in-process): task submission (``insertTaskParamsPanda``, called by the processor), task
definition by upstream's TaskRefiner (vo ``wlcg``, generic plugins) including its parent logic (a child with
``parentTaskName`` waits ``pending`` while its parent runs and has no output; a child of a broken parent goes
``tobroken``), and JEDI's WatchDog re-activation of pending tasks (``reactivatePendingTasks_JEDI``), after the
``JEDI_AUX_Status_MinTaskID`` refresh that pg_cron runs in production.

Simulated (what JEDI's later agents and the pilots would do), on the same JEDI tables:
  * DDM: ``simulators.jedi_ddm.SimulatedDDMClient`` (no Rucio), behind JEDI's DDM interface;
  * ContentsFeeder + brokerage + JobGenerator: ``defined``/``ready`` -> ``running``, the output template
    datasets are instantiated (``<container>.<datasetID>``, as JobGenerator names them); a task whose primary
    input is empty goes ``pending`` while its parent runs (JEDI's WatchDog re-activates it, see above), else
    ``tobroken`` (or ``finishing`` with ``allowEmptyInput``), as ContentsFeeder decides;
  * pilots: a running task ends after ``Fate.running_ticks`` ticks in ``Fate.status``, writing ``Fate.n_files``
    finished files per output dataset when it ends ``done``/``finished``; a ``noWaitParent`` child keeps running
    until its parent has ended (it consumes the parent's output as it comes);
  * PostProcessor: ``tobroken`` -> ``broken``, ``finishing`` -> ``done``;
  * TaskCommando's retry: when a ``retry`` waits in DEFT PRODSYS_COMM for an ended task, upstream's own pick-up
    (``getTasksToExecCommand_JEDI``, real) puts the task ``toretry``; the simulator then plays ``retryTask_JEDI``
    (``toretry`` -> ``ready``) and the task runs again.
``fate(task_name)`` decides per task (tests put the loop iteration, in the task name, to use), or
``fate_of_run(task_name, run)`` when a JEDI retry must end differently from the first run (run 1, 2, ...); the
simulator also answers junction ``results.json`` reads (``fetch``), as a deployment would read the junction's output.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Callable

from pandajedi_wf.core import jedi_statuses
from pandajedi_wf.taskbuffer import jedi_tasks
from pandajedi_wf_dev.simulators import grid_sql
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
    fate_of_run: Callable[[str, int], Fate] | None = None  # (task name, run number from 1): overrides ``fate``
    refine: bool = True
    site: str = "DEV_QUEUE"
    ddm: object = None  # SimulatedDDMClient; made on first use (it imports upstream pandajedi)
    _running: dict[int, int] = field(default_factory=dict)
    _results: dict[int, dict | None] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)  # task name -> times it started running
    events: list[tuple[int, str, str]] = field(default_factory=list)

    def __post_init__(self):
        if self.ddm is None and self.refine:
            from .jedi_ddm import SimulatedDDMClient

            self.ddm = SimulatedDDMClient(self.db)

    def register_dataset(self, name: str, n_files: int = 3) -> None:
        """A user input dataset in the simulated DDM catalogue."""
        self.ddm.register_dataset(name, n_files)

    def tick(self, now: datetime.datetime | None = None) -> int:
        """Advance every task one stage; return how many tasks changed. ``now`` is ignored for JEDI rows, which
        carry JEDI's own clock (upstream compares them with the real time)."""
        changed = 0
        if self.refine:
            self._refine()
        self._take_retries()
        wall = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        for task in grid_sql.tasks_in_status(self.db, self.vo, ("defined", "ready", "running", "tobroken", "finishing", "toretry")):
            task_id, name, status = int(task["jeditaskid"]), task["taskname"], task["status"]
            parent_running = task["parent_status"] is not None and task["parent_status"] not in jedi_statuses.ENDED
            if status == "tobroken":
                changed += self._move(task_id, name, status, "broken", wall)
            elif status == "toretry":  # retryTask_JEDI: failed files reset, the task is ready again
                changed += self._move(task_id, name, status, "ready", wall)
            elif status == "finishing":
                changed += self._move(task_id, name, status, "done", wall)
            elif status in ("defined", "ready"):
                changed += self._start(task_id, name, status, parent_running, wall)
            elif parent_running:
                continue  # noWaitParent: more input may still come from the running parent
            elif self._running.get(task_id, 0) > 1:
                self._running[task_id] -= 1
            else:
                changed += self._end(task_id, name, wall)
        return changed

    def fetch(self, jedi_task_id: int, task_name: str) -> dict | None:
        """The junction results a real deployment would read from the task's results.json output."""
        return self._results.get(jedi_task_id)

    # JEDI's own agents ------------------------------------------------------------------------------------
    def _refine(self) -> None:
        from pandajedi_wf_dev.devdb.upstream_agents import refine_tasks

        from .jedi_ddm import InProcessDDMInterface

        grid_sql.refresh_min_task_ids(self.db)
        self.task_buffer.reactivatePendingTasks_JEDI(self.vo, self.prod_source_label, 0)
        grid_sql.refresh_min_task_ids(self.db)
        refine_tasks(self.task_buffer, self.vo, self.prod_source_label, InProcessDDMInterface({"any": self.ddm}))

    def _take_retries(self) -> None:
        """TaskCommando's pick-up of PRODSYS_COMM, real, run when a retry of an ended task is waiting there."""
        ended = [int(t["jeditaskid"]) for t in grid_sql.tasks_in_status(self.db, self.vo, tuple(sorted(jedi_statuses.TO_RETRY)))]
        if ended and "retry" in jedi_tasks.queued_task_commands(self.db, ended).values():
            self.task_buffer.getTasksToExecCommand_JEDI(self.vo, self.prod_source_label)

    def _fate(self, name: str) -> Fate:
        if self.fate_of_run is not None:
            return self.fate_of_run(name, max(1, self.runs.get(name, 0)))
        return self.fate(name)

    # what the simulator plays -----------------------------------------------------------------------------
    def _start(self, task_id: int, name: str, status: str, parent_running: bool, now: datetime.datetime) -> int:
        """ContentsFeeder, brokerage and JobGenerator in one step."""
        inputs = grid_sql.primary_inputs(self.db, task_id)
        if inputs and self.ddm is not None and not any(self.ddm.files(n) for n in inputs):
            if parent_running:  # ContentsFeeder holds a noWaitParent child until its parent writes files
                return self._move(task_id, name, status, "pending", now)
            task = self.task_buffer.getTaskWithID_JEDI(task_id)
            allow_empty = bool(task and task[1] is not None and task[1].allowEmptyInput()) if isinstance(task, tuple) else False
            return self._move(task_id, name, status, "finishing" if allow_empty else "tobroken", now)
        with self.db.transaction():
            for ds in grid_sql.output_templates(self.db, task_id):
                if ds["type"] == "tmpl_output":
                    grid_sql.instantiate_output_dataset(self.db, task_id, int(ds["datasetid"]), self.site)
            moved = grid_sql.set_task_status(self.db, task_id, "running", now, from_status=status)
        if moved:
            self.runs[name] = self.runs.get(name, 0) + 1
            self._running[task_id] = self._fate(name).running_ticks
            self.events.append((task_id, name, "running"))
        return int(moved)

    def _end(self, task_id: int, name: str, now: datetime.datetime) -> int:
        """The pilots finish the task's jobs; outputs land in the concrete output datasets."""
        fate = self._fate(name)
        with self.db.transaction():
            if fate.status in ("done", "finished") and fate.n_files:
                for ds in grid_sql.concrete_outputs(self.db, task_id):
                    grid_sql.add_finished_files(self.db, task_id, int(ds["datasetid"]), ds["datasetname"], fate.n_files, 1, _scope(name))
            moved = grid_sql.set_task_status(self.db, task_id, fate.status, now, from_status="running")
        if moved:
            self._results[task_id] = fate.results
            self._running.pop(task_id, None)
            self.events.append((task_id, name, fate.status))
        return int(moved)

    def _move(self, task_id: int, name: str, old: str, new: str, now: datetime.datetime) -> int:
        with self.db.transaction():
            moved = grid_sql.set_task_status(self.db, task_id, new, now, from_status=old)
        if moved:
            self.events.append((task_id, name, new))
        return int(moved)


def _scope(task_name: str) -> str:
    parts = task_name.split(".")
    return ".".join(parts[:2]) if parts[0] in ("user", "group") and len(parts) > 1 else parts[0]
