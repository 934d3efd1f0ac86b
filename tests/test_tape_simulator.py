import pytest

from pandajedi_wf.ddm.adapter import DDMError, DuplicateRuleError, RuleNotFoundError
from pandajedi_wf_dev.simulators.tape import FaultModel, SimDataset, TapeEndpoint, TapeSimulator

TAPE = TapeEndpoint("T", drives=1, drive_bytes_per_second=100.0, mount_seconds=50.0)


def sim(datasets, **kw):
    return TapeSimulator([TAPE, TapeEndpoint("U", 2, 1000.0, 10.0)], datasets, **kw)


def test_single_file_lands_after_mount_plus_size_over_bandwidth():
    s = sim([SimDataset("ds", (1000,), ("T",))])
    rule = s.create_staging_rule("ds", "T", "D", "act", None)
    s.advance(59.9)
    assert s.get_rules([rule])[rule].locks_ok == 0
    s.advance(0.2)
    progress = s.get_rules([rule])[rule]
    assert (progress.locks_ok, progress.state) == (1, "OK")
    assert s.rule_times(rule)[1] == pytest.approx(60.0)


def test_files_read_sequentially_in_one_mount_and_buffer_is_freed_on_delete():
    s = sim([SimDataset("ds", (100, 200, 300), ("T",))], buffers={"D": 500})
    rule = s.create_staging_rule("ds", "T", "D", "act", None)
    s.advance(50 + 1 + 2 + 3)
    assert s.get_rules([rule])[rule].locks_ok == 3
    assert s.buffers["D"].peak == 600  # soft cap: the simulator reports, the policy must respect
    s.advance(10)
    assert s.buffers["D"].seconds_over_capacity == pytest.approx(10 + 0)
    assert len(s.list_staged_files(rule)) == 3
    s.delete_rule(rule)
    assert s.buffers["D"].used == 0
    assert s.get_rules([rule]) == {}
    with pytest.raises(RuleNotFoundError):
        s.list_staged_files(rule)


def test_deterministic_with_seed():
    def run(seed):
        s = sim([SimDataset(f"ds{i}", tuple(range(100, 160)), ("T", "U")) for i in range(5)], faults=FaultModel(0.1, 0.05, 0.05, 30), seed=seed)
        rules = [s.create_staging_rule(f"ds{i}", "U", "D", "a", None) for i in range(5)]
        s.advance(3000)
        return [(p.locks_ok, p.locks_stuck) for p in s.get_rules(rules).values()], s.failed_attempts

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_stuck_lock_recovers_after_source_switch():
    s = sim([SimDataset("ds", (100,) * 20, ("T", "U"))], faults=FaultModel(stuck_probability=1.0))
    rule = s.create_staging_rule("ds", "T", "D", "a", None)
    s.advance(100)
    assert s.get_rules([rule])[rule].state == "STUCK"
    s.faults = FaultModel()
    s.switch_rule_source(rule, "rse_type=DISK|U")
    s.advance(100)
    assert s.get_rules([rule])[rule].locks_ok == 20


def test_duplicate_rule_refused_and_found():
    s = sim([SimDataset("ds", (1,), ("T",))])
    rule = s.create_staging_rule("ds", "T", "D", "a", None)
    with pytest.raises(DuplicateRuleError):
        s.create_staging_rule("ds", "T", "D", "a", None)
    assert s.find_staging_rule("ds", "D") == rule and s.find_staging_rule("ds", "E") is None


def test_pin_of_disk_replica_is_immediate_and_uses_no_buffer():
    s = sim([SimDataset("ds", (10, 10), ("T",), disks=("DISK",))])
    rule = s.create_staging_rule("ds", None, "D", "a", None)
    assert s.get_rules([rule])[rule].locks_ok == 2
    assert s.buffers.get("D") is None or s.buffers["D"].used == 0


def test_rule_expires_unless_extended():
    s = sim([SimDataset("a", (1,), ("T",)), SimDataset("b", (1,), ("T",))])
    keep, lose = s.create_staging_rule("a", "T", "D", "x", 100), s.create_staging_rule("b", "T", "D", "x", 100)
    s.advance(90)
    s.extend_rule_lifetime(keep, 100)
    s.advance(20)
    assert set(s.get_rules([keep, lose])) == {keep}


def test_replicas_listing():
    s = sim([SimDataset("ds", (5, 5), ("T", "U"), disks=("DISK",))])
    reps = s.list_tape_replicas(["ds", "missing"])
    assert [(r.rse, r.is_tape, r.complete, r.n_bytes) for r in reps["ds"]] == [("T", True, True, 10), ("U", True, True, 10), ("DISK", False, True, 10)]
    assert reps["missing"] == []


def test_buffer_excess_is_integrated_over_time_until_the_rule_is_released():
    s = sim([SimDataset("ds", (300, 300), ("U",))], buffers={"D": 400})
    rule = s.create_staging_rule("ds", "U", "D", "a", None)
    s.advance(10 + 0.3)  # first file (300) at 10.3 s, second at 10.6 s
    assert s.buffers["D"].used == 300 and s.buffers["D"].seconds_over_capacity == 0
    s.advance(100)
    buf = s.buffers["D"]
    assert buf.peak == 600 and buf.max_excess == 200
    s.delete_rule(rule)
    s.advance(100)  # released: no longer over
    assert buf.seconds_over_capacity == pytest.approx(100 - 0.3, abs=1e-6)
    assert buf.byte_seconds_over_capacity == pytest.approx(200 * (100 - 0.3), rel=1e-6)


def test_a_free_drive_takes_the_highest_priority_reads_first_and_a_new_priority_moves_queued_reads():
    s = TapeSimulator([TapeEndpoint("T", 1, 100.0, 0.0)], [SimDataset(n, (100,) * 2, ("T",)) for n in ("a", "b", "c")], batch_files=1)
    a, b, c = (s.create_staging_rule(n, "T", "D", "act", None) for n in ("a", "b", "c"))  # a's first file is on the drive
    s.set_rule_priority(c, 5)
    s.advance(1.0)  # a.0 lands; c (priority 5) goes before a.1 and b (priority 3)
    s.advance(2.0)
    assert [s.get_rules([r])[r].locks_ok for r in (a, b, c)] == [1, 0, 2]
    assert s.get_rules([c])[c].priority == 5
    with pytest.raises(DDMError):
        s.set_rule_priority(b, 6)


def test_boost_requeues_stuck_files_and_a_missing_source_sticks_them_with_no_sources():
    s = TapeSimulator([TapeEndpoint("T", 1, 100.0, 0.0), TapeEndpoint("U", 1, 100.0, 0.0)], [SimDataset("a", (100,), ("T",))], faults=FaultModel(stuck_probability=1.0))
    rule = s.create_staging_rule("a", "T", "D", "act", None)
    s.advance(0.1)
    progress = s.get_rules([rule])[rule]
    assert (progress.state, progress.locks_stuck) == ("STUCK", 1) and "TRANSFER_FAILED" in progress.error
    s.faults = FaultModel()
    s.boost_rule(rule)
    s.advance(1.1)
    assert s.get_rules([rule])[rule].state == "OK"
    other = s.create_staging_rule("a", "U", "D2", "act", None)  # U holds no replica of a
    progress = s.get_rules([other])[other]
    assert (progress.state, progress.locks_stuck) == ("STUCK", 1) and "NO_SOURCES" in progress.error
