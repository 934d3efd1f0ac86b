import pytest

from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.carousel.progress import BOOST, FAIL, SWITCH, WAIT, is_stuck, release_order_key, rule_priority, lifetime_extension, next_source, stuck_verdict, updated_throughput
from pandajedi_wf.carousel.state import Load
from pandajedi_wf.core.lifecycle import IllegalTransition

CONFIG = load_config(
    {
        "stuck_timeout_seconds": 100,
        "max_source_switches": 2,
        "tapes": {"FAST": {"expected_bytes_per_second": 100.0}, "SLOW": {"expected_bytes_per_second": 1.0}, "MID": {"expected_bytes_per_second": 10.0}},
        "rule_lifetime_seconds": 1000,
        "lifetime_extension_seconds": 900,
        "extend_below_seconds": 50,
    }
)


def verdict(**kw):
    args = dict(now=1000.0, last_progress_at=0.0, files_replicating=3, files_stuck=0, switches=0, current="FAST", tried=("FAST",),
                candidates=("FAST", "SLOW", "MID"), n_bytes_left=10, tapes={}, throughput={}, config=CONFIG)
    args.update(kw)
    return stuck_verdict(**args)


def test_no_progress_for_timeout_switches_to_best_untried_source():
    v = verdict()
    assert (v.action, v.source) == (SWITCH, "MID")


def test_progress_within_timeout_waits():
    assert verdict(last_progress_at=950.0).action == WAIT


def test_queue_drain_time_extends_the_timeout():
    assert verdict(last_progress_at=850.0, queue_drain_seconds=100.0).action == WAIT
    assert verdict(last_progress_at=750.0, queue_drain_seconds=100.0).action == SWITCH


def test_stuck_files_are_boosted_first_then_switched_once_the_boost_did_not_help():
    v = verdict(last_progress_at=999.0, files_replicating=0, files_stuck=2, error="TRANSFER_FAILED: tape error")
    assert (v.action, v.dead_source) == (BOOST, None) and "boost_rule" in v.reason
    assert verdict(last_progress_at=999.0, files_stuck=2, boosted_at=990.0).action == WAIT  # the repairer's turn
    wait = CONFIG.boost_wait_seconds
    assert verdict(now=990.0 + wait - 1, last_progress_at=989.0, files_stuck=2, boosted_at=990.0).action == WAIT
    v = verdict(now=990.0 + wait, last_progress_at=989.0, files_stuck=2, boosted_at=990.0)
    assert (v.action, v.source, v.dead_source) == (SWITCH, "MID", None) and "after boost_rule" in v.reason


def test_no_sources_marks_the_source_dead_and_moves_at_once_without_a_boost():
    error = "RequestErrMsg.NO_SOURCES:RequestState.NO_SOURCES"
    v = verdict(last_progress_at=999.0, files_stuck=1, error=error)
    assert (v.action, v.source, v.dead_source) == (SWITCH, "MID", "FAST")
    # every source tried: a retry goes to the best one that did not answer NO_SOURCES, never to a dead one
    v = verdict(last_progress_at=999.0, files_stuck=1, error=error, tried=("FAST", "MID", "SLOW"), dead=("MID",), switches=1)
    assert (v.action, v.source, v.dead_source) == (SWITCH, "SLOW", "FAST")
    v = verdict(last_progress_at=999.0, files_stuck=1, error=error, current="SLOW", dead=("MID", "FAST"), switches=1)
    assert v.action == FAIL and "no usable source left (NO_SOURCES from MID, FAST, SLOW)" in v.reason and v.dead_source == "SLOW"


@pytest.mark.parametrize(
    "place, n, waited, expected",
    [(0, 3, 0, 4), (1, 3, 0, 3), (2, 3, 0, 2), (0, 1, 0, 4), (5, 6, 0, 2), (3, 6, 0, 3), (2, 3, 3600 * 12 - 1, 2), (2, 3, 3600 * 12, 3), (2, 3, 1e9, 3), (0, 3, 1e9, 5)],
)
def test_rule_priority_follows_the_place_in_the_tape_queue_and_rises_with_waiting(place, n, waited, expected):
    assert rule_priority(place, n, waited, load_config({})) == expected


def test_rule_priority_refuses_a_place_outside_the_queue_and_ageing_can_be_off():
    with pytest.raises(ValueError, match="place 3 is not in a queue of 3"):
        rule_priority(3, 3, 0, CONFIG)
    assert rule_priority(2, 3, 1e9, load_config({"priority_age_step_seconds": 0})) == 2


def test_the_rule_nearest_to_release_comes_first_then_task_priority_then_age():
    keys = {
        "one_file_left": release_order_key(10, True, 80.0, 900, 50.0, 4),
        "urgent_half_read": release_order_key(10**6, True, 95.0, 1100, 90.0, 3),
        "old_half_read": release_order_key(10**6, True, 60.0, 1000, 10.0, 2),
        "young_half_read": release_order_key(10**6, True, 60.0, 1000, 20.0, 1),
    }
    assert sorted(keys, key=keys.get) == ["one_file_left", "urgent_half_read", "old_half_read", "young_half_read"]


def test_rules_with_nothing_on_disk_keep_their_admission_order_behind_every_landed_one():
    """A small fresh rule does not overtake one admitted before it (it would starve it into looking hung)."""
    keys = {
        "landed_big": release_order_key(10**9, True, 500.0, 900, 400.0, 5),
        "admitted_first_big": release_order_key(10**9, False, 100.0, 900, 50.0, 4),
        "admitted_later_small": release_order_key(10, False, 200.0, 1100, 40.0, 3),
        "admitted_later_urgent": release_order_key(10**6, False, 200.0, 1200, 90.0, 2),
    }
    assert sorted(keys, key=keys.get) == ["landed_big", "admitted_first_big", "admitted_later_urgent", "admitted_later_small"]


def test_out_of_switches_fails():
    v = verdict(switches=2)
    assert v.action == FAIL and "2 source switches" in v.reason


def test_single_source_is_retried():
    assert next_source("ONLY", ("ONLY",), ("ONLY",), 10, {}, {}, CONFIG) == "ONLY"
    assert next_source("FAST", (), ("FAST", "SLOW"), 10, {"SLOW": Load(1, 10**6)}, {}, CONFIG) == "SLOW"


def test_stuck_timeout_boundary():
    assert is_stuck(0.0, 100.0, CONFIG) and not is_stuck(0.0, 99.9, CONFIG)


def test_lifetime_extension_only_near_expiry():
    assert lifetime_extension(1060.0, 1000.0, CONFIG) is None
    assert lifetime_extension(1040.0, 1000.0, CONFIG) == 900
    assert lifetime_extension(None, 1000.0, CONFIG) is None


def test_throughput_ewma():
    assert updated_throughput(None, 1000, 10.0, CONFIG) == 100.0
    assert updated_throughput(100.0, 2000, 10.0, CONFIG) == pytest.approx(0.3 * 200 + 0.7 * 100)
    assert updated_throughput(50.0, 0, 0.0, CONFIG) == 50.0


def test_lifecycle_guards_rule_creation_with_an_intent_state():
    with pytest.raises(IllegalTransition):
        lc.STAGING_REQUEST.check(lc.QUEUED, lc.STAGING)  # no rule without recording the intent first
    lc.STAGING_REQUEST.check(lc.QUEUED, lc.SUBMITTING)
    lc.STAGING_REQUEST.check(lc.STAGING, lc.SWITCHING)
    assert lc.STAGING_REQUEST.is_final(lc.RETIRED) and not lc.STAGING_REQUEST.is_final(lc.DONE)


def test_hung_file_is_found_after_its_expected_delivery_time_not_the_global_timeout():
    from pandajedi_wf.carousel.progress import expected_delivery_seconds

    config = load_config(
        {"stuck_timeout_seconds": 12 * 3600, "cycle_seconds": 60, "tapes": {"T": {"expected_bytes_per_second": 100.0, "drives": 2, "mount_seconds": 30}}}
    )
    # tail: 1 file of 100 bytes left on the tape -> drain 1 s + mount 30 + 1 file on one drive (50 B/s) 2 s + cycle 60
    tail = expected_delivery_seconds("T", Load(1, 100), 100.0, {}, config)
    assert tail == 93.0
    assert is_stuck(0.0, 1.5 * tail, config, expected_delivery_seconds=tail) and not is_stuck(0.0, 1.5 * tail - 1, config, expected_delivery_seconds=tail)
    # a busy tape: a retried file waits behind everything in flight (10,000 bytes = 100 s) and a full batch (200 files)
    busy = expected_delivery_seconds("T", Load(500, 10_000), 100.0, {}, config)
    assert busy == 100.0 + 30 + 200 * 100 / 50 + 60
    assert not is_stuck(0.0, 1.4 * busy, config, expected_delivery_seconds=busy)
    assert not is_stuck(0.0, 10 * busy, load_config({"hang_factor": 0}), expected_delivery_seconds=busy)  # disabled: only the timeout
    assert verdict(last_progress_at=900.0, expected_delivery_seconds=50.0).action == SWITCH
