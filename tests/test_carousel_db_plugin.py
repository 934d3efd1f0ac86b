"""The JEDI WatchDog plugin: DDM built lazily from ``ddm_factory``; a DDM failure is a recorded cycle error."""

from __future__ import annotations

from pandajedi_wf_dev.simulators.tape import SimDataset
from pandajedi_wf.taskbuffer import agent_heartbeats

from tests.carousel_db_fixtures import GB, make_tasks, requests, simulator, wfdb  # noqa: F401


def test_plugin_builds_ddm_lazily_and_records_its_failure(jedi_taskbuffer, pg, wfdb, monkeypatch):
    from pandajedi_wf_dev.devdb.upstream_agents import LocalDDMInterface
    from pandajedi_wf.jedi_agents import carousel_watchdog

    def no_rucio():
        raise RuntimeError("cannot authenticate to Rucio")

    monkeypatch.setattr(carousel_watchdog, "ddm_factory", no_rucio)
    plugin = carousel_watchdog.DataCarouselWatchDog(jedi_taskbuffer, LocalDDMInterface({}))  # cheap: no DDM call
    plugin.pre_action(None, "wlcg", "managed", None)
    plugin.db = wfdb
    assert plugin.doAction() == plugin.SC_FAILED
    (beat,) = agent_heartbeats.list_heartbeats(wfdb, "wf_carousel")
    assert beat["last_message"] == "RuntimeError: cannot authenticate to Rucio"

    make_tasks(jedi_taskbuffer, pg, [{"name": "dc.plugin.t1", "dataset": "mc16:mc16.plugin.RAW", "n_files": 2}])
    sim = simulator([SimDataset("mc16:mc16.plugin.RAW", (GB,) * 2, ("TAPE_A",))])
    monkeypatch.setattr(carousel_watchdog, "ddm_factory", lambda: sim)
    assert plugin.doAction() == plugin.SC_SUCCEEDED
    assert [r["status"] for r in requests(pg)] == ["staging"]
