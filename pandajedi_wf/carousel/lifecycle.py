"""The staging-request lifecycle, as one table.

Crash safety comes from the two intent states: ``submitting`` is written (with the chosen source and
destination) BEFORE a Rucio rule is created, and ``switching`` (with the new source) BEFORE a rule is
moved.  An agent restarted in the middle finds the request in an intent state and first asks Rucio
whether the rule already exists (``find_staging_rule``) instead of creating a second one.
"""

from __future__ import annotations

from pandajedi_wf.core.lifecycle import Lifecycle

QUEUED = "queued"
SUBMITTING = "submitting"
STAGING = "staging"
SWITCHING = "switching"
DONE = "done"
RETIRED = "retired"
CANCELLED = "cancelled"
FAILED = "failed"

STAGING_REQUEST = Lifecycle(
    "staging request",
    states={
        QUEUED: "waiting for admission under tape, buffer, user and share limits",
        SUBMITTING: "admitted; source and destination recorded, rule creation in progress",
        STAGING: "rule exists in Rucio; files arriving on the destination",
        SWITCHING: "stuck; new source recorded, rule being moved to it",
        DONE: "every file is on disk; tasks may use it",
        RETIRED: "consumers finished; rule released and disk buffer freed",
        CANCELLED: "no task needs the dataset any more",
        FAILED: "no source could deliver the dataset within the allowed switches, or DDM refused its rule for good",
    },
    transitions=[
        (QUEUED, SUBMITTING, "admitted this cycle; intent recorded before the rule is created"),
        (QUEUED, CANCELLED, "all tasks needing the dataset are gone"),
        (QUEUED, FAILED, "DDM holds no complete replica of the dataset: nothing to recall from"),
        (SUBMITTING, STAGING, "rule created, or found already existing after a restart"),
        (SUBMITTING, QUEUED, "rule creation failed transiently; admitted again after a back-off (rule_errors)"),
        (SUBMITTING, FAILED, "rule refused for good by DDM, or out of attempts (rule_errors)"),
        (SUBMITTING, CANCELLED, "cancelled while the rule was being created"),
        (STAGING, DONE, "all locks ok"),
        (STAGING, SWITCHING, "no progress for the stuck timeout; new source recorded before the move"),
        (STAGING, QUEUED, "rule vanished in Rucio; stage again"),
        (STAGING, FAILED, "stuck and out of source switches"),
        (STAGING, CANCELLED, "all tasks needing the dataset are gone"),
        (SWITCHING, STAGING, "rule now reads from the new source"),
        (SWITCHING, FAILED, "the move was refused and no source is left"),
        (SWITCHING, CANCELLED, "cancelled while switching"),
        (DONE, RETIRED, "consumers finished; rule released"),
        (DONE, QUEUED, "staged replicas lost or rule expired before use; stage again"),
    ],
    final=[RETIRED, CANCELLED, FAILED],
)

# statuses whose files count against tape limits (files not yet on disk)
IN_FLIGHT = frozenset({SUBMITTING, STAGING, SWITCHING})
# statuses whose bytes are reserved in the destination disk buffer
HOLDS_BUFFER = IN_FLIGHT | {DONE}
