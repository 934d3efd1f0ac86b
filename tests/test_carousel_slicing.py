"""The slices of a staging request (carousel/slicing.py): consecutive runs of files covering the dataset once."""

import random

import pytest

from pandajedi_wf.carousel.slicing import slice_ranges


def covers_in_order(ranges, n):
    return ranges[0][0] == 0 and ranges[-1][1] == n and all(a < b for a, b in ranges) and all(x[1] == y[0] for x, y in zip(ranges, ranges[1:]))


def test_files_are_cut_into_runs_of_at_most_max_files():
    assert slice_ranges([1] * 45, 20) == [(0, 20), (20, 40), (40, 45)]
    assert slice_ranges([1] * 40, 20) == [(0, 20), (20, 40)]


def test_a_dataset_no_larger_than_a_slice_is_one_slice_and_zero_means_no_slicing():
    assert slice_ranges([5, 6, 7], 20) == [(0, 3)]
    assert slice_ranges([1] * 500, 0) == [(0, 500)]
    assert slice_ranges([], 20) == []


def test_a_byte_limit_cuts_before_the_file_that_would_pass_it_but_never_leaves_a_slice_empty():
    assert slice_ranges([4, 4, 4, 10, 1], 0, max_bytes=8) == [(0, 2), (2, 3), (3, 4), (4, 5)]  # the 10-byte file alone


@pytest.mark.parametrize("seed", range(20))
def test_random_datasets_are_covered_once_in_order_within_both_limits(seed):
    rng = random.Random(seed)
    sizes = [rng.randint(1, 100) for _ in range(rng.randint(1, 300))]
    max_files, max_bytes = rng.randint(1, 50), rng.choice([None, rng.randint(50, 2000)])
    ranges = slice_ranges(sizes, max_files, max_bytes)
    assert covers_in_order(ranges, len(sizes))
    for a, b in ranges:
        assert b - a <= max_files
        assert max_bytes is None or b - a == 1 or sum(sizes[a:b]) <= max_bytes
