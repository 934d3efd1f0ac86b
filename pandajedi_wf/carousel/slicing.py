"""Slices of a staging request: a dataset's files cut into runs, each to be staged by a rule of its own.

A dataset rule holds the disk for all of its files until the last one has landed and its tasks are done with the
whole dataset; its files land over the hours its bring-online batches take, so most of its bytes sit on disk waiting
for the rest. JEDI itself makes jobs for a file as soon as the carousel releases it (``updateInputFilesStaged_JEDI``),
so a slice of the files, staged by its own rule on the slice's file DIDs, can be released (rule lifetime 0) as soon
as JEDI has finished those files, whatever the rest of the dataset does.

One pure function, ``slice_ranges``: consecutive runs of the files in the order DDM lists them (the order they are
queued at the tape, so a slice's files go to a drive together), each at most ``max_files`` files and, past its first
file, at most ``max_bytes`` bytes. A dataset no larger than one slice is one slice.
"""

from __future__ import annotations

from typing import Sequence


def slice_ranges(file_bytes: Sequence[int], max_files: int, max_bytes: int | None = None) -> list[tuple[int, int]]:
    """[(first, end), ...] half-open index ranges covering ``file_bytes`` in order; ``max_files`` 0: one slice."""
    n = len(file_bytes)
    if n == 0:
        return []
    if max_files <= 0 and not max_bytes:
        return [(0, n)]
    ranges: list[tuple[int, int]] = []
    first, size = 0, 0
    for i, b in enumerate(file_bytes):
        full = (max_files > 0 and i - first >= max_files) or (max_bytes is not None and i > first and size + b > max_bytes)
        if full:
            ranges.append((first, i))
            first, size = i, 0
        size += b
    ranges.append((first, n))
    return ranges
