import json

import pytest

from pandajedi_wf.carousel.config import CarouselConfig, CarouselConfigError, load_config


def test_empty_document_gives_defaults():
    config = load_config("{}")
    assert config == CarouselConfig()
    assert config.release_threshold == 0.8 and config.tape("ANY").max_files == 10_000


def test_full_document_round_trip():
    doc = {
        "schema_version": 1,
        "default_tape": {"max_files": 5000},
        "tapes": {"CERN-PROD_TAPE": {"max_bytes": 2e14, "expected_bytes_per_second": 3e9}},
        "release_threshold": 0.7,
        "disk_buffers": {"D": 10**15},
        "user_max_files": 1000,
        "share_weights": {"Express": 5},
        "excluded_tapes": ["BAD_TAPE"],
    }
    config = load_config(json.dumps(doc))
    tape = config.tape("CERN-PROD_TAPE")
    assert (tape.max_files, tape.max_bytes, tape.expected_bytes_per_second) == (5000, 200_000_000_000_000, 3e9)
    assert config.disk_buffer_bytes("D") == 10**15 and config.disk_buffer_bytes("OTHER") is None
    assert config.share_weight("Express") == 5.0 and config.share_weight("other") == 1.0
    assert not config.tape_usable("BAD_TAPE") and config.tape_usable("CERN-PROD_TAPE")


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"max_file": 3}, "unknown key 'max_file'"),
        ({"tapes": {"T": {"max_files": -1}}}, "'tapes.T.max_files' must not be negative"),
        ({"tapes": {"T": {"max_files": "10"}}}, "'tapes.T.max_files' must be a non-negative integer"),
        ({"tapes": {"T": {"maxfiles": 1}}}, "unknown key 'maxfiles' in 'tapes.T'"),
        ({"release_threshold": 0}, "'release_threshold' must be in (0, 1]"),
        ({"release_threshold": 1.5}, "'release_threshold' must be in (0, 1]"),
        ({"user_max_bytes": True}, "'user_max_bytes' must be a non-negative integer or null"),
        ({"share_weights": {"A": 0}}, "'share_weights.A' must be positive"),
        ({"excluded_tapes": "T1"}, "'excluded_tapes' must be a list"),
        ({"schema_version": 2}, "'schema_version' must be 1"),
        ({"extend_below_seconds": 10, "rule_lifetime_seconds": 5}, "'extend_below_seconds' must not exceed"),
        ("{not json", "not valid JSON"),
        ([1, 2], "'<document>' must be an object"),
    ],
)
def test_bad_config_is_rejected_with_key_and_problem(doc, message):
    with pytest.raises(CarouselConfigError) as err:
        load_config(doc)
    assert message in str(err.value)


def test_null_user_cap_disables_it():
    assert load_config({"user_max_bytes": None}).user_max_bytes is None


def test_part7_keys_have_operator_defaults_and_are_validated():
    config = load_config({})
    assert (config.cycle_seconds, config.bring_online_batch_files, config.window_from_throughput) == (600, 200, True)
    assert (config.hang_factor, config.rebalance_per_cycle, config.tape("X").drives, config.tape("X").mount_seconds) == (1.5, 20, 4, 120.0)
    tuned = load_config({"tapes": {"T": {"drives": 8, "mount_seconds": 60}}, "hang_factor": 0, "window_from_throughput": False})
    assert (tuned.tape("T").drives, tuned.tape("T").mount_seconds, tuned.hang_factor, tuned.window_from_throughput) == (8, 60.0, 0.0, False)


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"tapes": {"T": {"drives": 0}}}, "'tapes.T.drives' must be at least 1"),
        ({"tapes": {"T": {"mount_seconds": -1}}}, "'tapes.T.mount_seconds' must not be negative"),
        ({"hang_factor": -0.5}, "'hang_factor' must not be negative"),
        ({"window_from_throughput": 1}, "'window_from_throughput' must be true or false"),
        ({"rebalance_per_cycle": 1.5}, "'rebalance_per_cycle' must be a non-negative integer"),
    ],
)
def test_bad_part7_keys_are_rejected(doc, message):
    with pytest.raises(CarouselConfigError) as err:
        load_config(doc)
    assert message in str(err.value)
