"""A binding disk buffer: the cap is a hard invariant of the carousel, and the benchmark's bound under the cap is a
true lower bound (checked against the simulator)."""

import random

import pytest

from benchmarks import carousel_benchmark as bench
from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel.config import TB, load_config
from pandajedi_wf.carousel.cycle import MemoryBook, current_load, retire, run_cycle
from pandajedi_wf.carousel.state import StagingRequest
from pandajedi_wf.ddm.adapter import DDMError
from pandajedi_wf_dev.simulators.tape import FaultModel, SimDataset, TapeEndpoint, TapeSimulator

TAPES = [TapeEndpoint("FAST", 3, 100.0, 5.0), TapeEndpoint("SLOW", 1, 40.0, 5.0)]
CAP = 3000  # bytes per destination: about three datasets
HOLD = 120.0  # the tasks use a done dataset this long before its rule is released
FAULTS = FaultModel(failure_probability=0.05, stuck_probability=0.01, hang_probability=0.01, retry_delay_seconds=20)


def _workload(seed: int, n: int = 30):
    rng = random.Random(seed)
    datasets, requests = [], []
    for i in range(n):
        files = tuple(rng.randint(20, 200) for _ in range(rng.randint(2, 12)))
        tapes = ("FAST", "SLOW") if rng.random() < 0.6 else (rng.choice(["FAST", "SLOW"]),)
        datasets.append(SimDataset(f"ds{i}", files, tapes))
        requests.append(StagingRequest(i + 1, f"ds{i}", len(files), sum(files), rng.choice("uv"), rng.choice("AB"), rng.choice(["D1", "D2"]), tapes))
    return datasets, requests


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_disk_buffer_cap_is_never_exceeded_under_a_binding_buffer(seed):
    """Reservations never pass the cap at a cycle, and the disk itself never does at any instant (the simulator's
    peak is updated at every landing), with failures, stuck and hung files and a hold after done; all finish."""
    datasets, requests = _workload(seed)
    caps = {"D1": CAP, "D2": CAP}
    config = load_config(
        {
            "tapes": {t.name: {"expected_bytes_per_second": t.bytes_per_second, "drives": t.drives, "mount_seconds": t.mount_seconds} for t in TAPES},
            "disk_buffers": caps,
            "user_max_bytes": None,
            "stuck_timeout_seconds": 300,
            "cycle_seconds": 10,
            "bring_online_batch_files": 4,
        }
    )
    sim = TapeSimulator(TAPES, datasets, buffers=caps, faults=FAULTS, seed=seed, batch_files=4)
    book = MemoryBook(requests)
    throughput: dict[str, float] = {}
    held_for_buffer = 0
    for _ in range(3000):
        report = run_cycle(config, book, sim, sim.now, throughput, elapsed=10)
        held_for_buffer += report.held.get("disk_buffer_full", 0)
        reserved = current_load(book.records(lc.HOLDS_BUFFER)).buffers
        assert all(reserved.get(d, 0) <= cap for d, cap in caps.items()), reserved
        assert all(sim.buffers[d].peak <= cap for d, cap in caps.items())
        for rec in book.records([lc.DONE]):
            if sim.now >= rec.done_at + HOLD:
                retire(book, sim, rec)
        if all(rec.status in lc.STAGING_REQUEST.final for rec in book.by_id.values()):
            break
        sim.advance(10)
    assert held_for_buffer > 0, "the buffer must bind in this test"
    assert all(rec.status == lc.RETIRED for rec in book.by_id.values())
    assert all(sim.buffers[d].peak <= cap for d, cap in caps.items())


def _arrival_in_simulator(files: tuple[int, ...], tape: TapeEndpoint, batch_files: int) -> float:
    """Byte-seconds the dataset's landed files hold the disk before its last file lands, run alone on ``tape``
    (integer file sizes at 1 byte/s and no mount: every file lands at a whole second)."""
    sim = TapeSimulator([tape], [SimDataset("ds", files, (tape.name,))], buffers={"D": None}, batch_files=batch_files)
    rule = sim.create_staging_rule("ds", tape.name, "D", "a", None)
    held = 0.0
    while sim.rules[rule].done_at is None:
        sim.advance(1)
        if sim.rules[rule].done_at is None:
            held += sim.buffers["D"].used  # the bytes landed up to now hold the disk for the next second
    return held


@pytest.mark.parametrize("drives", [1, 2, 3, 5])
@pytest.mark.parametrize("batch_files", [1, 2, 200])
@pytest.mark.parametrize("files", [(10, 10, 10, 10), (3, 17, 5, 9, 12, 1), (40,), (2,) * 9])
def test_the_arrival_term_never_exceeds_what_the_simulator_holds(files, drives, batch_files):
    tape = TapeEndpoint("T", drives, 1.0, 0.0)
    assert bench.arrival_disk_seconds(files, [tape]) <= _arrival_in_simulator(files, tape, batch_files)


def test_the_arrival_term_takes_off_the_files_being_read():
    # 4 files of 10 bytes on 2 drives at 1 byte/s: up to 20 bytes are read but not landed; the other 20 bytes arrive
    # at most at 2 bytes/s: 20^2 / (2 * 2)
    assert bench.arrival_disk_seconds((10, 10, 10, 10), [TapeEndpoint("T", 2, 1.0)]) == 100.0
    # the best of the dataset's tapes counts (largest rate, largest bytes in reading)
    two = [TapeEndpoint("A", 1, 1.0), TapeEndpoint("B", 4, 1.0)]
    assert bench.arrival_disk_seconds((10,) * 8, two) == (80 - 40) ** 2 / (2 * 4)
    assert bench.arrival_disk_seconds((10, 10), [TapeEndpoint("T", 2, 1.0)]) == 0.0


def test_least_makespan_fills_the_disk_at_the_landing_rate_first():
    # cap 100 at 10 bytes/s from t=5: the first fill holds 100^2 / 20 = 500 byte-seconds by t = 15
    assert bench.least_makespan(500, 100, 10, 5) == pytest.approx(15)
    assert bench.least_makespan(125, 100, 10, 5) == pytest.approx(10)  # half way up the ramp: 10 * 5^2 / 2
    assert bench.least_makespan(1500, 100, 10, 5) == pytest.approx(25)  # then a full disk: 1000 more in 10 s
    assert bench.least_makespan(0, 100, 10, 5) == 5


def _shrunk_tight_workload(seed: int):
    """The benchmark's workload shrunk 50x with its binding 40 TB buffers scaled alike: datasets, requests, buffers,
    the hold after done, the lower bounds."""
    datasets, requests = bench.make_workload(30, 3000, 20 * TB, seed)
    scale = 20 / 1000
    consume = bench.CONSUME_SECONDS * scale
    largest = max(d.n_bytes for d in datasets)
    buffers = {dest: int(max(bench.TIGHT_BUFFER_BYTES * scale, 2 * largest)) for dest in bench.DESTINATIONS}
    return datasets, requests, buffers, consume, bench.lower_bounds(datasets, requests, buffers, consume)


@pytest.mark.parametrize("seed", [3, 5])
def test_no_run_of_ours_beats_the_benchmark_bounds(seed):
    """A shrunk benchmark workload (binding 40 TB-scaled buffers): our makespan is never below any lower bound."""
    datasets, requests, buffers, consume, bounds = _shrunk_tight_workload(seed)
    sim, obs, _, failed = bench.run_ours(datasets, requests, seed, 30 * max(bounds.values()), buffers, consume)
    assert failed == 0 and len(obs.done) == len(requests)
    makespan = max(obs.done.values())
    assert all(makespan >= bound for bound in bounds.values()), (makespan, bounds)
    assert all(b.peak <= b.capacity for b in sim.buffers.values())


@pytest.mark.parametrize("seed", [3, 5])
def test_no_run_of_ours_in_slices_beats_the_bounds_valid_for_every_policy_and_the_cap_holds(seed):
    """ours-slices on the same shrunk workload: never below a bound valid for every policy, the cap never exceeded
    (run_ours asserts it after every cycle), every slice done; the dataset-rule bound is the one it may beat."""
    datasets, requests, buffers, consume, bounds = _shrunk_tight_workload(seed)
    sim, obs, _, incomplete = bench.run_ours(datasets, requests, seed, 30 * max(bounds.values()), buffers, consume, slice_files=20)
    n_slices = sum(len(bench.slice_ranges(d.file_bytes, 20)) if not r.on_disk else 1 for d, r in zip(datasets, requests))
    assert incomplete == 0 and len(obs.done) == n_slices > len(requests)
    makespan = max(obs.done.values())
    assert all(makespan >= bound for name, bound in bounds.items() if name not in bench.DATASET_RULES_ONLY), (makespan, bounds)
    assert makespan >= bench.every_policy_bound(bounds)
    assert all(b.peak <= b.capacity for b in sim.buffers.values())


def test_a_slice_dataset_of_the_simulator_holds_just_its_files_and_is_made_once():
    sim = TapeSimulator(TAPES, [SimDataset("ds", (10, 20, 30, 40), ("FAST",))], buffers={"D1": None})
    files = sim.file_names("ds")
    sim.make_slice_dataset("ds#s1", "ds", files[1:3])
    sim.make_slice_dataset("ds#s1", "ds", files[1:3])  # replayed after a crash: the same
    with pytest.raises(DDMError, match="closed with other files"):
        sim.make_slice_dataset("ds#s1", "ds", files[:1])
    with pytest.raises(DDMError, match="not files of ds"):
        sim.make_slice_dataset("ds#s2", "ds", ["sim:other.000001"])
    rule = sim.create_staging_rule("ds#s1", "FAST", "D1", "Staging", None)
    sim.advance(100)
    assert sim.rules[rule].done_at is not None and sim.buffers["D1"].used == 50  # files 1 and 2 only
    sim.delete_rule(rule)
    assert sim.buffers["D1"].used == 0


def test_slices_cover_each_recall_once_with_its_sizes_and_keep_pins_whole():
    datasets = [SimDataset("a", (5,) * 45, ("FAST",)), SimDataset("b", (7,) * 3, ("SLOW",)), SimDataset("c", (1,) * 50, ("FAST",), ("D1",))]
    requests = [StagingRequest(i + 1, d.name, len(d.file_bytes), d.n_bytes, "u", "A", "D1", d.tapes, on_disk=bool(d.disks)) for i, d in enumerate(datasets)]
    sim = TapeSimulator(TAPES, datasets)
    slice_requests, dataset_of = bench.sliced(sim, datasets, requests, 20)
    assert [r.dataset for r in slice_requests] == ["a#slice0000", "a#slice0001", "a#slice0002", "b", "c"]
    assert sim.datasets["a#slice0001"] == SimDataset("a#slice0001", (5,) * 20, ("FAST",))
    assert [r.n_files for r in slice_requests] == [20, 20, 5, 3, 50]
    assert sum(r.n_bytes for r in slice_requests[:3]) == datasets[0].n_bytes
    assert {dataset_of[r.request_id] for r in slice_requests[:3]} == {1} and len({r.request_id for r in slice_requests}) == 5


def test_the_bound_for_every_policy_leaves_out_the_dataset_arrival_term_only():
    datasets, requests = bench.make_workload(30, 3000, 20 * TB, 3)
    buffers = {dest: int(0.8 * TB) for dest in bench.DESTINATIONS}
    bounds = bench.lower_bounds(datasets, requests, buffers, 3600.0)
    assert bounds["buffer_slices"] <= bounds["buffer_recall"]
    assert bench.every_policy_bound(bounds) == max(v for k, v in bounds.items() if k != "buffer_recall")
