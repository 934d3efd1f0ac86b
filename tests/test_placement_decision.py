"""The placement decision (pandajedi_wf.placement.decision): pure, every rule and its reason."""

import itertools
import random

import pytest

from pandajedi_wf.placement import ParentOutput, bytes_to_move, decide, parents_at_storages, steering_parameters

MB = 1_000_000
CANDS = {"Q_A": "A_DISK", "Q_B": "B_DISK", "Q_C": "C_DISK"}


def done(task_id, **bytes_at):
    return ParentOutput(task_id, running=False, bytes_at=bytes_at)


def running(task_id, writing_at, **bytes_at):
    return ParentOutput(task_id, running=True, bytes_at=bytes_at, writing_at=frozenset(writing_at))


def test_no_candidates_is_said_and_nothing_chosen():
    p = decide({}, [done(1, A_DISK=MB)])
    assert p.chosen == () and not p.restricted and "no candidate" in p.reason


def test_task_without_parents_keeps_upstreams_candidates_in_order():
    p = decide(CANDS, [])
    assert p.chosen == ("Q_A", "Q_B", "Q_C") and not p.restricted
    assert "no parent" in p.reason


def test_chain_child_goes_where_its_parent_output_is():
    p = decide(CANDS, [done(7, B_DISK=3 * MB)])
    assert p.chosen == ("Q_B",) and p.restricted
    assert p.moved == {"Q_A": 3 * MB, "Q_B": 0, "Q_C": 3 * MB}
    assert p.best_storage == "B_DISK"
    assert "parents 7" in p.reason and "Q_B moves 0 B" in p.reason


def test_parent_output_split_over_sites_picks_the_larger_share():
    p = decide(CANDS, [done(7, A_DISK=2 * MB, C_DISK=5 * MB)])
    assert p.chosen == ("Q_C",)
    assert p.moved["Q_C"] == 2 * MB and p.moved["Q_A"] == 5 * MB and p.moved["Q_B"] == 7 * MB


def test_fan_in_minimises_the_sum_not_the_largest_parent():
    # the single largest parent is at A, but the two others together hold more at B
    parents = [done(1, A_DISK=5 * MB), done(2, B_DISK=4 * MB), done(3, B_DISK=4 * MB)]
    p = decide(CANDS, parents)
    assert p.chosen == ("Q_B",)
    assert p.moved == {"Q_A": 8 * MB, "Q_B": 5 * MB, "Q_C": 13 * MB}


def test_ties_keep_every_cheapest_candidate_in_upstreams_order():
    p = decide({"Q_C": "C_DISK", "Q_A": "A_DISK", "Q_B": "B_DISK"}, [done(1, A_DISK=MB, C_DISK=MB)])
    assert p.chosen == ("Q_C", "Q_A") and p.restricted


def test_two_queues_on_one_storage_are_both_kept():
    p = decide({"Q_B1": "B_DISK", "Q_A": "A_DISK", "Q_B2": "B_DISK"}, [done(1, B_DISK=MB)])
    assert p.chosen == ("Q_B1", "Q_B2")


def test_equal_cost_everywhere_keeps_all_and_says_why():
    # the data sits at a storage none of upstream's candidates reads from
    p = decide(CANDS, [done(4, Z_DISK=9 * MB)])
    assert p.chosen == tuple(CANDS) and not p.restricted
    assert "every candidate moves 9000000 B" in p.reason and p.best_storage == "Z_DISK"


def test_best_storage_outside_the_candidates_is_named_when_restricting():
    p = decide(CANDS, [done(4, Z_DISK=9 * MB, A_DISK=MB)])
    assert p.chosen == ("Q_A",)
    assert "Z_DISK holds most input but serves none of upstream's candidates" in p.reason


def test_running_parent_without_output_pulls_the_child_where_it_runs():
    # noWaitParent: the parent has written nothing yet but runs at C
    p = decide(CANDS, [running(9, {"C_DISK"})])
    assert p.chosen == ("Q_C",) and p.best_storage == "C_DISK"


def test_running_parent_remainder_is_spread_over_its_sites():
    parent = running(9, {"A_DISK", "B_DISK"}, A_DISK=4 * MB)
    # finished 4 MB at A; 4 MB more expected, half at A, half at B
    assert bytes_to_move("A_DISK", [parent]) == 2 * MB
    assert bytes_to_move("B_DISK", [parent]) == 4 * MB + 2 * MB
    assert bytes_to_move("C_DISK", [parent]) == 8 * MB
    assert decide(CANDS, [parent]).chosen == ("Q_A",)


def test_running_and_finished_parent_together():
    # fan-in with one parent done at A (3 MB) and one still running at B (2 MB so far, 2 MB more expected)
    parents = [done(1, A_DISK=3 * MB), running(2, {"B_DISK"}, B_DISK=2 * MB)]
    p = decide(CANDS, parents)
    assert p.moved == {"Q_A": 4 * MB, "Q_B": 3 * MB, "Q_C": 7 * MB}
    assert p.chosen == ("Q_B",)


def test_ended_parent_adds_nothing_pending_even_with_writing_sites():
    parent = ParentOutput(3, running=False, bytes_at={"A_DISK": MB}, writing_at=frozenset({"B_DISK"}))
    assert parent.pending_bytes == 0
    assert decide(CANDS, [parent]).chosen == ("Q_A",)


def test_parents_without_output_anywhere_keep_upstreams_choice():
    p = decide(CANDS, [done(1), done(2)])
    assert p.chosen == tuple(CANDS) and not p.restricted
    assert "no output yet" in p.reason and p.best_storage is None


def test_negative_bytes_are_refused_with_the_task_named():
    with pytest.raises(ValueError, match="parent task 5"):
        ParentOutput(5, running=False, bytes_at={"A_DISK": -1})


def test_steering_parameters_only_when_restricted():
    assert steering_parameters(decide(CANDS, [done(1, B_DISK=MB)])) == {"includedSite": ["Q_B"]}
    assert steering_parameters(decide(CANDS, [])) == {}


def test_exhaustively_the_chosen_candidates_are_exactly_the_cheapest():
    storages = ["A_DISK", "B_DISK", "C_DISK", "Z_DISK"]
    rng = random.Random(11)
    for n_parents in range(0, 4):
        for _ in range(200):
            parents = []
            for i in range(n_parents):
                held = {s: rng.choice([0, MB, 3 * MB]) for s in rng.sample(storages, rng.randint(0, 3))}
                writing = frozenset(rng.sample(storages, rng.randint(0, 2))) if rng.random() < 0.4 else frozenset()
                parents.append(ParentOutput(i, running=bool(writing), bytes_at=held, writing_at=writing))
            names = rng.sample(sorted(CANDS), rng.randint(1, 3))
            cands = {n: CANDS[n] for n in names}
            p = decide(cands, parents)
            costs = {n: bytes_to_move(cands[n], parents) for n in names}
            assert p.chosen and set(p.chosen) <= set(names)
            assert list(p.chosen) == [n for n in names if n in p.chosen]  # upstream's order
            if p.restricted:
                assert all(costs[c] == min(costs.values()) for c in p.chosen)
                assert all(costs[n] > min(costs.values()) for n in names if n not in p.chosen)
            else:
                assert p.chosen == tuple(names)


def test_bytes_to_move_is_additive_over_parents():
    a, b = done(1, A_DISK=MB, B_DISK=2 * MB), running(2, {"C_DISK", "A_DISK"}, C_DISK=MB)
    for s in ("A_DISK", "B_DISK", "C_DISK", "Z_DISK"):
        assert bytes_to_move(s, [a, b]) == bytes_to_move(s, [a]) + bytes_to_move(s, [b])


def test_order_of_parents_does_not_matter():
    parents = [done(1, A_DISK=MB), done(2, B_DISK=2 * MB), running(3, {"C_DISK"})]
    answers = {decide(CANDS, list(perm)).chosen for perm in itertools.permutations(parents)}
    assert answers == {("Q_B",)}


def test_parents_at_storages_pools_queues_of_one_storage_and_marks_running_ones():
    storage = {"Q_A1": "A_DISK", "Q_A2": "A_DISK", "Q_B": "B_DISK"}.__getitem__
    rows = [(1, False, {"Q_A1": MB, "Q_A2": 2 * MB}), (2, True, {"Q_B": 0, "Q_A1": MB}), (3, True, {})]  # (task, ended, bytes per site)
    p1, p2, p3 = parents_at_storages(rows, storage)
    assert p1 == ParentOutput(1, running=True, bytes_at={"A_DISK": 3 * MB}, writing_at=frozenset({"A_DISK"}))
    assert p2 == ParentOutput(2, running=False, bytes_at={"A_DISK": MB}, writing_at=frozenset())
    assert p3 == ParentOutput(3, running=False)


def test_running_parent_whose_output_dataset_has_no_file_yet_still_writes_there():
    (p,) = parents_at_storages([(5, False, {"Q_B": 0})], {"Q_B": "B_DISK"}.__getitem__)
    assert p.running and p.writing_at == frozenset({"B_DISK"}) and p.bytes_at == {}
    assert decide(CANDS, [p]).chosen == ("Q_B",)


# ---- the load term: expected completion -----------------------------------------------------------------------
from pandajedi_wf.placement import SiteLoad, StepWork, expected_completion, queue_seconds, transfer_seconds  # noqa: E402

GB = 1_000_000_000
HOUR = 3600.0


def idle(name, storage, slots=100, wan=GB, **kw):
    return SiteLoad(name, storage, slots, wan_bytes_per_second=wan, **kw)


def test_transfer_waits_behind_the_bytes_already_on_the_link():
    site = idle("Q_A", "A_DISK", wan=GB, inbound_bytes=3 * GB)
    assert transfer_seconds(site, 0) == 0.0  # nothing to move: the link's queue does not matter
    assert transfer_seconds(site, 2 * GB) == 5.0


def test_each_source_moves_at_its_links_measured_rate_and_the_sources_share_the_ingress():
    """The network matrix's rate from a source storage where it has one, the site's WAN rate for the others; the
    bytes ahead on the link at the WAN rate; the sources' times add up (one ingress)."""
    site = idle("Q_A", "A_DISK", wan=GB, inbound_bytes=GB, link_bytes_per_second={"B_DISK": 4 * GB})
    assert site.rate_from("B_DISK") == 4 * GB and site.rate_from("C_DISK") == GB
    assert transfer_seconds(site, {"B_DISK": 8 * GB}) == pytest.approx(1 + 2)
    assert transfer_seconds(site, {"B_DISK": 8 * GB, "C_DISK": 3 * GB}) == pytest.approx(1 + 2 + 3)
    assert transfer_seconds(site, {"B_DISK": 0}) == 0.0
    assert transfer_seconds(site, 3 * GB) == pytest.approx(4)  # bytes of unknown sources: the WAN rate


def test_moved_from_splits_the_moved_bytes_by_source_as_bytes_to_move_counts_them():
    from pandajedi_wf.placement import moved_from

    finished = done(1, B_DISK=4 * GB, C_DISK=2 * GB, A_DISK=GB)
    running = ParentOutput(2, running=True, bytes_at={"B_DISK": 3 * GB}, writing_at=frozenset({"A_DISK", "B_DISK", "C_DISK"}))
    by_source = moved_from("A_DISK", [finished, running])
    assert by_source == {"B_DISK": 4 * GB + 3 * GB + GB, "C_DISK": 2 * GB + GB}  # the running one's 3 GB more, a third each
    rng = random.Random(11)
    for _ in range(300):
        parents = [ParentOutput(i, running=rng.random() < 0.3, bytes_at={s: rng.randint(0, 9) for s in rng.sample("ABCD", 2)},
                                writing_at=frozenset(rng.sample("ABCD", rng.randint(0, 3)))) for i in range(rng.randint(1, 4))]
        for storage in "ABCDE":
            assert round(sum(moved_from(storage, parents).values())) == bytes_to_move(storage, parents)


def test_a_fast_measured_link_makes_the_far_site_end_sooner():
    parents = [done(1, B_DISK=360 * GB)]
    default = idle("Q_A", "A_DISK", wan=GB / 10)  # 3600 s of transfer at the default rate
    measured = idle("Q_A", "A_DISK", wan=GB / 10, link_bytes_per_second={"B_DISK": GB})  # 360 s on the measured link
    assert expected_completion(default, parents, StepWork(10, HOUR)) == pytest.approx(2 * HOUR)
    assert expected_completion(measured, parents, StepWork(10, HOUR)) == pytest.approx(360 + HOUR)
    with pytest.raises(ValueError):
        idle("Q_A", "A_DISK", link_bytes_per_second={"B_DISK": 0})


def test_queue_wait_is_zero_while_free_slots_take_every_job():
    site = SiteLoad("Q_A", "A_DISK", slots=100, running=60, queued=10)
    assert queue_seconds(site, StepWork(30, HOUR)) == 0.0
    assert queue_seconds(site, StepWork(31, HOUR)) == pytest.approx(HOUR / 100)


def test_queue_wait_turns_over_at_the_sites_own_walltime_when_known():
    busy = SiteLoad("Q_A", "A_DISK", slots=100, running=100, queued=100)
    assert queue_seconds(busy, StepWork(100, HOUR)) == pytest.approx(2 * HOUR)
    slow = SiteLoad("Q_A", "A_DISK", slots=100, running=100, queued=100, job_seconds=3 * HOUR)
    assert queue_seconds(slow, StepWork(100, HOUR)) == pytest.approx(6 * HOUR)


def test_a_site_without_slots_never_ends():
    assert queue_seconds(SiteLoad("Q_A", "A_DISK", slots=0), StepWork(1)) == float("inf")


def test_completion_overlaps_the_transfer_with_the_queue_then_runs():
    parents = [done(1, B_DISK=36 * GB)]
    far_idle = idle("Q_A", "A_DISK", wan=GB)  # 36 s of transfer, no queue
    assert expected_completion(far_idle, parents, StepWork(10, HOUR)) == pytest.approx(36 + HOUR)
    far_busy = SiteLoad("Q_A", "A_DISK", slots=10, running=10, queued=0, wan_bytes_per_second=GB)  # 1 h of queue
    assert expected_completion(far_busy, parents, StepWork(10, HOUR)) == pytest.approx(HOUR + HOUR)


def test_bad_load_figures_are_refused_with_the_site_named():
    with pytest.raises(ValueError, match="site Q_X"):
        SiteLoad("Q_X", "X_DISK", slots=-1)
    with pytest.raises(ValueError, match="site Q_X"):
        SiteLoad("Q_X", "X_DISK", slots=1, wan_bytes_per_second=0)
    with pytest.raises(ValueError, match="at least one job"):
        StepWork(0)


def test_with_loads_the_data_site_wins_while_its_queue_is_short():
    parents = [done(7, B_DISK=100 * GB)]
    loads = {"Q_A": idle("Q_A", "A_DISK"), "Q_B": SiteLoad("Q_B", "B_DISK", 100, 90, 0), "Q_C": idle("Q_C", "C_DISK")}
    p = decide(CANDS, parents, loads, StepWork(10, HOUR))
    assert p.chosen == ("Q_B",) and p.restricted
    assert p.completion["Q_B"] == pytest.approx(HOUR) and p.completion["Q_A"] == pytest.approx(100 + HOUR)
    assert "sites' load" in p.reason and "Q_B moves 0 B" in p.reason


def test_with_loads_an_overloaded_data_site_loses_to_moving_the_data():
    # 100 GB over 1 GB/s is 100 s; the data site has 500 jobs queued on 100 slots: 5 h before ours start
    parents = [done(7, B_DISK=100 * GB)]
    loads = {"Q_A": idle("Q_A", "A_DISK"), "Q_B": SiteLoad("Q_B", "B_DISK", 100, 100, 500), "Q_C": idle("Q_C", "C_DISK", wan=GB / 100)}
    p = decide(CANDS, parents, loads, StepWork(10, HOUR))
    assert p.chosen == ("Q_A",)  # C's slow link makes its transfer 10,000 s
    assert p.moved["Q_A"] == 100 * GB and p.completion["Q_B"] > p.completion["Q_A"]


def test_with_loads_among_the_good_candidates_the_least_moving_are_kept():
    # A and C both end within the slack of the best; A holds the data, C would move it: only A is kept
    parents = [done(7, A_DISK=GB)]
    loads = {"Q_A": idle("Q_A", "A_DISK"), "Q_B": SiteLoad("Q_B", "B_DISK", 10, 10, 100), "Q_C": idle("Q_C", "C_DISK")}
    p = decide(CANDS, parents, loads, StepWork(10, HOUR))
    assert p.chosen == ("Q_A",)


def test_with_loads_equal_bytes_everywhere_leaves_the_load_to_upstream():
    loads = {n: SiteLoad(n, s, 100, i * 50, i * 100) for i, (n, s) in enumerate(CANDS.items())}
    p = decide(CANDS, [done(4, Z_DISK=9 * MB)], loads)
    assert p.chosen == tuple(CANDS) and not p.restricted


def test_with_loads_a_task_without_parents_keeps_upstreams_candidates():
    loads = {n: SiteLoad(n, s, 100, 100, 1000) for n, s in CANDS.items()}
    assert decide(CANDS, [], loads).chosen == tuple(CANDS)


def test_with_loads_a_candidate_without_figures_is_taken_as_idle():
    parents = [done(7, B_DISK=100 * GB)]
    p = decide(CANDS, parents, {"Q_B": SiteLoad("Q_B", "B_DISK", 100, 100, 10_000)}, StepWork(10, HOUR))
    assert set(p.chosen) <= {"Q_A", "Q_C"} and p.chosen  # B's queue is days long; A and C have no figures: idle


def test_exhaustively_with_loads_the_chosen_are_the_least_moving_of_the_good():
    storages = ["A_DISK", "B_DISK", "C_DISK", "Z_DISK"]
    rng = random.Random(23)
    for _ in range(600):
        parents = [ParentOutput(i, running=False, bytes_at={s: rng.choice([0, GB, 50 * GB]) for s in rng.sample(storages, rng.randint(0, 2))})
                   for i in range(rng.randint(0, 3))]
        names = rng.sample(sorted(CANDS), rng.randint(1, 3))
        cands = {n: CANDS[n] for n in names}
        loads = {n: SiteLoad(n, cands[n], rng.choice([0, 10, 100]), rng.randint(0, 100), rng.randint(0, 300),
                             rng.choice([GB / 100, GB]), rng.choice([0, 10 * GB])) for n in names if rng.random() < 0.9}
        work = StepWork(rng.randint(1, 50), rng.choice([600.0, HOUR]))
        p = decide(cands, parents, loads, work, slack=0.2)
        assert p.chosen and list(p.chosen) == [n for n in names if n in p.chosen]
        moved = {n: bytes_to_move(cands[n], parents) for n in names}
        if not p.restricted:
            assert p.chosen == tuple(names)
            continue
        comp = p.completion
        finite = [c for c in comp.values() if c != float("inf")]
        good = {n for n in names if not finite or comp[n] <= min(finite) * 1.2}
        assert set(p.chosen) <= good
        assert {n for n in good if moved[n] == min(moved[g] for g in good)} == set(p.chosen)
