"""Carousel benchmark: our admission/source-choice/stuck-recovery vs upstream's rules, on simulated workloads
(pandajedi_wf_dev.simulators.tape), same seed for every policy.  Prints one table row per (scenario, seed, policy).

    python benchmarks/carousel_benchmark.py            # 500 datasets, 200,000 files, 1 PB, 5 tapes; 3 seeds
    python benchmarks/carousel_benchmark.py --quick    # the same shrunk 10x (volume, buffers, hold time); 5 seeds
    python benchmarks/carousel_benchmark.py --seeds 1 2 3 --scenarios tight-buffer --slice-files 40

Policies: "ours" is what the production daemon does (a dataset staged by one rule); "ours-slices" is the same cycle
over slices of ``--slice-files`` files, each a dataset of its own with its own rule (``sliced``), SIMULATED: the
daemon does not stage slices yet; "upstream" is upstream's rules, re-implemented (below).

Ends with ``RESULT carousel-slices-simulated ...`` then ``RESULT carousel default_eff=<min over seeds>
tight_eff=<min over seeds> vs_upstream=<min ratio>`` for the daemon's policy: the efficiencies against the largest
lower bound valid for the policy (``lower_bounds``; ``every_policy_bound`` for slices), the ratio upstream's makespan /
ours on the default scenario.

Scenarios: "default" (200 TB buffers, never binding) and "tight-buffer" (40 TB per destination, far below
the ~120 TB upstream's rules keep there).  Our disk buffer never exceeding its cap is a hard invariant:
asserted after every cycle of our runs.  Efficiency = lower bound / makespan (see ``lower_bounds``): ``eff`` against
the largest bound valid for the policy, ``eff/agg`` against the naive aggregate-bandwidth one.
Under each of our runs a line says where the capped buffers went over the run (``BufferLedger``).

"Upstream" here is a RE-IMPLEMENTATION of upstream's rules (pandaserver/taskbuffer/DataCarousel.py 1.0.4):
files-only window of 10,000 queued+staging files per tape, tape chosen at random when the request is made
(avoiding CERN-PROD when another replica exists), fair split of the tape quota across gshares, no byte
limit, no disk-buffer limit, no stuck recovery.  Upstream's own DataCarouselInterface cannot be driven
here: see ``upstream_drivability``.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pandajedi_wf.carousel import lifecycle as lc  # noqa: E402
from pandajedi_wf.carousel.admission import DISK_BUFFER_FULL  # noqa: E402
from pandajedi_wf.carousel.config import TB, load_config  # noqa: E402
from pandajedi_wf.carousel.cycle import MemoryBook, retire, run_cycle  # noqa: E402
from pandajedi_wf.carousel.slicing import slice_ranges  # noqa: E402
from pandajedi_wf.carousel.state import StagingRequest  # noqa: E402
from pandajedi_wf_dev.simulators.tape import FaultModel, SimDataset, TapeEndpoint, TapeSimulator  # noqa: E402

GB = 10**9
CYCLE_SECONDS = 300.0
CONSUME_SECONDS = 3 * 3600.0  # tasks use a done dataset this long before its rule is released (full run; scaled with it)
# ours-slices: each recall staged as slices of this many files, each by a rule of its own (``carousel/slicing.py``);
# SIMULATED here only: the production daemon stages a dataset by one rule (slices need a schema change, not built yet)
SLICE_FILES = 20
UPSTREAM_MAX_FILES = 10_000  # SourceTapeConfig.max_size default
UPSTREAM_SHARE_QUOTA = 10_000  # QUEUE_FAIR_SHARE_MAX_QUOTA

TAPES = [
    TapeEndpoint("CERN-PROD_TAPE", 8, 375e6, 60),
    TapeEndpoint("BNL-OSG2_TAPE", 6, 333e6, 90),
    TapeEndpoint("FZK-LCG2_TAPE", 4, 300e6, 90),
    TapeEndpoint("IN2P3-CC_TAPE", 4, 200e6, 120),
    TapeEndpoint("TRIUMF-LCG2_TAPE", 2, 250e6, 120),
]
DESTINATIONS_TB = 200
DESTINATIONS = {"NUCLEUS_A_DATADISK": DESTINATIONS_TB * TB, "NUCLEUS_B_DATADISK": DESTINATIONS_TB * TB}
TIGHT_BUFFER_BYTES = 40 * TB  # per destination in the tight-buffer scenario; upstream's rules keep ~120 TB there
SHARES = [("Express", 1, 1.0), ("Data Derivations", 2, 3.0), ("MC Reprocessing", 3, 2.0), ("User Analysis", 4, 1.0)]
USERS = ["prodsys", "prodsys", "prodsys", "alice", "bob", "carol"]
FAULTS = FaultModel(failure_probability=0.002, stuck_probability=2e-5, hang_probability=2e-5, retry_delay_seconds=600)


def make_workload(n_datasets: int, n_files: int, n_bytes: int, seed: int) -> tuple[list[SimDataset], list[StagingRequest]]:
    rng = random.Random(seed)
    arrival_window = 0.05 * n_bytes / sum(t.bytes_per_second for t in TAPES)  # tasks ask during the first 5% of the run
    weights = [t.bytes_per_second for t in TAPES]
    raw_files = [min(max(rng.lognormvariate(0, 0.6), 0.15), 4.0) for _ in range(n_datasets)]
    scale = n_files / sum(raw_files)
    counts = [max(10, round(x * scale)) for x in raw_files]
    counts[-1] += max(0, n_files - sum(counts))
    sizes = [[min(max(rng.lognormvariate(0, 0.5), 0.1), 4.0) for _ in range(c)] for c in counts]
    byte_scale = n_bytes / sum(map(sum, sizes))
    datasets, requests = [], []
    share_names = [s[0] for s in SHARES]
    for i, (count, fsizes) in enumerate(zip(counts, sizes)):
        k = rng.choices([1, 2, 3], weights=[30, 50, 20])[0]
        tapes: list[str] = []
        while len(tapes) < k:
            t = rng.choices(TAPES, weights=weights)[0].name
            if t not in tapes:
                tapes.append(t)
        on_disk = rng.random() < 0.04
        name = f"data18_13TeV:data18_13TeV.{i:05d}.physics_Main.RAW"
        ds = SimDataset(name, tuple(math.ceil(s * byte_scale) for s in fsizes), tuple(tapes), ("NUCLEUS_A_DATADISK",) if on_disk else ())
        datasets.append(ds)
        share = rng.choices(SHARES, weights=[1, 4, 3, 2])[0]
        requests.append(
            StagingRequest(
                request_id=i + 1,
                dataset=name,
                n_files=count,
                n_bytes=ds.n_bytes,
                user=rng.choice(USERS),
                gshare=share[0],
                destination=rng.choice(list(DESTINATIONS)),
                sources=ds.tapes,
                on_disk=on_disk,
                task_priority=rng.choice([900, 1000, 1000, 1100]),
                created_at=rng.uniform(0, arrival_window),
                share_rank=share[1],
            )
        )
    assert set(share_names) >= {r.gshare for r in requests}
    return datasets, requests


def our_config(buffers: dict[str, int]) -> dict:
    """What an operator writes: each tape's expected rate, drives and mount latency (facts of the site), the
    buffers, shares and the agent's cycle period.  No window is tuned: windows come from the bandwidth-delay
    product, hung files from the expected delivery time, and the stuck timeout keeps its 12 h default."""
    return {
        "default_tape": {"max_files": 10_000},
        "tapes": {t.name: {"expected_bytes_per_second": t.bytes_per_second, "drives": t.drives, "mount_seconds": t.mount_seconds} for t in TAPES},
        "disk_buffers": buffers,
        "user_max_bytes": 400 * TB,
        "share_weights": {name: w for name, _, w in SHARES},
        "cycle_seconds": int(CYCLE_SECONDS),
    }


class Observer:
    """Collects what the benchmark prints, from rules just before they are released."""

    def __init__(self, sim: TapeSimulator, requests: list[StagingRequest], dataset_of: dict[int, int] | None = None):
        self.sim = sim
        self.created = {r.request_id: r.created_at for r in requests}
        self.dataset_of = dataset_of or {}  # a slice's request id -> its dataset's (ours-slices)
        self.first_file: dict[int, float] = {}
        self.done: dict[int, float] = {}
        self.ledger: BufferLedger | None = None

    def look(self, request_id: int, rule_id: str | None) -> None:
        if rule_id and rule_id in self.sim.rules:
            _, first, done = self.sim.rule_times(rule_id)
            if first is not None:
                self.first_file.setdefault(request_id, first)
            if done is not None:
                self.done.setdefault(request_id, done)


class BufferLedger:
    """Where the capped disk buffers go, cycle by cycle (time averages over the run, per capped destination):
    bytes of done datasets the tasks still hold, bytes landed while the rest of their dataset is still to come,
    bytes the carousel reserved that are not on disk yet (of them: requests with no file landed yet), and what
    nobody reserved; besides, the drive time left idle in cycles where requests waited for the buffer."""

    PARTS = ("held_after_done", "landed_waiting_for_rest", "reserved_not_landed", "reserved_nothing_landed_yet", "unreserved")

    def __init__(self, sim: TapeSimulator, config):
        self.sim = sim
        self.caps = {d: config.disk_buffer_bytes(d) for d in sim.buffers if config.disk_buffer_bytes(d)}
        self.sums = dict.fromkeys(self.PARTS, 0.0)
        self.cycles = 0
        self.busy = {t: 0.0 for t in sim.tapes}
        self.idle_waiting = self.drive_time_waiting = 0.0

    def look(self, book: MemoryBook, report, seconds: float) -> None:
        """One cycle: the reservations as they stand, and the drives' use over the ``seconds`` before it."""
        parts = dict.fromkeys(self.PARTS, 0)
        for rec in book.records(lc.HOLDS_BUFFER):
            if rec.source is None or rec.request.destination not in self.caps:
                continue
            if rec.status == lc.DONE:
                parts["held_after_done"] += rec.request.n_bytes
            else:
                parts["landed_waiting_for_rest"] += rec.request.n_bytes - rec.bytes_left
                parts["reserved_not_landed"] += rec.bytes_left
                parts["reserved_nothing_landed_yet"] += rec.bytes_left if rec.files_done == 0 else 0
        parts["unreserved"] = sum(self.caps.values()) - parts["held_after_done"] - parts["landed_waiting_for_rest"] - parts["reserved_not_landed"]
        for k, v in parts.items():
            self.sums[k] += v / len(self.caps)
        self.cycles += 1
        drive_time = sum(t.drives for t in self.sim.tapes.values()) * seconds
        busy = {t: s.busy_seconds for t, s in self.sim.tape_stats.items()}
        if report.held.get(DISK_BUFFER_FULL):
            used = sum(busy[t] - self.busy[t] for t in busy)
            self.idle_waiting += drive_time - used  # (a batch's drive time is counted when it starts: summed, not per cycle)
            self.drive_time_waiting += drive_time
        self.busy = busy

    def summary(self) -> str:
        if not self.caps or not self.cycles:
            return ""
        avg = {k: v / self.cycles / TB for k, v in self.sums.items()}
        cap = sum(self.caps.values()) / len(self.caps) / TB
        idle = self.idle_waiting / self.drive_time_waiting if self.drive_time_waiting else 0.0
        return (
            f"buffer per destination, time average over the run (TB of {cap:.0f}): held after done {avg['held_after_done']:.1f}, "
            f"landed waiting for the rest of its rule {avg['landed_waiting_for_rest']:.1f}, reserved not on disk {avg['reserved_not_landed']:.1f} "
            f"(of it nothing landed yet {avg['reserved_nothing_landed_yet']:.1f}), unreserved {avg['unreserved']:.1f}; "
            f"drive time idle while requests waited for the buffer {idle:.0%}"
        )


def _visible(book: MemoryBook, now: float) -> MemoryBook:
    """Requests are only known to the carousel once their task asked for them."""
    view = MemoryBook()
    view.by_id = {k: v for k, v in book.by_id.items() if v.request.created_at <= now}
    return view


def sliced(sim: TapeSimulator, datasets: list[SimDataset], requests: list[StagingRequest], max_files: int) -> tuple[list[StagingRequest], dict[int, int]]:
    """Each recall cut into slices (``slicing.slice_ranges`` over its files in tape order), each made a dataset of
    its files (``make_slice_dataset``, ``<dataset>#sliceNNNN``, in Rucio a dataset DID of the carousel's own: a rule
    given a list of file DIDs would be one rule per file) and a request of its own: admitted, recalled, followed,
    prioritised, switched and retired by the same cycle as a dataset, under the same windows, caps and fair share.
    Returns the requests and each slice's dataset request id."""
    out, dataset_of = [], {}
    for ds, r in zip(datasets, requests):
        ranges = [(0, len(ds.file_bytes))] if r.on_disk else slice_ranges(ds.file_bytes, max_files)
        if len(ranges) == 1:
            out.append(r)
            continue
        files = sim.file_names(ds.name)
        for k, (a, b) in enumerate(ranges):
            name = f"{ds.name}#slice{k:04d}"
            sim.make_slice_dataset(name, ds.name, files[a:b])
            out.append(replace(r, request_id=r.request_id * 10_000 + k, dataset=name, n_files=b - a, n_bytes=sim.datasets[name].n_bytes))
            dataset_of[out[-1].request_id] = r.request_id
    return out, dataset_of


def run_ours(datasets, requests, seed: int, horizon: float, buffers: dict[str, int] = DESTINATIONS, consume: float = CONSUME_SECONDS, enforce_cap: bool = True, slice_files: int = 0):
    """Our cycle on the simulator. The tasks hold what a rule brought ``consume`` seconds after the carousel saw the
    rule done (its files released to JEDI), then the rule is retired; with ``slice_files`` each recall is staged as
    slices (``sliced``) and each slice is retired ``consume`` after it is done: JEDI makes jobs for released files as
    they come, so its tasks are done with a slice's files ``consume`` after the slice's last file, whatever the rest
    of the dataset does (the same holding time as for a dataset rule, counted from the rule's own last file)."""
    config = load_config(our_config(buffers))
    sim = TapeSimulator(TAPES, datasets, buffers=buffers, faults=FAULTS, seed=seed)
    dataset_of = None
    if slice_files:
        requests, dataset_of = sliced(sim, datasets, requests, slice_files)
    book = MemoryBook(requests)
    obs = Observer(sim, requests, dataset_of)
    throughput: dict[str, float] = {}
    switches = 0
    busy_before = set()
    ledger = BufferLedger(sim, config)
    while sim.now < horizon:
        for rec in book.records([lc.DONE]):  # the daemon retires before it admits: the disk freed is used this cycle
            if rec.done_at is not None and sim.now >= rec.done_at + consume:
                retire(book, sim, rec)
        view = _visible(book, sim.now)
        report = run_cycle(config, view, sim, sim.now, throughput, elapsed=CYCLE_SECONDS, busy_tapes=busy_before)
        book.by_id.update(view.by_id)
        ledger.look(book, report, CYCLE_SECONDS if sim.now else 0.0)
        switches += report.switched
        over = [d for d, b in sim.buffers.items() if b.capacity is not None and b.peak > b.capacity]
        assert not (over and enforce_cap), f"hard invariant broken: disk buffer over its cap at {over} (t={sim.now:.0f} s)"
        for rec in book.records([lc.STAGING, lc.DONE]):
            obs.look(rec.request.request_id, rec.rule_id)
        if all(rec.status in lc.STAGING_REQUEST.final for rec in book.by_id.values()):
            break
        busy_before = {t for t in sim.tapes if sim.tape_has_work(t)}
        sim.advance(CYCLE_SECONDS)
        busy_before &= {t for t in sim.tapes if sim.tape_has_work(t)}
    failed = sum(rec.status == lc.FAILED for rec in book.by_id.values())
    obs.ledger = ledger
    return sim, obs, switches, failed + len(requests) - len(obs.done)


# ---- upstream's rules, re-implemented --------------------------------------------------------------


def upstream_choose_source(sources: tuple[str, ...], rng: random.Random) -> str:
    """DataCarouselInterface._choose_tape_source_rse: random, avoiding CERN-PROD when possible."""
    non_cern = [s for s in sources if "CERN-PROD" not in s]
    return rng.choice(non_cern) if non_cern else rng.choice(list(sources))


def upstream_requests_to_stage(queued, staging, sources) -> list:
    """DataCarouselInterface.get_requests_to_stage: per tape, files-only quota with a gshare split."""
    chosen = [rec for rec in queued if rec.request.on_disk]
    by_tape: dict[str, list] = {}
    for rec in queued:
        if not rec.request.on_disk:
            by_tape.setdefault(sources[rec.request.request_id], []).append(rec)
    for tape, recs in by_tape.items():
        on_tape = [s for s in staging if s.source == tape]
        staging_files = sum(s.request.n_files - s.files_done for s in on_tape)
        quota = UPSTREAM_MAX_FILES - staging_files
        recs.sort(key=lambda r: (r.request.share_rank, -r.request.task_priority, r.request.request_id))
        ordered = recs
        init_quota = min(UPSTREAM_SHARE_QUOTA, max(quota, 0))
        if init_quota > 0:
            shares = list(dict.fromkeys(r.request.gshare for r in recs))
            per_share_staging = {}
            for s in on_tape:
                per_share_staging[s.request.gshare] = per_share_staging.get(s.request.gshare, 0) + s.request.n_files - s.files_done
            per_quota = init_quota // len(shares)
            virtual_quota = (init_quota + sum(per_share_staging.get(g, 0) for g in shares)) // len(shares)
            fair, unchosen = [], []
            for g in shares:
                if per_share_staging.get(g, 0) >= virtual_quota:
                    continue
                cum = per_share_staging.get(g, 0)
                for r in (r for r in recs if r.request.gshare == g):
                    cum += r.request.n_files
                    (fair if cum <= per_quota else unchosen).append((cum, r))
            remaining = init_quota - sum(r.request.n_files for _, r in fair)
            more = []
            if remaining > 0:
                cum = 0
                for _, r in sorted(unchosen, key=lambda x: (x[0], x[1].request.share_rank)):
                    cum += r.request.n_files
                    if cum <= remaining:
                        more.append(r)
            seen: set[int] = set()
            ordered = [r for r in [r for _, r in fair] + more + recs if not (r.request.request_id in seen or seen.add(r.request.request_id))]
        cum = 0
        extra_taken = False
        for rec in ordered:
            cum += rec.request.n_files
            if cum < quota:
                chosen.append(rec)
            elif quota > 0 and not extra_taken:
                chosen.append(rec)
                extra_taken = True
    return chosen


def run_upstream(datasets, requests, seed: int, horizon: float, buffers: dict[str, int] = DESTINATIONS, consume: float = CONSUME_SECONDS):
    sim = TapeSimulator(TAPES, datasets, buffers=buffers, faults=FAULTS, seed=seed)
    rng = random.Random(seed + 1)
    sources = {r.request_id: upstream_choose_source(r.sources, rng) for r in requests}
    book = MemoryBook(requests)
    obs = Observer(sim, requests)
    idle_since = None
    while sim.now < horizon:
        now = sim.now
        for rec in book.records([lc.STAGING]):
            rule = sim.get_rules([rec.rule_id]).get(rec.rule_id)
            obs.look(rec.request.request_id, rec.rule_id)
            rec = book.save(rec, lc.STAGING, files_done=rule.locks_ok)
            if rule.locks_ok >= rec.request.n_files:
                book.save(rec, lc.DONE, done_at=now)
        for rec in book.records([lc.DONE]):
            obs.look(rec.request.request_id, rec.rule_id)
            if now >= rec.done_at + consume:
                retire(book, sim, rec)
        queued = [rec for rec in book.records([lc.QUEUED]) if rec.request.created_at <= now]
        for rec in upstream_requests_to_stage(queued, book.records([lc.STAGING]), sources):
            source = None if rec.request.on_disk else sources[rec.request.request_id]
            rec = book.save(rec, lc.SUBMITTING, source=source)
            rule_id = sim.create_staging_rule(rec.request.dataset, source, rec.request.destination, "Data Carousel Production", 45 * 86400)
            book.save(rec, lc.STAGING, rule_id=rule_id, started_at=now)
        open_work = [rec for rec in book.by_id.values() if rec.status not in lc.STAGING_REQUEST.final]
        if not open_work:
            break
        stalled = not any(sim.tape_has_work(t) for t in sim.tapes) and all(rec.status == lc.STAGING for rec in open_work)
        idle_since = (idle_since or now) if stalled else None
        if idle_since is not None and now - idle_since > 86400:
            break  # only stuck rules left; upstream needs a human from here
        sim.advance(CYCLE_SECONDS)
    unfinished = sum(rec.status not in (lc.DONE, lc.RETIRED) for rec in book.by_id.values())
    return sim, obs, unfinished


# ---- figures --------------------------------------------------------------------------------------


def upstream_drivability() -> str:
    try:
        from pandaserver.taskbuffer import DataCarousel  # noqa: F401
    except Exception as exc:  # the point is to report why
        first = f"importing pandaserver.taskbuffer.DataCarousel fails here: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    else:
        first = "pandaserver.taskbuffer.DataCarousel imports"
    return (
        f"{first}. Even when importable, DataCarouselInterface is not drivable without a DB: its constructor reads "
        "the config via taskBufferIF.getConfigValue and RSE lists via the module-global rucioAPI; get_requests_to_stage "
        "reads queued requests (get_data_carousel_queued_requests_JEDI), the whole requests table (querySQL) and "
        "getGShareStatus, and stage_request takes DB row locks and writes rows around the Rucio call; no pure "
        "decision function exists, so its rules are re-implemented above."
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---- lower bounds ---------------------------------------------------------------------------------


def arrival_disk_seconds(file_bytes: tuple[int, ...], tapes: list[TapeEndpoint]) -> float:
    """Least disk (byte-seconds) a dataset holds while it arrives, before its last file lands, whatever the policy.

    In the simulator a file's bytes land all at once when its drive finishes reading it, and the files that count
    for a rule are read on one tape at a time (a source switch makes every read still running on the old tape void).
    So at most k = min(drives, files) of the dataset's files are read at once, each at the drive rate: the bytes read
    grow at most at R = k x drive rate, and at any time at most the k largest files (S_k bytes) are read but not yet
    landed. With B the dataset's bytes and T its completion, x seconds before T at least B - S_k - R x bytes are
    on disk; integrated: (B - S_k)^2 / 2R. Over the dataset's tapes the largest R and S_k are taken (a switch
    moves it from one tape to another)."""
    n = len(file_bytes)
    rate = max(min(t.drives, n) * t.drive_bytes_per_second for t in tapes)
    largest = sorted(file_bytes, reverse=True)
    in_reading = max(sum(largest[: min(t.drives, n)]) for t in tapes)
    return max(0, sum(file_bytes) - in_reading) ** 2 / (2 * rate)


def least_makespan(byte_seconds: float, cap: float, bandwidth: float, start: float) -> float:
    """The least M such that a disk of ``cap`` bytes, filled at most at ``bandwidth`` from ``start`` on, can hold
    ``byte_seconds`` over [0, M]: the integral of min(cap, bandwidth * (t - start)) reaches it."""
    ramp = cap * cap / (2 * bandwidth)  # held while the disk fills for the first time
    if byte_seconds <= ramp:
        return start + math.sqrt(2 * byte_seconds / bandwidth)
    return start + (byte_seconds + ramp) / cap


DATASET_RULES_ONLY = ("buffer_recall",)  # bounds valid only for policies that stage a dataset by one rule


def lower_bounds(datasets: list[SimDataset], requests: list[StagingRequest], buffers: dict[str, int], consume: float) -> dict[str, float]:
    """Makespans no policy can beat on this workload and simulator (seconds), each a valid bound; all but those named
    in ``DATASET_RULES_ONLY`` hold for every policy, whether it stages a dataset by one rule or by slices of its files:

    - aggregate: every recalled byte / the sum of all tape bandwidths (the naive bound);
    - replicas: for every set S of tapes and every arrival time a, the bytes of datasets requested at or
      after a whose replicas all lie in S need a + bytes / bandwidth(S);
    - dataset: a dataset cannot finish before its request + the fastest mount + its bytes read by at most
      min(drives, files) drives of each of its tapes at once (slices of it may be read on several tapes);
    - buffer: per destination, bytes done more than ``consume`` seconds before the end have held the buffer
      that long, so cap * M >= consume * (bytes - cap); "done" is the end of the rule that brought them (its
      dataset's or its slice's last file): the tasks hold what a rule brought ``consume`` seconds after that;
    - buffer_slices, the bound under the cap for every policy: the disk integrated over [0, M] is at most cap * M,
      and at least consume * (bytes - cap), as for ``buffer`` (at most cap bytes, those on disk at M, can be done in
      the last ``consume`` seconds); the disk cannot be full from the start: by time t at most BW * (t - t0) bytes
      have landed (BW the sum of all tape bandwidths, t0 the first request plus the shortest mount), so the disk
      integrated over [0, M] is at most U(M) = integral of min(cap, BW * (t - t0)) dt, which is
      cap * (M - t0) - cap^2 / (2 BW) once the disk can be full. M is at least the least M with U(M) >= the bytes'
      holding (``least_makespan``), per destination, and for the destinations together (their caps summed: they share
      the tapes, so all of them together land at most BW). The disk a rule's files fill while the rest of them
      arrive is not counted: a policy may stage one file per rule (the finest slicing), whose file lands whole;
    - buffer_recall, the bound under the cap for policies staging a dataset by ONE rule (``DATASET_RULES_ONLY``):
      as buffer_slices, plus the disk each dataset fills while it arrives (``arrival_disk_seconds``). A slicing
      policy can beat it: the landed files of a slice wait only for the rest of their slice.
      What neither counts, because no bound valid for every such policy can assume it: that a dataset's files are
      read in bring-online batches of 200 by one drive each (how a tape queue cuts a dataset into batches depends on
      the policy's rules, switches and the retries), and that a policy must reserve disk for bytes not yet landed
      (only a policy that does not know when the tasks release their data needs that, see
      carousel_reservation_what_if.py).
    """
    recalls = [(r, d) for r, d in zip(requests, datasets) if not r.on_disk]
    tapes = {t.name: t for t in TAPES}
    bandwidth_all = sum(t.bytes_per_second for t in TAPES)
    aggregate = sum(d.n_bytes for _, d in recalls) / bandwidth_all
    replicas = 0.0
    names = list(tapes)
    for mask in range(1, 2 ** len(names)):
        subset = {n for i, n in enumerate(names) if mask >> i & 1}
        bandwidth = sum(tapes[n].bytes_per_second for n in subset)
        inside = sorted((r.created_at, d.n_bytes) for r, d in recalls if set(d.tapes) <= subset)
        later = sum(b for _, b in inside)
        for created, n_bytes in inside:  # bytes requested at or after `created`
            replicas = max(replicas, created + later / bandwidth)
            later -= n_bytes
    dataset = max(
        r.created_at
        + min(tapes[t].mount_seconds for t in d.tapes)
        + d.n_bytes / sum(min(tapes[t].drives, len(d.file_bytes)) * tapes[t].drive_bytes_per_second for t in d.tapes)
        for r, d in recalls
    )
    first_landing = min(r.created_at for r, _ in recalls) + min(t.mount_seconds for t in TAPES) if recalls else 0.0
    buffer = buffer_recall = buffer_slices = 0.0
    held_all = arriving_all = capped = 0.0
    for dest, cap in buffers.items():
        mine = [d for r, d in recalls if r.destination == dest]
        held = sum(d.n_bytes for d in mine)
        arriving = sum(arrival_disk_seconds(d.file_bytes, [tapes[t] for t in d.tapes]) for d in mine)
        if cap:
            buffer = max(buffer, consume * max(0, held - cap) / cap)
            buffer_recall = max(buffer_recall, least_makespan(consume * max(0, held - cap) + arriving, cap, bandwidth_all, first_landing))
            buffer_slices = max(buffer_slices, least_makespan(consume * max(0, held - cap), cap, bandwidth_all, first_landing))
            held_all += consume * max(0, held - cap)
            arriving_all += arriving
            capped += cap
    if capped:
        buffer_recall = max(buffer_recall, least_makespan(held_all + arriving_all, capped, bandwidth_all, first_landing))
        buffer_slices = max(buffer_slices, least_makespan(held_all, capped, bandwidth_all, first_landing))
    return {
        "aggregate": aggregate,
        "replicas": replicas,
        "dataset": dataset,
        "buffer": buffer,
        "buffer_slices": buffer_slices,
        "buffer_recall": buffer_recall,
    }


def every_policy_bound(bounds: dict[str, float]) -> float:
    """The largest bound valid for every policy, slicing ones included."""
    return max(v for k, v in bounds.items() if k not in DATASET_RULES_ONLY)


# ---- one run, as a table row ----------------------------------------------------------------------


def row(scenario: str, seed: int, policy: str, sim: TapeSimulator, obs: Observer, bound: float, aggregate: float, recoveries, incomplete: int) -> dict:
    makespan = max(obs.done.values()) if obs.done else float("nan")
    first_file: dict[int, float] = {}  # per dataset: its first slice's first file
    for i, t in obs.first_file.items():
        d = obs.dataset_of.get(i, i)
        first_file[d] = min(t, first_file.get(d, t))
    created = {obs.dataset_of.get(i, i): c for i, c in obs.created.items()}
    ttff = [(t - created[d]) / 3600 for d, t in first_file.items()]
    bufs = [b for b in sim.buffers.values() if b.capacity is not None]
    worst = max(bufs, key=lambda b: b.peak / b.capacity)
    return {
        "scenario": scenario,
        "seed": seed,
        "policy": policy,
        "makespan": makespan / 3600,
        "bound": bound / 3600,
        "eff": bound / makespan,
        "eff_agg": aggregate / makespan,
        "busy": [sim.tape_stats[t.name].busy_seconds / (t.drives * makespan) for t in TAPES],
        "peak": worst.peak / TB,
        "cap": worst.capacity / TB,
        "over_h": max(b.seconds_over_capacity for b in bufs) / 3600,
        "over_tbh": sum(b.byte_seconds_over_capacity for b in bufs) / TB / 3600,
        "ttff": (statistics.median(ttff), percentile(ttff, 0.95)),
        "recoveries": recoveries,
        "incomplete": incomplete,
        "ledger": obs.ledger.summary() if obs.ledger else "",
    }


HEADER = (
    f"{'scenario':<13}{'seed':>9} {'policy':<12}{'makespan':>9}{'bound':>7}{'eff':>6}{'eff/agg':>8}  "
    f"{'busy ' + '/'.join(t.name.split('-')[0][:4] for t in TAPES):<31}{'peak/cap TB':>12}{'over cap':>15}"
    f"{'ttff med/p95':>14}{'stuck rec':>10}{'undone':>7}{'ratio':>7}"
)


def show(r: dict, ratio: float | None) -> None:
    busy = "/".join(f"{b:.2f}" for b in r["busy"])
    over = f"{r['over_h']:.1f}h {r['over_tbh']:.0f}TBh" if r["over_h"] else "0"
    print(
        f"{r['scenario']:<13}{r['seed']:>9} {r['policy']:<12}{r['makespan']:>8.1f}h{r['bound']:>6.1f}h{r['eff']:>6.3f}{r['eff_agg']:>8.3f}  "
        f"{busy:<31}{r['peak']:>6.0f}/{r['cap']:<5.0f}{over:>15}{r['ttff'][0]:>7.1f}/{r['ttff'][1]:<5.1f}h"
        f"{str(r['recoveries']):>9}{r['incomplete']:>7}{'' if ratio is None else f'{ratio:>6.2f}x':>7}"
    )


def run_scenario(scenario: str, size: tuple[int, int, int], seed: int, slice_files: int = SLICE_FILES) -> tuple[list[dict], dict[str, float]]:
    """One workload, every policy, same seed: ours (the production daemon's policy: a dataset by one rule), ours-slices
    (the same cycle over slices of ``slice_files`` files, simulated) and upstream.  Everything scales with the data
    volume (buffers, the time a dataset is held after it is done), so --quick is the full run shrunk, not a different
    problem.  Each arm's efficiency is taken against the largest bound valid for its kind of policy: a dataset-rule
    policy against every bound, ours-slices against those valid for every policy (``every_policy_bound``)."""
    datasets, requests = make_workload(*size, seed)
    scale = size[2] / (1000 * TB)
    consume = CONSUME_SECONDS * scale
    if scenario == "default":
        buffers = {dest: int(cap * scale) for dest, cap in DESTINATIONS.items()}
    else:  # well below what upstream keeps in flight, but every dataset still fits
        largest = max(d.n_bytes for d in datasets)
        buffers = {dest: int(max(TIGHT_BUFFER_BYTES * scale, 2 * largest)) for dest in DESTINATIONS}
    bounds = lower_bounds(datasets, requests, buffers, consume)
    rules_bound, any_bound = max(bounds.values()), every_policy_bound(bounds)
    horizon = 30 * rules_bound
    rows = []
    sim, obs, switches, incomplete = run_ours(datasets, requests, seed, horizon, buffers, consume)
    rows.append(row(scenario, seed, "ours", sim, obs, rules_bound, bounds["aggregate"], switches, incomplete))
    if slice_files:
        sim, obs, switches, incomplete = run_ours(datasets, requests, seed, horizon, buffers, consume, slice_files=slice_files)
        rows.append(row(scenario, seed, "ours-slices", sim, obs, any_bound, bounds["aggregate"], switches, incomplete))
    sim_u, obs_u, unfinished = run_upstream(datasets, requests, seed, horizon, buffers, consume)
    rows.append(row(scenario, seed, "upstream", sim_u, obs_u, rules_bound, bounds["aggregate"], "manual", unfinished))
    for r in rows[:-1]:
        assert r["peak"] <= r["cap"], f"hard invariant broken: the disk buffer of {r['policy']} exceeded its cap"
    return rows, bounds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a tenth of the full workload")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="workload/simulator seeds (default: three)")
    parser.add_argument("--scenarios", nargs="+", default=["default", "tight-buffer"], choices=["default", "tight-buffer"])
    parser.add_argument("--slice-files", type=int, default=SLICE_FILES, help=f"files per slice of ours-slices (default {SLICE_FILES}; 0: no such arm)")
    args = parser.parse_args(argv)
    seeds = args.seeds or ([20240501, 7, 11] if not args.quick else [20240501, 7, 11, 12, 13])
    size = (60, 20_000, 100 * TB) if args.quick else (500, 200_000, 1000 * TB)
    scale = size[2] / (1000 * TB)
    print(
        f"workload per seed: {size[0]} datasets, {size[1]} files, {size[2] / 1e15:.2f} PB; tapes "
        f"{', '.join(f'{t.name}={t.bytes_per_second / GB:.1f}GB/s x{t.drives}' for t in TAPES)}; cycle {CYCLE_SECONDS:.0f} s, "
        f"what a rule brought held {CONSUME_SECONDS * scale / 3600:.1f} h after it is done; buffers {DESTINATIONS_TB * scale:.0f} TB (default) / "
        f"{TIGHT_BUFFER_BYTES * scale / TB:.0f} TB (tight-buffer) per destination; faults {FAULTS}"
    )
    print(
        "bound: for ours and upstream (a dataset by one rule) the largest of all lower bounds, for ours-slices the largest of those valid "
        f"for every policy (all but {', '.join(DATASET_RULES_ONLY)}; see lower_bounds); eff = bound / makespan; eff/agg = aggregate bound / makespan. "
        f"ours-slices ({args.slice_files} files a slice) is SIMULATED: the production daemon stages a dataset by one rule"
    )
    t0 = time.monotonic()
    summary: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    print(HEADER)
    for scenario in args.scenarios:
        for seed in seeds:
            rows, bounds = run_scenario(scenario, size, seed, args.slice_files)
            theirs = rows[-1]
            for r in rows:
                ratio = theirs["makespan"] / r["makespan"]
                show(r, ratio if r is not theirs else None)
                if r["ledger"]:
                    print(f"{'':<26}{r['ledger']}")
                if r is not theirs:
                    summary.setdefault((scenario, r["policy"]), []).append((r["eff"], r["eff_agg"], ratio))
            print(f"{'':<26}bounds: " + ", ".join(f"{k} {v / 3600:.1f}h" for k, v in bounds.items()))
    print("summary:")
    for (scenario, policy), runs in summary.items():
        effs, aggs, ratios = zip(*runs)
        print(
            f"  {scenario:<13} {policy:<12} efficiency min {min(effs):.3f} mean {statistics.mean(effs):.3f} (vs aggregate bound min {min(aggs):.3f}); "
            f"upstream/ours min {min(ratios):.2f}x mean {statistics.mean(ratios):.2f}x"
        )
    print("our buffer never over its cap: MET (asserted every cycle of every run of ours and ours-slices)")
    print("vs_upstream is taken on the default scenario: in tight-buffer upstream's rules overflow the cap (see 'over cap'), so its makespan there is no comparison")
    print("upstream makespan counts its completed datasets only; 'undone' = never completed (upstream has no stuck recovery)")
    print(f"upstream's own code: {upstream_drivability()}")
    print(f"wall time {time.monotonic() - t0:.0f} s")
    results = {}
    for policy in ("ours-slices", "ours"):
        if ("default", policy) in summary and ("tight-buffer", policy) in summary:
            effs = [e for e, _, _ in summary[("default", policy)]]
            ratios = [r for _, _, r in summary[("default", policy)]]
            tight = [e for e, _, _ in summary[("tight-buffer", policy)]]
            results[policy] = (min(effs), min(tight), min(ratios))
            print(
                f"targets ({policy}, every seed): default efficiency>=0.93 {'MET' if min(effs) >= 0.93 else 'MISSED'}; "
                f">=1.3x vs upstream (default scenario) {'MET' if min(ratios) >= 1.3 else 'MISSED'}; "
                f"tight-buffer efficiency>=0.85 {'MET' if min(tight) >= 0.85 else 'MISSED'}"
            )
    # the simulated slicing policy first; the last line is what the production daemon does
    for policy, label in (("ours-slices", "carousel-slices-simulated"), ("ours", "carousel")):
        if policy in results:
            d, t, v = results[policy]
            print(f"RESULT {label} default_eff={d:.3f} tight_eff={t:.3f} vs_upstream={v:.2f}")


if __name__ == "__main__":
    main()
