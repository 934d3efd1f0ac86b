"""Following a staging rule: stuck detection, the next source to try, lifetime extension, throughput.

Upstream leaves stuck rules to humans.  Here, STUCK locks (Rucio gave up on a file for now) are first
answered with ``boost_rule`` (Rucio's judge-repairer requeues them at its next pass instead of after its
delay); a rule still stuck ``boost_wait_seconds`` after its boost gets a new source.  A rule whose error is
Rucio's ``NO_SOURCES`` is not boosted: that source cannot serve the dataset, so it is marked dead for the
request (never chosen again) and the rule moves at once.  Besides, a request is stuck when no file arrived for ``hang_factor`` times its expected delivery time (the time its tape
needs to drain everything in flight, plus the pipeline delay: mount, one batch per drive, one cycle), or
at the latest after ``stuck_timeout_seconds`` beyond that drain.  Rucio counts a silently lost file and
one waiting for a retry at the back of the queue both as "replicating"; the drain term is what keeps
the second from being called hung.  A stuck request gets a new source: an untried replica first, best
expected completion first; when every replica was tried, the best one is retried (moving the rule
re-queues the stuck transfers).  After ``max_source_switches`` it fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from pandajedi_wf.ddm.adapter import no_sources

from .config import CarouselConfig
from .source_choice import pipeline_delay_seconds, rank_sources, throughput_of
from .state import Load

WAIT = "wait"
BOOST = "boost"
SWITCH = "switch"
FAIL = "fail"


@dataclass(frozen=True)
class StuckVerdict:
    action: str  # wait | boost | switch | fail
    source: str | None = None
    reason: str = ""
    dead_source: str | None = None  # the current source answered NO_SOURCES: never use it again for this request


def last_progress_time(previous_files_done: int, files_done: int, previous_time: float, now: float) -> float:
    """When the request last gained a file: ``now`` if new files arrived, else the time kept so far."""
    return now if files_done > previous_files_done else previous_time


def expected_delivery_seconds(tape: str, in_flight: Load, mean_file_bytes: float, throughput: Mapping[str, float], config: CarouselConfig) -> float:
    """How long the tape should need to deliver any file now in flight on it: drain all it holds (a retried
    file sits at the back) plus the pipeline delay (mount, one batch read by one drive, one agent cycle);
    near the end of a campaign the batch can hold no more than the files left, so a hung file there is
    found in minutes, not after a full batch time."""
    delay = pipeline_delay_seconds(tape, mean_file_bytes, throughput, config, files_in_flight=in_flight.files)
    return in_flight.bytes / throughput_of(tape, throughput, config) + delay


def is_stuck(
    last_progress_at: float,
    now: float,
    config: CarouselConfig,
    *,
    files_replicating: int = 1,
    files_stuck: int = 0,
    queue_drain_seconds: float = 0.0,
    expected_delivery_seconds: float | None = None,
) -> bool:
    """Every remaining file stuck; or no new file for ``hang_factor`` x the expected delivery time; or, as
    the backstop when no expectation is known, for ``stuck_timeout_seconds`` beyond the queue drain time."""
    if files_stuck > 0 and files_replicating == 0:
        return True  # Rucio gave up on every remaining file: no point in waiting for the timeout
    idle = now - last_progress_at
    if expected_delivery_seconds is not None and config.hang_factor > 0 and idle >= config.hang_factor * expected_delivery_seconds:
        return True
    return idle >= config.stuck_timeout_seconds + queue_drain_seconds


def next_source(
    current: str | None,
    tried: Iterable[str],
    candidates: Iterable[str],
    n_bytes_left: int,
    tapes: Mapping[str, Load],
    throughput: Mapping[str, float],
    config: CarouselConfig,
    dead: Iterable[str] = (),
) -> str | None:
    """The tape to switch to: best untried one, else the best of all (a retry); never a ``dead`` one (it answered
    NO_SOURCES); None if no tape is usable."""
    tried = set(tried) | ({current} if current else set())
    ranked = [s for s in rank_sources(candidates, n_bytes_left, tapes, throughput, config) if s not in set(dead)]
    untried = [s for s in ranked if s not in tried]
    if untried:
        return untried[0]
    return ranked[0] if ranked else None


def stuck_verdict(
    *,
    now: float,
    last_progress_at: float,
    files_replicating: int,
    files_stuck: int,
    queue_drain_seconds: float = 0.0,
    expected_delivery_seconds: float | None = None,
    switches: int,
    current: str | None,
    tried: Iterable[str],
    candidates: Iterable[str],
    n_bytes_left: int,
    tapes: Mapping[str, Load],
    throughput: Mapping[str, float],
    config: CarouselConfig,
    error: str | None = None,
    boosted_at: float = 0.0,
    dead: Iterable[str] = (),
) -> StuckVerdict:
    """Wait, boost, switch to a named source, or fail: the whole stuck-rule policy in one place.

    ``error`` is Rucio's rule error, ``boosted_at`` when the rule was last boosted since its files stuck (0: not),
    ``dead`` the sources that already answered NO_SOURCES for this request."""
    dead = tuple(dead)
    if files_stuck > 0 and no_sources(error):
        why = f"{files_stuck} file(s) stuck with NO_SOURCES on {current}: {error}"
        return _move(why, switches, current, tried, candidates, n_bytes_left, tapes, throughput, config, dead + ((current,) if current else ()), current)
    if files_stuck > 0 and not boosted_at:
        return StuckVerdict(BOOST, current, f"{files_stuck} file(s) stuck ({error or 'no error given'}): boost_rule")
    if files_stuck > 0 and now - boosted_at >= config.boost_wait_seconds:
        why = f"{files_stuck} file(s) still stuck {now - boosted_at:.0f} s after boost_rule ({error or 'no error given'})"
        return _move(why, switches, current, tried, candidates, n_bytes_left, tapes, throughput, config, dead, None)
    if files_stuck > 0:
        return StuckVerdict(WAIT)  # boosted: Rucio's judge-repairer requeues the files
    if not is_stuck(
        last_progress_at,
        now,
        config,
        files_replicating=files_replicating,
        files_stuck=files_stuck,
        queue_drain_seconds=queue_drain_seconds,
        expected_delivery_seconds=expected_delivery_seconds,
    ):
        return StuckVerdict(WAIT)
    idle = now - last_progress_at
    why = f"{files_stuck} stuck / {files_replicating} replicating files, no progress for {idle:.0f} s"
    return _move(why, switches, current, tried, candidates, n_bytes_left, tapes, throughput, config, dead, None)


def _move(why, switches, current, tried, candidates, n_bytes_left, tapes, throughput, config, dead, dead_source) -> StuckVerdict:
    """Switch to the next source, or fail when out of switches or of sources."""
    if switches >= config.max_source_switches:
        return StuckVerdict(FAIL, None, f"{why}; {switches} source switches already used", dead_source)
    source = next_source(current, tried, candidates, n_bytes_left, tapes, throughput, config, dead)
    if source is None:
        gone = f" (NO_SOURCES from {', '.join(dead)})" if dead else ""
        return StuckVerdict(FAIL, None, f"{why}; no usable source left{gone}", dead_source)
    return StuckVerdict(SWITCH, source, why, dead_source)


def rule_priority(place: int, in_queue: int, waited_seconds: float, config: CarouselConfig) -> int:
    """Rucio transfer priority (1 lowest .. 5 highest) of a rule from the request's place in its tape's queue
    (0 = first of ``in_queue``, see ``release_order_key``): the first third 4, the middle third 3, the last third 2,
    one more once its tasks have waited ``priority_age_step_seconds`` since the request was made. Raised once, not
    per step: in a long campaign every rule would otherwise end at 5 and the queue order would be lost."""
    if in_queue <= 0 or not 0 <= place < in_queue:
        raise ValueError(f"place {place} is not in a queue of {in_queue}")
    base = 4 - (3 * place) // in_queue  # 4, 3, 2 by thirds
    step = config.priority_age_step_seconds
    return base + (1 if step and waited_seconds >= step else 0)


def lifetime_extension(expires_at: float | None, now: float, config: CarouselConfig) -> int | None:
    """New lifetime (seconds from now) to set on a rule about to expire, or None to leave it."""
    if expires_at is None or expires_at - now >= config.extend_below_seconds:
        return None
    return config.lifetime_extension_seconds


def updated_throughput(previous: float | None, bytes_done: int, seconds: float, config: CarouselConfig) -> float | None:
    """EWMA of a tape's bytes/s.  Feed only intervals during which the tape had work queued all along;
    an idle interval would read as a slow tape."""
    if seconds <= 0:
        return previous
    sample = bytes_done / seconds
    if previous is None:
        return sample
    alpha = config.throughput_smoothing
    return alpha * sample + (1 - alpha) * previous


def release_order_key(bytes_left: int, landed: bool, admitted_at: float, task_priority: int, created_at: float, request_id: int) -> tuple:
    """A staging rule's place in its tape's queue: the one that can be consumed and released soonest first. A rule with
    files on disk goes before every rule with none, fewest bytes still to come first (a rule waiting for a last retried
    file goes before one half read, so the disk it holds is freed sooner); the rules with nothing on disk yet hold no
    disk but their reservation, and keep the order they were admitted in (the queue ahead that the hang detector
    expects for them, ``stuck_verdict``): put behind every fresh smaller rule, a rule admitted early would wait until it
    looked hung and moved to another tape, again and again. Then task priority and age."""
    if landed:
        return (0, bytes_left, -task_priority, created_at, request_id)
    return (1, admitted_at, -task_priority, created_at, request_id)
