"""Placement benchmark: workflow-aware brokerage (pandajedi_wf.placement.decide) vs workflow-blind brokerage, on a
simulated grid, same seeds for both.  Prints a table per seed and ends with one RESULT line.

    python benchmarks/placement_benchmark.py                 # 24 sites, 600 workflows, seeds 1 2 3
    python benchmarks/placement_benchmark.py --quick         # 24 sites, 150 workflows, seed 1
    python benchmarks/placement_benchmark.py --seeds 4 5

The grid (simulated, nothing here runs JEDI): sites with CPU slots, a disk, a WAN ingress link (bytes/s, shared by
everything sent to the site, first come first served); four tape endpoints behind the tape simulator
(pandajedi_wf_dev.simulators.tape, drives, mounts, bandwidth), each recalling to the disk of its home site.
Workflows arrive over two days, mixed shapes: chains, fan-out/fan-in, scatter (slices of one input, then a merge),
loops (the same step iterated); 35 % read a tape-resident dataset, the others a disk dataset at a random site.
A step is brokered when its parents are done (and its tape input is on disk): all its jobs go to the one queue the
broker picks, its input not already at that site crosses the site's WAN link, then its jobs take the site's slots.

Brokers compared:
  blind  a RE-IMPLEMENTATION of upstream's GenJobBroker selection (pandajedi/jedibrokerage/GenJobBroker.py 1.0.4),
         labelled as such: every site passes the status/disk/walltime checks here; weight =
         (nRunning+1)/(nActivated+nAssigned+1)/(nAssigned+1) from the site's current jobs; the 5 best weights kept (ties shuffled);
         then InputChunk.getOneSiteCandidate's weighted random choice among them. It never looks at the data.
  ours   the same upstream candidates, then our WorkflowJobBroker's cut (placement.decide over the parents' outputs:
         keep the candidates that move the least), then the same weighted choice. This is what the job-broker plugin
         does; like the plugin it knows nothing of a root step's external input (no parents: upstream's choice).
  ours-task (printed, not in RESULT) the task-level seam we propose for the processor: includedSite set from
         placement.decide over every site, with the parents' outputs and the step's external input (its disk replica,
         or the staging destination of its tape recall), before upstream's broker runs, so the data's site is not
         lost to upstream's 5-candidate cut.
Not modelled (switches, off): critical-path priority and workflow-level pre-staging (issue 10 items 2 and 3, not
built this session): tape inputs are requested only when the step is ready, in both runs.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pandajedi_wf.ddm.adapter import RULE_OK  # noqa: E402
from pandajedi_wf.placement import ParentOutput, decide  # noqa: E402
from pandajedi_wf_dev.simulators.tape import SimDataset, TapeEndpoint, TapeSimulator  # noqa: E402

GB = 10**9
TICK = 120.0  # seconds between broker passes
MAX_CANDIDATES = 5  # GenJobBroker's maxNumSites
PRIORITY_ON = False  # critical-path priority (issue 10 item 2): not built, not modelled
PRESTAGE_ON = False  # workflow-level pre-staging (issue 10 item 3): not built, not modelled


@dataclass
class Site:
    name: str
    slots: int
    wan_bytes_per_second: float
    slot_free: list = field(default_factory=list)  # heap of times each slot is next free
    link_free: float = 0.0
    jobs: list = field(default_factory=list)  # (input arrival, start, end) of jobs sent here
    _load: tuple = (None, None)

    def load(self, now: float) -> tuple[int, int, int]:
        """(running, activated, assigned) jobs at ``now``, as PanDA counts them: assigned = waiting for their input
        to arrive, activated = input there and waiting for a slot. Ended jobs are dropped."""
        if self._load[0] != now:
            self.jobs = [j for j in self.jobs if j[2] > now]
            running = sum(1 for _, b, _ in self.jobs if b <= now)
            assigned = sum(1 for a, _, _ in self.jobs if a > now)
            self._load = (now, (running, len(self.jobs) - running - assigned, assigned))
        return self._load[1]

    def add_job(self, arrive: float, begin: float, end: float) -> None:
        self.jobs.append((arrive, begin, end))
        self._load = (None, None)


@dataclass
class Step:
    key: int
    parents: list[int]
    n_jobs: int
    job_seconds: float
    out_ratio: float  # output bytes / input bytes
    input_share: float = 1.0  # scatter slice: fraction of the external input it reads
    external: str | None = None  # dataset name of an external input (disk or tape)
    status: str = "waiting"
    site: str | None = None
    end: float | None = None
    out_bytes: int = 0
    ready_at: float | None = None
    staged_at: float | None = None


@dataclass
class Workflow:
    wid: int
    shape: str
    arrival: float
    steps: dict[int, Step]
    tape: bool
    rule: str | None = None
    end: float | None = None


def build_grid(rng: random.Random, n_sites: int) -> dict[str, Site]:
    sites = {}
    for i in range(n_sites):
        name = f"SITE_{i:02d}"
        slots = rng.choice([100, 200, 400, 800])
        gbit = rng.choice([1, 2, 5, 10])
        sites[name] = Site(name, slots, gbit * GB / 8 / 4, [0.0] * slots)  # a quarter of the link for this workload
        heapq.heapify(sites[name].slot_free)
    return sites


def build_workflows(rng: random.Random, n: int, site_names: list[str], tape_homes: dict[str, str]):
    """Workflows of mixed shapes, their external datasets (disk site or tape), all from ``rng``."""
    workflows, disk_data, tape_data = [], {}, []
    horizon = 2 * 86400.0
    for wid in range(n):
        shape = rng.choice(["chain", "chain", "fan", "scatter", "loop"])
        tape = rng.random() < 0.35
        size = rng.randint(50, 400) * GB
        name = f"in.{wid}"
        if tape:
            tape_name = rng.choice(sorted(tape_homes))
            n_files = max(1, size // (4 * GB))
            tape_data.append(SimDataset(name, tuple([size // n_files] * n_files), (tape_name,)))
        else:
            disk_data[name] = (rng.choice(site_names), size)

        def step(key, parents, external=None, share=1.0):
            return Step(key, parents, rng.randint(10, 80), rng.uniform(0.5, 3.0) * 3600, rng.uniform(0.3, 1.0), share, external)

        steps: dict[int, Step] = {}
        if shape == "chain":
            for k in range(rng.randint(2, 5)):
                steps[k] = step(k, [k - 1] if k else [], name if k == 0 else None)
        elif shape == "loop":  # an iterated body: the same step, each iteration on the previous one's output
            steps[0] = step(0, [], name)
            for k in range(1, rng.randint(3, 5)):
                steps[k] = step(k, [k - 1])
        elif shape == "fan":
            width = rng.randint(2, 5)
            steps[0] = step(0, [], name)
            for k in range(1, width + 1):
                steps[k] = step(k, [0])
            steps[width + 1] = step(width + 1, list(range(1, width + 1)))
        else:  # scatter: slices of the input, then a merge
            width = rng.randint(2, 6)
            for k in range(width):
                steps[k] = step(k, [], name, 1.0 / width)
            steps[width] = step(width, list(range(width)))
        workflows.append(Workflow(wid, shape, rng.uniform(0, horizon), steps, tape))
    return workflows, disk_data, tape_data


class Simulation:
    def __init__(self, seed: int, n_sites: int, n_workflows: int, policy: str):
        rng = random.Random(seed)
        self.sites = build_grid(rng, n_sites)
        names = sorted(self.sites)
        self.tape_homes = {f"TAPE_{i}": names[i * (n_sites // 4)] for i in range(4)}  # tape -> site its recalls land on
        self.workflows, self.disk_data, tape_data = build_workflows(rng, n_workflows, names, self.tape_homes)
        self.tape = TapeSimulator(
            [TapeEndpoint(t, drives=4, drive_bytes_per_second=300e6, mount_seconds=120.0) for t in sorted(self.tape_homes)],
            tape_data, seed=seed,
        )
        self.tape_of = {d.name: d.tapes[0] for d in tape_data}
        self.tape_bytes = {d.name: d.n_bytes for d in tape_data}
        self.policy = policy
        self.rng = random.Random(seed * 7919 + 1)  # the brokers' random choices: same stream for every policy
        self.bytes_moved = 0
        self.now = 0.0

    # ---- where the inputs of a step are -----------------------------------------------------------------
    def inputs(self, wf: Workflow, st: Step, external: bool = True) -> list[ParentOutput]:
        """The step's inputs as the placement decision sees them (storage = site here): parents' outputs, and with
        ``external`` the external dataset (on disk at its site, or recalled from tape to the tape's home site)."""
        found = [ParentOutput(p, running=False, bytes_at={wf.steps[p].site: wf.steps[p].out_bytes}) for p in st.parents]
        if external and st.external is not None:
            if st.external in self.disk_data:
                site, size = self.disk_data[st.external]
            else:
                site, size = self.tape_homes[self.tape_of[st.external]], self.tape_bytes[st.external]
            found.append(ParentOutput(-1, running=False, bytes_at={site: int(size * st.input_share)}))
        return found

    # ---- brokers ---------------------------------------------------------------------------------------
    def upstream_candidates(self, allowed: list[str]) -> dict[str, float]:
        """RE-IMPLEMENTATION of GenJobBroker's weights and 5-site cut (see the module docstring)."""
        by_weight: dict[float, list[str]] = {}
        for name in allowed:
            running, activated, assigned = self.sites[name].load(self.now)
            weight = (running + 1) / (activated + assigned + 1) / (assigned + 1)
            by_weight.setdefault(weight, []).append(name)
        kept: dict[str, float] = {}
        for weight in sorted(by_weight, reverse=True):
            group = sorted(by_weight[weight])
            self.rng.shuffle(group)
            for name in group[: MAX_CANDIDATES - len(kept)]:
                kept[name] = weight
            if len(kept) >= MAX_CANDIDATES:
                break
        return kept

    def pick(self, candidates: dict[str, float]) -> str:
        """InputChunk.getOneSiteCandidate: weighted random among the candidates."""
        names = list(candidates)
        r = self.rng.random() * sum(candidates.values())
        for name in names:
            r -= candidates[name]
            if r <= 0:
                return name
        return names[-1]

    def broker(self, wf: Workflow, st: Step) -> str:
        if self.policy == "ours-task":  # includedSite from the decision over every site, then upstream's broker
            every = decide({n: n for n in sorted(self.sites)}, self.inputs(wf, st))
            return self.pick(self.upstream_candidates(list(every.chosen)))
        candidates = self.upstream_candidates(sorted(self.sites))
        if self.policy == "ours":  # WorkflowJobBroker: upstream's candidates cut by the decision over parents' outputs
            kept = decide({n: n for n in candidates}, self.inputs(wf, st, external=False)).chosen
            candidates = {n: candidates[n] for n in kept}
        return self.pick(candidates)

    # ---- execution -------------------------------------------------------------------------------------
    def start(self, wf: Workflow, st: Step) -> None:
        site = self.sites[self.broker(wf, st)]
        inputs = self.inputs(wf, st)
        in_bytes = sum(sum(p.bytes_at.values()) for p in inputs)
        remote = sum(b for p in inputs for s, b in p.bytes_at.items() if s != site.name)
        self.bytes_moved += remote
        arrive = self.now
        if remote:
            begin = max(self.now, site.link_free)
            site.link_free = begin + remote / site.wan_bytes_per_second
            arrive = site.link_free
        end = arrive
        for _ in range(st.n_jobs):
            free = heapq.heappop(site.slot_free)
            begin = max(free, arrive)
            finish = begin + st.job_seconds
            heapq.heappush(site.slot_free, finish)
            site.add_job(arrive, begin, finish)
            end = max(end, finish)
        st.site, st.end, st.status = site.name, end, "running"
        st.out_bytes = int(in_bytes * st.out_ratio)

    def run(self) -> dict:
        pending = sorted(self.workflows, key=lambda w: w.arrival)
        active: list[Workflow] = []
        stage_waits: list[float] = []
        while pending or active:
            self.now += TICK
            self.tape.advance(TICK)
            while pending and pending[0].arrival <= self.now:
                wf = pending.pop(0)
                active.append(wf)
            for wf in list(active):
                for st in wf.steps.values():
                    if st.status == "running" and st.end <= self.now:
                        st.status = "done"
                for st in sorted(wf.steps.values(), key=lambda s: s.key):
                    if st.status != "waiting" or any(wf.steps[p].status != "done" for p in st.parents):
                        continue
                    if st.ready_at is None:
                        st.ready_at = self.now
                    if st.external in self.tape_of:
                        if wf.rule is None:  # requested when the step is ready (no pre-staging)
                            home = self.tape_homes[self.tape_of[st.external]]
                            wf.rule = self.tape.create_staging_rule(st.external, None, f"{home}_DATADISK", "Staging", None)
                        progress = self.tape.get_rules([wf.rule])[wf.rule]
                        if progress.state != RULE_OK:
                            continue
                        if st.staged_at is None:
                            st.staged_at = self.now
                            stage_waits.append(st.staged_at - st.ready_at)
                    self.start(wf, st)
                if all(s.status == "done" for s in wf.steps.values()):
                    wf.end = max(s.end for s in wf.steps.values())
                    active.remove(wf)
        spans = {w.wid: (w.end - w.arrival) / 3600 for w in self.workflows}
        return {"bytes_moved": self.bytes_moved, "spans": spans, "stage_waits": stage_waits}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--sites", type=int, default=24)
    parser.add_argument("--workflows", type=int, default=600)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.workflows, args.seeds = 150, [1]
    if args.sites < 20 or args.workflows < 1:
        parser.error("at least 20 sites and one workflow")
    print(f"placement benchmark: {args.sites} sites, {args.workflows} workflows, seeds {args.seeds}; "
          f"critical-path priority {'on' if PRIORITY_ON else 'off'}, pre-staging {'on' if PRESTAGE_ON else 'off'} (not built)")
    header = f"{'seed':>4} {'broker':<10} {'moved TB':>9} {'p50 h':>7} {'p95 h':>7} {'p50 tape h':>10} {'p50 other h':>11} {'stage wait h':>12}"
    print(header)
    totals = {p: {"moved": 0, "p50": [], "wait": [], "tape": [], "other": []} for p in ("blind", "ours", "ours-task")}
    worse_other = []
    for seed in args.seeds:
        results = {}
        for policy in ("blind", "ours", "ours-task"):
            sim = Simulation(seed, args.sites, args.workflows, policy)
            res = sim.run()
            tape_ids = {w.wid for w in sim.workflows if w.tape}
            spans = list(res["spans"].values())
            tape_spans = [v for k, v in res["spans"].items() if k in tape_ids]
            other_spans = [v for k, v in res["spans"].items() if k not in tape_ids]
            wait = statistics.mean(res["stage_waits"]) / 3600 if res["stage_waits"] else 0.0
            results[policy] = res
            t = totals[policy]
            t["moved"] += res["bytes_moved"]
            t["p50"].append(pct(spans, 0.5))
            t["wait"].append(wait)
            t["tape"].append(pct(tape_spans, 0.5))
            t["other"].append(pct(other_spans, 0.5))
            print(f"{seed:>4} {policy:<10} {res['bytes_moved'] / 1e12:>9.1f} {pct(spans, 0.5):>7.2f} {pct(spans, 0.95):>7.2f} "
                  f"{pct(tape_spans, 0.5):>10.2f} {pct(other_spans, 0.5):>11.2f} {wait:>12.2f}")
        worse_other.append(totals["ours"]["other"][-1] > totals["blind"]["other"][-1])
    b, o, ot = totals["blind"], totals["ours"], totals["ours-task"]

    def ratio(a, c):
        return a / c if c else 1.0

    print(f"job-broker seam (ours): tape-input p50 ratio {ratio(statistics.mean(o['tape']), statistics.mean(b['tape'])):.3f}, "
          f"other p50 ratio {ratio(statistics.mean(o['other']), statistics.mean(b['other'])):.3f}, "
          f"other p50 worse than blind on {sum(worse_other)} of {len(worse_other)} seeds")
    print(f"task seam (ours-task, includedSite; not in RESULT): bytes_moved_ratio={ratio(ot['moved'], b['moved']):.3f} "
          f"makespan_p50_ratio={ratio(statistics.mean(ot['p50']), statistics.mean(b['p50'])):.3f} "
          f"tape_p50_ratio={ratio(statistics.mean(ot['tape']), statistics.mean(b['tape'])):.3f}")
    print(f"RESULT placement bytes_moved_ratio={ratio(o['moved'], b['moved']):.3f} "
          f"makespan_p50_ratio={ratio(statistics.mean(o['p50']), statistics.mean(b['p50'])):.3f} "
          f"stage_wait_ratio={ratio(statistics.mean(o['wait']), statistics.mean(b['wait'])):.3f}")


if __name__ == "__main__":
    main()
