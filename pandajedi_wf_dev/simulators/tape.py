"""Discrete-event tape simulator behind the StagingDDM interface.

Physics, deliberately simple and explicit:
- each tape endpoint has ``drives`` drives reading at ``drive_bytes_per_second``; a free drive takes the
  next bring-online batch (up to ``batch_files`` files, FTS submits 200), mounts (``mount_seconds``) and
  reads the files one after the other, so one file alone lands after mount + size / bandwidth;
- every read attempt may fail (drive time spent, retried after ``retry_delay_seconds``) or get stuck
  (the lock stays STUCK, the rule's error says why, until the rule is boosted, as Rucio's judge-repairer then
  requeues it, or its source is switched; either starts a fresh attempt); a source that does not hold the
  dataset sticks every missing file with Rucio's ``NO_SOURCES`` error;
- a tape's queue is served by rule priority (Rucio's 1..5, carried to FTS: a free drive's batch takes the queued files
  of the highest priority first, first come first served within one priority); changing a rule's priority moves its
  queued files, as ``update_replication_rule(priority=...)`` updates its queued requests;
- recalled files occupy the destination's disk buffer from arrival until their rule is deleted (or
  expires); the capacity is a measured cap, not a refusal: occupancy may exceed it, and the peak, the
  largest excess, the time spent over it and the excess integrated over time are reported, so a policy
  that ignores the cap is judged on how far and how long it overflowed;
- the clock only moves in ``advance(seconds)``; with the same seed and the same calls, same results.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Mapping

from pandajedi_wf.ddm.adapter import (
    RULE_OK,
    RULE_REPLICATING,
    RULE_STUCK,
    NO_SOURCES_MARK,
    DatasetNotFoundError,
    DDMError,
    DuplicateRuleError,
    Replica,
    RuleNotFoundError,
    RuleProgress,
    StagedFile,
    StagingDDM,
)

WAITING, OK, STUCK = "waiting", "ok", "stuck"


@dataclass(frozen=True)
class TapeEndpoint:
    name: str
    drives: int
    drive_bytes_per_second: float
    mount_seconds: float = 90.0

    @property
    def bytes_per_second(self) -> float:
        return self.drives * self.drive_bytes_per_second


@dataclass(frozen=True)
class SimDataset:
    name: str
    file_bytes: tuple[int, ...]
    tapes: tuple[str, ...]
    disks: tuple[str, ...] = ()

    @property
    def n_bytes(self) -> int:
        return sum(self.file_bytes)


@dataclass(frozen=True)
class FaultModel:
    failure_probability: float = 0.0  # per read attempt: drive time lost, retried later
    stuck_probability: float = 0.0  # per read attempt: lock STUCK until the source is switched
    hang_probability: float = 0.0  # per read attempt: request lost silently, lock stays REPLICATING
    retry_delay_seconds: float = 600.0


@dataclass
class _Rule:
    rule_id: str
    dataset: SimDataset
    destination: str
    source: str | None
    created_at: float
    expires_at: float | None
    states: list[str]
    attempts: list[int]  # generation of each file's current attempt; stale queue entries are skipped
    recalled: bool  # False for pins: nothing enters the buffer
    ok_count: int = 0
    stuck_count: int = 0
    first_file_at: float | None = None
    done_at: float | None = None
    error: str | None = None
    priority: int = 3


@dataclass
class TapeStats:
    busy_seconds: float = 0.0  # drive-seconds spent mounting and reading
    bytes_read: int = 0
    mounts: int = 0


@dataclass
class BufferStats:
    capacity: int | None
    used: int = 0
    peak: int = 0
    seconds_over_capacity: float = 0.0
    byte_seconds_over_capacity: float = 0.0  # excess integrated over time

    @property
    def max_excess(self) -> int:
        return max(0, self.peak - self.capacity) if self.capacity is not None else 0


class _TapeQueue:
    """Queued file reads of one tape, one FIFO per rule priority; the highest priority is served first."""

    def __init__(self):
        self.levels: dict[int, deque] = {}

    def append(self, entry, priority: int) -> None:
        self.levels.setdefault(priority, deque()).append(entry)

    def popleft(self):
        top = max(p for p, q in self.levels.items() if q)
        return self.levels[top].popleft()

    def move(self, rule_id: str, priority: int) -> None:
        """The rule's queued entries go to the back of ``priority`` (in their order)."""
        moved = []
        for level, queue in self.levels.items():
            if level != priority and any(e[0] == rule_id for e in queue):
                moved += [e for e in queue if e[0] == rule_id]
                self.levels[level] = deque(e for e in queue if e[0] != rule_id)
        for entry in moved:
            self.append(entry, priority)

    def __bool__(self) -> bool:
        return any(self.levels.values())


def _source_rse(expression: str | None) -> str | None:
    """'rse_type=DISK|TAPE_X' (upstream's form) or 'TAPE_X' -> 'TAPE_X'."""
    if not expression:
        return None
    return expression.split("|")[-1].strip()


class TapeSimulator(StagingDDM):
    def __init__(
        self,
        tapes: Iterable[TapeEndpoint],
        datasets: Iterable[SimDataset],
        *,
        buffers: Mapping[str, int | None] | None = None,
        faults: FaultModel = FaultModel(),
        seed: int = 0,
        start_time: float = 0.0,
        batch_files: int = 200,
    ):
        self.tapes = {t.name: t for t in tapes}
        self.datasets = {d.name: d for d in datasets}
        self.containers: dict[str, list[str]] = {}  # container name -> its datasets' names (expand_containers)
        for d in self.datasets.values():
            unknown = [t for t in d.tapes if t not in self.tapes]
            if unknown:
                raise ValueError(f"dataset {d.name} names unknown tape(s) {unknown}")
        self.faults = faults
        self.batch_files = batch_files
        self.now = float(start_time)
        self.rng = random.Random(seed)
        self.rules: dict[str, _Rule] = {}
        self.buffers: dict[str, BufferStats] = {name: BufferStats(cap) for name, cap in (buffers or {}).items()}
        self.tape_stats = {name: TapeStats() for name in self.tapes}
        self.stuck_attempts = 0
        self.failed_attempts = 0
        self.hung_attempts = 0
        self._queues: dict[str, _TapeQueue] = {name: _TapeQueue() for name in self.tapes}
        self._free_drives = {name: t.drives for name, t in self.tapes.items()}
        self._events: list = []
        self._seq = itertools.count()
        self._rule_ids = itertools.count(1)
        self._by_target: dict[tuple[str, str], str] = {}

    # ---- clock -------------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"cannot advance the clock by {seconds} s")
        target = self.now + seconds
        while self._events and self._events[0][0] <= target:
            when, _, kind, payload = heapq.heappop(self._events)
            self._account_buffers(when)
            self.now = when
            if kind == "file":
                self._land(*payload)
            elif kind == "drive_free":
                self._free_drives[payload] += 1
                self._dispatch(payload)
            elif kind == "retry":
                tape, entry = payload
                rule = self.rules.get(entry[0])
                if rule is not None:
                    self._queues[tape].append(entry, rule.priority)
                self._dispatch(tape)
        self._account_buffers(target)
        self.now = target
        for rule in [r for r in self.rules.values() if r.expires_at is not None and r.expires_at <= self.now]:
            self._remove(rule)

    def _push(self, when: float, kind: str, payload) -> None:
        heapq.heappush(self._events, (when, next(self._seq), kind, payload))

    def _account_buffers(self, until: float) -> None:
        for buf in self.buffers.values():
            if buf.capacity is not None and buf.used > buf.capacity:
                buf.seconds_over_capacity += until - self.now
                buf.byte_seconds_over_capacity += (buf.used - buf.capacity) * (until - self.now)

    # ---- tape drives -------------------------------------------------------------------------------

    def _live(self, entry) -> bool:
        rule_id, index, attempt = entry
        rule = self.rules.get(rule_id)
        return rule is not None and rule.attempts[index] == attempt and rule.states[index] == WAITING

    def _dispatch(self, tape_name: str) -> None:
        tape, queue = self.tapes[tape_name], self._queues[tape_name]
        while self._free_drives[tape_name] > 0 and queue:
            batch = []
            while queue and len(batch) < self.batch_files:
                entry = queue.popleft()
                if self._live(entry):
                    batch.append(entry)
            if not batch:
                return
            self._free_drives[tape_name] -= 1
            stats = self.tape_stats[tape_name]
            stats.mounts += 1
            clock = self.now + tape.mount_seconds
            for entry in batch:
                rule = self.rules[entry[0]]
                draw = self.rng.random()
                if draw < self.faults.stuck_probability:
                    self.stuck_attempts += 1
                    self._push(clock, "file", (entry, STUCK))
                    continue
                draw -= self.faults.stuck_probability
                if draw < self.faults.hang_probability:
                    self.hung_attempts += 1
                    continue
                draw -= self.faults.hang_probability
                size = rule.dataset.file_bytes[entry[1]]
                clock += size / tape.drive_bytes_per_second
                stats.bytes_read += size
                if draw < self.faults.failure_probability:
                    self.failed_attempts += 1
                    self._push(clock + self.faults.retry_delay_seconds, "retry", (tape_name, entry))
                else:
                    self._push(clock, "file", (entry, OK))
            stats.busy_seconds += clock - self.now
            self._push(clock, "drive_free", tape_name)

    def _land(self, entry, outcome: str) -> None:
        if not self._live(entry):
            return
        rule = self.rules[entry[0]]
        index = entry[1]
        rule.states[index] = outcome
        if outcome == STUCK:
            rule.stuck_count += 1
            rule.error = "TRANSFER_FAILED: bring-online failed on the tape (simulated)"
            return
        rule.ok_count += 1
        if rule.first_file_at is None:
            rule.first_file_at = self.now
        if rule.ok_count == len(rule.states):
            rule.done_at = self.now
        if rule.recalled:
            self._occupy(rule.destination, rule.dataset.file_bytes[index])

    def _occupy(self, destination: str, n_bytes: int) -> None:
        buf = self.buffers.setdefault(destination, BufferStats(None))
        buf.used += n_bytes
        buf.peak = max(buf.peak, buf.used)

    def _queue_missing(self, rule: _Rule) -> None:
        tape = _source_rse(rule.source)
        if tape not in self.tapes or tape not in rule.dataset.tapes:
            for i, state in enumerate(rule.states):  # no such source: Rucio marks the locks stuck, NO_SOURCES
                if state == WAITING:
                    rule.states[i] = STUCK
                    rule.stuck_count += 1
            rule.error = f"{NO_SOURCES_MARK}: no replica on {rule.source} (simulated)"
            return
        for i, state in enumerate(rule.states):
            if state == WAITING:
                self._queues[tape].append((rule.rule_id, i, rule.attempts[i]), rule.priority)
        self._dispatch(tape)

    def _remove(self, rule: _Rule) -> None:
        del self.rules[rule.rule_id]
        self._by_target.pop((rule.dataset.name, rule.destination), None)
        if rule.recalled:
            freed = sum(size for size, state in zip(rule.dataset.file_bytes, rule.states) if state == OK)
            self.buffers.setdefault(rule.destination, BufferStats(None)).used -= freed

    # ---- StagingDDM --------------------------------------------------------------------------------

    def _rule(self, rule_id: str) -> _Rule:
        try:
            return self.rules[rule_id]
        except KeyError:
            raise RuleNotFoundError(f"rule {rule_id} not found") from None

    def create_staging_rule(self, dataset, source_expression, destination, activity, lifetime, copies=1, grouping="DATASET") -> str:
        if dataset not in self.datasets:
            raise DatasetNotFoundError(f"dataset {dataset} not found")
        if (dataset, destination) in self._by_target:
            raise DuplicateRuleError(f"a rule for {dataset} on {destination} already exists: {self._by_target[(dataset, destination)]}")
        ds = self.datasets[dataset]
        source = _source_rse(source_expression)
        pin = source is None and bool(ds.disks) or source in ds.disks
        rule_id = f"sim-{next(self._rule_ids):06d}"
        n = len(ds.file_bytes)
        rule = _Rule(
            rule_id=rule_id,
            dataset=ds,
            destination=destination,
            source=source_expression if source_expression else (None if pin else ds.tapes[0]),
            created_at=self.now,
            expires_at=None if lifetime is None else self.now + lifetime,
            states=[OK if pin else WAITING] * n,
            attempts=[0] * n,
            recalled=not pin,
        )
        self.rules[rule_id] = rule
        self._by_target[(dataset, destination)] = rule_id
        if pin:
            rule.ok_count, rule.first_file_at, rule.done_at = n, self.now, self.now
        else:
            self._queue_missing(rule)
        return rule_id

    def find_staging_rule(self, dataset: str, destination: str) -> str | None:
        return self._by_target.get((dataset, destination))

    def file_names(self, dataset: str) -> list[str]:
        """The dataset's file DIDs, in its (tape) order, as ``list_staged_files`` names them."""
        return [f"sim:{dataset}.{i:06d}" for i in range(len(self.datasets[dataset].file_bytes))]

    def make_slice_dataset(self, slice_dataset: str, dataset: str, files: list[str]) -> None:
        """A dataset of ``files`` (names of ``file_names(dataset)``) on the same tapes and disks, in their order; a rule on
        it recalls and holds just those files (they land as files of the slice). Repeating it with the same files is
        harmless; other files under an existing name are refused, as Rucio refuses attaching to a closed dataset."""
        if dataset not in self.datasets:
            raise DatasetNotFoundError(f"dataset {dataset} not found")
        ds = self.datasets[dataset]
        index = {name: i for i, name in enumerate(self.file_names(dataset))}
        unknown = [f for f in files if f not in index]
        if unknown:
            raise DDMError(f"{unknown[:3]} are not files of {dataset}", "DataIdentifierNotFound")
        part = SimDataset(slice_dataset, tuple(ds.file_bytes[index[f]] for f in files), ds.tapes, ds.disks)
        if self.datasets.get(slice_dataset, part) != part:
            raise DDMError(f"{slice_dataset} is closed with other files", "UnsupportedOperation")
        self.datasets[slice_dataset] = part

    def get_rules(self, rule_ids: Iterable[str]) -> dict[str, RuleProgress]:
        progress = {}
        for rule_id in rule_ids:
            rule = self.rules.get(rule_id)
            if rule is None:
                continue
            replicating = len(rule.states) - rule.ok_count - rule.stuck_count
            state = RULE_OK if rule.ok_count == len(rule.states) else RULE_STUCK if rule.stuck_count else RULE_REPLICATING
            progress[rule_id] = RuleProgress(
                rule_id, state, rule.ok_count, replicating, rule.stuck_count, rule.source, rule.expires_at, rule.error if rule.stuck_count else None, rule.priority
            )
        return progress

    def list_staged_files(self, rule_id: str) -> list[StagedFile]:
        rule = self._rule(rule_id)
        return [
            StagedFile("sim", f"{rule.dataset.name}.{i:06d}", rule.destination, rule.dataset.file_bytes[i]) for i, s in enumerate(rule.states) if s == OK
        ]

    def set_rule_priority(self, rule_id: str, priority: int) -> None:
        rule = self._rule(rule_id)
        if not 1 <= int(priority) <= 5:
            raise DDMError(f"priority {priority} outside 1..5", "InputValidationError")
        rule.priority = int(priority)
        tape = _source_rse(rule.source)
        if tape in self._queues:
            self._queues[tape].move(rule_id, rule.priority)

    def boost_rule(self, rule_id: str) -> None:
        """What Rucio's judge-repairer does for a boosted rule at its next pass: its STUCK files are requeued."""
        rule = self._rule(rule_id)
        if rule.stuck_count:
            self._requeue(rule, lambda state: state == STUCK)

    def validate_activity(self, activity: str, destination: str) -> None:
        if not activity or not activity.strip():
            raise DDMError(f"activity {activity!r} refused by the schema (simulated)", "InvalidObject")

    def extend_rule_lifetime(self, rule_id: str, lifetime: int) -> None:
        self._rule(rule_id).expires_at = self.now + lifetime

    def switch_rule_source(self, rule_id: str, source_expression: str | None) -> None:
        rule = self._rule(rule_id)
        rule.source = source_expression
        self._requeue(rule, lambda state: state != OK)

    def _requeue(self, rule: _Rule, which) -> None:
        for i, state in enumerate(rule.states):
            if which(state):
                rule.attempts[i] += 1
                rule.states[i] = WAITING
        rule.stuck_count = sum(state == STUCK for state in rule.states)
        rule.error = None
        self._queue_missing(rule)

    def delete_rule(self, rule_id: str) -> None:
        self._remove(self._rule(rule_id))

    def expand_containers(self, names: Iterable[str]) -> dict[str, list[str]]:
        """The datasets of the containers set in ``self.containers`` (name -> dataset names); other names map to themselves."""
        return {name: list(self.containers.get(name, [name])) for name in names}

    def list_tape_replicas(self, datasets: Iterable[str]) -> dict[str, list[Replica]]:
        result = {}
        for name in datasets:
            ds = self.datasets.get(name)
            if ds is None:
                result[name] = []
                continue
            n = len(ds.file_bytes)
            result[name] = [Replica(rse, True, n, ds.n_bytes, n) for rse in ds.tapes] + [Replica(rse, False, n, ds.n_bytes, n) for rse in ds.disks]
        return result

    # ---- observations for benchmarks (not part of StagingDDM) ---------------------------------------

    def rule_times(self, rule_id: str) -> tuple[float, float | None, float | None]:
        """(created, first file on disk, all files on disk) of a live rule."""
        rule = self._rule(rule_id)
        return rule.created_at, rule.first_file_at, rule.done_at

    def tape_has_work(self, tape: str) -> bool:
        return self._free_drives[tape] < self.tapes[tape].drives or bool(self._queues[tape])


def dev_tape_simulator() -> StagingDDM:
    """An empty simulated tape system for development databases: no dataset is on tape, nothing is recalled.

    Named by the dev ``panda_jedi.cfg`` (``[watchdog] wf_carousel_ddm``, see ``devdb/panda_home.py``)."""
    return TapeSimulator([], [])


class RucioTape(StagingDDM):
    """The tape simulator's drives, mounts and bandwidth in front of a real Rucio server (``devdb.rucio_server``).

    Every StagingDDM call goes to Rucio through ``ddm`` (our ``RucioStagingDDM``), so the carousel reads every state
    from Rucio, as in production. A mirror of each rule in the simulated tape system (``physics``, a TapeSimulator
    over ``datasets``, whose names are the Rucio DIDs and whose file sizes follow Rucio's file order by name) decides
    when a file lands or sticks; :meth:`advance` then completes or sticks the transfer through Rucio itself: the
    request DONE, or NO_SOURCES (the source does not hold the file) / FAILED until Rucio gives up (a read error),
    and one conveyor-finisher pass each. A boost or a source switch runs one judge-repairer pass (what the boosted
    rule gets next), a deletion one judge-cleaner pass.
    """

    MAX_FAILED_READS = 8  # FAILED reports until Rucio stops requeueing a file and sticks its lock

    def __init__(self, server, ddm: StagingDDM, tapes: Iterable[TapeEndpoint], datasets: Iterable[SimDataset], *, faults: FaultModel = FaultModel(),
                 seed: int = 0, start_time: float = 0.0):
        self.server = server
        self.ddm = ddm
        self.physics = TapeSimulator(tapes, datasets, faults=faults, seed=seed, start_time=start_time)
        self._mirror: dict[str, str] = {}  # Rucio rule id -> simulated rule id
        self._names: dict[str, list[str]] = {}  # Rucio rule id -> its file names in the simulated file order
        self._reported: dict[str, tuple[set[int], set[int]]] = {}  # Rucio rule id -> (files reported OK, STUCK)

    @property
    def now(self) -> float:
        return self.physics.now

    def advance(self, seconds: float) -> None:
        self.physics.advance(seconds)
        for rule_id, sim_id in self._mirror.items():
            rule = self.physics.rules.get(sim_id)
            if rule is None:
                continue
            ok_before, stuck_before = self._reported[rule_id]
            ok = {i for i, s in enumerate(rule.states) if s == OK}
            stuck = {i for i, s in enumerate(rule.states) if s == STUCK}
            names = self._names[rule_id]
            if ok - ok_before:
                self.server.complete_transfers(rule_id, names=[names[i] for i in sorted(ok - ok_before)])
            if stuck - stuck_before:
                self._stick(rule_id, [names[i] for i in sorted(stuck - stuck_before)], rule.error or "")
            self._reported[rule_id] = (ok, stuck)

    def _stick(self, rule_id: str, names: list[str], error: str) -> None:
        if NO_SOURCES_MARK in error:
            self.server.stick_transfers(rule_id, names=names)  # Rucio's own NO_SOURCES text
            return
        for _ in range(self.MAX_FAILED_READS):
            self.server.stick_transfers(rule_id, names=names, state="FAILED", error=error)
            states = {lock["name"]: lock["state"] for lock in self.ddm.client.list_replica_locks(rule_id)}
            if all(states.get(name) == "STUCK" for name in names):
                return
        raise RuntimeError(f"Rucio kept requeueing {names} of rule {rule_id} after {self.MAX_FAILED_READS} failed reads")

    def _requeued(self, rule_id: str) -> None:
        ok, _ = self._reported[rule_id]
        self._reported[rule_id] = (ok, set())

    # ---- StagingDDM: Rucio first, then the mirror -------------------------------------------------------

    def create_staging_rule(self, dataset, source_expression, destination, activity, lifetime, copies=1, grouping="DATASET") -> str:
        from pandajedi_wf.ddm.adapter import split_did

        rule_id = self.ddm.create_staging_rule(dataset, source_expression, destination, activity, lifetime, copies, grouping)
        self._mirror[rule_id] = self.physics.create_staging_rule(dataset, source_expression, destination, activity, None)
        self._names[rule_id] = sorted(f["name"] for f in self.ddm.client.list_files(*split_did(dataset)))
        self._reported[rule_id] = (set(), set())
        return rule_id

    def find_staging_rule(self, dataset: str, destination: str) -> str | None:
        return self.ddm.find_staging_rule(dataset, destination)

    def get_rules(self, rule_ids: Iterable[str]) -> dict[str, RuleProgress]:
        return self.ddm.get_rules(rule_ids)

    def list_staged_files(self, rule_id: str) -> list[StagedFile]:
        return self.ddm.list_staged_files(rule_id)

    def extend_rule_lifetime(self, rule_id: str, lifetime: int) -> None:
        self.ddm.extend_rule_lifetime(rule_id, lifetime)

    def switch_rule_source(self, rule_id: str, source_expression: str | None) -> None:
        self.ddm.switch_rule_source(rule_id, source_expression)  # (boosted by the adapter)
        self.server.repair_rules(delta=1800)
        self.physics.switch_rule_source(self._mirror[rule_id], source_expression)
        self._requeued(rule_id)

    def boost_rule(self, rule_id: str) -> None:
        self.ddm.boost_rule(rule_id)
        self.server.repair_rules(delta=1800)
        self.physics.boost_rule(self._mirror[rule_id])
        self._requeued(rule_id)

    def set_rule_priority(self, rule_id: str, priority: int) -> None:
        self.ddm.set_rule_priority(rule_id, priority)
        if rule_id in self._mirror:
            self.physics.set_rule_priority(self._mirror[rule_id], priority)

    def delete_rule(self, rule_id: str) -> None:
        self.ddm.delete_rule(rule_id)
        self.server.clean_rules()
        sim_id = self._mirror.pop(rule_id, None)
        if sim_id in self.physics.rules:
            self.physics.delete_rule(sim_id)

    def validate_activity(self, activity: str, destination: str) -> None:
        self.ddm.validate_activity(activity, destination)

    def expand_containers(self, names: Iterable[str]) -> dict[str, list[str]]:
        return self.ddm.expand_containers(names)

    def list_tape_replicas(self, datasets: Iterable[str]) -> dict[str, list[Replica]]:
        return self.ddm.list_tape_replicas(datasets)
