"""The task-level placement seam (pandajedi_wf.placement.task_sites): which sites a workflow step's task is offered to
(includedSite) and how that meets the user's own site choice. Pure: every rule and its reason."""

import random

import pytest

from pandajedi_wf.placement import ParentOutput, SiteLoad, SitePolicy, StepWork, choose_sites, expected_completion, external_input, queue_seconds, steer
from pandajedi_wf.placement.task_sites import (
    EXTERNAL_INPUT,
    SiteChoice,
    estimate_work,
    matches,
    site_list,
    site_load,
    with_assigned,
)

GB = 1_000_000_000
HOUR = 3600.0


def sites(**busy):
    """Queues Q_A..Q_E on storages A..E, 100 slots, 1 GB/s; ``busy``: name -> (running, queued)."""
    return [SiteLoad(f"Q_{c}", f"{c}_DISK", 100, *busy.get(f"Q_{c}", (0, 0)), wan_bytes_per_second=GB) for c in "ABCDE"]


def done(task_id, **bytes_at):
    return ParentOutput(task_id, running=False, bytes_at=bytes_at)


def test_nothing_to_follow_leaves_the_choice_to_upstream():
    assert choose_sites(sites(), []).sites == ()
    assert "no input" in choose_sites(sites(), []).reason
    assert choose_sites([], [done(1, A_DISK=GB)]).sites == ()
    empty = choose_sites(sites(), [done(1)])
    assert empty.sites == () and "at no known site yet" in empty.reason


def test_input_where_no_queue_reads_moves_the_same_everywhere():
    c = choose_sites(sites(), [done(1, Z_DISK=GB)])
    assert c.sites == () and "every site moves 1000000000 B" in c.reason


def test_child_goes_to_its_parents_site_first_with_the_next_soonest_as_second():
    c = choose_sites(sites(Q_C=(100, 50)), [done(7, B_DISK=100 * GB)], StepWork(10, HOUR))
    assert c.sites[0] == "Q_B" and len(c.sites) == 2
    assert c.sites[1] in {"Q_A", "Q_D", "Q_E"}  # idle, 100 s of transfer; C is busy
    assert c.moved["Q_B"] == 0 and c.completion["Q_B"] == pytest.approx(HOUR)
    assert "parents 7" in c.reason and "Q_B moves 0 B" in c.reason


def test_never_one_site_alone_and_never_more_than_the_policy_allows():
    parents = [done(7, B_DISK=100 * GB)]
    assert len(choose_sites(sites(), parents, policy=SitePolicy(min_sites=1)).sites) == 1
    assert len(choose_sites(sites(), parents, policy=SitePolicy(min_sites=4, max_sites=3)).sites) == 3
    assert len(choose_sites(sites(), parents, policy=SitePolicy(min_sites=5, max_sites=5)).sites) == 5


def test_queues_of_one_storage_are_all_good_together():
    two_b = sites() + [SiteLoad("Q_B2", "B_DISK", 100, wan_bytes_per_second=GB)]
    c = choose_sites(two_b, [done(7, B_DISK=100 * GB)], StepWork(10, HOUR), SitePolicy(min_sites=2, max_sites=3))
    assert set(c.sites) == {"Q_B", "Q_B2"}


def test_an_overloaded_data_site_is_passed_over_for_a_sooner_one():
    c = choose_sites(sites(Q_B=(100, 1000)), [done(7, B_DISK=100 * GB)], StepWork(10, HOUR))
    assert "Q_B" not in c.sites and c.moved[c.sites[0]] == 100 * GB
    assert c.completion["Q_B"] > 5 * c.completion[c.sites[0]]


def test_fan_in_with_a_tape_recall_counts_the_recalls_destination():
    inputs = [done(1, A_DISK=10 * GB), done(2, B_DISK=10 * GB)] + external_input("C_DISK", 50 * GB)
    c = choose_sites(sites(), inputs, StepWork(10, HOUR))
    assert c.sites[0] == "Q_C" and "parents 1,2 and its input" in c.reason


def test_external_input_needs_a_place_and_bytes():
    assert external_input(None, GB) == [] and external_input("A_DISK", 0) == []
    (p,) = external_input("A_DISK", GB)
    assert p.task_id == EXTERNAL_INPUT and p.bytes_at == {"A_DISK": GB} and not p.running


def test_exhaustively_the_first_site_is_the_least_moving_of_the_good_and_the_rest_are_soonest():
    rng = random.Random(5)
    for _ in range(400):
        loads = [SiteLoad(f"Q_{c}", f"{c}_DISK", rng.choice([10, 100]), rng.randint(0, 100), rng.randint(0, 300),
                          rng.choice([GB / 100, GB]), rng.choice([0, 10 * GB])) for c in "ABCDE"]
        inputs = [done(i, **{f"{rng.choice('ABCDEZ')}_DISK": rng.choice([GB, 40 * GB])}) for i in range(rng.randint(1, 3))]
        work = StepWork(rng.randint(1, 80), rng.choice([600.0, HOUR]))
        policy = SitePolicy(min_sites=rng.randint(1, 3), max_sites=rng.randint(1, 4), slack=rng.choice([0.0, 0.1, 0.5]))
        c = choose_sites(loads, inputs, work, policy)
        if not c.sites:
            assert len(set(c.moved.values())) <= 1
            continue
        comp = {s.name: expected_completion(s, inputs, work) for s in loads}
        assert c.completion == comp
        assert len(set(c.sites)) == len(c.sites) <= max(1, policy.max_sites)
        assert len(c.sites) >= min(policy.min_sites, policy.max_sites)
        best = min(comp.values())
        good = {n for n, t in comp.items() if t <= best * (1 + policy.slack)}
        least = min(c.moved[n] for n in good)
        assert c.sites[0] in good and c.moved[c.sites[0]] == least


# ---- steer: the user's choice wins ------------------------------------------------------------------------------
CHOICE = SiteChoice(("Q_B", "Q_A", "Q_D"), "follows parents 7")


def test_steer_sets_included_site_as_a_list_in_best_first_order():
    assert steer({}, CHOICE) == ({"includedSite": ["Q_B", "Q_A", "Q_D"]}, "includedSite Q_B,Q_A,Q_D: follows parents 7")


def test_steer_adds_nothing_without_a_choice():
    assert steer({}, SiteChoice((), "no input to follow: upstream chooses")) == ({}, "no input to follow: upstream chooses")


def test_a_step_that_names_its_site_is_left_alone():
    update, why = steer({"site": "DEV_QUEUE"}, CHOICE)
    assert update == {} and "names site DEV_QUEUE" in why


def test_a_users_included_site_is_intersected_in_our_order():
    update, why = steer({"includedSite": ["Q_D", "Q_B", "Q_X"]}, CHOICE)
    assert update == {"includedSite": ["Q_B", "Q_D"]} and "within the user's includedSite" in why


def test_a_users_included_site_as_a_string_with_wildcards_is_read_as_upstream_reads_it():
    assert steer({"includedSite": "Q_A,Q_D*"}, CHOICE)[0] == {"includedSite": ["Q_A", "Q_D"]}


def test_a_users_included_site_without_any_of_ours_is_kept_as_written():
    update, why = steer({"includedSite": ["Q_X", "Q_Y"]}, CHOICE)
    assert update == {} and "left as the user wrote it" in why
    assert steer({"includedSite": ["AUTO", "Q_B"]}, CHOICE)[0] == {}


def test_a_users_excluded_site_is_taken_out_of_ours():
    assert steer({"excludedSite": "Q_B"}, CHOICE)[0] == {"includedSite": ["Q_A", "Q_D"]}
    update, why = steer({"excludedSite": ["Q_*"]}, CHOICE)
    assert update == {} and "excludes" in why
    assert steer({"includedSite": ["Q_A", "Q_B"], "excludedSite": ["Q_B"]}, CHOICE)[0] == {"includedSite": ["Q_A"]}


def test_site_lists_and_matching_follow_upstream():
    assert site_list(None) == [] and site_list("") == [] and site_list("A, B,,C") == ["A", "B", "C"] and site_list(["A"]) == ["A"]
    assert matches("ANALY_X", ["ANALY_*"]) and matches("Q_A", ["Q_A"]) and not matches("Q_AB", ["Q_A"])
    assert not matches("Q_A", []) and not matches("Q_A", [""])


# ---- production's figures -------------------------------------------------------------------------------------
def test_estimate_work_is_one_job_per_five_gigabytes():
    assert estimate_work(0) == StepWork(1, HOUR)
    assert estimate_work(5 * GB) == StepWork(1, HOUR) and estimate_work(5 * GB + 1) == StepWork(2, HOUR)
    assert estimate_work(100 * GB, bytes_per_job=GB, job_seconds=60) == StepWork(100, 60)


def test_site_load_takes_the_running_jobs_as_slots_where_jobs_wait_and_a_queue_nothing_waits_at_as_not_full():
    assert site_load("Q", "S", 400, 12) == SiteLoad("Q", "S", 400, 400, 12)  # jobs wait: full
    assert site_load("Q", "S", 3, 2).slots == 50  # jobs wait at a small queue: at least the default
    assert site_load("Q", "S", 0, 0).slots == 50  # idle
    assert site_load("Q", "S", 400, 0) == SiteLoad("Q", "S", 450, 400, 0)  # busy, nothing waits: not shown full
    assert queue_seconds(site_load("Q", "S", 400, 0), StepWork(50, HOUR)) == 0.0
    assert queue_seconds(site_load("Q", "S", 400, 1), StepWork(50, HOUR)) > 0.0
    assert site_load("Q", "S", 3, 0, links={"T": 2e8}).rate_from("T") == 2e8
    assert site_load("Q", "S", 3, 0, links=None).link_bytes_per_second == {}


def test_with_assigned_adds_a_steps_jobs_to_the_chosen_sites_for_the_next_choice_of_the_pass():
    loads = sites()
    choice = SiteChoice(("Q_B", "Q_C"), "")
    after = {s.name: s.queued for s in with_assigned(loads, choice, StepWork(9))}
    assert after == {"Q_A": 0, "Q_B": 5, "Q_C": 5, "Q_D": 0, "Q_E": 0}
    assert with_assigned(loads, SiteChoice((), ""), StepWork(9)) == loads


def test_children_of_one_pass_spread_instead_of_piling_onto_the_data_site():
    """Twenty children of one parent submitted in one pass: the load they add moves the later ones elsewhere."""
    loads = sites()
    firsts = []
    for _ in range(20):
        work = StepWork(80, HOUR)
        choice = choose_sites(loads, [done(7, B_DISK=20 * GB)], work)
        firsts.append(choice.sites[0])
        loads = with_assigned(loads, choice, work)
    assert firsts[0] == "Q_B" and len(set(firsts)) >= 3
