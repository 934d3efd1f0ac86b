"""Pre-stages behind waiting tasks (carousel/prestage_admission.py): never overtaking a task's request, need-by order,
the lead time, fair share, and no limit ever exceeded (property test over random queues, pre-stages included)."""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from pandajedi_wf.carousel import admission as adm
from pandajedi_wf.carousel.admission import admit
from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.carousel.prestage_admission import (
    PRESTAGE_BEHIND_TASKS,
    PRESTAGE_NOT_DUE,
    admit_behind_tasks,
    with_started,
)
from pandajedi_wf.carousel.state import CarouselLoad, Load, StagingRequest

from tests.test_carousel_admission import requests_strategy

NOW = 1_000_000.0


def req(i, n_files=10, n_bytes=100, *, user="u", gshare="A", sources=("T1",), dest="D", prio=1000, created=0.0, on_disk=False,
        need_by=None):
    return StagingRequest(i, f"ds{i}", n_files, n_bytes, user, gshare, dest, tuple(sources), on_disk, prio, created, 1, need_by)


def pre(i, n_files=10, n_bytes=100, need_by=NOW, **kw):
    return req(i, n_files, n_bytes, need_by=need_by, **kw)


def cfg(**extra):
    doc = {"default_tape": {"max_files": 100, "max_bytes": 1000, "expected_bytes_per_second": 10.0}, "user_max_bytes": None,
           "window_from_throughput": False, "release_threshold": 1.0}
    doc.update(extra)
    return load_config(doc)


def started(result):
    return [s.request.request_id for s in result.starts]


def reasons(result):
    return {h.request.request_id: h.reason for h in result.held}


def test_without_pre_stages_it_is_admit_itself():
    config, queue = cfg(), [req(1), req(2, sources=("T2",)), req(3, 95)]
    assert admit_behind_tasks(config, queue, CarouselLoad(), NOW) == admit(config, queue, CarouselLoad())


def test_a_pre_stage_never_overtakes_a_task_held_for_room_even_when_it_would_fit():
    # the tape has room for 10 files: the task's request needs 20 (held for room), the pre-stage only 5
    config = cfg(default_tape={"max_files": 30, "max_bytes": 10_000})
    load = CarouselLoad(tapes={"T1": Load(20, 200)})
    result = admit_behind_tasks(config, [req(1, 20, 200), pre(2, 5, 50, need_by=NOW - 10_000, prio=5000)], load, NOW)
    assert started(result) == []
    assert reasons(result) == {1: adm.TAPE_FULL, 2: PRESTAGE_BEHIND_TASKS}
    (hold,) = [h for h in result.held if h.request.request_id == 2]
    assert "ds1" in hold.detail and adm.TAPE_FULL in hold.detail


def test_a_task_held_for_room_on_a_full_buffer_or_user_cap_also_holds_pre_stages():
    for config, load in (
        (cfg(disk_buffers={"D": 150}), CarouselLoad(buffers={"D": 100})),
        (cfg(user_max_bytes=150), CarouselLoad(users={"u": Load(1, 100)})),
    ):
        result = admit_behind_tasks(config, [req(1, 1, 100), pre(2, 1, 10, user="other", dest="E")], load, NOW)
        assert reasons(result)[2] == PRESTAGE_BEHIND_TASKS


def test_tasks_held_for_good_do_not_hold_pre_stages_back():
    config = cfg(excluded_destinations=["X"], tapes={"DEAD": {"active": False}})
    queue = [req(1, 500, 10, dest="D"), req(2, dest="X"), req(3, sources=("DEAD",)), pre(4)]
    result = admit_behind_tasks(config, queue, CarouselLoad(), NOW)
    assert reasons(result) == {1: adm.NEVER_FITS, 2: adm.DESTINATION_EXCLUDED, 3: adm.NO_USABLE_SOURCE}
    assert started(result) == [4]


def test_pre_stages_take_the_room_the_tasks_left_earliest_need_by_first():
    config = cfg(default_tape={"max_files": 35, "max_bytes": 10_000})
    queue = [pre(10, need_by=NOW + 300), pre(11, need_by=NOW - 50), pre(12, need_by=NOW + 100), req(1, 10)]
    result = admit_behind_tasks(config, queue, CarouselLoad(), NOW)
    # the task first, then need-by order; the fourth request of 10 files does not fit in 35
    assert started(result) == [1, 11, 12]
    assert reasons(result) == {10: adm.TAPE_FULL}


def test_the_task_tier_sees_the_same_decision_as_without_pre_stages():
    config = cfg(default_tape={"max_files": 40, "max_bytes": 10_000})
    tasks = [req(1, 10), req(2, 25, prio=900), req(3, 10, created=5)]
    alone = admit(config, tasks, CarouselLoad())
    mixed = admit_behind_tasks(config, tasks + [pre(9, 1, need_by=NOW - 1e6)], CarouselLoad(), NOW)
    assert mixed.starts[: len(alone.starts)] == alone.starts


def test_a_pre_stage_needed_beyond_the_lead_time_waits():
    config = cfg(prestage_lead_seconds=3600)
    result = admit_behind_tasks(config, [pre(1, need_by=NOW + 3600), pre(2, need_by=NOW + 3601)], CarouselLoad(), NOW)
    assert started(result) == [1]
    assert reasons(result) == {2: PRESTAGE_NOT_DUE}


def test_fair_share_between_pre_stages_of_two_shares():
    # share A already has bytes in flight: B's pre-stage goes first although A's is needed earlier
    config = cfg(default_tape={"max_files": 20, "max_bytes": 10_000})
    load = CarouselLoad(tapes={"T1": Load(1, 10)}, shares={"A": 10})
    result = admit_behind_tasks(config, [pre(1, gshare="A", need_by=NOW - 100), pre(2, gshare="B", need_by=NOW)], load, NOW)
    assert started(result) == [2]
    assert reasons(result) == {1: adm.TAPE_FULL}


def test_with_started_adds_recalls_not_pins():
    load = with_started(CarouselLoad(), [adm.Start(req(1, 2, 20), "T1"), adm.Start(req(2, 3, 30, on_disk=True), None)])
    assert load.tapes == {"T1": Load(2, 20)} and load.users == {"u": Load(2, 20)}
    assert load.shares == {"A": 20} and load.buffers == {"D": 20}


requests_st = requests_strategy(req, need_by=st.one_of(st.none(), st.floats(NOW - 1e5, NOW + 1e5)))


@settings(max_examples=150, deadline=None)
@given(requests_st)
def test_no_limit_is_exceeded_and_no_pre_stage_starts_while_a_task_waits_for_room(requests):
    config = load_config({"default_tape": {"max_files": 100, "max_bytes": 1000, "expected_bytes_per_second": 10.0},
                          "user_max_bytes": 900, "user_max_files": 80, "disk_buffers": {"D1": 1500, "D2": 1200},
                          "tapes": {"T3": {"max_files": 40, "max_bytes": 300}}, "prestage_lead_seconds": 50_000})
    load = CarouselLoad(tapes={"T1": Load(30, 300)}, users={"u1": Load(10, 100)}, buffers={"D1": 200})
    result = admit_behind_tasks(config, requests, load, NOW)
    assert sorted(r.request_id for r in [s.request for s in result.starts] + [h.request for h in result.held]) == sorted(
        r.request_id for r in requests)
    tapes, users, buffers = dict(load.tapes), dict(load.users), dict(load.buffers)
    for start in result.starts:
        r = start.request
        if start.source is None:
            continue
        tapes[start.source] = tapes.get(start.source, Load()).plus(r.n_files, r.n_bytes)
        users[r.user] = users.get(r.user, Load()).plus(r.n_files, r.n_bytes)
        buffers[r.destination] = buffers.get(r.destination, 0) + r.n_bytes
        if r.need_by is not None:
            assert r.need_by - NOW <= 50_000
    for tape, used in tapes.items():
        limits = config.tape(tape)
        assert used.files <= max(limits.max_files, load.tapes.get(tape, Load()).files)
        assert used.bytes <= max(limits.max_bytes, load.tapes.get(tape, Load()).bytes)
    for user, used in users.items():
        assert used.bytes <= max(900, load.users.get(user, Load()).bytes) and used.files <= max(80, load.users.get(user, Load()).files)
    for dest, used in buffers.items():
        assert used <= max(config.disk_buffer_bytes(dest), load.buffers.get(dest, 0))
    task_held_for_room = [h for h in result.held if h.request.need_by is None and h.reason not in (adm.NEVER_FITS, adm.NO_USABLE_SOURCE, adm.DESTINATION_EXCLUDED)]
    if task_held_for_room:
        assert not [s for s in result.starts if s.request.need_by is not None]
    # the tasks' own decision is the one admit makes without the pre-stages
    alone = admit(config, [r for r in requests if r.need_by is None], load)
    assert [s for s in result.starts if s.request.need_by is None] == list(alone.starts)


def test_replace_keeps_need_by():  # (StagingRequest is frozen: the DB reader and the cycle copy it with replace)
    assert replace(pre(1, need_by=5.0), n_files=3).need_by == 5.0
