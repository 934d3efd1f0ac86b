"""Admission: limits, hysteresis, fair share, user cap, priority order, pin-only, source choice."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pandajedi_wf.carousel import admission as adm
from pandajedi_wf.carousel.admission import admit
from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.carousel.state import CarouselLoad, Load, StagingRequest

TAPES = ["T1", "T2", "T3"]


def req(i, n_files=10, n_bytes=100, *, user="u", gshare="A", sources=("T1",), dest="D", prio=1000, created=0.0, on_disk=False, rank=1):
    return StagingRequest(i, f"ds{i}", n_files, n_bytes, user, gshare, dest, tuple(sources), on_disk, prio, created, rank)


def cfg(**extra):
    doc = {"default_tape": {"max_files": 100, "max_bytes": 1000, "expected_bytes_per_second": 10.0}, "user_max_bytes": None}
    doc.update(extra)
    return load_config(doc)


def requests_strategy(build, **extra):
    """Random queues of up to 40 requests with distinct ids, each made by ``build`` (a test module's ``req``) from
    random sizes, users, shares, source tapes, destinations, priorities and pin-only flags, plus ``extra`` strategies
    for its other keywords."""
    return st.lists(
        st.builds(
            build,
            st.integers(1, 10**6),
            n_files=st.integers(1, 60),
            n_bytes=st.integers(1, 600),
            user=st.sampled_from(["u1", "u2", "u3"]),
            gshare=st.sampled_from(["A", "B"]),
            sources=st.lists(st.sampled_from(TAPES), min_size=1, max_size=3, unique=True),
            dest=st.sampled_from(["D1", "D2"]),
            prio=st.integers(0, 2000),
            on_disk=st.booleans(),
            **extra,
        ),
        max_size=40,
        unique_by=lambda r: r.request_id,
    )


requests_st = requests_strategy(req)
load_st = st.builds(
    lambda t, u, b: CarouselLoad(tapes=t, users=u, buffers=b),
    st.dictionaries(st.sampled_from(TAPES), st.builds(Load, st.integers(0, 100), st.integers(0, 1000))),
    st.dictionaries(st.sampled_from(["u1", "u2", "u3"]), st.builds(Load, st.integers(0, 80), st.integers(0, 900))),
    st.dictionaries(st.sampled_from(["D1", "D2"]), st.integers(0, 1500)),
)


@settings(max_examples=120, deadline=None)
@given(requests_st, load_st)
def test_no_limit_is_ever_exceeded(requests, load):
    config = cfg(user_max_bytes=900, user_max_files=80, disk_buffers={"D1": 1500, "D2": 1200}, tapes={"T3": {"max_files": 40, "max_bytes": 300}})
    result = admit(config, requests, load)
    assert len(result.starts) + len(result.held) == len(requests)
    tapes, users, buffers = dict(load.tapes), dict(load.users), dict(load.buffers)
    for start in result.starts:
        r = start.request
        if start.source is None:
            assert r.on_disk
            continue
        assert start.source in r.sources
        tapes[start.source] = tapes.get(start.source, Load()).plus(r.n_files, r.n_bytes)
        users[r.user] = users.get(r.user, Load()).plus(r.n_files, r.n_bytes)
        buffers[r.destination] = buffers.get(r.destination, 0) + r.n_bytes
        limits, before = config.tape(start.source), load.tapes.get(start.source, Load())
        assert before.files < 0.8 * limits.max_files and before.bytes < 0.8 * limits.max_bytes  # hysteresis
    for tape, used in tapes.items():
        started_here = any(s.source == tape for s in result.starts)
        if started_here:
            assert used.files <= config.tape(tape).max_files and used.bytes <= config.tape(tape).max_bytes
    for user, used in users.items():
        if used != load.users.get(user, Load()):
            assert used.bytes <= 900 and used.files <= 80
    for dest, used in buffers.items():
        if used != load.buffers.get(dest, 0):
            assert used <= config.disk_buffer_bytes(dest)


def test_hysteresis_holds_tape_above_threshold_then_fills_to_limit():
    config = cfg()
    queued = [req(i, n_files=10, n_bytes=50) for i in range(1, 20)]
    above = admit(config, queued, CarouselLoad(tapes={"T1": Load(80, 0)}))
    assert not above.starts
    assert {h.reason for h in above.held} == {adm.TAPE_ABOVE_THRESHOLD}
    below = admit(config, queued, CarouselLoad(tapes={"T1": Load(79, 0)}))
    assert len(below.starts) == 2  # 79 + 2*10 = 99 <= 100, a third would exceed
    assert {h.reason for h in below.held} == {adm.TAPE_FULL}


def test_byte_window_limits_even_when_file_count_is_low():
    result = admit(cfg(), [req(i, n_files=1, n_bytes=400) for i in range(1, 5)], CarouselLoad())
    assert len(result.starts) == 2  # 800 bytes; 1200 would exceed max_bytes=1000


def test_pin_only_requests_start_first_without_using_tape_windows():
    queued = [req(1, on_disk=True, n_files=10**6, n_bytes=10**9), req(2, n_files=100, n_bytes=1000)]
    result = admit(cfg(), queued, CarouselLoad(tapes={"T1": Load(99, 0)}))
    assert [(s.request.request_id, s.source) for s in result.starts] == [(1, None)]


def test_priority_then_age_within_a_share():
    queued = [req(1, prio=500, created=0), req(2, prio=900, created=5), req(3, prio=900, created=1)]
    result = admit(cfg(tapes={"T1": {"max_files": 20}}), queued, CarouselLoad())
    assert [s.request.request_id for s in result.starts] == [3, 2]


def test_per_user_cap_in_bytes():
    queued = [req(1, user="alice", n_bytes=300), req(2, user="alice", n_bytes=300), req(3, user="bob", n_bytes=300)]
    result = admit(cfg(user_max_bytes=500), queued, CarouselLoad(tapes={}))
    assert sorted(s.request.request_id for s in result.starts) == [1, 3]
    assert [h.reason for h in result.held] == [adm.USER_CAP]


def test_disk_buffer_cap_and_never_fits_reason():
    config = cfg(disk_buffers={"D": 250})
    result = admit(config, [req(1, n_bytes=200), req(2, n_bytes=100), req(3, n_bytes=300)], CarouselLoad())
    reasons = {h.request.request_id: h.reason for h in result.held}
    assert [s.request.request_id for s in result.starts] == [1]
    assert reasons == {2: adm.DISK_BUFFER_FULL, 3: adm.NEVER_FITS}


def test_fair_share_follows_weights_over_many_cycles():
    """Two backlogged shares, weights 3:1; each cycle the tape drains a fixed 40 bytes."""
    config = cfg(share_weights={"A": 3.0, "B": 1.0}, default_tape={"max_files": 10**6, "max_bytes": 200, "expected_bytes_per_second": 1.0})
    queue = [req(i, n_bytes=10, gshare="A" if i % 2 else "B") for i in range(1, 601)]
    in_flight = []  # (share, bytes) FIFO on the tape
    admitted = {"A": 0, "B": 0}
    for _ in range(80):
        drain = 40
        while in_flight and drain:
            share, left = in_flight[0]
            take = min(left, drain)
            drain -= take
            in_flight[0] = (share, left - take)
            if in_flight[0][1] == 0:
                in_flight.pop(0)
        shares = {}
        for share, left in in_flight:
            shares[share] = shares.get(share, 0) + left
        load = CarouselLoad(tapes={"T1": Load(len(in_flight), sum(b for _, b in in_flight))}, shares=shares)
        result = admit(config, queue, load)
        started = {s.request.request_id for s in result.starts}
        queue = [r for r in queue if r.request_id not in started]
        for s in result.starts:
            admitted[s.request.gshare] += s.request.n_bytes
            in_flight.append((s.request.gshare, s.request.n_bytes))
    ratio = admitted["A"] / admitted["B"]
    assert 2.7 < ratio < 3.3, admitted


def test_source_choice_prefers_fast_or_idle_tape_not_random():
    config = cfg(tapes={"FAST": {"expected_bytes_per_second": 100.0}, "SLOW": {"expected_bytes_per_second": 10.0}})
    r = req(1, sources=("SLOW", "FAST"), n_bytes=100)
    assert admit(config, [r], CarouselLoad()).starts[0].source == "FAST"
    busy_fast = CarouselLoad(tapes={"FAST": Load(1, 700)})  # 8 s on FAST vs 10 s on SLOW
    assert admit(config, [r], busy_fast).starts[0].source == "FAST"
    measured_slow_fast = CarouselLoad(tapes={"FAST": Load(1, 700)}, throughput={"FAST": 20.0})  # 40 s vs 10 s
    assert admit(config, [r], measured_slow_fast).starts[0].source == "SLOW"


def test_waits_for_better_tape_instead_of_taking_a_much_slower_one():
    config = cfg(tapes={"FAST": {"expected_bytes_per_second": 1000.0}, "SLOW": {"expected_bytes_per_second": 1.0}})
    result = admit(config, [req(1, sources=("SLOW", "FAST"))], CarouselLoad(tapes={"FAST": Load(90, 0)}))
    assert not result.starts and result.held[0].reason == adm.TAPE_ABOVE_THRESHOLD


def test_excluded_and_inactive_tapes_are_not_used():
    config = cfg(excluded_tapes=["T1"], tapes={"T2": {"active": False}})
    result = admit(config, [req(1, sources=("T1", "T2")), req(2, sources=("T1", "T3"))], CarouselLoad())
    assert [(s.request.request_id, s.source) for s in result.starts] == [(2, "T3")]
    assert result.held[0].reason == adm.NO_USABLE_SOURCE


# ---- part 7: bandwidth-delay windows, list scheduling, longest first, rebalancing ----------------------

from pandajedi_wf.carousel.source_choice import Recall, byte_window, pipeline_delay_seconds, rebalance  # noqa: E402


def bdp_cfg(**extra):
    doc = {
        "default_tape": {"max_files": 10**6, "max_bytes": 10**12, "expected_bytes_per_second": 100.0, "drives": 2, "mount_seconds": 10},
        "cycle_seconds": 20,
        "bring_online_batch_files": 5,
        "user_max_bytes": None,
        "rebalance_per_cycle": 50,
    }
    doc.update(extra)
    return load_config(doc)


def test_window_is_the_bandwidth_delay_product_over_the_threshold_and_never_above_max_bytes():
    config = bdp_cfg()
    # mount 10 s + one batch of 5 files of 100 bytes on one drive (50 B/s) 10 s + cycle 20 s = 40 s
    assert pipeline_delay_seconds("T", 100.0, {}, config) == 40.0
    assert byte_window("T", 100.0, {}, config) == 100.0 * 40.0 / 0.8
    assert byte_window("T", 100.0, {"T": 200.0}, config) == 200.0 * (10 + 5 + 20) / 0.8  # from the measured rate
    assert byte_window("T", 100.0, {}, bdp_cfg(tapes={"T": {"max_bytes": 3000}})) == 3000
    assert byte_window("T", 100.0, {}, bdp_cfg(window_from_throughput=False)) == 10**12


def test_tape_gets_work_until_its_bandwidth_delay_window_is_in_flight():
    config = bdp_cfg()  # window 5000 bytes, open below 4000
    queued = [req(i, n_files=10, n_bytes=1000) for i in range(1, 10)]
    started = admit(config, queued, CarouselLoad()).starts
    assert len(started) == 5  # 0, 1000, ..., 4000 < 5000: a request starts while less than the window is in flight
    assert not admit(config, queued, CarouselLoad(tapes={"T1": Load(40, 4000)})).starts  # above the threshold


def test_list_scheduling_sends_work_to_a_slower_idle_tape_rather_than_behind_a_fast_backlog():
    config = bdp_cfg(tapes={"FAST": {"expected_bytes_per_second": 1000.0, "max_bytes": 10_000}, "SLOW": {"expected_bytes_per_second": 100.0}})
    queued = [req(i, n_files=10, n_bytes=5000, sources=("FAST", "SLOW"), created=i) for i in range(1, 13)]
    result = admit(config, queued, CarouselLoad())
    by_source = {}
    for s in result.starts:
        by_source.setdefault(s.source, []).append(s.request.request_id)
    # FAST (10x faster) finishes requests 1-9 before SLOW could finish one (60 s); request 10 is sooner on SLOW
    # than behind nine others on FAST (65 s), 11 and 12 are again sooner on FAST: they wait for it
    assert by_source == {"FAST": [1, 2], "SLOW": [10]}
    assert {h.reason for h in result.held} <= {adm.TAPE_FULL, adm.TAPE_ABOVE_THRESHOLD}


def test_longest_recall_first_within_a_priority_bounded_by_the_lead_cap():
    config = cfg(tapes={"T1": {"max_files": 10}}, longest_first_max_lead_seconds=30)
    small_old, big_young = req(1, n_bytes=10, created=0.0), req(2, n_bytes=1000, created=20.0)  # big: 100 s at 10 B/s, lead capped to 30
    assert [s.request.request_id for s in admit(config, [small_old, big_young], CarouselLoad()).starts] == [2]
    too_young = req(2, n_bytes=1000, created=40.0)  # 40 - 30 > 0: the cap keeps age order
    assert [s.request.request_id for s in admit(config, [small_old, too_young], CarouselLoad()).starts] == [1]
    higher = req(3, n_bytes=10, prio=2000, created=100.0)  # priority still comes first
    assert [s.request.request_id for s in admit(config, [big_young, higher], CarouselLoad()).starts] == [3]
    off = cfg(tapes={"T1": {"max_files": 10}}, longest_first_max_lead_seconds=0)
    assert [s.request.request_id for s in admit(off, [small_old, big_young], CarouselLoad()).starts] == [1]


def test_rebalance_moves_a_recall_waiting_deep_in_a_queue_to_an_idle_replica_tape():
    config = bdp_cfg()
    recalls = [Recall(i, "BUSY", ("BUSY",), 10, 1000, float(i), True) for i in range(1, 8)]
    recalls.append(Recall(8, "BUSY", ("BUSY", "IDLE"), 10, 1000, 8.0, True))
    recalls.append(Recall(9, "BUSY", ("BUSY", "IDLE"), 10, 1000, 0.5, True))  # head of the queue: maybe in a drive
    moves = rebalance(recalls, {}, config)
    assert [(m.request_id, m.source, m.target) for m in moves] == [(8, "BUSY", "IDLE")]
    assert moves[0].gain_seconds > config.cycle_seconds
    assert rebalance(recalls, {}, bdp_cfg(rebalance_per_cycle=0)) == []
    pinned = [r if r.request_id != 8 else Recall(8, "BUSY", ("BUSY", "IDLE"), 10, 1000, 8.0, False) for r in recalls]
    assert rebalance(pinned, {}, config) == []  # already started or moved once


recalls_st = st.lists(
    st.builds(
        Recall,
        st.integers(1, 10**6),
        st.sampled_from(TAPES),
        st.lists(st.sampled_from(TAPES), min_size=1, max_size=3, unique=True).map(tuple),
        st.integers(1, 40),
        st.integers(1, 400),
        st.floats(0, 100),
        st.booleans(),
    ),
    max_size=30,
    unique_by=lambda r: r.request_id,
)


@settings(max_examples=150, deadline=None)
@given(recalls_st, st.dictionaries(st.sampled_from(TAPES), st.floats(1.0, 100.0)))
def test_rebalance_never_breaks_a_limit_and_moves_only_waiting_recalls_to_replicas(recalls, throughput):
    recalls = [Recall(r.request_id, r.source, tuple(dict.fromkeys((r.source,) + r.sources)), *[getattr(r, f) for f in ("n_files", "n_bytes", "queued_at", "movable")]) for r in recalls]
    config = bdp_cfg(tapes={"T2": {"max_files": 60, "max_bytes": 700}, "T3": {"active": False}}, default_tape={"max_files": 200, "max_bytes": 2000, "expected_bytes_per_second": 10.0, "drives": 1, "mount_seconds": 1})
    moves = rebalance(recalls, throughput, config)
    by_id = {r.request_id: r for r in recalls}
    loads = {}
    for r in recalls:
        loads[r.source] = loads.get(r.source, Load()).plus(r.n_files, r.n_bytes)
    assert len({m.request_id for m in moves}) == len(moves) <= config.rebalance_per_cycle
    for m in moves:
        r = by_id[m.request_id]
        assert r.movable and m.source == r.source and m.target in r.sources and m.target != r.source and config.tape_usable(m.target)
        loads[m.source] = loads[m.source].plus(-r.n_files, -r.n_bytes)
        loads[m.target] = loads.get(m.target, Load()).plus(r.n_files, r.n_bytes)
        limits = config.tape(m.target)
        assert loads[m.target].files <= limits.max_files and loads[m.target].bytes <= limits.max_bytes
