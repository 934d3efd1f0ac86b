"""The monitoring snapshot as pure functions over query rows: agent health, DAG depth, carousel fill, workflow panel."""

import datetime

import pytest

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.monitor import snapshot

NOW = datetime.datetime(2025, 6, 1, 12, 0, 0)


def ago(seconds):
    return NOW - datetime.timedelta(seconds=seconds)


def beat(agent, age, status="ok", message="fine", pid="h-1"):
    return {"agent": agent, "pid": pid, "host": "h", "cycle_start": None, "cycle_end": ago(age) if age is not None else None,
            "n_cycles": 7, "last_status": status, "last_message": message, "stats": {"cycle_seconds": 0.4}}


def test_agent_periods_are_read_from_procconfig_and_bad_entries_are_skipped():
    periods = snapshot.agent_periods("atlas:any:1:wf_processor:90; atlas:any:2:other:30;broken;atlas:any:1:x:soon;atlas:any:1:y:0")
    assert periods == {"wf_processor": 90, "wf_carousel": 300, "other": 30}
    assert snapshot.agent_periods(None) == snapshot.DEFAULT_PERIODS


def test_agent_flagged_when_late_beyond_three_periods_or_failed_or_missing():
    periods = {"wf_processor": 60, "wf_carousel": 300, "wf_extra": 10}
    agents = snapshot.agent_health(
        [beat("wf_processor", 179), beat("wf_processor", 181, pid="h-2"), beat("wf_carousel", 5, "failed", "CarouselConfigError: bad key")],
        periods, NOW,
    )
    by = {(a["agent"], a["pid"]): a for a in agents}
    assert by[("wf_processor", "h-1")]["problem"] is None
    late = by[("wf_processor", "h-2")]["problem"]
    assert "no cycle for 3m" in late and "period 60s" in late
    assert by[("wf_carousel", "h-1")]["problem"] == "last cycle failed: CarouselConfigError: bad key"
    assert "no heartbeat recorded" in by[("wf_extra", None)]["problem"]
    assert by[("wf_processor", "h-1")]["age_seconds"] == 179.0 and by[("wf_processor", "h-1")]["cycle_seconds"] == 0.4


def test_agent_that_never_finished_a_cycle_is_flagged():
    (agent,) = snapshot.agent_health([beat("wf_processor", None)], {"wf_processor": 60}, NOW)
    assert agent["problem"] == "never finished a cycle" and agent["last_cycle_end"] is None


@pytest.mark.parametrize("seconds, text", [(5, "5s"), (119, "119s"), (120, "2m"), (3599, "59m"), (3600 * 3 + 300, "3h05m"), (86400 * 2 + 3600 * 4, "2d04h")])
def test_duration_is_short_and_human(seconds, text):
    assert snapshot.duration(seconds) == text


def step(key, parents=(), status="done", **kw):
    return {"step_id": kw.pop("step_id", abs(hash(key)) % 10**6), "node_key": key, "name": kw.pop("name", key), "status": status,
            "parent_keys": list(parents), **kw}


def test_dag_depths_follow_the_longest_parent_chain():
    steps = [step("001"), step("002", ["001"]), step("003", ["001"]), step("004", ["002", "003"]), step("005", ["004", "001"]), step("006")]
    assert snapshot.dag_depths(steps) == {"001": 0, "002": 1, "003": 1, "004": 2, "005": 3, "006": 0}


def test_dag_depths_ignore_unknown_parents_and_cut_cycles():
    depths = snapshot.dag_depths([step("a", ["missing"]), step("b", ["c"]), step("c", ["b"]), step("d", ["a"])])
    assert depths["a"] == 0 and depths["d"] == 1
    assert sorted([depths["b"], depths["c"]]) == [0, 1]


def test_workflow_detail_groups_steps_by_depth_and_names_history_by_node_key():
    wf = {"workflow_id": 9, "name": "w", "user_name": "u", "status": "running", "language": "yaml", "out_ds": "user.u.x",
          "error_dialog": None, "creation_time": ago(600), "status_change_time": ago(60), "parent_workflow_id": None}
    steps = [step("001", step_id=1, jedi_task_id=77, jedi_status="running", status="running"),
             step("002", ["001"], step_id=2, status="defined"), step("003", ["001"], step_id=3, status="defined")]
    history = [{"transition_time": ago(60), "entity_type": "step", "entity_id": 1, "from_status": "submitted", "to_status": "running",
                "reason": "JEDI task started", "actor": "proc"},
               {"transition_time": ago(600), "entity_type": "workflow", "entity_id": 9, "from_status": None, "to_status": "parsed",
                "reason": "ok", "actor": "submit"}]
    detail = snapshot.workflow_detail(wf, steps, history, NOW, step_limit=100, history_limit=2)
    assert detail["levels"] == [["001"], ["002", "003"]]
    first = detail["steps"][0]
    assert (first["jedi_task_id"], first["jedi_status"], first["depth"]) == (77, "running", 0)
    assert detail["steps"][1]["parents"] == ["001"]
    assert [h["key"] for h in detail["history"]] == ["001", "9"]
    assert detail["history_truncated"] and not detail["steps_truncated"]
    assert detail["steps_by_status"] == {"running": 1, "defined": 2}
    assert detail["workflow"]["changed_age_seconds"] == 60.0


def test_workflows_panel_counts_per_user_and_orders_step_statuses():
    counts = [("alice", "done", 3), ("alice", "failed", 1), ("bob", "running", 2)]
    recent = [{"workflow_id": 5, "name": "n", "user_name": "bob", "status": "running", "language": "cwl", "creation_time": ago(100),
               "status_change_time": ago(50), "error_dialog": None}]
    failed = [{"workflow_id": 4, "name": "f", "user_name": "alice", "status": "failed", "creation_time": ago(900),
               "status_change_time": ago(800), "error_dialog": "step top: bad"}]
    panel = snapshot.workflows_panel(counts, recent, {5: {"defined": 1, "running": 2, "done": 4}}, failed, NOW)
    assert panel["totals"] == {"done": 3, "failed": 1, "running": 2}
    assert panel["by_user"] == [{"user_name": "alice", "counts": {"done": 3, "failed": 1}, "total": 4},
                                {"user_name": "bob", "counts": {"running": 2}, "total": 2}]
    (r,) = panel["recent"]
    assert list(r["steps_by_status"]) == ["done", "running", "defined"] and r["n_steps"] == 7
    assert panel["failed"][0]["error_dialog"] == "step top: bad"


def tape_row(tape, status, n, files, n_bytes):
    return {"tape": tape, "status": status, "n_requests": n, "files_left": files, "bytes_left": n_bytes}


def test_carousel_panel_fills_tapes_against_their_limits_and_the_threshold():
    config = load_config({
        "tapes": {"TAPE_A": {"max_files": 100, "max_bytes": 10**12}, "TAPE_B": {"max_files": 10}, "TAPE_OFF": {"active": False}},
        "release_threshold": 0.5, "disk_buffers": {"DISK_X": 2 * 10**12}, "stuck_timeout_seconds": 3600,
    })
    panel = snapshot.carousel_panel(
        config, None, "test config",
        [("queued", 3, ago(7200)), ("staging", 4, ago(9000)), ("retired", 10, ago(99999))],
        [tape_row("TAPE_A", "staging", 2, 40, 2 * 10**11), tape_row("TAPE_A", "switching", 1, 5, 10**11),
         tape_row("TAPE_A", "done", 1, 0, 0), tape_row("TAPE_B", "staging", 1, 11, 10**9), tape_row(None, "queued", 3, 30, 10**12)],
        [("DISK_X", 5 * 10**11)],
        [{"tape": "TAPE_A", "throughput_bps": 2.5e8, "n_samples": 4, "updated_at": ago(300)}, {"tape": "TAPE_NEW", "throughput_bps": None, "n_samples": 0, "updated_at": None}],
        [{"request_id": 8, "dataset": "ds:stuck", "status": "staging", "source_rse": "TAPE_A", "destination_rse": "DISK_X", "total_files": 10,
          "staged_files": 2, "n_source_switches": 1, "last_progress_time": ago(5400), "creation_time": ago(9000), "start_time": ago(8000),
          "error_dialog": None},
         {"request_id": 9, "dataset": "ds:sw", "status": "switching", "source_rse": "TAPE_B", "destination_rse": "DISK_X", "total_files": 3,
          "staged_files": 0, "n_source_switches": 2, "last_progress_time": ago(10), "creation_time": ago(9000), "start_time": None,
          "error_dialog": "no progress on TAPE_A for 2h; TAPE_B expected sooner"}],
        NOW,
    )
    tapes = {t["tape"]: t for t in panel["tapes"]}
    a = tapes["TAPE_A"]
    assert (a["files_in_flight"], a["bytes_in_flight"]) == (45, 3 * 10**11)  # done requests are on disk: not in flight
    assert a["files_fill"] == pytest.approx(0.45) and a["bytes_fill"] == pytest.approx(0.3)
    assert a["requests"] == {"done": 1, "switching": 1, "staging": 2}
    assert a["accepts_new_work"] and a["state"] == "accepting"
    assert a["throughput_bps"] == 2.5e8 and a["throughput_samples"] == 4
    assert tapes["TAPE_B"]["state"] == "over limit" and not tapes["TAPE_B"]["accepts_new_work"]
    assert tapes["TAPE_OFF"]["state"] == "inactive" and tapes["TAPE_OFF"]["files_in_flight"] == 0
    assert tapes["TAPE_NEW"]["max_files"] == 10_000  # default limits for a tape only seen in the throughput table
    assert panel["tapes"][0]["tape"] == "TAPE_B"  # fullest first
    assert panel["requests_without_tape"] == {"queued": 3}
    assert panel["oldest_queued_age_seconds"] == 7200.0
    assert panel["buffers"] == [{"destination": "DISK_X", "bytes_held": 5 * 10**11, "limit_bytes": 2 * 10**12, "fill": 0.25}]
    stuck, switching = panel["troubled"]
    assert stuck["reason"] == "no new file for 1h30m (stuck timeout 1h00m)" and stuck["files"] == "2/10"
    assert switching["reason"] == "switching source: no progress on TAPE_A for 2h; TAPE_B expected sooner"


def test_carousel_threshold_state_and_zero_limit():
    config = load_config({"tapes": {"T": {"max_files": 10}, "Z": {"max_files": 0}}, "release_threshold": 0.8})
    panel = snapshot.carousel_panel(config, None, "defaults", [], [tape_row("T", "staging", 1, 8, 0)], [], [], [], NOW)
    tapes = {t["tape"]: t for t in panel["tapes"]}
    assert tapes["T"]["state"] == "above release threshold" and not tapes["T"]["accepts_new_work"]
    assert tapes["Z"]["files_fill"] is None and tapes["Z"]["state"] == "closed (a limit is 0)"
    assert panel["oldest_queued_since"] is None


def test_overview_is_unhealthy_when_an_agent_is_flagged_or_the_config_is_bad():
    config = load_config({})
    good = snapshot.agent_health([beat("wf_processor", 1), beat("wf_carousel", 1)], snapshot.DEFAULT_PERIODS, NOW)
    carousel = snapshot.carousel_panel(config, None, "defaults", [], [], [], [], [], NOW)
    panel = snapshot.workflows_panel([], [], {}, [], NOW)
    assert snapshot.overview(good, panel, carousel, NOW)["healthy"]
    bad_config = dict(carousel, config_error="carousel config: unknown key 'x'")
    assert not snapshot.overview(good, panel, bad_config, NOW)["healthy"]
    late = snapshot.agent_health([beat("wf_processor", 1)], snapshot.DEFAULT_PERIODS, NOW)  # carousel never ran
    assert not snapshot.overview(late, panel, carousel, NOW)["healthy"]


def test_agent_vo_comes_from_the_agents_procconfig_entry():
    proc = "atlas:any:1:wf_processor:60;wlcg:managed:1:wf_carousel:300"
    assert snapshot.agent_vo(proc, "wf_carousel") == "wlcg"
    assert snapshot.agent_vo(proc, "nothing") is None and snapshot.agent_vo(None, "wf_carousel") is None


def test_dag_depths_put_bodies_after_their_container_and_dependents_after_the_bodies():
    steps = [
        step("001"),
        step("007s0", ["001"]), step("007s0/001"), step("007s0/002", ["007s0/001"]),
        step("007s1", ["001"]), step("007s1/001"),
        step("004"), step("004i1/001"), step("004i2/001"),
        step("008", ["007s0", "007s1"]),
    ]
    depths = snapshot.dag_depths(steps)
    assert (depths["001"], depths["007s0"], depths["007s0/001"], depths["007s0/002"]) == (0, 1, 2, 3)
    assert depths["007s1/001"] == 2
    assert depths["008"] == 4  # after the deepest body step of both containers
    assert (depths["004"], depths["004i1/001"], depths["004i2/001"]) == (0, 1, 1)
    assert snapshot.container_of("004s1i2/001", {"004s1"}) == "004s1" and snapshot.container_of("009/001", set()) is None


def test_bytes_fill_is_against_the_window_the_admission_uses():
    """A slow tape reading small files gets a byte window far below max_bytes; the panel fills against that window
    (the one admission refuses new work by), not against max_bytes, and says the tape is full when it is."""
    from pandajedi_wf.carousel.source_choice import byte_window
    from pandajedi_wf.monitor.html import render_overview

    config = load_config({"tapes": {"SLOW": {"max_files": 100_000, "max_bytes": 10**15}}, "release_threshold": 0.8})
    rows = [tape_row("SLOW", "staging", 1, 2000, 2000 * 10**8)]  # 2,000 files of 100 MB in flight
    panel = snapshot.carousel_panel(config, None, "test", [], rows, [], [{"tape": "SLOW", "throughput_bps": 10**7, "n_samples": 3}], [], NOW)
    (slow,) = panel["tapes"]

    window = byte_window("SLOW", 10**8, {"SLOW": 10**7}, config)
    assert slow["byte_window"] == int(window) and window < 10**15 / 100  # far below the configured maximum
    assert slow["bytes_fill"] == pytest.approx(2000 * 10**8 / int(window))
    assert slow["state"] == ("over limit" if slow["bytes_fill"] > 1 else "above release threshold")
    assert not slow["accepts_new_work"]
    agents = snapshot.agent_health([], snapshot.DEFAULT_PERIODS, NOW)
    page = render_overview(snapshot.overview(agents, snapshot.workflows_panel([], [], {}, [], NOW), panel, NOW))
    assert "bytes in flight / window" in page and "window from throughput; max 1.0 PB" in page
