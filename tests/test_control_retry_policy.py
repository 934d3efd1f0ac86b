"""Automatic step retries: error classes, attempts per class, exponential backoff with caps, policy JSON."""

from __future__ import annotations

import datetime

import pytest

from pandajedi_wf.control import (
    DEFAULT_POLICY,
    Backoff,
    RetryPolicyError,
    classify_definition,
    classify_submission,
    classify_task_failure,
    decide_retry,
    parse_retry_policy,
    task_id_in_message,
)

NOW = datetime.datetime(2025, 3, 1, 12, 0, 0)


@pytest.mark.parametrize(
    "status, dialog, expected",
    [
        ("aborted", None, "user_abort"),
        ("finished", None, "partial"),
        ("failed", "failed since no file was successfully processed", "task_failure"),
        ("exhausted", "exhausted since the task was incomplete and didn't reach the goal", "task_failure"),
        ("broken", "task param conversion from json failed with Expecting value", "definition"),
        ("broken", "No build jobs succeeded", "definition"),
        ("failed", "failed due to no input", "definition"),
        ("broken", "primary input dataset is empty or all files are excluded ", "definition"),
        ("broken", "pending due to external problem. DID not found", "transient"),
        ("broken", "failed to get files for mc23:mc23.EVNT due to DDM timeout", "transient"),
        ("failed", "brokerage failed for 2 input datasets when trying 2 datasets.", "transient"),
        ("broken", None, "task_failure"),
    ],
)
def test_task_failures_are_classified(status, dialog, expected):
    assert classify_task_failure(status, dialog).error_class == expected


def test_a_running_task_is_not_a_failure():
    with pytest.raises(ValueError, match="JEDI status 'running' is not a failure"):
        classify_task_failure("running")


@pytest.mark.parametrize(
    "code, message, expected",
    [
        (4, "failed to register task", "transient"),
        (10, "Too many active tasks for Jane Doe 5001>5000", "transient"),
        (11, 'failed to find parent with user="Jane Doe" name=user.jdoe.wf_001_top', "transient"),
        (1, "jediTaskID=4242 is already queued for outDS=user.jdoe.wf_002_x. You cannot submit duplicated tasks. ", "duplicate"),
        (2, "jediTaskID=4243 is in the running state for outDS=user.jdoe.wf_002_x. ", "duplicate"),
        (3, "reactivation accepted. jediTaskID=4244 (currently in failed state) will be re-executed", "duplicate"),
        (False, "The following DN is banned: DN=/CN=Jane Doe", "refused"),
        (False, "Failed to update DN in PandaDB", "transient"),
        (None, "connection reset by peer", "transient"),
        (99, "who knows", "transient"),
    ],
)
def test_submission_refusals_are_classified(code, message, expected):
    assert classify_submission(code, message).error_class == expected


def test_success_code_is_not_a_failure_and_duplicates_name_the_task_to_adopt():
    with pytest.raises(ValueError, match="code 0 means success"):
        classify_submission(0, "succeeded. new jediTaskID=1")
    assert task_id_in_message("jediTaskID=4242 is already queued for outDS=x") == 4242
    assert task_id_in_message("failed to register task") is None
    assert classify_definition("opt_exec is missing").error_class == "definition"


def test_transient_errors_back_off_exponentially_up_to_the_cap():
    policy = parse_retry_policy({"max_attempts": {"transient": 6}, "backoff_by_class": {"transient": {"base": 60, "factor": 3, "cap": 1000}}})
    delays = []
    for attempt in range(6):
        decision = decide_retry(policy, "transient", attempt, NOW)
        assert decision.retry
        delays.append((decision.after - NOW).total_seconds())
    assert delays == [60, 180, 540, 1000, 1000, 1000]
    last = decide_retry(policy, "transient", 6, NOW)
    assert not last.retry and last.after is None and last.reason == "transient: all 6 automatic retries used"


def test_defaults_retry_a_task_failure_once_after_ten_minutes():
    first = decide_retry(DEFAULT_POLICY, "task_failure", 0, NOW)
    assert first.retry and first.after == NOW + datetime.timedelta(minutes=10)
    assert first.reason == "task_failure: automatic retry 1 of 1 in 600 s"
    assert not decide_retry(DEFAULT_POLICY, "task_failure", 1, NOW).retry


@pytest.mark.parametrize("error_class", ["user_abort", "partial", "refused"])
def test_classes_off_by_default(error_class):
    decision = decide_retry(DEFAULT_POLICY, error_class, 0, NOW)
    assert not decision.retry and decision.reason == f"{error_class} errors are not retried by this workflow's policy"


@pytest.mark.parametrize("error_class", ["definition", "duplicate"])
def test_definition_errors_are_never_retried_whatever_the_policy(error_class):
    generous = DEFAULT_POLICY.__class__(max_attempts={error_class: 10})
    decision = decide_retry(generous, error_class, 0, NOW)
    assert not decision.retry and decision.reason == f"{error_class} errors are never retried"


def test_jitter_is_deterministic_per_step_bounded_and_capped():
    backoff = Backoff(base=100, factor=2, cap=150, jitter=0.5)
    a = [backoff.delay(n, "003") for n in range(4)]
    assert a == [backoff.delay(n, "003") for n in range(4)]  # same inputs, same answer
    assert a[0] != backoff.delay(0, "004")  # spread across steps
    assert 50 <= a[0] <= 150 and all(d <= 150 for d in a)
    assert Backoff(base=100, jitter=0).delay(0, "x") == 100


@pytest.mark.parametrize(
    "value, message",
    [
        ("{not json", "retry_policy: not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        ("[1, 2]", "retry_policy: must be a JSON object, got list"),
        ({"max_attempt": {}}, "retry_policy: unknown key 'max_attempt' (expected backoff, backoff_by_class, max_attempts)"),
        ({"max_attempts": {"flaky": 2}}, "retry_policy.max_attempts.flaky: unknown error class"),
        ({"max_attempts": {"transient": -1}}, "retry_policy.max_attempts.transient: must be an integer from 0 to 20, got -1"),
        ({"max_attempts": {"transient": 2.5}}, "retry_policy.max_attempts.transient: must be an integer from 0 to 20, got 2.5"),
        ({"max_attempts": {"transient": True}}, "retry_policy.max_attempts.transient: must be an integer from 0 to 20, got True"),
        ({"max_attempts": {"definition": 1}}, "retry_policy.max_attempts.definition: definition errors are never retried; remove the key or set 0"),
        ({"max_attempts": 3}, "retry_policy.max_attempts: must be an object of error class -> count, got 3"),
        ({"backoff": {"base": "10m"}}, "retry_policy.backoff.base: must be a number, got '10m'"),
        ({"backoff": {"factor": 0.5}}, "retry_policy.backoff.factor: must be between 1 and 10, got 0.5"),
        ({"backoff": {"jitter": 2}}, "retry_policy.backoff.jitter: must be between 0 and 1, got 2"),
        ({"backoff": {"base": 600, "cap": 60}}, "retry_policy.backoff: cap (60 s) is smaller than base (600 s)"),
        ({"backoff": {"delay": 1}}, "retry_policy.backoff: unknown key 'delay' (expected base, factor, cap, jitter)"),
        ({"backoff": 5}, "retry_policy.backoff: must be an object with keys base, factor, cap, jitter, got 5"),
        ({"backoff_by_class": {"transient": {"cap": 10**9}}}, "retry_policy.backoff_by_class.transient.cap: must be between 0 and 604800, got 1000000000"),
        ({"backoff_by_class": {"oops": {}}}, "retry_policy.backoff_by_class.oops: unknown error class"),
    ],
)
def test_bad_policies_give_precise_errors(value, message):
    with pytest.raises(RetryPolicyError) as info:
        parse_retry_policy(value)
    assert str(info.value).startswith(message)


def test_policy_json_overrides_defaults_and_round_trips():
    policy = parse_retry_policy('{"max_attempts": {"partial": 2}, "backoff": {"base": 30, "cap": 300}}')
    assert policy.max_attempts["partial"] == 2 and policy.max_attempts["transient"] == DEFAULT_POLICY.max_attempts["transient"]
    assert policy.backoff == Backoff(base=30, factor=2, cap=300, jitter=0)
    assert parse_retry_policy(policy.to_dict()) == policy
    assert parse_retry_policy(None) is DEFAULT_POLICY and parse_retry_policy("") is DEFAULT_POLICY


def test_decide_retry_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown error class 'flaky'"):
        decide_retry(DEFAULT_POLICY, "flaky", 0, NOW)
    with pytest.raises(ValueError, match="attempt_nr must be an integer >= 0, got -1"):
        decide_retry(DEFAULT_POLICY, "transient", -1, NOW)
