"""The cycle against the tape simulator: crash safety, stuck recovery, limits over a whole run."""

from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.carousel.cycle import MemoryBook, current_load, retire, run_cycle
from pandajedi_wf.carousel.state import StagingRequest
from pandajedi_wf.simulators.tape import FaultModel, SimDataset, TapeEndpoint, TapeSimulator

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
    rec = book.save(book.by_id[1], lc.SUBMITTING, source="FAST")
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
