"""What-if for the tight-buffer scenario of carousel_benchmark.py: how fast would the carousel be if it reserved
in the disk buffer only the bytes already on disk (plus done datasets), instead of a whole dataset from its rule's
creation? That reservation is UNSAFE (the buffer overflows: the peak is printed), so it is not the carousel's; it
measures what the safe reservation costs, against the lower bounds of the benchmark.

    python benchmarks/carousel_reservation_what_if.py [--seeds 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[0]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import carousel_benchmark as bench  # noqa: E402
from pandajedi_wf.carousel import cycle, lifecycle as lc  # noqa: E402
from pandajedi_wf.carousel.config import TB  # noqa: E402
from pandajedi_wf.carousel.state import CarouselLoad  # noqa: E402

_safe_load = cycle.current_load


def _on_disk_only(records, throughput=None) -> CarouselLoad:
    records = list(records)
    load = _safe_load(records, throughput)
    buffers: dict[str, int] = {}
    for rec in records:
        if rec.status in lc.HOLDS_BUFFER and rec.source is not None:
            held = rec.request.n_bytes if rec.status == lc.DONE else rec.request.n_bytes - rec.bytes_left
            buffers[rec.request.destination] = buffers.get(rec.request.destination, 0) + held
    return CarouselLoad(load.tapes, load.users, load.shares, buffers, load.throughput)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    args = parser.parse_args(argv)
    size = (500, 200_000, 1000 * TB)
    for seed in args.seeds:
        datasets, requests = bench.make_workload(*size, seed)
        largest = max(d.n_bytes for d in datasets)
        buffers = {dest: int(max(bench.TIGHT_BUFFER_BYTES, 2 * largest)) for dest in bench.DESTINATIONS}
        bound = max(bench.lower_bounds(datasets, requests, buffers, bench.CONSUME_SECONDS).values())
        for label, load in (("safe (whole dataset from rule creation)", _safe_load), ("UNSAFE (bytes on disk only)", _on_disk_only)):
            cycle.current_load = load
            try:
                sim, obs, _, _ = bench.run_ours(datasets, requests, seed, 30 * bound, buffers, bench.CONSUME_SECONDS, enforce_cap=False)
            finally:
                cycle.current_load = _safe_load
            makespan = max(obs.done.values())
            peak = max(b.peak for b in sim.buffers.values())
            print(f"seed {seed} {label:<40} makespan {makespan / 3600:5.1f} h  bound {bound / 3600:.1f} h  eff {bound / makespan:.3f}  "
                  f"peak {peak / TB:.1f} TB on a {max(buffers.values()) / TB:.0f} TB cap")


if __name__ == "__main__":
    main()
