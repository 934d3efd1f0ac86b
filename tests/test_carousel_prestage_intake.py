"""The carousel's take-in of a workflow's pre-stage (daemons/carousel_prestages.py), its pure part: which request a
pre-stage becomes from DDM's replicas, and its need-by once the size is known."""

import datetime

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.daemons.carousel_prestages import PRESTAGE_PRIORITY, recall_need_by, request_of
from pandajedi_wf.ddm.adapter import Replica
from pandajedi_wf.taskbuffer import staging_prestages
from pandajedi_wf.taskbuffer.staging_prestages import Prestage
from pandajedi_wf.taskbuffer.staging_requests import to_epoch

NEED_BY = datetime.datetime(2026, 12, 3, 12, 0, 0)
CONFIG = load_config({"tapes": {"FAST": {"expected_bytes_per_second": 1000.0}, "SLOW": {"expected_bytes_per_second": 10.0},
                                "OFF": {"expected_bytes_per_second": 1e9, "active": False}}})


def pre(workflow_id, need_by=NEED_BY, user="alice", gshare="User Analysis"):
    return Prestage(workflow_id, "mc:mc.raw", "002", need_by + datetime.timedelta(hours=1), need_by, user, gshare)


def test_need_by_is_earlier_by_the_bytes_at_the_fastest_usable_tape():
    assert recall_need_by(NEED_BY, 10_000, ("SLOW", "FAST", "OFF"), CONFIG) == to_epoch(NEED_BY) - 10
    assert recall_need_by(NEED_BY, 10_000, ("OFF",), CONFIG) == to_epoch(NEED_BY)  # no usable tape: as planned
    assert recall_need_by(NEED_BY, 0, ("SLOW",), CONFIG) == to_epoch(NEED_BY)


def test_a_tape_only_dataset_becomes_a_recall_for_the_pre_stage_needed_first():
    replicas = [Replica("SLOW", True, 4, 4000, 4), Replica("FAST", True, 4, 4000, 4), Replica("PART", True, 1, 100, 4)]
    early = pre(2, NEED_BY - datetime.timedelta(hours=2), user="bob", gshare=None)
    outcome, request = request_of("mc:mc.raw", [pre(1), early], replicas, CONFIG, now=5.0)
    assert outcome == staging_prestages.REQUESTED
    assert (request.user, request.gshare, request.sources, request.n_files, request.n_bytes) == ("bob", "", ("FAST", "SLOW"), 4, 4000)
    assert request.need_by == to_epoch(early.need_by_time) - 4 and request.task_priority == PRESTAGE_PRIORITY
    assert request.destination == CONFIG.default_destination and not request.on_disk and request.created_at == 5.0


def test_a_dataset_on_disk_or_without_a_complete_replica_needs_no_request():
    on_disk = [Replica("TAPE", True, 4, 4000, 4), Replica("DISK", False, 4, 4000, 4)]
    assert request_of("mc:mc.raw", [pre(1)], on_disk, CONFIG, 0.0) == (staging_prestages.ON_DISK, None)
    assert request_of("mc:mc.raw", [pre(1)], [Replica("TAPE", True, 3, 3000, 4)], CONFIG, 0.0) == (staging_prestages.UNAVAILABLE, None)
    assert request_of("mc:mc.raw", [pre(1)], [], CONFIG, 0.0) == (staging_prestages.UNAVAILABLE, None)
