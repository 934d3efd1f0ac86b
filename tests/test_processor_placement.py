"""daemons/processor/placement.py: what the processor gathers for the task-level placement and what it writes into a
submitted step's task parameters. The database reads are replaced by recorded answers (their SQL is tested on the
real database in tests/test_placement_inputs_db.py and, through the processor, in tests/test_brokers_db.py)."""

import datetime

import pytest

from pandajedi_wf.daemons.common import CycleStats
from pandajedi_wf.daemons.processor import placement
from pandajedi_wf.daemons.processor.plan import Plan
from pandajedi_wf.daemons.processor.step_row import StepRow
from pandajedi_wf.taskbuffer.connection import DatabaseError
from pandajedi_wf.taskbuffer.placement_inputs import MAX_PARENTS, ParentRow, QueueRow

NOW = datetime.datetime(2026, 12, 3, 12, 0)
GB = 1_000_000_000


class Reads:
    """placement_inputs as the database would answer; records what was asked."""

    def __init__(self, monkeypatch, outputs=None, recalls=None, queues=None, fail=False, rates=None, rates_fail=False):
        self.asked: list = []
        outputs = outputs or {}

        def parent_outputs(db, ids):
            self.asked.append(("parent_outputs", list(ids)))
            if fail:
                raise DatabaseError("connection lost")
            assert len(ids) <= MAX_PARENTS
            return [ParentRow(t, "done", outputs[t], True) for t in ids if t in outputs]

        def staging_destinations(db, datasets):
            self.asked.append(("staging_destinations", sorted(datasets)))
            return {d: v for d, v in (recalls or {}).items() if d in datasets}

        def site_loads(db):
            self.asked.append(("site_loads",))
            return queues if queues is not None else [QueueRow(q, q + "_DISK", 0, 0) for q in ("Q_A", "Q_B", "Q_C")]

        def link_rates(db, sources, now):
            self.asked.append(("link_rates", sorted(sources)))
            if rates_fail:
                raise DatabaseError("relation network_matrix_kv does not exist")
            return {k: v for k, v in (rates or {}).items() if k[0] in sources}

        for name, fn in (("parent_outputs", parent_outputs), ("staging_destinations", staging_destinations), ("site_loads", site_loads),
                         ("link_rates", link_rates)):
            monkeypatch.setattr(placement.placement_inputs, name, fn)


def plan_with_child(params, parent_task=11, parent_keys=("001",)):
    parent = StepRow(1, 7, "001", 1, "top", "prun", "done", jedi_task_id=parent_task)
    child = StepRow(2, 7, "002", 2, "bottom", "prun", "ready", parent_keys=parent_keys)
    plan = Plan({"workflow_id": 7, "status": "running"})
    child.task_name, child.task_params = "user.x.bottom", dict(params)
    plan.move(child, "submitting", "submitting JEDI task user.x.bottom")
    return plan, {7: [parent, child]}, child


def test_child_gets_included_site_led_by_its_parents_site_and_the_reason_in_its_history(monkeypatch):
    reads = Reads(monkeypatch, outputs={11: {"Q_B": 40 * GB}})
    plan, rows, child = plan_with_child({"taskName": "user.x.bottom"})
    stats = CycleStats()
    placement.apply(None, [plan], rows, NOW, stats)
    assert child.task_params["includedSite"][0] == "Q_B" and len(child.task_params["includedSite"]) == 2
    assert stats.counters == {"placements_set": 1}
    (reason,) = [r for kind, row, old, new, r in plan.history if row is child and new == "submitting"]
    assert reason.startswith("submitting JEDI task user.x.bottom; includedSite Q_B,") and "parents 11" in reason
    assert [a[0] for a in reads.asked] == ["parent_outputs", "staging_destinations", "site_loads", "link_rates"]
    assert reads.asked[-1] == ("link_rates", ["Q_B_DISK"])  # the links from where the inputs are


def test_a_step_naming_its_site_costs_no_read(monkeypatch):
    reads = Reads(monkeypatch, outputs={11: {"Q_B": GB}})
    plan, rows, child = plan_with_child({"site": "DEV_QUEUE"})
    placement.apply(None, [plan], rows, NOW, CycleStats())
    assert "includedSite" not in child.task_params and reads.asked == []


def test_a_users_included_site_is_intersected(monkeypatch):
    Reads(monkeypatch, outputs={11: {"Q_B": 40 * GB}})
    plan, rows, child = plan_with_child({"includedSite": "Q_B,Q_X"})
    placement.apply(None, [plan], rows, NOW, CycleStats())
    assert child.task_params["includedSite"] == ["Q_B"]


def test_a_tape_recall_of_a_root_steps_input_is_followed_with_or_without_its_scope(monkeypatch):
    Reads(monkeypatch, recalls={"data.raw": ("Q_C_DISK", 80 * GB)})
    plan, rows, child = plan_with_child(
        {"jobParameters": [{"type": "template", "param_type": "input", "dataset": "scope:data.raw,other.ds"}]}, parent_keys=())
    placement.apply(None, [plan], rows, NOW, CycleStats())
    assert child.task_params["includedSite"][0] == "Q_C"


def test_a_parents_output_is_not_looked_up_among_the_recalls(monkeypatch):
    """The child reads its parent's container (and a dataset of its own): only the latter may be a tape recall."""
    reads = Reads(monkeypatch, outputs={})
    parent = StepRow(1, 7, "001", 1, "top", "prun", "done", jedi_task_id=11, task_name="user.x.top")
    plan, rows, child = plan_with_child({"jobParameters": [
        {"type": "template", "param_type": "input", "dataset": "user.x.top_out.root/,user.x.top,user.x.topless_out/,other.ds"}]})
    rows[7][0] = parent
    placement.apply(None, [plan], rows, NOW, CycleStats())
    assert reads.asked == [("parent_outputs", [11]), ("staging_destinations", ["other.ds", "user.x.topless_out/"])]


def test_nothing_located_reads_no_queues_and_sets_nothing(monkeypatch):
    reads = Reads(monkeypatch, outputs={})
    plan, rows, child = plan_with_child({"jobParameters": [{"type": "template", "param_type": "input", "dataset": "d"}]})
    placement.apply(None, [plan], rows, NOW, CycleStats())
    assert "includedSite" not in child.task_params
    assert [a[0] for a in reads.asked] == ["parent_outputs", "staging_destinations"]


def test_an_unreadable_table_leaves_the_step_to_upstream(monkeypatch):
    Reads(monkeypatch, fail=True)
    plan, rows, child = plan_with_child({"taskName": "user.x.bottom"})
    stats = CycleStats()
    placement.apply(None, [plan], rows, NOW, stats)
    assert "includedSite" not in child.task_params and stats.counters == {"placements_unread": 1}


def test_a_batch_with_more_parents_than_one_read_takes_reads_them_all(monkeypatch):
    n = MAX_PARENTS + 50
    reads = Reads(monkeypatch, outputs={1000 + i: {"Q_A" if i % 2 else "Q_C": GB} for i in range(n)})
    plans, rows = [], {}
    for i in range(n):
        plan, r, _ = plan_with_child({"taskName": f"user.x.{i}"}, parent_task=1000 + i)
        plan.wf["workflow_id"] = 100 + i
        plans.append(plan)
        rows[100 + i] = r[7]
    placement.apply(None, plans, rows, NOW, CycleStats())
    asked = [ids for name, *rest in reads.asked if name == "parent_outputs" for ids in rest]
    assert sorted(t for ids in asked for t in ids) == [1000 + i for i in range(n)]
    firsts = [p.submissions()[0].task_params["includedSite"][0] for p in plans]
    assert firsts.count("Q_C") > 0 and firsts.count("Q_A") > 0  # each child led by its own parent's site (or spread)


@pytest.mark.parametrize("params, expected", [
    ({}, []),
    ({"jobParameters": [{"param_type": "input", "dataset": "a, b"}, {"param_type": "output", "dataset": "c"}, "x"]}, ["a", "b"]),
])
def test_input_datasets_of_a_steps_task(params, expected):
    assert placement.input_datasets(params) == expected


def test_a_fast_measured_link_takes_the_step_off_its_busy_data_site(monkeypatch):
    """Q_B holds the parent's 400 GB and runs full, a job waiting (its 80 estimated jobs wait 0.8 h for slots); by
    the default 1 Gb/s every other site would wait for the input longer (0.9 h), so the data's site leads. The network matrix says the link from Q_B's storage to
    Q_C's runs at 2 GB/s: Q_C, expected to end sooner, leads."""
    queues = [QueueRow("Q_A", "Q_A_DISK", 0, 0), QueueRow("Q_B", "Q_B_DISK", 100, 1), QueueRow("Q_C", "Q_C_DISK", 0, 0)]
    reads = Reads(monkeypatch, outputs={11: {"Q_B": 400 * GB}}, queues=queues)
    plan, rows, child = plan_with_child({"taskName": "user.x.bottom"})
    placement.apply(None, [plan], rows, NOW, CycleStats())
    assert child.task_params["includedSite"][0] == "Q_B"
    reads = Reads(monkeypatch, outputs={11: {"Q_B": 400 * GB}}, queues=queues, rates={("Q_B_DISK", "Q_C_DISK"): 2 * GB})
    plan, rows, child = plan_with_child({"taskName": "user.x.bottom"})
    placement.apply(None, [plan], rows, NOW, CycleStats())
    assert child.task_params["includedSite"][0] == "Q_C"


def test_an_unreadable_network_matrix_leaves_the_links_at_the_default_rate(monkeypatch):
    reads = Reads(monkeypatch, outputs={11: {"Q_B": 40 * GB}}, rates_fail=True)
    plan, rows, child = plan_with_child({"taskName": "user.x.bottom"})
    stats = CycleStats()
    placement.apply(None, [plan], rows, NOW, stats)
    assert child.task_params["includedSite"][0] == "Q_B"
    assert stats.counters == {"link_rates_unread": 1, "placements_set": 1}
