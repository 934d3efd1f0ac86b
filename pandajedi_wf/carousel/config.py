"""Carousel configuration: limits, shares and timeouts, loaded from the JSON kept in PanDA's CONFIG table.

Every knob has a default so an empty document is a valid configuration; anything present is checked
strictly (unknown keys, wrong types, negative limits, ratios outside (0, 1]) because a typo in an
operator's JSON must fail loudly instead of silently staging a petabyte without limits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

SCHEMA_VERSION = 1

TB = 10**12


class CarouselConfigError(ValueError):
    """The carousel configuration document is invalid; the message names the key and the problem."""


@dataclass(frozen=True)
class TapeLimits:
    """Sliding window of one tape: files and bytes in flight (queued at the tape + staging, not yet on disk)."""

    max_files: int = 10_000
    max_bytes: int = 200 * TB
    active: bool = True
    expected_bytes_per_second: float = 200e6  # prior for source choice until a throughput is measured
    drives: int = 4  # drives the site gives to our recalls: each holds one bring-online batch in flight
    mount_seconds: float = 120.0  # mount + positioning latency before a batch's first file


@dataclass(frozen=True)
class CarouselConfig:
    default_tape: TapeLimits = TapeLimits()
    tapes: Mapping[str, TapeLimits] = field(default_factory=dict)
    release_threshold: float = 0.8  # hysteresis: a tape gets new work only while below this fraction of a limit
    default_disk_buffer_bytes: int | None = None  # None: destinations without an entry are not capped
    disk_buffers: Mapping[str, int] = field(default_factory=dict)
    user_max_bytes: int | None = 100 * TB
    user_max_files: int | None = None
    share_weights: Mapping[str, float] = field(default_factory=dict)
    default_share_weight: float = 1.0
    rule_lifetime_seconds: int = 15 * 86400
    lifetime_extension_seconds: int = 15 * 86400
    extend_below_seconds: int = 2 * 86400  # extend a rule's lifetime when less than this remains
    stuck_timeout_seconds: int = 12 * 3600  # no new file for this long -> switch the source
    max_source_switches: int = 3
    throughput_smoothing: float = 0.3  # EWMA weight of the newest throughput measurement
    excluded_tapes: frozenset[str] = frozenset()
    excluded_destinations: frozenset[str] = frozenset()
    default_destination: str = "type=DATADISK"  # Rucio RSE expression for recalls when the task names none
    # Rucio activity of the recall rules: it must be one the Rucio policy knows, or every rule is refused for good.
    # 'Staging' is in Rucio's generic schema and ATLAS's list; upstream PanDA 1.0.4 uses 'Data Carousel Analysis'
    # / 'Data Carousel Production' (pandaserver/taskbuffer/DataCarousel.py), which a deployment may prefer.
    rule_activity: str = "Staging"
    # -- added in part 7 (all optional; defaults are what an operator would run with) --
    cycle_seconds: int = 600  # how often the agent runs; part of the delay a tape window must cover
    bring_online_batch_files: int = 200  # files FTS hands a drive per bring-online request
    window_from_throughput: bool = True  # cap bytes in flight per tape at its bandwidth-delay product
    hang_factor: float = 1.5  # a request is hung after this many times its expected delivery time without a file
    longest_first_max_lead_seconds: int = 6 * 3600  # within one priority, a long recall may overtake requests this much younger
    rebalance_per_cycle: int = 20  # not-yet-started recalls moved to an idle tape per cycle (0: never move)
    # -- rule creation refused by DDM (see rule_errors: permanent errors fail at once, transient ones back off) --
    rule_retry_base_seconds: int = 600  # wait after the first transient failure
    rule_retry_factor: float = 2.0  # each further failure multiplies the wait
    rule_retry_cap_seconds: int = 6 * 3600  # longest wait between two attempts
    rule_max_attempts: int = 8  # attempts before a request fails for good
    # -- what Rucio offers (see progress: boost, NO_SOURCES, priority) --
    boost_wait_seconds: int = 3600  # a rule still STUCK this long after boost_rule gets a new source
    priority_age_step_seconds: int = 12 * 3600  # a rule's Rucio priority rises by one per this much waiting (0: never)
    # -- workflow-level pre-staging (see prestage_admission) --
    prestage_lead_seconds: int = 6 * 3600  # a pre-stage is admitted from this long before its need-by on

    def tape(self, name: str) -> TapeLimits:
        return self.tapes.get(name, self.default_tape)

    def tape_usable(self, name: str) -> bool:
        return name not in self.excluded_tapes and self.tape(name).active

    def disk_buffer_bytes(self, destination: str) -> int | None:
        return self.disk_buffers.get(destination, self.default_disk_buffer_bytes)

    def share_weight(self, gshare: str) -> float:
        return self.share_weights.get(gshare, self.default_share_weight)


# ---- validation -------------------------------------------------------------------------------------


def _fail(key: str, problem: str, value: Any) -> CarouselConfigError:
    return CarouselConfigError(f"carousel config: {key!r} {problem}, got {value!r}")


def _count(key: str, value: Any, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON writers emit 2e14 as a float
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(key, "must be a non-negative integer" + (" or null" if optional else ""), value)
    if value < 0:
        raise _fail(key, "must not be negative", value)
    return value


def _positive_number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, "must be a number", value)
    if value <= 0:
        raise _fail(key, "must be positive", value)
    return float(value)


def _non_negative_number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, "must be a number", value)
    if value < 0:
        raise _fail(key, "must not be negative", value)
    return float(value)


def _ratio(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, "must be a number in (0, 1]", value)
    if not 0 < value <= 1:
        raise _fail(key, "must be in (0, 1]", value)
    return float(value)


def _factor(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, "must be a number", value)
    if value < 1:
        raise _fail(key, "must be at least 1", value)
    return float(value)


def _at_least_one(key: str, value: Any) -> int:
    count = _count(key, value)
    if count < 1:
        raise _fail(key, "must be at least 1", value)
    return count


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, "must be true or false", value)
    return value


def _names(key: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(key, "must be a list of non-empty names", value)
    return frozenset(value)


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, "must be a non-empty string", value)
    return value


def _mapping(key: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise _fail(key, "must be an object", value)
    return value


def _check_keys(key: str, doc: dict, known: set[str]) -> None:
    unknown = sorted(set(doc) - known)
    if unknown:
        where = f" in {key!r}" if key else ""
        raise CarouselConfigError(f"carousel config: unknown key {unknown[0]!r}{where} (known keys: {', '.join(sorted(known))})")


def _tape_limits(key: str, doc: Any, base: TapeLimits) -> TapeLimits:
    doc = _mapping(key, doc)
    _check_keys(key, doc, {f.name for f in fields(TapeLimits)})
    values = {
        "max_files": _count(f"{key}.max_files", doc.get("max_files", base.max_files)),
        "max_bytes": _count(f"{key}.max_bytes", doc.get("max_bytes", base.max_bytes)),
        "active": _bool(f"{key}.active", doc.get("active", base.active)),
        "expected_bytes_per_second": _positive_number(
            f"{key}.expected_bytes_per_second", doc.get("expected_bytes_per_second", base.expected_bytes_per_second)
        ),
        "drives": _count(f"{key}.drives", doc.get("drives", base.drives)),
        "mount_seconds": _non_negative_number(f"{key}.mount_seconds", doc.get("mount_seconds", base.mount_seconds)),
    }
    if values["drives"] == 0:
        raise _fail(f"{key}.drives", "must be at least 1", 0)
    return TapeLimits(**values)


_SCALARS = {
    "release_threshold": _ratio,
    "throughput_smoothing": _ratio,
    "default_share_weight": _positive_number,
    "rule_lifetime_seconds": _count,
    "lifetime_extension_seconds": _count,
    "extend_below_seconds": _count,
    "stuck_timeout_seconds": _count,
    "max_source_switches": _count,
    "cycle_seconds": _count,
    "bring_online_batch_files": _count,
    "window_from_throughput": _bool,
    "hang_factor": _non_negative_number,
    "longest_first_max_lead_seconds": _count,
    "rebalance_per_cycle": _count,
    "rule_retry_base_seconds": _count,
    "rule_retry_factor": _factor,
    "rule_retry_cap_seconds": _count,
    "rule_max_attempts": _at_least_one,
    "boost_wait_seconds": _count,
    "priority_age_step_seconds": _count,
    "prestage_lead_seconds": _count,
}
_OPTIONAL_COUNTS = {"default_disk_buffer_bytes", "user_max_bytes", "user_max_files"}


def load_config(document: str | bytes | Mapping[str, Any] | None) -> CarouselConfig:
    """Build a validated CarouselConfig from the CONFIG-table JSON (text or already-decoded dict)."""
    if document is None:
        return CarouselConfig()
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise CarouselConfigError(f"carousel config: not valid JSON ({exc})") from None
    doc = dict(_mapping("<document>", document))
    version = doc.pop("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise _fail("schema_version", f"must be {SCHEMA_VERSION}", version)
    known = {f.name for f in fields(CarouselConfig)}
    _check_keys("", doc, known)

    values: dict[str, Any] = {}
    default_tape = _tape_limits("default_tape", doc.get("default_tape", {}), TapeLimits())
    values["default_tape"] = default_tape
    values["tapes"] = {name: _tape_limits(f"tapes.{name}", spec, default_tape) for name, spec in _mapping("tapes", doc.get("tapes", {})).items()}
    for key, check in _SCALARS.items():
        if key in doc:
            values[key] = check(key, doc[key])
    for key in _OPTIONAL_COUNTS:
        if key in doc:
            values[key] = _count(key, doc[key], optional=True)
    values["disk_buffers"] = {dest: _count(f"disk_buffers.{dest}", cap) for dest, cap in _mapping("disk_buffers", doc.get("disk_buffers", {})).items()}
    values["share_weights"] = {
        share: _positive_number(f"share_weights.{share}", weight) for share, weight in _mapping("share_weights", doc.get("share_weights", {})).items()
    }
    if "default_destination" in doc:
        values["default_destination"] = _name("default_destination", doc["default_destination"])
    if "rule_activity" in doc:
        values["rule_activity"] = _name("rule_activity", doc["rule_activity"])
    for key in ("excluded_tapes", "excluded_destinations"):
        if key in doc:
            values[key] = _names(key, doc[key])
    if values.get("extend_below_seconds", CarouselConfig.extend_below_seconds) > values.get("rule_lifetime_seconds", CarouselConfig.rule_lifetime_seconds):
        raise _fail("extend_below_seconds", "must not exceed rule_lifetime_seconds", values.get("extend_below_seconds"))
    return CarouselConfig(**values)
