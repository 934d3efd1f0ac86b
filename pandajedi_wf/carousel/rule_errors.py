"""What to do when DDM refuses to create a staging rule: one table of error kinds, one pure function.

``RULE_ERRORS`` maps the kind of an error (``DDMError.kind``: the Rucio exception class name, or the adapter's own
error class; for an exception that is not a DDM error at all, its Python class name) to ``PERMANENT`` or
``TRANSIENT``. A permanent error ends the request ``failed`` at once: asking again cannot help (the dataset does not
exist, the destination refuses writes, the expression names nothing). A transient one sends the request back to
``queued`` with an exponential back-off (``rule_retry_base_seconds`` * ``rule_retry_factor`` ** (attempt - 1), at
most ``rule_retry_cap_seconds``), until ``rule_max_attempts`` attempts were made; then it fails too. A kind not in
the table is treated as transient, so its attempts are bounded all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import CarouselConfig

PERMANENT = "permanent"
TRANSIENT = "transient"

RULE_ERRORS: dict[str, str] = {
    # the dataset or its scope is unknown to DDM
    "DataIdentifierNotFound": PERMANENT,
    "DatasetNotFoundError": PERMANENT,
    "ScopeNotFound": PERMANENT,
    "UnsupportedDIDType": PERMANENT,
    # the destination or source cannot be used as written
    "RSEWriteBlocked": PERMANENT,
    "InvalidRSEExpression": PERMANENT,
    "InvalidSourceReplicaExpression": PERMANENT,
    "RSENotFound": PERMANENT,
    "RSEOperationNotSupported": PERMANENT,
    # the rule itself is refused as asked
    "InvalidReplicationRule": PERMANENT,
    "InvalidRuleWeight": PERMANENT,
    "InvalidObject": PERMANENT,
    "InputValidationError": PERMANENT,
    "UnsupportedOperation": PERMANENT,
    "StagingAreaRuleRequiresLifetime": PERMANENT,
    "ScratchDiskLifetimeConflict": PERMANENT,
    "ManualRuleApprovalBlocked": PERMANENT,
    "AccessDenied": PERMANENT,
    "AccountNotFound": PERMANENT,
    # DDM or the network is unwell, or space and quota may free up
    "DDMUnavailableError": TRANSIENT,
    "ServiceUnavailable": TRANSIENT,
    "CannotAuthenticate": TRANSIENT,
    "DatabaseException": TRANSIENT,
    "ResourceTemporaryUnavailable": TRANSIENT,
    "ReplicationRuleCreationTemporaryFailed": TRANSIENT,
    "InsufficientAccountLimit": TRANSIENT,
    "InsufficientTargetRSEs": TRANSIENT,
    "RSEOverQuota": TRANSIENT,
    "FullStorage": TRANSIENT,
    "ConnectionError": TRANSIENT,
    "TimeoutError": TRANSIENT,
    "OSError": TRANSIENT,
}


@dataclass(frozen=True)
class RuleRetry:
    """The verdict on one failed attempt: ``retry_at`` (epoch seconds) to queue again, or None to fail for good."""

    attempts: int  # attempts made so far, this one included
    retry_at: float | None
    reason: str

    @property
    def gives_up(self) -> bool:
        return self.retry_at is None


def error_class(kind: str) -> str:
    return RULE_ERRORS.get(kind, TRANSIENT)


def backoff_seconds(attempts: int, config: CarouselConfig) -> float:
    """Wait after the ``attempts``-th failed attempt (1, 2, ...)."""
    return min(config.rule_retry_base_seconds * config.rule_retry_factor ** (attempts - 1), config.rule_retry_cap_seconds)


def rule_retry(kind: str, message: str, attempts_before: int, now: float, config: CarouselConfig) -> RuleRetry:
    """Decide about a rule creation that failed with an error of ``kind`` after ``attempts_before`` earlier failures."""
    attempts = attempts_before + 1
    if error_class(kind) == PERMANENT:
        return RuleRetry(attempts, None, f"rule refused for good by DDM ({kind}): {message}")
    if attempts >= config.rule_max_attempts:
        return RuleRetry(attempts, None, f"rule creation gave up after {attempts} attempts ({kind}): {message}")
    wait = backoff_seconds(attempts, config)
    return RuleRetry(attempts, now + wait, f"rule creation failed ({kind}, attempt {attempts} of {config.rule_max_attempts}), "
                                           f"next attempt in {wait:.0f} s: {message}")
