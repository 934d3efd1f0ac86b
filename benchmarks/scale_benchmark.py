"""Scale benchmark of the workflow processor at 10,000 and 50,000 active workflows. Prints figures; asserts nothing.

    python benchmarks/scale_benchmark.py                       # 10,000 and 50,000; baseline (the processor before
                                                               # the scale work) at 10,000 in the same run
    python benchmarks/scale_benchmark.py --sizes 2000 --baseline-sizes ""    # a quick look

Workload (as in the issue that set the targets): N workflows, each a chain of 20 prun steps (child waits for its
parent's end), one running JEDI task each, on the embedded PostgreSQL. The workflows are one submission through the API
cloned in SQL (setup, not measured); the processor then creates their steps itself (the creation passes, measured).
JEDI is a fast fake (``workflow_benchmark.FakeJedi``): insertTaskParamsPanda assigns a task id and the JEDI_Tasks row
appears between passes, as TaskRefiner would write it; tasks end by an UPDATE of status and modificationTime, as
upstream's status updates write them (upstream's trigger then sets realModificationTime).

Figures, each the median of five passes (processor settings as in production, back-off 600 s):
  quiet   a pass with the back-off in force and no task changed;
  sparse  a pass after 1% of the running tasks ended (their workflows woken, their next steps submitted);
  due     a pass with every workflow due at once and nothing changed (a recheck storm);
  rss     the processor's peak resident memory over the size's whole run (VmHWM, reset per size);
  child latency  parent task done -> child's insertTaskParamsPanda, with passes every ``--period`` seconds and tasks
          ending at random moments between them (so the wait for the next pass is included).
Each size ends with ``RESULT scale n=<N> quiet_s=.. sparse_s=.. due_s=.. rss_mib=.. child_latency_s=..``.

``--baseline REV`` runs the same measurements with the processor of git revision REV (a worktree in a temp dir, its own
embedded PostgreSQL) in a subprocess, for the sizes in ``--baseline-sizes``: today's figures beside the old ones.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO)]
if os.environ.get("SCALE_BENCH_CODE"):  # baseline mode: the packages of another revision, not this tree's
    sys.path.insert(0, os.environ["SCALE_BENCH_CODE"])
    # an editable install of this tree answers imports of pandajedi_wf before sys.path is searched
    sys.meta_path = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "") and "__editable__" not in repr(f)]

from workflow_benchmark import FakeJedi, analyze, chain_definition  # noqa: E402

STEPS = 20
BACKOFF = 600
SETTINGS = {"recheck_seconds": BACKOFF}  # the rest as ProcessorSettings' defaults (production)


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident memory of this process, from /proc (VmRSS, VmHWM)."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            found[line.split(":")[0]] = int(line.split()[1]) / 1024
    return found["VmRSS"], found["VmHWM"]


def reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def clean(pg) -> None:
    conn = pg.connect("panda", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE doma_panda.jedi_wf_transitions, doma_panda.jedi_wf_data, doma_panda.jedi_wf_steps, "
                    "doma_panda.jedi_wf_commands, doma_panda.jedi_wf_workflows, doma_panda.jedi_tasks CASCADE")
    conn.close()


def make_workflows(pg, db, n: int) -> None:
    """One workflow through the API, then n - 1 copies of its row in SQL (each its own id and output name)."""
    from pandajedi_wf.api import submit_workflow
    from workflow_benchmark import TASK_TEMPLATES

    first = submit_workflow(db, language="yaml", definition=chain_definition(STEPS), out_ds=f"user.scale.n{n}w0", user_name="bench",
                            vo="wlcg", task_templates=TASK_TEMPLATES).workflow_id
    conn = pg.connect("panda", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema='doma_panda' AND table_name='jedi_wf_workflows' "
                    "ORDER BY ordinal_position")
        columns = [c for (c,) in cur.fetchall()]
        values = [{"workflow_id": "nextval('doma_panda.workflow_id_seq')", "out_ds": f"'user.scale.n{n}w' || g", "name": "'chain' || g"}
                  .get(c, c) for c in columns]
        for start in range(1, n, 10_000):
            cur.execute(f"INSERT INTO doma_panda.jedi_wf_workflows ({', '.join(columns)}) SELECT {', '.join(values)} "
                        f"FROM doma_panda.jedi_wf_workflows, generate_series({start}, {min(n - 1, start + 9_999)}) g WHERE workflow_id={first}")
        cur.execute("ANALYZE doma_panda.jedi_wf_workflows")
    conn.close()


class Scenario:
    def __init__(self, pg, n: int):
        from pandajedi_wf.daemons import workflow_processor
        from pandajedi_wf.taskbuffer.connection import WfDatabase

        self.pg, self.n = pg, n
        self.wp = workflow_processor
        self.settings = workflow_processor.ProcessorSettings(**{k: v for k, v in SETTINGS.items()})
        self.db = WfDatabase()
        self.db.connect()
        self.jedi = FakeJedi(pg, deferred=True)
        self.jedi_lock = threading.Lock()

    def one_pass(self) -> tuple[float, dict]:
        """One pass of ``cycle_all`` as the JEDI plugin runs it; the fake JEDI's time is subtracted."""
        from pandajedi_wf.daemons.common import CycleStats

        stats = CycleStats()
        fake = self.jedi.seconds
        start = time.perf_counter()
        self.wp.cycle_all(self.db, stats, self.jedi, owner="scale", settings=self.settings)
        return time.perf_counter() - start - (self.jedi.seconds - fake), stats.counters

    def flush(self) -> None:
        """The fake JEDI's new tasks appear in JEDI_Tasks (as TaskRefiner would write them)."""
        with self.jedi.lock:
            self.jedi._flush()

    def settle(self, limit: int = 12) -> list[tuple[float, dict]]:
        """Passes until one claims nothing (every workflow backing off with nothing to do)."""
        passes = []
        for _ in range(limit):
            self.flush()
            seconds, counters = self.one_pass()
            passes.append((seconds, counters))
            if not counters.get("workflows_claimed"):
                break
        return passes

    def end_tasks(self, fraction: float | None = None, count: int | None = None) -> dict[int, float]:
        """End running tasks done as upstream writes it; returns reqID (workflow id) -> wall time of the end."""
        conn = self.jedi.conn
        with conn.cursor() as cur:
            cur.execute("SELECT jeditaskid, reqid FROM doma_panda.jedi_tasks WHERE status='running'")
            running = cur.fetchall()
            chosen = random.sample(running, count if count is not None else max(1, int(len(running) * fraction)))
            now = datetime.datetime.utcnow()
            cur.execute("UPDATE doma_panda.jedi_tasks SET status='done', statechangetime=%s, modificationtime=%s WHERE jeditaskid = ANY(%s)",
                        (now, now, [t for t, _ in chosen]))
        conn.commit()
        ended = time.perf_counter()
        return {int(r): ended for _, r in chosen if r is not None}

    def make_all_due(self) -> None:
        with self.jedi.conn.cursor() as cur:
            cur.execute("UPDATE doma_panda.jedi_wf_workflows SET check_after=%s WHERE status='running'",
                        (datetime.datetime.utcnow() - datetime.timedelta(seconds=1),))
        self.jedi.conn.commit()

    def child_latency(self, period: float, rounds: int, per_round: int) -> list[float]:
        """Passes every ``period`` seconds; before each, tasks end at random moments of the period (a thread), so the
        latency includes the wait for the next pass. Child = the next task submitted for the same workflow."""
        latencies: list[float] = []
        submitted_by_workflow: dict[int, float] = {}
        original = self.jedi.insertTaskParamsPanda

        def recording(params, *args, **kwargs):
            answer = original(params, *args, **kwargs)
            req = json.loads(params).get("reqID") if isinstance(params, str) else params.get("reqID")
            if req is not None:
                submitted_by_workflow.setdefault(int(req), time.perf_counter())
            return answer

        self.jedi.insertTaskParamsPanda = recording
        ends: dict[int, float] = {}
        try:
            for _ in range(rounds):
                start = time.perf_counter()
                moments = sorted(random.uniform(0, period) for _ in range(per_round))

                def ender():
                    for moment in moments:
                        time.sleep(max(0.0, start + moment - time.perf_counter()))
                        ends.update(self.end_tasks(count=1))

                thread = threading.Thread(target=ender)
                thread.start()
                thread.join()
                time.sleep(max(0.0, start + period - time.perf_counter()))
                self.flush()
                self.one_pass()
            self.flush()
            self.one_pass()
        finally:
            self.jedi.insertTaskParamsPanda = original
        for workflow_id, ended in ends.items():
            if workflow_id in submitted_by_workflow and submitted_by_workflow[workflow_id] >= ended:
                latencies.append(submitted_by_workflow[workflow_id] - ended)
        return latencies

    def close(self) -> None:
        self.db.close()
        self.jedi.conn.close()
        processor = getattr(self.wp, "PROCESSOR", None)
        if processor is not None:
            processor.forget() if hasattr(processor, "forget") else None
        for name in ("_step_rows", "_definitions"):  # (the processor before it became an object)
            if hasattr(self.wp, name):
                getattr(self.wp, name).clear()


def measure(pg, n: int, period: float, repeats: int = 5) -> dict:
    import gc

    clean(pg)
    reset_peak_rss()
    scenario = Scenario(pg, n)
    try:
        setup = time.perf_counter()
        make_workflows(pg, scenario.db, n)
        setup = time.perf_counter() - setup
        creation = scenario.settle()
        creation_s = sum(s for s, _ in creation)
        analyze(pg)
        quiet = [scenario.one_pass() for _ in range(repeats)]
        sparse = []
        for _ in range(repeats):
            scenario.end_tasks(fraction=0.01)
            sparse.append(scenario.one_pass())
            scenario.settle()
        due = []
        for _ in range(repeats):
            scenario.make_all_due()
            due.append(scenario.one_pass())
        latency = scenario.child_latency(period, rounds=6, per_round=max(5, n // 2000))
        gc.collect()
        current, peak = rss_mib()
        return {
            "n": n, "setup_s": setup, "creation_s": creation_s, "creation_passes": len(creation),
            "quiet_s": statistics.median(s for s, _ in quiet), "sparse_s": statistics.median(s for s, _ in sparse),
            "due_s": statistics.median(s for s, _ in due),
            "quiet_counters": quiet[-1][1], "sparse_counters": sparse[-1][1], "due_counters": due[-1][1],
            "rss_mib": peak, "rss_end_mib": current,
            "child_latency_s": statistics.median(latency) if latency else float("nan"),
            "child_latency_p95_s": sorted(latency)[int(0.95 * (len(latency) - 1))] if latency else float("nan"),
            "children": len(latency), "period_s": period,
        }
    finally:
        scenario.close()


def report(label: str, r: dict) -> None:
    print(f"\n== {label}: {r['n']} active workflows x {STEPS} steps ==")
    print(f"setup (clone {r['n']} workflows in SQL) {r['setup_s']:.1f} s; creation by the processor {r['creation_s']:.1f} s "
          f"in {r['creation_passes']} passes")
    for kind in ("quiet", "sparse", "due"):
        counters = r[f"{kind}_counters"]
        keep = {k: counters[k] for k in ("workflows_woken", "workflows_claimed", "decisions_skipped", "step_rows_kept",
                                         "jedi_submissions", "step_transitions", "db_statements") if k in counters}
        print(f"{kind:6} pass: median {r[f'{kind}_s']:.3f} s   {keep}")
    print(f"memory: peak RSS {r['rss_mib']:.0f} MiB, at the end {r['rss_end_mib']:.0f} MiB")
    print(f"parent done -> child submitted, passes every {r['period_s']:.0f} s: median {r['child_latency_s']:.2f} s, "
          f"p95 {r['child_latency_p95_s']:.2f} s over {r['children']} children")


def result_line(r: dict) -> str:
    return (f"RESULT scale n={r['n']} quiet_s={r['quiet_s']:.3f} sparse_s={r['sparse_s']:.3f} due_s={r['due_s']:.3f} "
            f"rss_mib={r['rss_mib']:.0f} child_latency_s={r['child_latency_s']:.2f}")


def run_baseline(revision: str, sizes: list[int], period: float) -> list[dict]:
    """The same measurements with the package of ``revision`` (a git worktree), in a subprocess with its own
    embedded PostgreSQL; returns its results."""
    with tempfile.TemporaryDirectory(prefix="scale_baseline_") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), revision], check=True, capture_output=True)
        try:
            env = dict(os.environ, SCALE_BENCH_CODE=str(tree))
            out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--sizes", ",".join(map(str, sizes)), "--baseline-sizes", "",
                                  "--period", str(period), "--json"], env=env, capture_output=True, text=True, cwd=tmp)
            lines = [json.loads(line[5:]) for line in out.stdout.splitlines() if line.startswith("JSON ")]
            if not lines:
                print(f"baseline {revision} gave no figures:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
            return lines
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--baseline", default="f35c979", help="git revision of the processor to compare with (this session's start: before the reshaping and the scale work)")
    parser.add_argument("--baseline-sizes", default="10000")
    parser.add_argument("--period", type=float, default=10.0, help="seconds between passes for the child latency (procConfig period)")
    parser.add_argument("--batch-size", type=int, default=None, help="wf_processor_batch_size (default: the processor's)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.batch_size:
        SETTINGS["batch_size"] = args.batch_size
    baseline_sizes = [int(s) for s in args.baseline_sizes.split(",") if s]

    from pandajedi_wf_dev.devdb.dev_environment import start_dev_environment

    pg, _home = start_dev_environment()
    try:
        results = []
        for n in sizes:
            r = measure(pg, n, args.period)
            results.append(r)
            if args.json:
                print("JSON " + json.dumps(r, default=str), flush=True)
            else:
                report("this tree", r)
                print(result_line(r), flush=True)
    finally:
        pg.stop()
    if baseline_sizes and not args.json:
        for old in run_baseline(args.baseline, baseline_sizes, args.period):
            report(f"baseline {args.baseline}", old)
            mine = next((r for r in results if r["n"] == old["n"]), None)
            if mine:
                print("ratio baseline/this: " + ", ".join(f"{k} {old[k] / mine[k]:.1f}x" for k in ("quiet_s", "sparse_s", "due_s", "rss_mib")
                                                            if mine[k]))


if __name__ == "__main__":
    main()
