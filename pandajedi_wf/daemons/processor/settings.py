"""The processor's operator knobs (panda_jedi.cfg ``[watchdog] wf_processor_<name>``)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..common import int_options


@dataclass
class ProcessorSettings:
    batch_size: int = 250  # workflows claimed per statement round (a cycle claims one batch; the workers share a pass)
    lease_seconds: int = 600  # how long a claim protects a workflow from other processors
    recheck_seconds: int = 60  # back-off of a workflow in which nothing moved
    max_submissions_per_workflow: int = 200  # JEDI submissions per workflow and cycle
    pass_seconds: int = 50  # a JEDI cycle goes batch after batch for at most this long (keep it below the period)
    # batches processed at once, each on its own DB connection: while one decides (under Python's interpreter lock)
    # the others wait for the database; with two, both were often waiting or both deciding (steady pass, 2 cores)
    workers: int = 3
    cached_steps: int = 600_000  # step rows kept in memory between passes (see step_cache; ~450 bytes each); 0 reads every pass
    wake_overlap_seconds: int = 120  # JEDI's task changes are read again this far back (transactions committing late)
    prestage: int = 1  # 1: a starting workflow's later steps' datasets are planned for pre-staging (prestages.py); 0: not
    prestage_step_seconds: int = 3600  # pre-staging: estimated run time of a step (none of the workflow has run yet)
    prestage_recall_seconds: int = 3600  # pre-staging: a recall is planned to start this long before its step may start

    @classmethod
    def from_options(cls, options: dict[str, str]) -> "ProcessorSettings":
        """Settings from ``name -> text`` (unknown names ignored); a value that is not a positive integer is refused
        with the option's name, so a typo in panda_jedi.cfg is reported instead of silently defaulted."""
        return cls(**int_options(options, [f.name for f in fields(cls)], minimum={"recheck_seconds": 0, "cached_steps": 0, "wake_overlap_seconds": 0,
                                                                                      "prestage": 0, "prestage_step_seconds": 0, "prestage_recall_seconds": 0}))
