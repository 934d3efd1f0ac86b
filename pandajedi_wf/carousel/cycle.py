"""One carousel cycle: follow rules, recover intents, switch stuck sources, admit queued requests, then
move recalls still waiting deep in a tape queue to tapes that run dry (``source_choice.rebalance``).

The decisions are the pure functions of ``admission`` and ``progress``; this module only applies them
through a ``StagingDDM`` and a ``RequestBook`` (where request rows live: memory in the benchmark, the
DB in the JEDI agent).  Every DDM call that creates or changes a rule is preceded by saving the intent
(``submitting`` / ``switching``), so replaying a cycle after a crash never creates a second rule.
A rule creation DDM refuses is judged by ``rule_errors`` (permanent: ``failed``; transient: ``queued`` again after a
back-off). An exception from the adapter that is not a DDM error (a bug, an answer of an unexpected shape) is
recorded on the request it concerns and judged the same way: it never ends the cycle of the other requests.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field, replace
from typing import Iterable

from pandajedi_wf.ddm.adapter import DDMError, DuplicateRuleError, RuleNotFoundError, RuleProgress, StagingDDM

from . import lifecycle as lc
from .prestage_admission import admit_behind_tasks
from .rule_errors import rule_retry
from .config import CarouselConfig
from .progress import (
    BOOST,
    FAIL,
    SWITCH,
    expected_delivery_seconds,
    last_progress_time,
    lifetime_extension,
    release_order_key,
    rule_priority,
    stuck_verdict,
    updated_throughput,
)
from .source_choice import Recall, expected_completion_seconds, rebalance
from .state import CarouselLoad, Load, StagingRequest



@dataclass
class RequestRecord:
    """The agent's row for one staging request."""

    request: StagingRequest
    status: str = lc.QUEUED
    source: str | None = None
    rule_id: str | None = None
    files_done: int = 0
    last_progress_at: float = 0.0
    expected_start_at: float = 0.0  # when the source should reach this request's files (its queue ahead drained)
    switches: int = 0
    tried: tuple[str, ...] = ()
    started_at: float | None = None
    done_at: float | None = None
    error: str = ""
    rule_attempts: int = 0  # failed rule creations since the request was last admitted with success
    retry_after: float = 0.0  # a request queued again after a failed rule creation waits for this time
    bytes_done: int | None = None  # bytes on disk, summed from the rule's OK locks (None: not read yet)
    boosted_at: float = 0.0  # when boost_rule was sent for the rule's STUCK files (0: not since they stuck)
    dead: tuple[str, ...] = ()  # sources that answered NO_SOURCES for this dataset: never chosen again
    rule_priority: int = 0  # the Rucio priority we last set on the rule (0: none set, Rucio's default 3)

    def due(self, now: float) -> bool:
        return self.retry_after <= now

    @property
    def files_left(self) -> int:
        return max(self.request.n_files - self.files_done, 0)

    @property
    def bytes_left(self) -> int:
        r = self.request
        if self.bytes_done is not None:
            return max(r.n_bytes - self.bytes_done, 0)
        return r.n_bytes * self.files_left // r.n_files if r.n_files else 0


class RequestBook(abc.ABC):
    """Where request records are kept; ``save`` must enforce the staging-request lifecycle."""

    @abc.abstractmethod
    def records(self, statuses: Iterable[str]) -> list[RequestRecord]: ...

    @abc.abstractmethod
    def save(self, record: RequestRecord, status: str, **changes) -> RequestRecord: ...


class MemoryBook(RequestBook):
    def __init__(self, requests: Iterable[StagingRequest] = ()):
        self.by_id: dict[int, RequestRecord] = {r.request_id: RequestRecord(r) for r in requests}

    def records(self, statuses: Iterable[str]) -> list[RequestRecord]:
        wanted = set(statuses)
        return [rec for rec in self.by_id.values() if rec.status in wanted]

    def save(self, record: RequestRecord, status: str, **changes) -> RequestRecord:
        if status != record.status:
            lc.STAGING_REQUEST.check(record.status, status)
        new = replace(record, status=status, **changes)
        self.by_id[record.request.request_id] = new
        return new


def current_load(records: Iterable[RequestRecord], throughput: dict[str, float] | None = None) -> CarouselLoad:
    """Sum what in-flight requests still need from tapes, users and shares, and what they hold on disk."""
    tapes: dict[str, Load] = {}
    users: dict[str, Load] = {}
    shares: dict[str, int] = {}
    buffers: dict[str, int] = {}
    for rec in records:
        r = rec.request
        if rec.status in lc.HOLDS_BUFFER and rec.source is not None:
            buffers[r.destination] = buffers.get(r.destination, 0) + r.n_bytes
        if rec.status in lc.IN_FLIGHT and rec.source is not None:
            tapes[rec.source] = tapes.get(rec.source, Load()).plus(rec.files_left, rec.bytes_left)
            users[r.user] = users.get(r.user, Load()).plus(rec.files_left, rec.bytes_left)
            shares[r.gshare] = shares.get(r.gshare, 0) + rec.bytes_left
    return CarouselLoad(tapes, users, shares, buffers, dict(throughput or {}))


@dataclass
class CycleReport:
    started: int = 0
    pinned: int = 0
    done: int = 0
    switched: int = 0
    failed: int = 0
    requeued: int = 0
    rule_retries: int = 0  # rule creations failed transiently: queued again after a back-off
    extended: int = 0
    rebalanced: int = 0  # recalls moved, before their first file, to a tape running dry
    boosted: int = 0  # rules with STUCK files boosted (boost_rule)
    reprioritised: int = 0  # rules given a new Rucio priority (their place in the tape queue changed)
    errors: list[str] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)  # reason -> count


def _queue_ahead_seconds(tape: str, load: CarouselLoad, config: CarouselConfig) -> float:
    """How long the tape needs for the bytes already queued before a new request's files."""
    return expected_completion_seconds(tape, 0, load.tapes, load.throughput, config)


def _create_or_find(ddm: StagingDDM, rec: RequestRecord, config: CarouselConfig) -> str:
    r = rec.request
    existing = ddm.find_staging_rule(r.dataset, r.destination)
    if existing:
        return existing
    try:
        return ddm.create_staging_rule(r.dataset, rec.source, r.destination, config.rule_activity, config.rule_lifetime_seconds)
    except DuplicateRuleError:
        found = ddm.find_staging_rule(r.dataset, r.destination)
        if found:
            return found
        raise


def _failure(exc: Exception) -> tuple[str, str]:
    """(kind, message) of an exception from the DDM adapter: a DDM error by its kind, anything else by its class."""
    if isinstance(exc, DDMError):
        return exc.kind, str(exc)
    return type(exc).__name__, f"unexpected {type(exc).__name__} from the DDM adapter: {exc}"


def _submit(book: RequestBook, ddm: StagingDDM, rec: RequestRecord, config: CarouselConfig, now: float, report: CycleReport) -> None:
    """SUBMITTING -> STAGING (rule created or found); if DDM refuses, QUEUED after a back-off or FAILED (rule_errors)."""
    try:
        rule_id = _create_or_find(ddm, rec, config)
    except Exception as exc:  # contained to this request, whatever the adapter raised
        kind, message = _failure(exc)
        verdict = rule_retry(kind, message, rec.rule_attempts, now, config)
        report.errors.append(f"{rec.request.dataset}: {verdict.reason}")
        if verdict.gives_up:
            book.save(rec, lc.FAILED, source=None, error=verdict.reason, rule_attempts=verdict.attempts, done_at=now)
            report.failed += 1
        else:
            book.save(rec, lc.QUEUED, source=None, error=verdict.reason, rule_attempts=verdict.attempts, retry_after=verdict.retry_at)
            report.rule_retries += 1
        return
    book.save(rec, lc.STAGING, rule_id=rule_id, started_at=rec.started_at or now, last_progress_at=now, error="", rule_attempts=0, retry_after=0.0)


def _switch(book: RequestBook, ddm: StagingDDM, rec: RequestRecord, report: CycleReport) -> None:
    """SWITCHING -> STAGING once the rule reads from the recorded source (safe to repeat)."""
    try:
        ddm.switch_rule_source(rec.rule_id, rec.source)
    except Exception as exc:  # contained to this request
        report.errors.append(f"{rec.request.dataset}: {_failure(exc)[1]}")
        return  # stays SWITCHING; retried next cycle
    book.save(rec, lc.STAGING)


def _follow(
    config: CarouselConfig, book: RequestBook, ddm: StagingDDM, now: float, throughput: dict[str, float], report: CycleReport
) -> dict[str, int]:
    """Update staging requests from their rules; returns bytes delivered per tape this cycle."""
    staging = book.records([lc.STAGING])
    delivered: dict[str, int] = {}
    try:
        progress: dict[str, RuleProgress] = ddm.get_rules([rec.rule_id for rec in staging]) if staging else {}
    except Exception as exc:  # DDM down (or an adapter bug): follow nothing this cycle rather than treat every rule as vanished
        report.errors.append(f"get_rules: {_failure(exc)[1]}")
        return delivered
    load = current_load(book.records(lc.IN_FLIGHT), throughput)
    for rec in staging:
        rule = progress.get(rec.rule_id)
        if rule is None:
            book.save(rec, lc.QUEUED, source=None, rule_id=None, files_done=0, error="rule vanished in DDM")
            report.requeued += 1
            continue
        gained = rule.locks_ok - rec.files_done
        staged_bytes = rec.bytes_done
        if gained != 0 or (rule.locks_ok and staged_bytes is None):
            try:  # exact bytes on disk from the OK locks (Rucio's rule counts files only)
                staged_bytes = sum(f.n_bytes for f in ddm.list_staged_files(rec.rule_id))
            except Exception as exc:  # contained to this request: fall back to the estimate from file counts
                report.errors.append(f"{rec.request.dataset}: {_failure(exc)[1]}")
                staged_bytes = None
        if gained > 0 and rec.source is not None and rec.request.n_files:
            before = rec.request.n_bytes - rec.bytes_left
            after = staged_bytes if staged_bytes is not None else rec.request.n_bytes * rule.locks_ok // rec.request.n_files
            delivered[rec.source] = delivered.get(rec.source, 0) + max(after - before, 0)
        seen = last_progress_time(rec.files_done, rule.locks_ok, rec.last_progress_at, now)
        boosted_at = 0.0 if rule.locks_stuck == 0 and gained > 0 else rec.boosted_at  # a boost that worked is spent
        rec = book.save(rec, lc.STAGING, files_done=rule.locks_ok, bytes_done=staged_bytes, last_progress_at=seen, boosted_at=boosted_at)
        if rule.locks_ok >= rec.request.n_files:
            book.save(rec, lc.DONE, done_at=now)
            report.done += 1
            continue
        if new_lifetime := lifetime_extension(rule.expires_at, now, config):
            try:
                ddm.extend_rule_lifetime(rec.rule_id, new_lifetime)
                report.extended += 1
            except Exception as exc:  # contained to this request
                report.errors.append(f"{rec.request.dataset}: {_failure(exc)[1]}")
        r = rec.request
        verdict = stuck_verdict(
            now=now,
            last_progress_at=max(seen, rec.expected_start_at),
            files_replicating=rule.locks_replicating,
            files_stuck=rule.locks_stuck,
            queue_drain_seconds=_queue_ahead_seconds(rec.source, load, config) if rec.source else 0.0,
            expected_delivery_seconds=(
                expected_delivery_seconds(rec.source, load.tapes.get(rec.source, Load()), r.n_bytes / r.n_files, throughput, config)
                if rec.source and r.n_files
                else None
            ),
            switches=rec.switches,
            current=rec.source,
            tried=rec.tried,
            candidates=rec.request.sources,
            n_bytes_left=rec.bytes_left,
            tapes=load.tapes,
            throughput=throughput,
            config=config,
            error=rule.error,
            boosted_at=rec.boosted_at,
            dead=rec.dead,
        )
        dead = tuple(dict.fromkeys(rec.dead + ((verdict.dead_source,) if verdict.dead_source else ())))
        if verdict.action == BOOST:
            try:
                ddm.boost_rule(rec.rule_id)
            except Exception as exc:  # contained to this request; boosted again next cycle
                report.errors.append(f"{rec.request.dataset}: {_failure(exc)[1]}")
                continue
            book.save(rec, lc.STAGING, boosted_at=now, error=verdict.reason)
            report.boosted += 1
        elif verdict.action == SWITCH:
            rec = book.save(
                rec,
                lc.SWITCHING,
                source=verdict.source,
                expected_start_at=now + _queue_ahead_seconds(verdict.source, load, config),
                switches=rec.switches + 1,
                tried=tuple(dict.fromkeys(rec.tried + (rec.source, verdict.source))),
                last_progress_at=now,
                error=verdict.reason,
                boosted_at=0.0,
                dead=dead,
            )
            _switch(book, ddm, rec, report)
            report.switched += 1
        elif verdict.action == FAIL:
            book.save(rec, lc.FAILED, error=verdict.reason, dead=dead)
            report.failed += 1
            try:
                ddm.delete_rule(rec.rule_id)
            except Exception as exc:  # contained to this request
                report.errors.append(f"{rec.request.dataset}: {_failure(exc)[1]}")
    return delivered


def _saturated(busy_tapes: Iterable[str], book: RequestBook, config: CarouselConfig) -> list[str]:
    """Tapes that still have a full bring-online batch per drive in flight: only while every drive has work
    does delivered/elapsed measure the tape; a half-fed tape at the end of a campaign would read as slow,
    stretch every expected time and delay hang detection."""
    load = current_load(book.records(lc.IN_FLIGHT))
    return [t for t in busy_tapes if load.tapes.get(t, Load()).files >= config.tape(t).drives * config.bring_online_batch_files]


def run_cycle(
    config: CarouselConfig,
    book: RequestBook,
    ddm: StagingDDM,
    now: float,
    throughput: dict[str, float],
    *,
    elapsed: float = 0.0,
    busy_tapes: Iterable[str] = (),
) -> CycleReport:
    """One pass.  ``throughput`` (bytes/s per tape) is updated in place from tapes in ``busy_tapes``
    (tapes that had work during the whole ``elapsed`` seconds since the previous cycle) that are still
    saturated (see ``_saturated``)."""
    report = CycleReport()
    for rec in book.records([lc.SUBMITTING]):  # intents left by a crash
        _submit(book, ddm, rec, config, now, report)
    for rec in book.records([lc.SWITCHING]):
        _switch(book, ddm, rec, report)

    delivered = _follow(config, book, ddm, now, throughput, report)
    for tape in _saturated(busy_tapes, book, config):
        measured = updated_throughput(throughput.get(tape), delivered.get(tape, 0), elapsed, config)
        if measured:
            throughput[tape] = measured

    queued = [rec for rec in book.records([lc.QUEUED]) if rec.due(now)]  # (a back-off after a failed rule creation)
    load = current_load(book.records(lc.HOLDS_BUFFER), throughput)
    decision = admit_behind_tasks(config, [rec.request for rec in queued], load, now)
    by_id = {rec.request.request_id: rec for rec in queued}
    tapes = dict(load.tapes)
    for start in decision.starts:
        expected = now
        if start.source is not None:
            expected += _queue_ahead_seconds(start.source, CarouselLoad(tapes=tapes, throughput=throughput), config)
            tapes[start.source] = tapes.get(start.source, Load()).plus(start.request.n_files, start.request.n_bytes)
        rec = book.save(
            by_id[start.request.request_id],
            lc.SUBMITTING,
            source=start.source,
            tried=(start.source,) if start.source else (),
            expected_start_at=expected,
        )
        _submit(book, ddm, rec, config, now, report)
        report.started += 1
        report.pinned += start.source is None
    for hold in decision.held:
        report.held[hold.reason] = report.held.get(hold.reason, 0) + 1
    _rebalance(config, book, ddm, now, throughput, report)
    _prioritise(config, book, ddm, now, report)
    return report


def _prioritise(config: CarouselConfig, book: RequestBook, ddm: StagingDDM, now: float, report: CycleReport) -> None:
    """Give each staging rule the Rucio priority of its place in its tape's queue (``progress.rule_priority``), the
    rule nearest to release first (``progress.release_order_key``); set only when it changed, so a steady queue costs
    no call."""
    by_tape: dict[str, list[RequestRecord]] = {}
    for rec in book.records([lc.STAGING]):
        if rec.rule_id and rec.source:
            by_tape.setdefault(rec.source, []).append(rec)
    for recs in by_tape.values():
        recs.sort(
            key=lambda rec: release_order_key(
                rec.bytes_left, rec.files_done > 0, rec.started_at or now, rec.request.task_priority, rec.request.created_at, rec.request.request_id
            )
        )
        for place, rec in enumerate(recs):
            wanted = rule_priority(place, len(recs), now - rec.request.created_at, config)
            if wanted == (rec.rule_priority or 3):
                continue
            try:
                ddm.set_rule_priority(rec.rule_id, wanted)
            except Exception as exc:  # contained to this request; set next cycle
                report.errors.append(f"{rec.request.dataset}: {_failure(exc)[1]}")
                continue
            book.save(rec, lc.STAGING, rule_priority=wanted)
            report.reprioritised += 1


def _rebalance(config: CarouselConfig, book: RequestBook, ddm: StagingDDM, now: float, throughput: dict[str, float], report: CycleReport) -> None:
    """Move recalls that have not started to tapes running dry.  A move is not a stuck switch: it does not
    use ``max_source_switches``; ``tried`` (persisted) records it, and a recall moves at most once."""
    if config.rebalance_per_cycle <= 0:
        return
    in_flight = [rec for rec in book.records(lc.IN_FLIGHT) if rec.source is not None]
    recalls = [
        Recall(
            rec.request.request_id,
            rec.source,
            rec.request.sources,
            rec.files_left,
            rec.bytes_left,
            rec.expected_start_at,
            movable=rec.status == lc.STAGING and rec.files_done == 0 and rec.switches == 0 and len(set(rec.tried) | {rec.source}) == 1,
        )
        for rec in in_flight
    ]
    by_id = {rec.request.request_id: rec for rec in in_flight}
    for move in rebalance(recalls, throughput, config):
        load = current_load(book.records(lc.IN_FLIGHT), throughput)
        rec = book.save(
            by_id[move.request_id],
            lc.SWITCHING,
            source=move.target,
            expected_start_at=now + _queue_ahead_seconds(move.target, load, config),
            tried=tuple(dict.fromkeys(by_id[move.request_id].tried + (move.source, move.target))),
            last_progress_at=now,
            error=f"moved from {move.source} to idle {move.target} before its first file (expected {move.gain_seconds:.0f} s earlier)",
        )
        _switch(book, ddm, rec, report)
        report.rebalanced += 1


def retire(book: RequestBook, ddm: StagingDDM, rec: RequestRecord) -> RequestRecord:
    """DONE -> RETIRED once the consuming tasks finished: release the rule, free the disk buffer.

    A rule Rucio no longer has is released already. Any other failure (Rucio unreachable, refused) raises and the
    request stays DONE, so it is retired again next cycle: taking it for gone would leave its disk held until the
    rule's lifetime ends."""
    if rec.rule_id:
        try:
            ddm.delete_rule(rec.rule_id)
        except RuleNotFoundError:
            pass
    return book.save(rec, lc.RETIRED)
