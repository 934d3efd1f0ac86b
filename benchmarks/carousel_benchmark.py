"""Carousel benchmark: our admission/source-choice/stuck-recovery vs upstream's rules, on one simulated
workload (pandajedi_wf.simulators.tape), same seed.  Prints figures; asserts nothing.

    python benchmarks/carousel_benchmark.py            # 500 datasets, >=200,000 files, >=1 PB, 5 tapes
    python benchmarks/carousel_benchmark.py --quick    # ~1/10 of that

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pandajedi_wf.carousel import lifecycle as lc  # noqa: E402
from pandajedi_wf.carousel.config import TB, load_config  # noqa: E402
from pandajedi_wf.carousel.cycle import MemoryBook, retire, run_cycle  # noqa: E402
from pandajedi_wf.carousel.state import StagingRequest  # noqa: E402
from pandajedi_wf.simulators.tape import FaultModel, SimDataset, TapeEndpoint, TapeSimulator  # noqa: E402

GB = 10**9
CYCLE_SECONDS = 300.0
CONSUME_SECONDS = 3 * 3600.0  # tasks use a done dataset this long before its rule is released
UPSTREAM_MAX_FILES = 10_000  # SourceTapeConfig.max_size default
UPSTREAM_SHARE_QUOTA = 10_000  # QUEUE_FAIR_SHARE_MAX_QUOTA

TAPES = [
    TapeEndpoint("CERN-PROD_TAPE", 8, 375e6, 60),
    TapeEndpoint("BNL-OSG2_TAPE", 6, 333e6, 90),
    TapeEndpoint("FZK-LCG2_TAPE", 4, 300e6, 90),
    TapeEndpoint("IN2P3-CC_TAPE", 4, 200e6, 120),
    TapeEndpoint("TRIUMF-LCG2_TAPE", 2, 250e6, 120),
]
DESTINATIONS = {"NUCLEUS_A_DATADISK": 200 * TB, "NUCLEUS_B_DATADISK": 200 * TB}
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


def our_config(datasets: list[SimDataset]) -> dict:
    biggest = max(d.n_bytes for d in datasets)
    return {
        "default_tape": {"max_files": 10_000},
        "tapes": {
            t.name: {"max_bytes": int(max(t.bytes_per_second * 2.5 * 3600, biggest)), "expected_bytes_per_second": t.bytes_per_second} for t in TAPES
        },
        "release_threshold": 0.8,
        "disk_buffers": DESTINATIONS,
        "user_max_bytes": 400 * TB,
        "share_weights": {name: w for name, _, w in SHARES},
        "stuck_timeout_seconds": 3600,
        "max_source_switches": 4,
    }


class Observer:
    """Collects what the benchmark prints, from rules just before they are released."""

    def __init__(self, sim: TapeSimulator, requests: list[StagingRequest]):
        self.sim = sim
        self.created = {r.request_id: r.created_at for r in requests}
        self.first_file: dict[int, float] = {}
        self.done: dict[int, float] = {}

    def look(self, request_id: int, rule_id: str | None) -> None:
        if rule_id and rule_id in self.sim.rules:
            _, first, done = self.sim.rule_times(rule_id)
            if first is not None:
                self.first_file.setdefault(request_id, first)
            if done is not None:
                self.done.setdefault(request_id, done)


def _visible(book: MemoryBook, now: float) -> MemoryBook:
    """Requests are only known to the carousel once their task asked for them."""
    view = MemoryBook()
    view.by_id = {k: v for k, v in book.by_id.items() if v.request.created_at <= now}
    return view


def run_ours(datasets, requests, seed: int, horizon: float):
    config = load_config(our_config(datasets))
    sim = TapeSimulator(TAPES, datasets, buffers=DESTINATIONS, faults=FAULTS, seed=seed)
    book = MemoryBook(requests)
    obs = Observer(sim, requests)
    throughput: dict[str, float] = {}
    switches = 0
    busy_before = set()
    while sim.now < horizon:
        view = _visible(book, sim.now)
        report = run_cycle(config, view, sim, sim.now, throughput, elapsed=CYCLE_SECONDS, busy_tapes=busy_before)
        book.by_id.update(view.by_id)
        switches += report.switched
        for rec in book.records([lc.STAGING, lc.DONE]):
            obs.look(rec.request.request_id, rec.rule_id)
            if rec.status == lc.DONE and rec.done_at is not None and sim.now >= rec.done_at + CONSUME_SECONDS:
                retire(book, sim, rec)
        if all(rec.status in lc.STAGING_REQUEST.final for rec in book.by_id.values()):
            break
        busy_before = {t for t in sim.tapes if sim.tape_has_work(t)}
        sim.advance(CYCLE_SECONDS)
        busy_before &= {t for t in sim.tapes if sim.tape_has_work(t)}
    failed = sum(rec.status == lc.FAILED for rec in book.by_id.values())
    return sim, obs, switches, failed


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


def run_upstream(datasets, requests, seed: int, horizon: float):
    sim = TapeSimulator(TAPES, datasets, buffers=DESTINATIONS, faults=FAULTS, seed=seed)
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
            if now >= rec.done_at + CONSUME_SECONDS:
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


def figures(label: str, sim: TapeSimulator, obs: Observer, lower_bound: float, stuck_recoveries: int | str, incomplete: int) -> float:
    makespan = max(obs.done.values()) if obs.done else float("nan")
    drive_seconds = sum(t.drives for t in TAPES) * makespan
    busy = sum(s.busy_seconds for s in sim.tape_stats.values()) / drive_seconds
    ttff = [(obs.first_file[i] - obs.created[i]) / 3600 for i in obs.first_file]
    print(f"[{label}]")
    print(f"  makespan              {makespan / 3600:8.1f} h   (lower bound {lower_bound / 3600:.1f} h, efficiency {lower_bound / makespan:.3f})")
    print(f"  datasets done         {len(obs.done)}   never completed: {incomplete}")
    print(f"  tape busy fraction    {busy:.3f}   " + " ".join(f"{n.split('_')[0]}={s.busy_seconds / (sim.tapes[n].drives * makespan):.2f}" for n, s in sim.tape_stats.items()))
    for dest, buf in sim.buffers.items():
        print(f"  disk buffer {dest}: peak {buf.peak / TB:7.1f} TB of cap {buf.capacity / TB:.0f} TB   over cap for {buf.seconds_over_capacity / 3600:.1f} h")
    print(f"  time to first file    median {statistics.median(ttff):.1f} h   p95 {percentile(ttff, 0.95):.1f} h")
    print(f"  stuck recoveries      {stuck_recoveries}   (stuck attempts {sim.stuck_attempts}, hung {sim.hung_attempts}, failed+retried {sim.failed_attempts})")
    return makespan


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a tenth of the full workload")
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args(argv)
    n_ds, n_files, n_bytes = (60, 20_000, 100 * TB) if args.quick else (500, 200_000, 1000 * TB)
    datasets, requests = make_workload(n_ds, n_files, n_bytes, args.seed)
    tape_bytes = sum(d.n_bytes for d, r in zip(datasets, requests) if not r.on_disk)
    aggregate = sum(t.bytes_per_second for t in TAPES)
    lower_bound = tape_bytes / aggregate
    print(
        f"workload: {len(datasets)} datasets, {sum(len(d.file_bytes) for d in datasets)} files, {sum(d.n_bytes for d in datasets) / 1e15:.3f} PB "
        f"({tape_bytes / 1e15:.3f} PB to recall, {sum(r.on_disk for r in requests)} pin-only), {len(TAPES)} tapes "
        f"{', '.join(f'{t.name}={t.bytes_per_second / GB:.1f}GB/s' for t in TAPES)}; seed {args.seed}"
    )
    print(f"physical lower bound: {tape_bytes / TB:.0f} TB / {aggregate / GB:.1f} GB/s = {lower_bound / 3600:.1f} h")
    horizon = 30 * lower_bound
    t0 = time.monotonic()
    sim, obs, switches, failed = run_ours(datasets, requests, args.seed, horizon)
    ours = figures("ours", sim, obs, lower_bound, switches, failed)
    t1 = time.monotonic()
    sim_u, obs_u, unfinished = run_upstream(datasets, requests, args.seed, horizon)
    theirs = figures("upstream rules (re-implementation)", sim_u, obs_u, lower_bound, "none (manual)", unfinished)
    t2 = time.monotonic()
    print(f"upstream makespan / ours = {theirs / ours:.2f}x (upstream measured over its completed datasets only)")
    ok_buffer = all(b.peak <= b.capacity for b in sim.buffers.values())
    print(
        f"targets: efficiency>=0.9 {'MET' if lower_bound / ours >= 0.9 else 'MISSED'}; >=1.3x vs upstream "
        f"{'MET' if theirs / ours >= 1.3 else 'MISSED'}; buffer within cap {'MET' if ok_buffer else 'MISSED'}"
    )
    print(f"upstream's own code: {upstream_drivability()}")
    print(f"wall time: ours {t1 - t0:.1f} s, upstream {t2 - t1:.1f} s")


if __name__ == "__main__":
    main()
