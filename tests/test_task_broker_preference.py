"""Which nuclei the workflow-aware task broker lets upstream choose among (``task_brokers.preference_for``): the
rules around the pure decision, with our tables' reads replaced by their answers."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest

NOW = datetime.datetime(2026, 12, 3, 12, 0)


class Site:
    def __init__(self, endpoint):
        self.ddm_output = {"default": endpoint}


class SiteMapper:
    """Two nuclei, each with one queue writing to the nucleus's default endpoint."""

    nuclei = {"NUC_A": SimpleNamespace(default_ddm_endpoint_out="A_DISK"), "NUC_B": SimpleNamespace(default_ddm_endpoint_out="B_DISK")}
    sites = {"QA": Site("A_DISK"), "QB": Site("B_DISK")}

    def getNucleus(self, name):
        return self.nuclei.get(name)

    def checkSite(self, name):
        return name in self.sites

    def getSite(self, name):
        return self.sites[name]


def task(nucleus=None, full_chain=None, frozen=NOW - datetime.timedelta(minutes=5), cloud="WORLD"):
    return SimpleNamespace(jediTaskID=7, nucleus=nucleus, frozenTime=frozen, get_full_chain=lambda: full_chain, cloud=cloud,
                           useWorldCloud=lambda: cloud == "WORLD")


@pytest.fixture
def tables(monkeypatch):
    from pandajedi_wf.jedi_agents import brokers, task_brokers
    from pandajedi_wf.taskbuffer.placement_inputs import ParentRow

    answers = {"parents": (3, [1, 2]), "outputs": [ParentRow(1, "done", {"QA": 1_000}, True), ParentRow(2, "done", {"QB": 4_000}, True)]}
    monkeypatch.setattr(brokers.placement_inputs, "workflow_parents", lambda db, t: answers["parents"])
    monkeypatch.setattr(brokers.placement_inputs, "idds_parents", lambda db, t: [])
    monkeypatch.setattr(task_brokers.placement_inputs, "parent_outputs", lambda db, ids: answers["outputs"])
    return answers


def prefer(spec, period=60):
    from pandajedi_wf.jedi_agents.task_brokers import preference_for

    return preference_for(spec, SiteMapper(), None, NOW, period)


def test_a_workflow_task_prefers_the_nucleus_holding_most_of_its_parents_outputs(tables):
    pref = prefer(task())
    assert pref.nuclei == ("NUC_B",) and pref.reason.startswith("workflow 3: follows the data of parents 1,2: NUC_B moves 1000 B")


def test_upstream_decides_alone_for_a_preset_nucleus_a_full_chain_a_cloud_task_and_a_task_of_no_workflow(tables):
    assert prefer(task(nucleus="NUC_A")).nuclei == ()
    assert prefer(task(cloud="CERN")).nuclei == ()  # upstream's task broker only assigns WORLD tasks
    assert prefer(task(full_chain="1")).nuclei == ()
    tables["parents"] = None
    pref = prefer(task())
    assert pref.nuclei == () and pref.reason == "not a workflow task"


def test_the_preference_ends_after_the_period_in_assigning(tables):
    assert prefer(task(frozen=NOW - datetime.timedelta(minutes=59))).nuclei == ("NUC_B",)
    pref = prefer(task(frozen=NOW - datetime.timedelta(minutes=61)))
    assert pref.nuclei == () and "over 60 min: every nucleus" in pref.reason
    # a task put back to assigning without the time recorded (frozenTime unset): no limit known, so no preference
    assert prefer(task(frozen=None)).nuclei == ()


def test_nothing_to_follow_leaves_every_nucleus(tables):
    from pandajedi_wf.taskbuffer.placement_inputs import ParentRow

    tables["outputs"] = [ParentRow(1, "done", {"QA": 1_000}, True), ParentRow(2, "done", {"QB": 1_000}, True)]
    assert prefer(task()).nuclei == ()  # both nuclei move 1000 B
    tables["outputs"] = []
    assert prefer(task()).nuclei == ()
