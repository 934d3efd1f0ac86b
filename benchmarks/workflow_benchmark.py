"""Workflow processor benchmark on the embedded PostgreSQL. Prints figures; asserts nothing.

    python benchmarks/workflow_benchmark.py              # ours 1,000 x 20 and 10,000 x 20; upstream 20 x 20 (+ 4 x 20 as shipped)
    python benchmarks/workflow_benchmark.py --quick      # ours 200 x 10 and 1,000 x 20; upstream 20 x 10 (+ 4 x 10 as shipped)

Workload: N workflows, each a chain of M prun steps (step i reads step i-1's output) with partial inputs off, so
a child is submitted only after its parent is done. Ours runs as the JEDI plugin does: passes of ``cycle_all``
(batches of 500, the production default of workers). JEDI is a FAST FAKE here (``FakeJedi``): its insertTaskParamsPanda assigns a
jediTaskID; for ours the JEDI_Tasks row (status ``running``) is written between passes, as TaskRefiner would
write it after DEFT took the task, for upstream's engine at once; between passes one UPDATE ends every running
task ``done``. The fake's time is measured apart and subtracted: the figures are the processor's own cost (our SQL,
our engine), not JEDI's. The end-to-end tests run the real upstream submission and TaskRefiner instead.

Figures: step transitions per second, DB statements per pass (WfDatabase.statements), the time of the first
(creation) pass and of a steady pass with every workflow active (every workflow has a task that just ended, so
every one moves: the worst case; in production a pass takes only workflows whose tasks changed), the CPU of the
processor and of PostgreSQL in it, the time of Python's garbage collection the pass left for after it, and the
latency from a parent task becoming ``done`` to its child's insertTaskParamsPanda call.

Upstream's native engine (``pandaserver.workflow.workflow_core.WorkflowInterface``) runs the same chains in the same run, on
the same server, with its own tables created for the run and dropped after it (``benchmarks/upstream_native/``): what runs,
what fails on PostgreSQL and what the benchmark replaces is printed, then a table of ours vs upstream.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import json
import statistics
import sys
import threading
import time
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # (scale_benchmark may have put another revision first)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg2.extras  # noqa: E402

from pandajedi_wf_dev.devdb.dev_environment import start_dev_environment  # noqa: E402

OUT = "user.bench"


class FakeJedi:
    """insertTaskParamsPanda with uniqueTaskName semantics, writing JEDI_Tasks over its own connection; its time is
    kept apart. Thread-safe (the processor's workers call it at once).

    ``deferred``: the JEDI_Tasks row is written between cycles (``end_running_tasks``), not inside the call, as the
    real JEDI's TaskRefiner writes it after DEFT took the parameters; the call then costs microseconds, so what the
    processor's workers do meanwhile is not hidden in a subtracted fake's time.
    """

    def __init__(self, pg, deferred: bool = False):
        self.conn = pg.connect("panda")
        self.deferred = deferred
        self.next_id = 1
        self.by_name: dict[str, int] = {}
        self.seconds = 0.0
        self.calls = 0
        self.submitted_at: dict[str, float] = {}
        self.pending: list[tuple] = []
        self.lock = threading.Lock()

    def insertTaskParamsPanda(self, params, dn, prod_role, fqans=None, parent_tid=None, properErrorCode=False, allowActiveTask=False,
                              decode=True, **kwargs):
        """Both call forms: ours (JSON text, ``properErrorCode=True``) and upstream's step handler (a dict with
        ``decode=False``, answered ``(True, jediTaskID)`` like DBProxy does without properErrorCode)."""
        start = time.perf_counter()
        params = json.loads(params) if isinstance(params, str) else params
        name = params["taskName"]
        with self.lock:
            self.calls += 1
            if name in self.by_name:
                self.seconds += time.perf_counter() - start
                message = f"jediTaskID={self.by_name[name]} is already active"
                return (2, message) if properErrorCode else (False, message)
            task_id = self.next_id
            self.next_id += 1
            self.by_name[name] = task_id
            now = datetime.datetime.utcnow()
            self.pending.append((task_id, name, params.get("reqID"), now, now, now))
            if not self.deferred:
                self._flush()
            self.submitted_at[name] = time.perf_counter()
            self.seconds += time.perf_counter() - start
        return (0, f"succeeded. new jediTaskID={task_id}") if properErrorCode else (True, task_id)

    def _flush(self) -> None:
        if self.pending:
            with self.conn.cursor() as cur:
                psycopg2.extras.execute_values(
                    cur,
                    "INSERT INTO doma_panda.jedi_tasks (jeditaskid, taskname, status, vo, username, prodsourcelabel, reqid, "
                    "creationdate, modificationtime, statechangetime) VALUES %s",
                    self.pending,
                    template="(%s,%s,'running','wlcg','bench','user',%s,%s,%s,%s)",
                )
            self.conn.commit()
            self.pending = []

    def end_running_tasks(self) -> float:
        """The grid: every running task ends done now; returns the wall time it happened."""
        with self.lock:
            self._flush()
        with self.conn.cursor() as cur:
            now = datetime.datetime.utcnow()  # as upstream's status updates write it (its trigger sets realModificationTime)
            cur.execute("UPDATE doma_panda.jedi_tasks SET status='done', statechangetime=%s, modificationtime=%s WHERE status='running'",
                        (now, now))
        self.conn.commit()
        return time.perf_counter()


TASK_TEMPLATES = {"container": {"taskType": "anal", "vo": "wlcg", "prodSourceLabel": "user", "jobParameters": []}}
OPTIONS = {"allow_partial_inputs": False}


def chain_yaml(n_steps: int) -> str:
    """The native-YAML chain both engines get: step i reads step i-1's output."""
    return "name: chain\nsteps:\n" + "".join(
        f"  s{i}:\n    type: prun\n    exec: 'echo %IN > out.root'\n    args: '--outputs out.root'\n" + (f"    inDS: s{i - 1}/outDS\n" if i > 1 else "")
        for i in range(1, n_steps + 1)
    )


def chain_definition(n_steps: int) -> dict:
    from pandajedi_wf.workflow import parse_workflow

    definition = parse_workflow("yaml", chain_yaml(n_steps)).to_dict()
    definition["options"] = dict(OPTIONS)
    return definition


def insert_workflows(db, n: int, definition: dict, tag: str) -> float:
    from pandajedi_wf.api import submit_workflow

    templates = TASK_TEMPLATES
    start = time.perf_counter()
    for i in range(n):
        submit_workflow(db, language="yaml", definition=definition, out_ds=f"{OUT}.{tag}{i}", user_name="bench", vo="wlcg",
                        task_templates=templates)
    return time.perf_counter() - start


def _postgres_cpu_seconds() -> float:
    """CPU time of every postgres process on this machine (the embedded server's backends), from /proc."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.index("(") + 1 : stat.rindex(")")].startswith("postgres"):
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def analyze(pg) -> None:
    """Planner statistics, as PostgreSQL's autovacuum keeps them in production (the benchmarks make the tables in
    seconds, faster than autovacuum's analyze follows; without statistics the planner scans JEDI_WF_STEPS whole for
    a 500-key IN-list that its index answers in a millisecond)."""
    conn = pg.connect("panda", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("ANALYZE doma_panda.jedi_wf_workflows, doma_panda.jedi_wf_steps, doma_panda.jedi_wf_data, doma_panda.jedi_tasks")
    conn.close()


def run_ours(pg, n_workflows: int, n_steps: int, max_cycles: int, workers: int | None = None) -> dict:
    """Passes of ``cycle_all`` (what the JEDI plugin runs each period) with the production settings: batches of 500,
    ``workers`` at once. JEDI is the deferred fake: its rows appear between passes, so the pass's wall time is the
    processor's own (the fake's few microseconds per call are still subtracted). The tables get planner statistics
    after the creation pass, as autovacuum would have given them in production (``analyze``)."""
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.taskbuffer.connection import WfDatabase

    clean(pg)
    db = WfDatabase()
    db.connect()
    jedi = FakeJedi(pg, deferred=True)
    intake = insert_workflows(db, n_workflows, chain_definition(n_steps), f"n{n_workflows}m{n_steps}w")
    settings = workflow_processor.ProcessorSettings(batch_size=500, recheck_seconds=0, **({"workers": workers} if workers else {}))
    workers = settings.workers
    cycles = []
    latencies: list[float] = []
    ended_at = None
    transitions_total = 0
    processor_seconds_total = 0.0
    for _ in range(max_cycles):
        stats = CycleStats()
        statements = db.statements
        fake_before = jedi.seconds
        submitted_before = dict(jedi.submitted_at)
        cpu, pg_cpu = time.process_time(), _postgres_cpu_seconds()
        start = time.perf_counter()
        workflow_processor.cycle_all(db, stats, jedi, owner="bench", settings=settings)
        wall = time.perf_counter() - start
        cpu, pg_cpu = time.process_time() - cpu, _postgres_cpu_seconds() - pg_cpu
        collect = time.perf_counter()
        gc.collect()  # what the pass left to Python's collector (it runs after the pass, see collector_paused)
        collect = time.perf_counter() - collect
        own = wall - (jedi.seconds - fake_before)
        transitions = stats.counters.get("step_transitions", 0) + stats.counters.get("workflow_transitions", 0)
        cycles.append({"wall": wall, "own": own, "statements": db.statements - statements, "transitions": transitions,
                       "claimed": stats.counters.get("workflows_claimed", 0), "submissions": stats.counters.get("jedi_submissions", 0),
                       "python_cpu": cpu, "postgres_cpu": pg_cpu, "collect": collect})
        transitions_total += transitions
        processor_seconds_total += own
        if ended_at is not None:
            latencies += [t - ended_at for name, t in jedi.submitted_at.items() if name not in submitted_before]
        if not stats.counters.get("workflows_claimed"):
            break
        if len(cycles) == 1:
            analyze(pg)  # the creation pass made the steps
        ended_at = jedi.end_running_tasks()
    status = dict(db.query(f"SELECT status, COUNT(*) FROM {db.table('JEDI_WF_WORKFLOWS')} GROUP BY status"))
    steps_done = db.query(f"SELECT COUNT(*) FROM {db.table('JEDI_WF_STEPS')} WHERE status = 'done'")[0][0]
    db.close()
    jedi.conn.close()
    # what the processor keeps between passes goes, so the next run (ours or upstream's) starts in a clean process
    workflow_processor.PROCESSOR.step_rows.clear()
    workflow_processor.PROCESSOR.definitions.clear()
    gc.unfreeze()
    gc.collect()
    steady = [c for c in cycles[1:] if c["claimed"] == n_workflows]
    return {
        "intake_seconds": intake,
        "cycles": cycles,
        "steady": steady,
        "workers": workers,
        "transitions_per_second": transitions_total / processor_seconds_total if processor_seconds_total else 0.0,
        "steps_done_per_second": steps_done / processor_seconds_total if processor_seconds_total else 0.0,
        "latency": latencies,
        "final": status,
    }


def clean(pg) -> None:
    conn = pg.connect("panda", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE doma_panda.jedi_wf_transitions, doma_panda.jedi_wf_steps, doma_panda.jedi_wf_workflows, doma_panda.jedi_tasks CASCADE")
    conn.close()


def run_upstream(pg, n_workflows: int, n_steps: int, direct_connection: bool) -> dict:
    """The same chains through upstream's WorkflowInterface (see benchmarks/upstream_native/run.py for what runs)."""
    from benchmarks.upstream_native.run import run_upstream as run

    clean(pg)
    jedi = FakeJedi(pg)
    try:
        tag = f"up{'d' if direct_connection else 's'}n{n_workflows}m{n_steps}w"
        return run(pg, jedi, n_workflows, n_steps, chain_yaml(n_steps), TASK_TEMPLATES, OPTIONS, tag, OUT, max_cycles=n_steps + 3,
                   direct_connection=direct_connection)
    finally:
        jedi.conn.close()


def print_steady(result: dict, n_workflows: int) -> None:
    """The steady-cycle line, the same for ours and upstream's engine."""
    if result["steady"]:
        own = [c["own"] for c in result["steady"]]
        stm = [c["statements"] for c in result["steady"]]
        print(f"steady cycle over {n_workflows} active workflows: median {statistics.median(own):.2f} s own, max {max(own):.2f} s; "
              f"statements median {int(statistics.median(stm))} ({statistics.median(stm) / n_workflows:.2f} per workflow)")


def print_latency(result: dict, note: str = "") -> None:
    """The parent-done to child-submitted line, the same for ours and upstream's engine."""
    if result["latency"]:
        lat = sorted(result["latency"])
        print(f"parent done -> child submitted: median {statistics.median(lat):.2f} s, p95 {lat[int(0.95 * (len(lat) - 1))]:.2f} s, "
              f"max {lat[-1]:.2f} s over {len(lat)} children{note}")


def report(label: str, result: dict, n_workflows: int, n_steps: int) -> None:
    cycles = result["cycles"]
    print(f"\n== ours: {n_workflows} workflows x {n_steps} steps, {result['workers']} worker(s), batches of 500 (deferred fake JEDI) ==")
    print(f"intake (submit_workflow x {n_workflows}): {result['intake_seconds']:.1f} s")
    first = cycles[0]
    print(f"first pass (creates {n_workflows * n_steps} steps, submits {first['submissions']}): {first['own']:.2f} s own "
          f"({first['wall']:.2f} s wall), {first['statements']} statements; collector after it {first['collect']:.2f} s")
    print_steady(result, n_workflows)
    if result["steady"]:
        steady = result["steady"]
        med = statistics.median
        print(f"  CPU in a steady pass: processor (Python) {med(c['python_cpu'] for c in steady):.2f} s, PostgreSQL "
              f"{med(c['postgres_cpu'] for c in steady):.2f} s; Python's collector after the pass {med(c['collect'] for c in steady):.2f} s")
        target = 10.0 if n_workflows == 10000 and n_steps == 20 else None
        if target:
            worst = max(c["own"] + c["collect"] for c in steady)
            print(f"target (a pass over 10,000 x 20 within {target:.0f} s, collector included): {'met' if worst <= target else 'NOT met'}: "
                  f"worst steady pass {worst:.2f} s")
    print(f"step+workflow transitions per second of processor time: {result['transitions_per_second']:.0f}")
    print_latency(result, " (one pass over all workflows, no back-off)")
    print(f"passes run: {len(cycles)}, workflows by status at the end: {result['final']}")


def report_upstream(label: str, result: dict, n_workflows: int, n_steps: int) -> None:
    cycles = result["cycles"]
    print(f"\n== upstream native engine, {label}: {n_workflows} workflows x {n_steps} steps (fake JEDI and fake Rucio, their time subtracted) ==")
    print(f"intake (register_workflow x {n_workflows}, definition parsed once by upstream's parse_raw_request): {result['intake_seconds']:.1f} s")
    first = cycles[0]
    print(f"first cycle (registered -> starting/running, creates {n_workflows * n_steps} steps and data, submits {first['submissions']}): "
          f"{first['own']:.2f} s own ({first['wall']:.2f} s wall), {first['statements']} statements")
    print_steady(result, n_workflows)
    totals = {kind: sum(c["transitions"][kind] for c in cycles) for kind in ("step", "workflow", "data")}
    print(f"transitions: {totals['step']} step, {totals['workflow']} workflow, {totals['data']} data, in {result['engine_seconds']:.1f} s of engine time")
    print(f"step+workflow transitions per second of engine time: {result['transitions_per_second']:.0f} "
          f"(with data transitions: {result['transitions_with_data_per_second']:.0f}); steps done per second: {result['steps_done_per_second']:.1f}")
    print_latency(result)
    print(f"cycles run: {len(cycles)}, at the end: workflows {result['final']['workflows']}, steps {result['final']['steps']}")
    for message, count in result["loop_errors"].items():
        print(f"  upstream logged during the loop ({count}x): {message}")


def compare(pairs: list[tuple[str, tuple[int, int], dict, dict]], ours_large: list[tuple[tuple[int, int], dict]]) -> None:
    """One table: for each upstream variant, ours on exactly the same N x M chains beside it, and the ratio."""

    def per_workflow_ms(result, n):
        return 1000 * statistics.median(c["own"] for c in result["steady"]) / n if result["steady"] else float("nan")

    def statements(result, n):
        return statistics.median(c["statements"] for c in result["steady"]) / n if result["steady"] else float("nan")

    # (name, value of a result over n workflows, format, True when lower is better)
    rows = [
        ("step+workflow transitions / s", lambda r, n: r["transitions_per_second"], "{:.0f}", False),
        ("steps done / s of engine time", lambda r, n: r["steps_done_per_second"], "{:.1f}", False),
        ("steady cycle, ms per workflow", per_workflow_ms, "{:.1f}", True),
        ("steady statements per workflow", statements, "{:.2f}", True),
    ]
    headers = []
    for label, (n, m), _, _ in pairs:
        headers += [f"ours {n}x{m}", f"upstream {label}", "ours better by"]
    width = max(len(h) for h in headers) + 2
    print("\n== ours vs upstream: the same prun chains (N x M-step), same PostgreSQL, fake JEDI time subtracted on both sides ==")
    print(f"{'':32}" + "".join(f"{h:>{width}}" for h in headers))
    for name, value, fmt, lower_is_better in rows:
        cells = []
        for _, (n, _m), mine, theirs in pairs:
            a, b = value(mine, n), value(theirs, n)
            ratio = (b / a if lower_is_better else a / b) if a and b else float("nan")
            cells += [fmt.format(a), fmt.format(b), f"{ratio:.1f}x"]
        print(f"{name:32}" + "".join(f"{c:>{width}}" for c in cells))
    print("ours at the benchmark's sizes: " + ", ".join(f"{n}x{m} {r['transitions_per_second']:.0f} transitions/s" for (n, m), r in ours_large))
    strict = min(mine["transitions_per_second"] / theirs["transitions_per_second"] for _, _, mine, theirs in pairs if theirs["transitions_per_second"])
    print(f"target (ours >= 10x upstream's transitions/s): {'met' if strict >= 10 else 'NOT met'}: {strict:.1f}x at worst")
    print("upstream part measured: register_workflow + process_active_workflows, i.e. its whole workflow/step/data state machine, its SQL\n"
          "  through its DBProxy, its PandaTaskStepHandler/PandaTaskDataHandler plugins and real getTaskStatusSuperstatus/getTaskWithID_JEDI\n"
          "  reads; query_workflows replaced by its own query_workflows_old (CONNECT BY fails on PostgreSQL), check interval 0 s like ours.\n"
          "  'direct-conn' also bypasses WrappedPostgresConn's self-recursive __getattribute__ (engine cost without that wrapper defect);\n"
          "  'as shipped' keeps it. Upstream makes 6 transitions per step here (registered checking checked_true pending ready starting\n"
          "  done) plus ~6 per data row, ours ~4 per step: 'steps done / s' compares the work done.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--upstream-workflows", type=int, default=20,
                        help="chains run through upstream's engine with the first size's step count (default 20: its cycles cost ~0.15 s "
                             "per workflow, ~1 s as shipped, so ours' N would take tens of minutes); the as-shipped variant runs a fifth of them")
    args = parser.parse_args()
    sizes = [(200, 10), (1000, 20)] if args.quick else [(1000, 20), (10000, 20)]
    pg, _home = start_dev_environment()
    try:
        print("PostgreSQL embedded; machine:", f"{__import__('os').cpu_count()} CPUs")
        results = []
        for n_workflows, n_steps in sizes:
            # the 10,000 case runs the creation pass and five steady passes (not the whole chains: 25 passes of ~10 s)
            result = run_ours(pg, n_workflows, n_steps, max_cycles=n_steps + 3 if n_workflows <= 1000 else 6)
            report("ours", result, n_workflows, n_steps)
            results.append(((n_workflows, n_steps), result))
        n_steps = sizes[0][1]
        pairs = []
        for label, n_workflows, direct in (("direct-conn", args.upstream_workflows, True), ("as shipped", max(1, args.upstream_workflows // 5), False)):
            result = run_upstream(pg, n_workflows, n_steps, direct_connection=direct)
            if not pairs:
                print("\n== upstream native engine (pandaserver.workflow.workflow_core.WorkflowInterface) on PostgreSQL: what runs, what fails ==")
                for note in result["notes"]:
                    print("-", note)
            report_upstream(label, result, n_workflows, n_steps)
            pairs.append((label, (n_workflows, n_steps), run_ours(pg, n_workflows, n_steps, max_cycles=n_steps + 3), result))
        compare(pairs, results)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
