"""Upstream's WorkflowInterface over the benchmark's chains: its own loop and SQL, with a fake JEDI and a fake Rucio.

What is driven, through upstream's public entry points:
  ``register_workflow`` (the path of upstream's ``submit_workflow`` API, definition already parsed -- ours is also
  measured from a parsed definition) and ``process_active_workflows`` (the body of upstream's
  ``AtlasWorkflowManagerWatchDog.doProcessWorkflows``), one call per cycle, with upstream's step handler
  (``PandaTaskStepHandler``) and data handler (``PandaTaskDataHandler``) plugins.
What is replaced, and why:
  * ``query_workflows`` orders with Oracle's CONNECT BY, which does not run on Postgres: upstream's
    ``process_active_workflows`` as shipped is run once and recorded, then every cycle reads the same rows with
    upstream's own flat-order ``query_workflows_old`` (only the order differs; the chains have no sub-workflows).
  * ``WORKFLOW_CHECK_INTERVAL_SEC`` (60 s) is set to 0, as ours runs with ``recheck_seconds=0``.
  * ``insertTaskParamsPanda`` goes to the benchmark's fake JEDI, ``rucioAPI.get_dataset_metadata`` to a fake that
    knows no dataset; both are timed apart and subtracted. Task status reads (``getTaskStatusSuperstatus``,
    ``getTaskWithID_JEDI``) stay upstream's real SQL on the fake's JEDI_Tasks rows, as ours reads them with its own.
Transitions are counted from the status each upstream write stores (step, workflow and data separately); DB
statements by wrapping the cursor of upstream's single DB proxy.
"""

from __future__ import annotations

import collections
import logging
import time

from . import chain, tables


class FakeRucio:
    """``get_dataset_metadata`` as upstream's data handlers call it: the fake JEDI makes no dataset, so none exists."""

    def __init__(self):
        self.seconds = 0.0
        self.calls = 0

    def get_dataset_metadata(self, name, ignore_missing=False, check_content_state=False):
        start = time.perf_counter()
        self.calls += 1
        answer = {"state": "missing"} if ignore_missing else None
        self.seconds += time.perf_counter() - start
        return answer

    def __getattr__(self, name):
        raise AttributeError(f"the benchmark's FakeRucio has no {name}(): upstream called a Rucio method it does not fake")


class EngineTap:
    """Upstream's JediTaskBuffer as WorkflowInterface sees it: JEDI submission to the fake, status writes counted."""

    def __init__(self, task_buffer, jedi):
        self._task_buffer = task_buffer
        self._jedi = jedi
        self.flat_query = False
        self.status: dict[tuple[str, int], str] = {}
        self.transitions: collections.Counter = collections.Counter()
        self.steps_done = 0

    def __getattr__(self, name):
        return getattr(self._task_buffer, name)

    def insertTaskParamsPanda(self, *args, **kwargs):
        return self._jedi.insertTaskParamsPanda(*args, **kwargs)

    def query_workflows(self, status_filter_list=None, status_exclusion_list=None, check_interval_sec=300):
        if not self.flat_query:
            return self._task_buffer.query_workflows(status_filter_list, status_exclusion_list, check_interval_sec)
        with self._task_buffer.proxyPool.get() as proxy:
            return proxy.query_workflows_old(status_filter_list, status_exclusion_list, check_interval_sec)

    def insert_workflow(self, spec):
        workflow_id = self._task_buffer.insert_workflow(spec)
        if workflow_id is not None:
            self.status[("workflow", workflow_id)] = spec.status
        return workflow_id

    def update_workflow(self, spec):
        return self._written("workflow", spec.workflow_id, spec, self._task_buffer.update_workflow(spec))

    def update_workflow_step(self, spec):
        return self._written("step", spec.step_id, spec, self._task_buffer.update_workflow_step(spec))

    def update_workflow_data(self, spec):
        return self._written("data", spec.data_id, spec, self._task_buffer.update_workflow_data(spec))

    def upsert_workflow_entities(self, workflow_id, actions_dict=None, workflow_spec=None, step_specs=None, data_specs=None):
        answer = self._task_buffer.upsert_workflow_entities(workflow_id, actions_dict, workflow_spec, step_specs, data_specs)
        if answer is not None:
            actions = actions_dict or {}
            for kind, specs, key in (("step", step_specs, "step_id"), ("data", data_specs, "data_id")):
                for spec in specs or []:
                    if actions.get("steps" if kind == "step" else "data") == "insert":
                        self.status[(kind, getattr(spec, key))] = spec.status
                    else:
                        self._written(kind, getattr(spec, key), spec, answer)
            if workflow_spec is not None and actions.get("workflow") == "update":
                self._written("workflow", workflow_spec.workflow_id, workflow_spec, answer)
        return answer

    def _written(self, kind: str, key: int, spec, answer):
        """Count a transition when a successful write stored a new status (upstream returns None on failure)."""
        if answer is None:
            return answer
        old = self.status.get((kind, key))
        self.status[(kind, key)] = spec.status
        if old is not None and old != spec.status:
            self.transitions[kind] += 1
            if kind == "step" and spec.status == "done":
                self.steps_done += 1
        return answer


class StatementCount:
    """Statements upstream's DB proxy executes (cursor ``execute``/``executemany`` calls)."""

    def __init__(self, task_buffer):
        self.count = 0
        with task_buffer.proxyPool.get() as proxy:
            cursor = proxy.cur
        for name in ("execute", "executemany"):
            original = getattr(cursor, name)

            def counted(*args, _original=original, **kwargs):
                self.count += 1
                return _original(*args, **kwargs)

            setattr(cursor, name, counted)


class DirectConnection:
    """What upstream's WrappedPostgresConn offers (``begin`` no-op, ``ping``, the driver's methods) without its
    ``__getattribute__``, which reads ``self.orig_conn`` through itself and so recurses to Python's recursion limit
    (then swallows the RecursionError) on every attribute access: each begin/commit/ping costs milliseconds."""

    def __init__(self, raw):
        self._raw = raw

    def begin(self):
        pass

    def ping(self):
        if self._raw.closed:
            raise RuntimeError("connection closed")

    def __getattr__(self, name):
        return getattr(self._raw, name)


def bypass_connection_wrapper(task_buffer) -> None:
    """Point upstream's DB proxy and its cursor at ``DirectConnection`` over the same psycopg2 connection."""
    with task_buffer.proxyPool.get() as proxy:
        direct = DirectConnection(object.__getattribute__(proxy.conn, "orig_conn"))
        proxy.conn = direct
        proxy.cur.conn = direct


class ErrorLog(logging.Handler):
    """Upstream logs (and swallows) its failures: keep the ERROR records of its loggers, by distinct first line."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.seen: collections.Counter = collections.Counter()
        self.loggers = [logger for name, logger in logging.Logger.manager.loggerDict.items()
                        if name.startswith("panda.log.") and isinstance(logger, logging.Logger)]

    def emit(self, record):
        lines = [line.strip() for line in record.getMessage().splitlines() if line.strip()]
        raised = [line for line in lines if "Error" in line.split(":")[0] or "Exception" in line.split(":")[0]]
        last = raised[-1] if raised else (lines[-1] if lines else "")
        self.seen[f"{record.name.removeprefix('panda.log.')}: {lines[0][:160] if lines else ''}" + (f" ... {last[:200]}" if len(lines) > 1 else "")] += 1

    def __enter__(self):
        for logger in self.loggers:
            logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        for logger in self.loggers:
            logger.removeHandler(self)


def run_upstream(pg, jedi, n_workflows: int, n_steps: int, yaml_text: str, task_templates: dict, options: dict, tag: str,
                 out_prefix: str, max_cycles: int, direct_connection: bool = False) -> dict:
    """Register ``n_workflows`` chains and run upstream's processing loop until none is active (or ``max_cycles``)."""
    from pandajedi_wf_dev.devdb.upstream_agents import make_zombie_cleaner_harmless

    make_zombie_cleaner_harmless()
    from pandajedi.jedicore.JediTaskBuffer import JediTaskBuffer
    from pandaserver.workflow import workflow_core
    from pandaserver.workflow.workflow_base import WorkflowStatus

    notes: list[str] = []
    tables.create(pg)
    task_buffer = JediTaskBuffer(None, nDBConnection=1)
    interval = workflow_core.WORKFLOW_CHECK_INTERVAL_SEC
    try:
        workflow_core._get_flavor_plugin_class_map()  # import the plugins now, so their loggers exist for ErrorLog
        if direct_connection:
            bypass_connection_wrapper(task_buffer)
        statements = StatementCount(task_buffer)
        tap = EngineTap(task_buffer, jedi)
        rucio = FakeRucio()
        engine = workflow_core.WorkflowInterface(tap)
        engine.ddm_if = rucio
        template = chain.parse_chain(yaml_text, task_templates, options)
        start = time.perf_counter()
        registered = [engine.register_workflow("user", "bench", "chain", chain.definition_for(template, f"{out_prefix}.{tag}{i}"))
                      for i in range(n_workflows)]
        intake = time.perf_counter() - start
        if None in registered:
            raise RuntimeError(f"register_workflow failed for {registered.count(None)} of {n_workflows} workflows")

        with ErrorLog() as errors:
            notes += _as_shipped(task_buffer, engine, WorkflowStatus.active_statuses, errors, registered[0], len(registered))
            shipped_errors = dict(errors.seen)
            errors.seen.clear()
            tap.flat_query = True
            workflow_core.WORKFLOW_CHECK_INTERVAL_SEC = 0
            cycles, latencies = _cycles(engine, tap, statements, jedi, rucio, max_cycles)
            loop_errors = dict(errors.seen)
        final = _final_statuses(pg)
    finally:
        workflow_core.WORKFLOW_CHECK_INTERVAL_SEC = interval
        task_buffer.cleanup(requester="workflow_benchmark")
        tables.drop(pg)
    own = sum(c["own"] for c in cycles)
    step_workflow = sum(c["transitions"]["step"] + c["transitions"]["workflow"] for c in cycles)
    return {
        "intake_seconds": intake,
        "cycles": cycles,
        "steady": [c for c in cycles[1:] if c["processed"] == n_workflows],
        "transitions_per_second": step_workflow / own if own else 0.0,
        "transitions_with_data_per_second": sum(sum(c["transitions"].values()) for c in cycles) / own if own else 0.0,
        "steps_done_per_second": tap.steps_done / own if own else 0.0,
        "steps_done": tap.steps_done,
        "engine_seconds": own,
        "latency": latencies,
        "final": final,
        "notes": notes,
        "shipped_errors": shipped_errors,
        "loop_errors": loop_errors,
        "rucio_calls": rucio.calls,
    }


def _as_shipped(task_buffer, engine, active_statuses, errors: ErrorLog, workflow_id: int, registered: int) -> list[str]:
    """Run upstream's loop and query exactly as shipped, say what happened, and leave the DB proxy usable."""
    notes = []
    stats = engine.process_active_workflows()
    logged = "; ".join(errors.seen) or "nothing logged"
    notes.append(f"WorkflowInterface.process_active_workflows() as shipped: processed {stats['n_processed']} of the {registered} registered "
                 f"workflows; it logged: {logged}")
    try:
        task_buffer.get_workflow(workflow_id)
        notes.append("the DB proxy stays usable after that failure")
    except Exception as exc:  # noqa: BLE001 - this failure is a finding
        notes.append(f"upstream does not roll back after that failure: the next statement on its DB proxy (get_workflow) raised "
                     f"{type(exc).__name__}: {_first_line(exc)} -- the benchmark rolls back to go on")
    _roll_back(task_buffer)
    try:
        task_buffer.query_workflows(status_filter_list=list(active_statuses), check_interval_sec=0)
        notes.append("TaskBuffer.query_workflows ran on PostgreSQL (unexpected)")
    except Exception as exc:  # noqa: BLE001 - this failure is the finding
        notes.append(f"TaskBuffer.query_workflows (START WITH ... CONNECT BY PRIOR, CONNECT_BY_ROOT, LEVEL; WrappedCursor does not translate them) "
                     f"raised {type(exc).__name__}: {_first_line(exc)}")
    _roll_back(task_buffer)
    return notes


def _roll_back(task_buffer) -> None:
    with task_buffer.proxyPool.get() as proxy:
        proxy._rollback()


def _cycles(engine, tap, statements, jedi, rucio, max_cycles):
    cycles, latencies = [], []
    ended_at = None
    for _ in range(max_cycles):
        before = (statements.count, jedi.seconds, rucio.seconds, collections.Counter(tap.transitions), dict(jedi.submitted_at))
        start = time.perf_counter()
        stats = engine.process_active_workflows()
        wall = time.perf_counter() - start
        fakes = (jedi.seconds - before[1]) + (rucio.seconds - before[2])
        transitions = collections.Counter({k: tap.transitions[k] - before[3][k] for k in ("step", "workflow", "data")})
        cycles.append({"wall": wall, "own": wall - fakes, "statements": statements.count - before[0], "transitions": transitions,
                       "processed": stats["n_processed"], "active": stats["n_workflows"],
                       "submissions": len(jedi.submitted_at) - len(before[4])})
        if ended_at is not None:
            latencies += [t - ended_at for name, t in jedi.submitted_at.items() if name not in before[4]]
        if not stats["n_workflows"]:
            break
        ended_at = jedi.end_running_tasks()
    return cycles, latencies


def _final_statuses(pg) -> dict:
    conn = pg.connect("panda")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status, COUNT(*) FROM doma_panda.workflows GROUP BY status")
            workflows = dict(cur.fetchall())
            cur.execute("SELECT status, COUNT(*) FROM doma_panda.workflow_steps GROUP BY status")
            steps = dict(cur.fetchall())
        conn.rollback()
    finally:
        conn.close()
    return {"workflows": workflows, "steps": steps}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)
