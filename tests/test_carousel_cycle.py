"""The cycle against the tape simulator: crash safety, stuck recovery, limits over a whole run."""

from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.carousel.cycle import MemoryBook, current_load, retire, run_cycle
from pandajedi_wf.carousel.state import StagingRequest
from pandajedi_wf_dev.simulators.tape import FaultModel, SimDataset, TapeEndpoint, TapeSimulator

TAPES = [TapeEndpoint("FAST", 2, 100.0, 5.0), TapeEndpoint("SLOW", 1, 20.0, 5.0)]
CONFIG = load_config(
    {
        "default_tape": {"max_files": 40, "max_bytes": 4000},
        "tapes": {"FAST": {"expected_bytes_per_second": 200.0}, "SLOW": {"expected_bytes_per_second": 20.0}},
        "stuck_timeout_seconds": 60,
        "user_max_bytes": None,
        "disk_buffers": {"D": 6000},
    }
)


def workload(n=12):
    datasets = [SimDataset(f"ds{i}", (100,) * 10, ("FAST", "SLOW") if i % 3 else ("SLOW",)) for i in range(n)]
    requests = [StagingRequest(i + 1, d.name, 10, 1000, "u", "A", "D", d.tapes) for i, d in enumerate(datasets)]
    return datasets, requests


def drive(sim, book, cycles, check=None):
    throughput = {}
    for _ in range(cycles):
        run_cycle(CONFIG, book, sim, sim.now, throughput)
        if check:
            check(book)
        for rec in book.records([lc.DONE]):
            retire(book, sim, rec)
        sim.advance(30)


def test_whole_run_respects_limits_and_finishes():
    datasets, requests = workload()
    sim = TapeSimulator(TAPES, datasets, buffers={"D": 6000}, seed=3)
    book = MemoryBook(requests)

    def check(book):
        load = current_load(book.records(lc.HOLDS_BUFFER))
        for tape, used in load.tapes.items():
            assert used.files <= 40 and used.bytes <= 4000
        assert load.buffers.get("D", 0) <= 6000

    drive(sim, book, 200, check)
    assert all(rec.status == lc.RETIRED for rec in book.by_id.values())
    assert sim.buffers["D"].peak <= 6000


def test_restart_after_intent_reuses_the_existing_rule():
    datasets, requests = workload(1)
    sim = TapeSimulator(TAPES, datasets)
    book = MemoryBook(requests)
    book.save(book.by_id[1], lc.SUBMITTING, source="FAST")
    rule = sim.create_staging_rule("ds0", "FAST", "D", "a", None)  # the agent died right after this call
    run_cycle(CONFIG, book, sim, sim.now, {})
    assert book.by_id[1].status == lc.STAGING and book.by_id[1].rule_id == rule
    assert len(sim.rules) == 1


def test_hung_source_is_switched_and_dataset_completes():
    datasets = [SimDataset("ds0", (100,) * 10, ("FAST", "SLOW"))]
    sim = TapeSimulator(TAPES, datasets, faults=FaultModel(hang_probability=1.0))
    book = MemoryBook([StagingRequest(1, "ds0", 10, 1000, "u", "A", "D", ("FAST", "SLOW"))])
    drive(sim, book, 2)
    assert book.by_id[1].status == lc.STAGING and book.by_id[1].source == "FAST"
    sim.faults = FaultModel()
    drive(sim, book, 4)
    rec = book.by_id[1]
    assert rec.switches == 1 and rec.source == "SLOW" and rec.tried == ("FAST", "SLOW")
    drive(sim, book, 10)
    assert book.by_id[1].status == lc.RETIRED


def test_vanished_rule_is_requeued():
    datasets, requests = workload(1)
    sim = TapeSimulator(TAPES, datasets)
    book = MemoryBook(requests)
    run_cycle(CONFIG, book, sim, sim.now, {})
    sim.delete_rule(book.by_id[1].rule_id)
    report = run_cycle(CONFIG, book, sim, sim.now, {})
    assert report.requeued == 1
    assert book.by_id[1].status == lc.STAGING and book.by_id[1].rule_id in sim.rules  # re-admitted in the same cycle


# ---- part 7: invariants over whole runs, rebalancing through the cycle --------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PROP_TAPES = [TapeEndpoint("A", 2, 50.0, 5.0), TapeEndpoint("B", 1, 20.0, 5.0), TapeEndpoint("C", 1, 10.0, 5.0)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(1, 8), st.integers(5, 60), st.lists(st.sampled_from("ABC"), min_size=1, max_size=3, unique=True), st.sampled_from("uvw"), st.sampled_from(["D", "E"])), min_size=1, max_size=14),
    st.integers(0, 10**6),
    st.integers(200, 900),
)
def test_no_limit_buffer_or_user_cap_is_ever_exceeded_over_a_faulty_run(specs, seed, buffer_cap):
    """Hard invariants, checked after every cycle: in-flight files and bytes per tape under the tape limits, the
    bytes reserved and the bytes really on disk (simulator) under each destination's cap, each user under the cap."""
    datasets, requests = [], []
    for i, (n, size, tapes, user, dest) in enumerate(specs):
        datasets.append(SimDataset(f"ds{i}", (size,) * n, tuple(tapes)))
        requests.append(StagingRequest(i + 1, f"ds{i}", n, n * size, user, "A" if i % 2 else "B", dest, tuple(tapes), task_priority=900 + 100 * (i % 3)))
    buffers = {"D": buffer_cap, "E": buffer_cap}
    config = load_config(
        {
            "default_tape": {"max_files": 12, "max_bytes": 500, "drives": 1, "mount_seconds": 5},
            "tapes": {t.name: {"expected_bytes_per_second": t.bytes_per_second, "drives": t.drives} for t in PROP_TAPES},
            "cycle_seconds": 30,
            "bring_online_batch_files": 4,
            "disk_buffers": buffers,
            "user_max_bytes": 450,
            "user_max_files": 10,
            "stuck_timeout_seconds": 600,
        }
    )
    sim = TapeSimulator(PROP_TAPES, datasets, buffers=buffers, faults=FaultModel(0.05, 0.02, 0.02, 20), seed=seed)
    book = MemoryBook(requests)
    throughput = {}
    for _ in range(120):
        run_cycle(config, book, sim, sim.now, throughput, elapsed=30, busy_tapes=[t for t in sim.tapes if sim.tape_has_work(t)])
        load = current_load(book.records(lc.HOLDS_BUFFER))
        for tape, used in load.tapes.items():
            assert used.files <= 12 and used.bytes <= 500, (tape, used)
        for user, used in load.users.items():
            assert used.files <= 10 and used.bytes <= 450, (user, used)
        for dest, cap in buffers.items():
            assert load.buffers.get(dest, 0) <= cap and sim.buffers[dest].peak <= cap
        for rec in book.records([lc.DONE]):
            retire(book, sim, rec)
        if all(rec.status in lc.STAGING_REQUEST.final for rec in book.by_id.values()):
            break
        sim.advance(30)
    for dest, cap in buffers.items():
        assert sim.buffers[dest].seconds_over_capacity == 0


def test_recall_waiting_behind_a_long_queue_moves_to_a_tape_that_ran_dry():
    tapes = [TapeEndpoint("BIG", 1, 10.0, 1.0), TapeEndpoint("SMALL", 1, 10.0, 1.0)]
    datasets = [SimDataset(f"only{i}", (100,) * 4, ("BIG",)) for i in range(6)] + [SimDataset("both", (100,) * 4, ("BIG", "SMALL"))]
    requests = [StagingRequest(i + 1, d.name, 4, 400, "u", "A", "D", d.tapes, created_at=float(i)) for i, d in enumerate(datasets)]
    doc = {
        "default_tape": {"max_files": 100, "max_bytes": 10**6, "drives": 1, "mount_seconds": 1, "expected_bytes_per_second": 10.0},
        "cycle_seconds": 30,
        "bring_online_batch_files": 4,
        "user_max_bytes": None,
        "window_from_throughput": False,
        "longest_first_max_lead_seconds": 0,
    }
    sim = TapeSimulator(tapes, datasets, seed=1)
    book = MemoryBook(requests)
    run_cycle(load_config({**doc, "tapes": {"SMALL": {"active": False}}}), book, sim, sim.now, {})
    assert {rec.source for rec in book.by_id.values()} == {"BIG"}  # SMALL inactive: everything queued on BIG
    sim.advance(30)
    report = run_cycle(load_config(doc), book, sim, sim.now, {})  # SMALL back: the recall at the back of BIG's queue moves
    moved = book.by_id[7]
    assert report.rebalanced == 1 and report.switched == 0
    assert (moved.status, moved.source, moved.switches, moved.tried) == (lc.STAGING, "SMALL", 0, ("BIG", "SMALL"))
    drive(sim, book, 200)
    assert all(rec.status == lc.RETIRED for rec in book.by_id.values())
    assert book.by_id[7].source == "SMALL"
