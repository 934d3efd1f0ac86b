"""What the carousel needs from DDM, as one small interface.

Two implementations: ``rucio_adapter.RucioStagingDDM`` (production) and the tape simulator of the dev package,
``pandajedi_wf_dev`` (benchmarks and tests).  Times are seconds since the
epoch (floats) so the same agent code runs against the simulated clock.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Iterable

# Rucio rule states (rucio.db.sqla.constants.RuleState names)
RULE_OK = "OK"
RULE_REPLICATING = "REPLICATING"
RULE_STUCK = "STUCK"
RULE_SUSPENDED = "SUSPENDED"


class DDMError(Exception):
    """A DDM call failed; the message says which call and on what.

    ``kind`` names the error DDM raised (the Rucio exception class, e.g. ``RSEWriteBlocked``; by default this class's
    own name): what ``carousel.rule_errors`` classifies as permanent or transient.
    """

    def __init__(self, message: str = "", kind: str | None = None):
        super().__init__(message)
        self.kind = kind or type(self).__name__


class DuplicateRuleError(DDMError):
    """A rule for this dataset and destination already exists (use find_staging_rule)."""


class RuleNotFoundError(DDMError):
    """The rule id is unknown to DDM (expired or deleted)."""


class DatasetNotFoundError(DDMError):
    """The dataset is unknown to DDM."""


class DDMUnavailableError(DDMError):
    """DDM could not be reached or refused to serve; retry next cycle."""


def failure_text(exc: Exception) -> str:
    """What a failed DDM call says in a cycle's notes: a ``DDMError``'s own message, anything else named as the
    adapter's unexpected failure."""
    return str(exc) if isinstance(exc, DDMError) else f"unexpected {type(exc).__name__} from the DDM adapter: {exc}"


@dataclass(frozen=True)
class RuleProgress:
    rule_id: str
    state: str  # RULE_OK, RULE_REPLICATING, RULE_STUCK, ...
    locks_ok: int
    locks_replicating: int
    locks_stuck: int
    source_expression: str | None = None
    expires_at: float | None = None
    error: str | None = None  # Rucio's last transfer error on the rule (rule.error), e.g. NO_SOURCES
    priority: int | None = None  # the rule's transfer priority (Rucio: 1 lowest .. 5 highest, 3 by default)


# the mark Rucio's conveyor puts in a request's error (carried to rule.error) when no source can serve a file:
# '%s:%s' % (RequestErrMsg.NO_SOURCES, state), rucio.core.request.get_transfer_error
NO_SOURCES_MARK = "NO_SOURCES"


def no_sources(error: str | None) -> bool:
    """True when Rucio's rule error says the source could not serve the files at all (retrying it cannot help)."""
    return bool(error) and NO_SOURCES_MARK in error


@dataclass(frozen=True)
class StagedFile:
    scope: str
    name: str
    rse: str
    n_bytes: int = 0


def split_did(dataset: str) -> tuple[str, str]:
    """'scope:name' -> (scope, name); without a colon the ATLAS convention applies (user.x.* -> 'user.x').
    A trailing '/' (a container's spelling) is dropped."""
    if ":" in dataset:
        scope, name = dataset.split(":", 1)
    else:
        name = dataset
        parts = name.split(".")
        scope = ".".join(parts[:2]) if parts[0] in ("user", "group") else parts[0]
    return scope, name.rstrip("/")


def canonical_dataset(dataset: str) -> str:
    """One spelling per dataset, 'scope:name': one task may write 'data18:data18.X' and another 'data18.X'."""
    scope, name = split_did(dataset.strip())
    return f"{scope}:{name}"


def spellings(dataset: str) -> tuple[str, str]:
    """The two ways a task may name the dataset in JEDI ('scope:name', 'name')."""
    scope, name = split_did(dataset)
    return f"{scope}:{name}", name


@dataclass(frozen=True)
class Replica:
    """A replica of a dataset on one RSE, as seen by source choice."""

    rse: str
    is_tape: bool
    n_files: int  # files available on this RSE
    n_bytes: int
    total_files: int  # files in the dataset

    @property
    def complete(self) -> bool:
        return self.n_files >= self.total_files


class StagingDDM(abc.ABC):
    @abc.abstractmethod
    def create_staging_rule(
        self,
        dataset: str,
        source_expression: str | None,
        destination: str,
        activity: str,
        lifetime: int | None,
        copies: int = 1,
        grouping: str = "DATASET",
    ) -> str:
        """Create the rule and return its id; DuplicateRuleError if one exists for dataset+destination."""

    @abc.abstractmethod
    def find_staging_rule(self, dataset: str, destination: str) -> str | None:
        """Id of our existing rule for dataset on destination, so a restarted agent reuses it."""

    @abc.abstractmethod
    def get_rules(self, rule_ids: Iterable[str]) -> dict[str, RuleProgress]:
        """Progress of many rules; ids DDM does not know are absent from the result."""

    @abc.abstractmethod
    def list_staged_files(self, rule_id: str) -> list[StagedFile]:
        """Files of the rule already on the destination (lock OK), each with its size."""

    @abc.abstractmethod
    def extend_rule_lifetime(self, rule_id: str, lifetime: int) -> None:
        """Set the rule to expire ``lifetime`` seconds from now."""

    @abc.abstractmethod
    def switch_rule_source(self, rule_id: str, source_expression: str | None) -> None:
        """Make the rule read the missing files from another source (re-queues stuck transfers)."""

    @abc.abstractmethod
    def delete_rule(self, rule_id: str) -> None:
        """Release the rule now (frees the staged copy for deletion at once, not after a grace period)."""

    @abc.abstractmethod
    def set_rule_priority(self, rule_id: str, priority: int) -> None:
        """Set the rule's transfer priority (1 lowest .. 5 highest); its queued transfers follow."""

    @abc.abstractmethod
    def boost_rule(self, rule_id: str) -> None:
        """Ask DDM to retry the rule's STUCK files soon instead of after its repair delay."""

    @abc.abstractmethod
    def validate_activity(self, activity: str, destination: str) -> None:
        """Raise DDMError (kind ``InvalidObject``) when DDM's schema refuses ``activity`` for rules; nothing is created."""

    @abc.abstractmethod
    def list_tape_replicas(self, datasets: Iterable[str]) -> dict[str, list[Replica]]:
        """Tape and disk replicas of many datasets; unknown datasets map to an empty list."""

    def make_slice_dataset(self, slice_dataset: str, dataset: str, files: list[str]) -> None:
        """Make ``slice_dataset`` ('scope:name', in a scope the carousel may write) hold ``files`` ('scope:name') of
        ``dataset``, closed, so that one staging rule on it (``create_staging_rule``) recalls and holds just those
        files: a rule given a list of file DIDs would be one rule per file. Safe to repeat (a crash between the calls).
        This default cannot make one."""
        raise DDMError(f"{type(self).__name__} cannot make slice datasets", "NotImplemented")

    def expand_containers(self, names: Iterable[str]) -> dict[str, list[str]]:
        """The datasets ('scope:name') inside each name that is a container (nested containers followed), for a task
        whose parameters name its input before JEDI registered it.  A name that is a dataset, or that DDM does not
        know, maps to itself (the recall of an unknown one then fails with DDM's answer).  This default knows no
        containers."""
        return {name: [name] for name in names}


def tape_replicas_or_note(ddm: StagingDDM, datasets: list[str], errors: list[str], call: str = "list_tape_replicas") -> dict[str, list[Replica]]:
    """``ddm.list_tape_replicas(datasets)`` (no call for no datasets), or ``{}`` when DDM or the adapter failed: the
    failure noted in ``errors`` under ``call``, the datasets taken in again next cycle."""
    if not datasets:
        return {}
    try:
        return ddm.list_tape_replicas(datasets)
    except Exception as exc:
        errors.append(f"{call}: {failure_text(exc)}")
        return {}
