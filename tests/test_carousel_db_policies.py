"""Carousel agent on the real PostgreSQL harness: limits, fair share, stuck sources, crashes, bad config, DDM errors."""

from __future__ import annotations

import json

import pytest

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.carousel.state import StagingRequest
from pandajedi_wf.daemons import data_carousel
from pandajedi_wf.daemons.common import CycleStats, run_cycle
from pandajedi_wf.ddm.adapter import DDMUnavailableError
from pandajedi_wf_dev.simulators.tape import SimDataset, TapeEndpoint
from pandajedi_wf.taskbuffer import agent_heartbeats, staging_requests, transitions

from tests.carousel_db_fixtures import GB, T0, make_tasks, requests, simulator, sql, wfdb  # noqa: F401
from tests.test_carousel_db_flow import run


def test_tape_limits_hold_over_many_cycles_and_shares_take_turns(jedi_taskbuffer, pg, wfdb):
    specs = [
        {"name": f"dc.limits.t{i}", "dataset": f"mc16:mc16.limits.{i}.RAW", "n_files": 10, "gshare": "Production" if i % 2 else "User Analysis"}
        for i in range(8)
    ]
    make_tasks(jedi_taskbuffer, pg, specs)
    sim = simulator([SimDataset(s["dataset"], (10 * GB,) * 10, ("TAPE_A",)) for s in specs])
    config = load_config({"tapes": {"TAPE_A": {"max_files": 25, "max_bytes": 250 * GB}}, "user_max_bytes": None})
    first_batch = None
    for _ in range(40):
        run(wfdb, sim, jedi_taskbuffer, config=config, step=200.0)
        rows = sql(
            pg,
            "SELECT COALESCE(SUM(total_files - staged_files), 0), COALESCE(SUM(dataset_size - staged_size), 0), COUNT(*) "
            "FROM doma_panda.jedi_dc_requests WHERE status IN ('submitting', 'staging', 'switching') AND source_rse='TAPE_A'",
        )
        files, n_bytes, n = rows[0]
        assert files <= 25 and n_bytes <= 250 * GB, (files, n_bytes)
        if first_batch is None and n:
            first_batch = {r["gshare"] for r in requests(pg) if r["status"] != "queued"}
        if all(r["status"] == "done" for r in requests(pg)):
            break
    assert first_batch == {"Production", "User Analysis"}  # equal weights: one of each share first
    assert [r["status"] for r in requests(pg)] == ["done"] * 8


def test_stuck_source_is_switched_to_another_tape(jedi_taskbuffer, pg, wfdb):
    ds = "mc16:mc16.stuck.RAW"
    make_tasks(jedi_taskbuffer, pg, [{"name": "dc.stuck.t1", "dataset": ds, "n_files": 4}])
    tapes = [TapeEndpoint("TAPE_DEAD", 0, 100e6, 60), TapeEndpoint("TAPE_B", 1, 100e6, 60)]
    sim = simulator([SimDataset(ds, (GB,) * 4, ("TAPE_DEAD", "TAPE_B"))], tapes=tapes)
    config = load_config({"stuck_timeout_seconds": 3600, "tapes": {"TAPE_DEAD": {"expected_bytes_per_second": 1e12}}})
    run(wfdb, sim, jedi_taskbuffer, config=config)
    assert requests(pg)[0]["source_rse"] == "TAPE_DEAD"  # looked fastest
    run(wfdb, sim, jedi_taskbuffer, config=config, cycles=12, step=600.0)
    (req,) = requests(pg)
    assert (req["status"], req["source_rse"]) == ("done", "TAPE_B")
    steps = [h["to_status"] for h in transitions.history(wfdb, "staging", req["request_id"])]
    assert steps == ["queued", "submitting", "staging", "switching", "staging", "done"]
    assert len(sim.rules) == 1


def test_crash_after_the_rule_was_created_leaves_exactly_one_rule(jedi_taskbuffer, pg, wfdb):
    ds = "mc16:mc16.crash.RAW"
    make_tasks(jedi_taskbuffer, pg, [{"name": "dc.crash.t1", "dataset": ds, "n_files": 3}])
    sim = simulator([SimDataset(ds, (GB,) * 3, ("TAPE_A",))])
    create = sim.create_staging_rule

    class AgentKilled(BaseException):
        """Stands for the process being killed: an Exception from the adapter would be contained to the request."""

    def create_then_die(*args, **kwargs):
        create(*args, **kwargs)
        raise AgentKilled("agent killed before the rule id was stored")

    sim.create_staging_rule = create_then_die
    with pytest.raises(AgentKilled):
        data_carousel.cycle(wfdb, CycleStats(), sim, jedi_taskbuffer, now=sim.now, config=load_config({}), vo="wlcg")
    (req,) = requests(pg)
    assert (req["status"], req["rule_id"]) == ("submitting", None)  # intent committed, rule id lost
    sim.create_staging_rule = create
    run(wfdb, sim, jedi_taskbuffer)  # not skipped: the crashed cycle released the process lock
    (req,) = requests(pg)
    assert req["status"] == "staging" and list(sim.rules) == [req["rule_id"]]


def test_bad_config_is_rejected_with_the_precise_error_and_nothing_is_done(jedi_taskbuffer, pg, wfdb):
    make_tasks(jedi_taskbuffer, pg, [{"name": "dc.config.t1", "dataset": "mc16:mc16.config.RAW", "n_files": 2}])
    sim = simulator([SimDataset("mc16:mc16.config.RAW", (GB,) * 2, ("TAPE_A",))])
    sql(
        pg,
        "INSERT INTO doma_panda.config (app, component, key, value, type, vo, descr, value_json) "
        "VALUES ('pandajedi_wf', 'data_carousel', 'config', '', 'json', 'wlcg', 'carousel', %s)",
        json.dumps({"tapes": {"TAPE_A": {"max_file": 3}}}),
    )

    ok = run_cycle("wf_carousel", wfdb, lambda db, stats: data_carousel.cycle(db, stats, sim, jedi_taskbuffer, now=sim.now, vo="wlcg"))

    assert not ok
    (beat,) = agent_heartbeats.list_heartbeats(wfdb, "wf_carousel")
    assert beat["last_status"] == "failed"
    assert "unknown key 'max_file' in 'tapes.TAPE_A'" in beat["last_message"]
    assert requests(pg) == [] and sim.rules == {}

    sql(pg, "UPDATE doma_panda.config SET value_json=%s", json.dumps({"default_destination": "NUCLEUS_X_DATADISK"}))
    assert run_cycle("wf_carousel", wfdb, lambda db, stats: data_carousel.cycle(db, stats, sim, jedi_taskbuffer, now=sim.now, vo="wlcg"))
    assert sql(pg, "SELECT destination_rse, status FROM doma_panda.jedi_dc_requests") == [("NUCLEUS_X_DATADISK", "staging")]


def test_ddm_errors_are_recorded_and_no_request_is_lost(jedi_taskbuffer, pg, wfdb):
    ds = "mc16:mc16.ddmerr.RAW"
    make_tasks(jedi_taskbuffer, pg, [{"name": "dc.ddmerr.t1", "dataset": ds, "n_files": 2}])
    sim = simulator([SimDataset(ds, (GB,) * 2, ("TAPE_A",))])

    def down(*args, **kwargs):
        raise DDMUnavailableError("Rucio unavailable (ConnectionError: refused)")

    sim.list_tape_replicas = down
    (message,) = run(wfdb, sim, jedi_taskbuffer, errors_ok=True)
    assert "list_tape_replicas: Rucio unavailable" in message and requests(pg) == []
    del sim.list_tape_replicas
    run(wfdb, sim, jedi_taskbuffer)
    (req,) = requests(pg)
    sim.get_rules = down
    (message,) = run(wfdb, sim, jedi_taskbuffer, errors_ok=True)
    assert "get_rules: Rucio unavailable" in message
    assert requests(pg) == [req]  # nothing requeued or forgotten
    del sim.get_rules
    run(wfdb, sim, jedi_taskbuffer, cycles=3)
    assert requests(pg)[0]["status"] == "done" and requests(pg)[0]["rule_id"] == req["rule_id"]


def test_second_insert_for_an_active_dataset_loses_on_the_unique_index(wfdb):
    request = StagingRequest(0, "mc16:mc16.race.RAW", 3, 3 * GB, "u", "Production", "DISK")
    first = staging_requests.insert(wfdb, request, "mc16", T0, "test")
    assert first is not None
    assert staging_requests.insert(wfdb, request, "mc16", T0, "test") is None
    assert list(staging_requests.active_by_dataset(wfdb, [request.dataset])) == [request.dataset]
    assert transitions.history(wfdb, "staging", first)[0]["to_status"] == "queued"


def test_cycle_is_skipped_while_another_process_holds_the_lock(jedi_taskbuffer, pg, wfdb):
    make_tasks(jedi_taskbuffer, pg, [{"name": "dc.lock.t1", "dataset": "mc16:mc16.lock.RAW", "n_files": 1}])
    sim = simulator([SimDataset("mc16:mc16.lock.RAW", (GB,), ("TAPE_A",))])
    lock = dict(vo=None, prodSourceLabel=None, cloud=None, workqueue_id=None, resource_name=None, component=data_carousel.LOCK_COMPONENT, pid="other-1")
    assert jedi_taskbuffer.lockProcess_JEDI(timeLimit=10, **lock)
    try:
        (message,) = run(wfdb, sim, jedi_taskbuffer)
        assert "held by another process" in message and requests(pg) == []
    finally:
        jedi_taskbuffer.unlockProcess_JEDI(**lock)
    run(wfdb, sim, jedi_taskbuffer)
    assert len(requests(pg)) == 1


def test_tasks_are_told_when_their_staging_fails_for_good(jedi_taskbuffer, pg, wfdb):
    ds = "mc16:mc16.lost.RAW"
    (tid,) = make_tasks(jedi_taskbuffer, pg, [{"name": "dc.lost.t1", "dataset": ds, "n_files": 3}])
    sim = simulator([SimDataset(ds, (GB,) * 3, ("TAPE_DEAD",))], tapes=[TapeEndpoint("TAPE_DEAD", 0, 100e6, 60)])
    config = load_config({"stuck_timeout_seconds": 3600, "max_source_switches": 0})

    run(wfdb, sim, jedi_taskbuffer, config=config, cycles=12, step=600.0)

    (req,) = requests(pg)
    assert req["status"] == "failed", req
    ((dialog,),) = sql(pg, "SELECT errordialog FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid)
    assert dialog.startswith(f"pandajedi_wf data carousel: staging of {ds} failed:"), dialog
    # told once: the relation is released, a later cycle writes nothing more
    sql(pg, "UPDATE doma_panda.jedi_tasks SET errordialog='seen' WHERE jeditaskid=%s", tid)
    run(wfdb, sim, jedi_taskbuffer, config=config, cycles=2, step=600.0)
    assert sql(pg, "SELECT errordialog FROM doma_panda.jedi_tasks WHERE jeditaskid=%s", tid) == [("seen",)]
    assert len(requests(pg)) == 1  # and the failed recall is not started again and again
