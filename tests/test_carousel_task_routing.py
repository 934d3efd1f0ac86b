"""carousel.task_routing: which tasks our refiner plugin pre-stages, what it hides from upstream's carousel."""

from __future__ import annotations

import itertools

import pytest

from pandajedi_wf.carousel.task_routing import (
    FailedStaging,
    Routing,
    RoutingPolicy,
    RoutingPolicyError,
    apply_routing,
    datasets_to_recall,
    ending_comment,
    hide_from_upstream_carousel,
    provokable,
    route,
    staged_again,
)

NOBODY = RoutingPolicy()
ALICE = RoutingPolicy.parse("Alice Example|bob")
EVERYONE = RoutingPolicy.parse("ALL")


def anal(**extra):
    return {"taskType": "anal", "prodSourceLabel": "user", "userName": "Alice Example", **extra}


def prod(**extra):
    return {"taskType": "prod", "prodSourceLabel": "managed", "userName": "prodsys", **extra}


def test_policy_parses_user_names_with_spaces_and_refuses_all_beside_names():
    assert ALICE.prestaging_users == {"Alice Example", "bob"} and not ALICE.all_users
    assert EVERYONE.all_users and RoutingPolicy.parse(" ").prestaging_users == frozenset()
    with pytest.raises(RoutingPolicyError, match="wf_carousel_prestaging_users: ALL stands alone"):
        RoutingPolicy.parse("ALL|bob")


@pytest.mark.parametrize("policy", [NOBODY, ALICE, EVERYONE])
@pytest.mark.parametrize("make", [anal, prod])
def test_an_explicit_choice_of_the_task_stands_whatever_the_policy(policy, make):
    assert route(make(inputPreStaging=True), policy).input_prestaging is True
    assert route(make(inputPreStaging=False), policy).input_prestaging is False
    assert route(make(inputPreStaging="yes"), policy).input_prestaging is False  # upstream sets IS=1 only for true
    assert route(make(inputPreStaging=True, noInput=True), policy) == Routing(False, "the task has no input")


@pytest.mark.parametrize("keys", [("toStaging",), ("panda_data_carousel",), ("toStaging", "panda_data_carousel")])
def test_asking_for_upstreams_carousel_is_pre_staging_by_ours_and_the_keys_are_dropped(keys):
    params = prod(**{k: True for k in keys})
    routing = route(params, NOBODY)
    assert routing.input_prestaging and routing.dropped == keys and "staged by ours" in routing.reason
    apply_routing(params, routing)
    assert params == prod(inputPreStaging=True)


def test_upstream_carousel_keys_are_dropped_even_when_the_task_refuses_pre_staging():
    params = prod(toStaging=True, inputPreStaging=False)
    routing = route(params, EVERYONE)
    assert (routing.input_prestaging, routing.dropped) == (False, ("toStaging",))
    apply_routing(params, routing)
    assert params == prod(inputPreStaging=False)


def test_an_analysis_task_is_pre_staged_exactly_where_upstream_would_by_early_access_users():
    """Every combination of user, partial-input key and policy: pre-staged iff the task reads all its input and the
    policy names its user (or ALL)."""
    partial_keys = ("nFiles", "nEvents", "skipFilesUsedBy")
    for user, partial, policy in itertools.product(("Alice Example", "carol"), (None, *partial_keys), (NOBODY, ALICE, EVERYONE)):
        params = anal(userName=user, **({partial: 10} if partial else {}))
        expected = partial is None and (policy.all_users or user in policy.prestaging_users)
        routing = route(params, policy)
        assert routing.input_prestaging is expected, (user, partial, policy, routing)
        if partial:
            assert partial in routing.reason


@pytest.mark.parametrize("params", [prod(), anal(prodSourceLabel="managed"), {"taskType": "anal", "prodSourceLabel": "user"} | {"noInput": True}])
def test_other_tasks_are_not_pre_staged_by_policy(params):
    assert route(params, EVERYONE).input_prestaging is False


def test_apply_routing_sets_the_decision_and_leaves_an_unset_flag_unset():
    params = anal()
    apply_routing(params, route(params, EVERYONE))
    assert params["inputPreStaging"] is True
    params = anal()
    apply_routing(params, route(params, NOBODY))
    assert "inputPreStaging" not in params


def test_hiding_keeps_the_flag_in_what_is_stored_and_removes_it_from_the_live_dict():
    live = {"taskName": "t", "inputPreStaging": True}
    stored = hide_from_upstream_carousel(live, live)  # Gen/AtlasAnal refiners store the very dict
    assert live == {"taskName": "t"} and stored == {"taskName": "t", "inputPreStaging": True} and stored is not live
    live = {"inputPreStaging": True}
    assert hide_from_upstream_carousel(live, None) is None and live == {}  # AtlasProd refiner stores nothing
    live = {"inputPreStaging": False}
    assert hide_from_upstream_carousel(live, live) is live and live == {"inputPreStaging": False}


def test_upstreams_watchdog_may_provoke_only_tasks_our_carousel_does_not_hold():
    pending = {1: ["a"], 2: ["b", "c"], 3: []}
    assert provokable(pending, {2}) == {1: ["a"], 3: []}
    assert provokable(pending, []) == pending
    assert provokable(pending, [1, 2, 3, 4]) == {}


def test_a_container_read_as_one_master_dataset_is_recalled_dataset_by_dataset():
    constituents = {"user.a.in/": ["user.a:user.a.in.ds1", "user.a:user.a.in.ds2"]}
    # prun's container master (scope-prefixed name, containerName as the user wrote it) -> its datasets
    assert datasets_to_recall([("user.a:user.a.in/", "user.a.in/")], constituents) == ["user.a:user.a.in.ds1", "user.a:user.a.in.ds2"]
    # an expanded container (one master per dataset, containerName set) and a plain dataset stay as they are
    assert datasets_to_recall([("mc:mc.ds1", "mc.c/"), ("mc:mc.ds2", "mc.c/"), ("mc:mc.x", None)], {}) == ["mc:mc.ds1", "mc:mc.ds2", "mc:mc.x"]
    # a container whose datasets JEDI did not list is requested under its own name (nothing better is known)
    assert datasets_to_recall([("user.a:user.b/", "user.b/")], constituents) == ["user.a:user.b/"]



def test_a_pair_is_staged_again_only_when_its_task_was_retried_after_it_was_told_of_the_last_failure():
    ds = "mc16:mc16.x.RAW"
    told = FailedStaging(1, ds, request_id=10, error="RSEWriteBlocked", told_at=1000.0)
    assert staged_again([told], {1: 1500.0}) == {(1, ds): told}  # retried after it was told
    assert staged_again([told], {1: 900.0}) == {}  # the attempt it was told in: not retried
    assert staged_again([told], {}) == {}  # JEDI has no attempt for it
    untold = FailedStaging(1, ds, request_id=11, error="again", told_at=None)
    assert staged_again([told, untold], {1: 1500.0}) == {}  # a later failure it is still to be told of
    later = FailedStaging(1, ds, request_id=12, error="NO_SOURCES", told_at=2000.0)
    assert staged_again([told, later], {1: 1500.0}) == {}  # retried once, failed again, not retried since
    assert staged_again([later, told], {1: 2500.0}) == {(1, ds): later}  # the last failure is the one kept
    other = FailedStaging(2, ds, request_id=10, error="RSEWriteBlocked", told_at=1000.0)
    assert staged_again([told, other], {1: 1500.0, 2: 800.0}) == {(1, ds): told}  # per task


def test_the_ending_comment_carries_the_reason_within_prodsys_comms_128_characters():
    assert ending_comment("mc16:mc16.x.RAW", "rule refused for good by DDM (RSEWriteBlocked)") == (
        "pandajedi_wf data carousel: staging of mc16:mc16.x.RAW failed: rule refused for good by DDM (RSEWriteBlocked)"
    )
    long_name = "data18_13tev:data18_13tev.00349111.physics_Main.daq.RAW." + "x" * 80 + ".tail42"
    comment = ending_comment(long_name, "no usable source left (NO_SOURCES from TAPE_A)")
    assert len(comment) <= 128 and comment.endswith("failed: no usable source left (NO_SOURCES from TAPE_A)")
    assert "data18_13tev:dat" in comment and ".tail42 failed" in comment and "..." in comment  # the name cut in its middle
    very_long_error = "DDM said: " + "y" * 300
    assert len(ending_comment("mc16:mc16.x.RAW", very_long_error)) == 128
    assert ending_comment("mc16:a", "") == "pandajedi_wf data carousel: staging of mc16:a failed: no usable tape source"
