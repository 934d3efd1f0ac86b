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


@dataclass(frozen=True)
class RuleProgress:
    rule_id: str
    state: str  # RULE_OK, RULE_REPLICATING, RULE_STUCK, ...
    locks_ok: int
    locks_replicating: int
    locks_stuck: int
    source_expression: str | None = None
    expires_at: float | None = None


@dataclass(frozen=True)
class StagedFile:
    scope: str
    name: str
    rse: str


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
        """Files of the rule already on the destination (lock OK)."""

    @abc.abstractmethod
    def extend_rule_lifetime(self, rule_id: str, lifetime: int) -> None:
        """Set the rule to expire ``lifetime`` seconds from now."""

    @abc.abstractmethod
    def switch_rule_source(self, rule_id: str, source_expression: str | None) -> None:
        """Make the rule read the missing files from another source (re-queues stuck transfers)."""

    @abc.abstractmethod
    def delete_rule(self, rule_id: str) -> None:
        """Release the rule (frees the staged copy for deletion)."""

    @abc.abstractmethod
    def list_tape_replicas(self, datasets: Iterable[str]) -> dict[str, list[Replica]]:
        """Tape and disk replicas of many datasets; unknown datasets map to an empty list."""
