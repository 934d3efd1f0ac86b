"""Automatic step retries: classify why a step failed, then decide whether and when to try again.

A failure falls in one class:

* ``transient``    - the system, not the step: JEDI could not register the task, too many
                     active tasks, parent task not visible yet, DDM/storage hiccups;
* ``task_failure`` - the JEDI task ran and failed, broke or was exhausted;
* ``partial``      - the task finished with only part of its inputs processed;
* ``definition``   - the step itself is wrong (bad parameters, code that does not build,
                     no input at all): running it again gives the same result, NEVER retried;
* ``user_abort``   - someone killed the task (JEDI ``aborted``): not retried behind their back;
* ``refused``      - JEDI will not take tasks from this user (banned DN);
* ``duplicate``    - JEDI already has an active task with this name: adopt it, do not resubmit.

The policy is JSON stored per workflow (``JEDI_WF_WORKFLOWS.retry_policy``) over defaults;
``decide_retry`` is a pure function of policy, class, attempt number and clock.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from ..core import jedi_statuses

ERROR_CLASSES = ("transient", "task_failure", "partial", "definition", "user_abort", "refused", "duplicate")
NEVER_RETRIED = frozenset({"definition", "duplicate"})

# hard bounds a workflow's policy may not exceed (users write these)
MAX_ATTEMPTS_BOUND = 20
MAX_DELAY_BOUND = 7 * 24 * 3600


class RetryPolicyError(ValueError):
    """A retry policy that cannot be used; the message names the offending key."""


@dataclass(frozen=True)
class Backoff:
    base: float = 600.0  # seconds before the first retry
    factor: float = 2.0  # multiplied per attempt
    cap: float = 6 * 3600.0  # never wait longer
    jitter: float = 0.0  # +/- fraction of the delay, spread deterministically per step

    def delay(self, attempt_nr: int, key: str = "") -> float:
        raw = min(self.cap, self.base * self.factor**attempt_nr)
        if self.jitter:
            digest = hashlib.sha256(f"{key}:{attempt_nr}".encode()).digest()
            unit = int.from_bytes(digest[:8], "big") / 2**64 * 2 - 1  # in [-1, 1)
            raw = raw * (1 + self.jitter * unit)
        return max(0.0, min(self.cap, raw))


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: dict[str, int] = field(
        default_factory=lambda: {"transient": 5, "task_failure": 1, "partial": 0, "definition": 0, "user_abort": 0, "refused": 0, "duplicate": 0}
    )
    backoff: Backoff = Backoff()
    backoff_by_class: dict[str, Backoff] = field(default_factory=lambda: {"transient": Backoff(base=120.0, factor=2.0, cap=3600.0)})

    def backoff_for(self, error_class: str) -> Backoff:
        return self.backoff_by_class.get(error_class, self.backoff)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": dict(self.max_attempts),
            "backoff": vars(self.backoff).copy(),
            "backoff_by_class": {k: vars(v).copy() for k, v in self.backoff_by_class.items()},
        }


DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    after: datetime.datetime | None
    reason: str


@dataclass(frozen=True)
class Classification:
    error_class: str
    reason: str


# ---- policy from JSON ----------------------------------------------------------------------

_BACKOFF_KEYS = ("base", "factor", "cap", "jitter")


def _number(where: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RetryPolicyError(f"{where}: must be a number, got {value!r}")
    if not low <= value <= high:
        raise RetryPolicyError(f"{where}: must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _backoff(where: str, value: Any, start: Backoff) -> Backoff:
    if not isinstance(value, dict):
        raise RetryPolicyError(f"{where}: must be an object with keys {', '.join(_BACKOFF_KEYS)}, got {value!r}")
    unknown = sorted(set(value) - set(_BACKOFF_KEYS))
    if unknown:
        raise RetryPolicyError(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(_BACKOFF_KEYS)})")
    limits = {"base": (0, MAX_DELAY_BOUND), "factor": (1, 10), "cap": (0, MAX_DELAY_BOUND), "jitter": (0, 1)}
    fields = {k: _number(f"{where}.{k}", v, *limits[k]) for k, v in value.items()}
    result = replace(start, **fields)
    if result.cap < result.base:
        raise RetryPolicyError(f"{where}: cap ({result.cap:g} s) is smaller than base ({result.base:g} s)")
    return result


def parse_retry_policy(value: str | dict | None, defaults: RetryPolicy = DEFAULT_POLICY) -> RetryPolicy:
    """A workflow's retry policy: JSON text or dict over ``defaults``; precise ``RetryPolicyError`` on mistakes.

    Shape: ``{"max_attempts": {class: n}, "backoff": {base, factor, cap, jitter},
    "backoff_by_class": {class: {...}}}``, every key optional; seconds for times.
    """
    if value is None or value == "":
        return defaults
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RetryPolicyError(f"retry_policy: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(value, dict):
        raise RetryPolicyError(f"retry_policy: must be a JSON object, got {type(value).__name__}")
    unknown = sorted(set(value) - {"max_attempts", "backoff", "backoff_by_class"})
    if unknown:
        raise RetryPolicyError(f"retry_policy: unknown key {unknown[0]!r} (expected backoff, backoff_by_class, max_attempts)")
    max_attempts = dict(defaults.max_attempts)
    attempts = value.get("max_attempts", {})
    if not isinstance(attempts, dict):
        raise RetryPolicyError(f"retry_policy.max_attempts: must be an object of error class -> count, got {attempts!r}")
    for name, count in attempts.items():
        where = f"retry_policy.max_attempts.{name}"
        if name not in ERROR_CLASSES:
            raise RetryPolicyError(f"{where}: unknown error class (expected {', '.join(ERROR_CLASSES)})")
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_ATTEMPTS_BOUND:
            raise RetryPolicyError(f"{where}: must be an integer from 0 to {MAX_ATTEMPTS_BOUND}, got {count!r}")
        if name in NEVER_RETRIED and count:
            raise RetryPolicyError(f"{where}: {name} errors are never retried; remove the key or set 0")
        max_attempts[name] = count
    backoff = _backoff("retry_policy.backoff", value["backoff"], defaults.backoff) if "backoff" in value else defaults.backoff
    by_class = dict(defaults.backoff_by_class)
    overrides = value.get("backoff_by_class", {})
    if not isinstance(overrides, dict):
        raise RetryPolicyError(f"retry_policy.backoff_by_class: must be an object of error class -> backoff, got {overrides!r}")
    for name, spec in overrides.items():
        if name not in ERROR_CLASSES:
            raise RetryPolicyError(f"retry_policy.backoff_by_class.{name}: unknown error class (expected {', '.join(ERROR_CLASSES)})")
        by_class[name] = _backoff(f"retry_policy.backoff_by_class.{name}", spec, by_class.get(name, backoff))
    return RetryPolicy(max_attempts, backoff, by_class)


# ---- decision ------------------------------------------------------------------------------


def decide_retry(policy: RetryPolicy, error_class: str, attempt_nr: int, now: datetime.datetime, *, key: str = "") -> RetryDecision:
    """Retry a step that failed with ``error_class`` after ``attempt_nr`` automatic retries already made?

    ``key`` (e.g. the node key) spreads the optional jitter so that steps failing together
    do not all come back in the same second; the same inputs always give the same answer.
    """
    if error_class not in ERROR_CLASSES:
        raise ValueError(f"unknown error class {error_class!r} (expected {', '.join(ERROR_CLASSES)})")
    if isinstance(attempt_nr, bool) or not isinstance(attempt_nr, int) or attempt_nr < 0:
        raise ValueError(f"attempt_nr must be an integer >= 0, got {attempt_nr!r}")
    if error_class in NEVER_RETRIED:
        return RetryDecision(False, None, f"{error_class} errors are never retried")
    limit = policy.max_attempts.get(error_class, 0)
    if attempt_nr >= limit:
        if limit == 0:
            return RetryDecision(False, None, f"{error_class} errors are not retried by this workflow's policy")
        return RetryDecision(False, None, f"{error_class}: all {limit} automatic retries used")
    delay = policy.backoff_for(error_class).delay(attempt_nr, key)
    after = now + datetime.timedelta(seconds=delay)
    return RetryDecision(True, after, f"{error_class}: automatic retry {attempt_nr + 1} of {limit} in {delay:.0f} s")


# ---- classification ------------------------------------------------------------------------

# errorDialog texts set by JEDI (TaskRefiner, ContentsFeeder, PostProcessor, JobGenerator), first match wins
_DIALOG_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(p, re.IGNORECASE), c)
    for p, c in [
        (r"task param conversion from json failed|failed to extract common parameters|invalid characters in", "definition"),
        (r"No build jobs succeeded|Preprocessing step failed", "definition"),
        (r"failed due to no input|primary input dataset is empty|all files are excluded", "definition"),
        (r"failed to refine task|doRefine failed|task refiner is undefined", "definition"),
        (r"external (temporary )?problem|temporary storage issue|iDDS failed|failed to get files for|failed to register the task to JEDI", "transient"),
        (r"job generat(ion|or)|brokerage failed|candidates became full|failed to setup task|failed to initialize JobBroker", "transient"),
    ]
]

# insertTaskParamsPanda(..., properErrorCode=True) return codes (task_event_module.insertTaskParamsPanda)
SUBMISSION_CODES = {
    1: ("duplicate", "a task with this name is already queued in DEFT"),
    2: ("duplicate", "a task with this name is still active in JEDI"),
    3: ("duplicate", "JEDI reactivated the existing task with this name (incexec)"),
    4: ("transient", "JEDI failed to register the task"),
    5: ("duplicate", "JEDI updated the parameters of the active task with this name"),
    10: ("transient", "too many active tasks for the user"),
    11: ("transient", "parent task not found yet"),
}
_TASK_ID = re.compile(r"jediTaskID=(\d+)")


def classify_task_failure(jedi_status: str, error_dialog: str | None = None) -> Classification:
    """Class of a JEDI task that ended unsuccessfully (failed, broken, exhausted, aborted, finished)."""
    if jedi_status in jedi_statuses.ABORTED:
        return Classification("user_abort", "JEDI task was aborted (killed)")
    if jedi_status in jedi_statuses.FINISHED:
        return Classification("partial", "JEDI task finished with part of its inputs processed")
    if jedi_status not in jedi_statuses.FAILED:
        raise ValueError(f"JEDI status {jedi_status!r} is not a failure (expected failed, broken, exhausted, aborted or finished)")
    for pattern, error_class in _DIALOG_PATTERNS:
        if error_dialog and pattern.search(error_dialog):
            return Classification(error_class, f"JEDI task {jedi_status}: errorDialog matches {pattern.pattern!r}")
    return Classification("task_failure", f"JEDI task {jedi_status}")


def classify_submission(code: int | bool | None, message: str = "") -> Classification:
    """Class of a refused ``insertTaskParamsPanda`` call (code with properErrorCode=True, or False and a message)."""
    if code is False and "banned" in (message or ""):
        return Classification("refused", f"JEDI refused the user: {message}")
    if code is False or code is None:
        return Classification("transient", f"submission failed: {message}" if message else "submission failed")
    if code in SUBMISSION_CODES:
        error_class, what = SUBMISSION_CODES[code]
        return Classification(error_class, f"insertTaskParamsPanda code {code}: {what}")
    if code == 0:
        raise ValueError("insertTaskParamsPanda code 0 means success, not a failure")
    return Classification("transient", f"insertTaskParamsPanda returned unknown code {code}: {message}")


def task_id_in_message(message: str) -> int | None:
    """jediTaskID named by a 'duplicate' submission answer: the task to adopt."""
    match = _TASK_ID.search(message or "")
    return int(match.group(1)) if match else None


def classify_definition(message: str) -> Classification:
    """A step whose task parameters could not be built (TaskParamsError, WorkflowError): never retried."""
    return Classification("definition", f"step definition error: {message}")
