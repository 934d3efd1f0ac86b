"""Shared pieces of the workflow DB tests: a WfDatabase on the test server, submission, a driver loop, checks."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from example_paths import DOCS_EXAMPLES, EXAMPLES, needs_docs_examples  # noqa: F401  (re-exported for the DB tests)

ENDED = ("done", "finished", "failed", "cancelled")

from pandajedi_wf_dev.devdb.task_templates import DEV_TEMPLATES as TEMPLATES  # noqa: E402  (as the pchain client sends them)

# input datasets our examples name (tests/examples/snakemake/config.json, native/*.yaml)
SIGNALS = [
    "mc23_dev:mc23_dev.700002.Dev_electron_gun.simul.HITS.e0001_s0001_tid00000002_00",
    "mc23_dev:mc23_dev.700004.Dev_muon_gun.simul.HITS.e0001_s0001_tid00000004_00",
]
BACKGROUNDS = [
    "mc23_dev.700003.Dev_minbias.merge.HITS.e0001_s0001_s0002/",
    "mc23_dev:mc23_dev.700005.Dev_minbias_high.merge.HITS.e0001_s0001_s0002/",
]
# and those the documentation's examples name (its snakemake/config.json and native_wfd/*.yaml)
DOCS_SIGNALS = [
    "mc16_valid:mc16_valid.900248.PG_singlepion_flatPt2to50.simul.HITS.e8312_s3238_tid26378578_00",
    "valid1.427080.Pythia8EvtGen_A14NNPDF23LO_flatpT_Zprime.simul.HITS.e5362_s3718_tid26356243_00",
]
DOCS_BACKGROUNDS = [
    "mc16_5TeV.361238.Pythia8EvtGen_A3NNPDF23LO_minbias_inelastic_low.merge.HITS.e6446_s3238_s3250/",
    "mc16_5TeV:mc16_5TeV.361239.Pythia8EvtGen_A3NNPDF23LO_minbias_inelastic_high.merge.HITS.e6446_s3238_s3250/",
]


def make_db(owner_suffix: str = ""):
    from pandajedi_wf.taskbuffer.connection import WfDatabase

    db = WfDatabase()
    db.connect()
    return db


def submit(db, language, spec, inputs=None, out_ds="user.dev.wf", templates=TEMPLATES, **kw):
    from pandajedi_wf.api import submit_workflow

    spec = Path(spec)
    base_dir = kw.pop("base_dir", str(spec.parent) if spec.is_absolute() else None)
    return submit_workflow(db, language=language, spec=str(spec), input_values=inputs, base_dir=base_dir, out_ds=out_ds,
                           user_name="dev.user", user_dn="dev.user", vo="wlcg", task_templates=templates, **kw)


def new_grid(db, task_buffer, fate=None, datasets=()):
    from pandajedi_wf_dev.simulators.grid import GridSimulator, always_done

    grid = GridSimulator(db, task_buffer, fate=fate or always_done)
    for name in SIGNALS + BACKGROUNDS + DOCS_SIGNALS + DOCS_BACKGROUNDS + list(datasets):
        grid.register_dataset(name)
    return grid


def run_until_quiet(db, task_buffer, grid, workflow_id, max_rounds=40, junction_results=None, owner="test-proc"):
    """Alternate processor cycles and grid ticks until the workflow ends (or max_rounds)."""
    from pandajedi_wf.core.clock import utcnow
    from pandajedi_wf.daemons import workflow_processor
    from pandajedi_wf.daemons.common import CycleStats
    from pandajedi_wf.taskbuffer import workflows

    now = utcnow()
    for round_nr in range(max_rounds):
        now += datetime.timedelta(minutes=2)
        workflow_processor.cycle(db, CycleStats(), task_buffer, now=now, owner=owner, junction_results=junction_results or grid)
        status = workflows.load(db, [workflow_id])[workflow_id]["status"]
        if status in ENDED:
            return status, round_nr
        grid.tick(now)
    return workflows.load(db, [workflow_id])[workflow_id]["status"], max_rounds


def workflow_row(db, workflow_id):
    """The workflow's row, its JSON documents decoded (our connection reads JSON columns as text on both backends)."""
    from pandajedi_wf.taskbuffer.connection import json_value
    from pandajedi_wf.taskbuffer.workflows import JSON_COLUMNS

    row = db.query_dicts(f"SELECT * FROM {db.table('JEDI_WF_WORKFLOWS')} WHERE workflow_id=:w", {":w": workflow_id})[0]
    return {k: json_value(v) if k in JSON_COLUMNS else v for k, v in row.items()}


def step_rows(db, workflow_id):
    """Step rows keyed by node_key."""
    return {r["node_key"]: r for r in db.query_dicts(
        f"SELECT step_id, name, node_key, step_type, status, jedi_task_id, task_name, iteration FROM {db.table('JEDI_WF_STEPS')} "
        "WHERE workflow_id=:w ORDER BY step_id", {":w": workflow_id})}


def by_name(rows: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for r in rows.values():
        found.setdefault(r["name"], []).append(r)
    return found


def jedi_tasks(db):
    return db.query_dicts(f"SELECT jediTaskID, taskName, status, reqID, parent_tid, errorDialog FROM {db.table('JEDI_Tasks')} ORDER BY jediTaskID")


def explain(db, workflow_id) -> str:
    """Everything worth seeing when an end-to-end assertion fails."""
    wf = workflow_row(db, workflow_id)
    lines = [f"workflow {workflow_id}: {wf['status']} {wf['error_dialog']!r}"]
    lines += [f"  step {k} {r['name']} {r['status']} task={r['jedi_task_id']} {r['task_name']}" for k, r in step_rows(db, workflow_id).items()]
    lines += [f"  task {t['jeditaskid']} {t['taskname']} {t['status']} {t['errordialog']!r}" for t in jedi_tasks(db)]
    return "\n".join(lines)


def check_tasks_and_history(db, workflow_id, out_ds):
    """Each submitted step is exactly one JEDI task named <outDS>_<NNN>_<step>[_s<k>][.<n>], carrying the workflow
    id in reqID; the history has one row per status change of every step, chained from creation to now."""
    rows = step_rows(db, workflow_id)
    tasks = jedi_tasks(db)
    by_task_name: dict[str, list[dict]] = {}
    for t in tasks:
        by_task_name.setdefault(t["taskname"], []).append(t)
    deft = db.query(f"SELECT taskName, COUNT(*) FROM {db.schema_deft}.T_TASK GROUP BY taskName")
    deft_counts = {name: n for name, n in deft}
    submitted = [r for r in rows.values() if r["jedi_task_id"] is not None]
    for r in submitted:
        name = r["task_name"]
        assert re.fullmatch(rf"{re.escape(out_ds)}_\d{{3}}_{re.escape(r['name'])}(_s\d+)*(\.\d+)*", name), name
        assert len(by_task_name.get(name, [])) == 1, f"{name}: {by_task_name.get(name)}"
        assert deft_counts.get(name) == 1, f"{name} requested {deft_counts.get(name)} times in DEFT"
        (task,) = by_task_name[name]
        assert int(task["jeditaskid"]) == int(r["jedi_task_id"])
        assert int(task["reqid"]) == workflow_id, f"{name}: reqID {task['reqid']} != workflow {workflow_id}"
    history = db.query_dicts(
        f"SELECT entity_type, entity_id, from_status, to_status FROM {db.table('JEDI_WF_TRANSITIONS')} WHERE workflow_id=:w ORDER BY transition_id",
        {":w": workflow_id},
    )
    for r in rows.values():
        chain = [(h["from_status"], h["to_status"]) for h in history if h["entity_type"] == "step" and int(h["entity_id"]) == int(r["step_id"])]
        assert chain and chain[0][0] is None, f"step {r['node_key']}: no creation row {chain}"
        for (_, prev_to), (nxt_from, _) in zip(chain, chain[1:]):
            assert prev_to == nxt_from, f"step {r['node_key']}: history has a gap {chain}"
        assert chain[-1][1] == r["status"], f"step {r['node_key']}: history ends {chain[-1]} but step is {r['status']}"
    wf_chain = [(h["from_status"], h["to_status"]) for h in history if h["entity_type"] == "workflow"]
    assert wf_chain[0][0] is None and wf_chain[-1][1] == workflow_row(db, workflow_id)["status"], wf_chain
    return submitted


class ProcessorThreads:
    """Two (or more) workflow processors running cycles in threads on their own connections, as N JEDI copies would;
    ``with ProcessorThreads(task_buffer, settings) as procs:`` starts them, leaving the block stops them, and any
    exception a processor raised is in ``procs.errors``."""

    def __init__(self, task_buffer, settings, owners=("proc-A", "proc-B")):
        import threading

        self.task_buffer, self.settings = task_buffer, settings
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(owner,), daemon=True) for owner in owners]

    def _run(self, owner):
        from pandajedi_wf.daemons import workflow_processor
        from pandajedi_wf.daemons.common import CycleStats

        own_db = make_db()
        try:
            while not self.stop.is_set():
                workflow_processor.cycle(own_db, CycleStats(), self.task_buffer, owner=owner, settings=self.settings)
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            self.errors.append(exc)
        finally:
            own_db.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)
