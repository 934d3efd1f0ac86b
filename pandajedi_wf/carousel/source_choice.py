"""Choosing the tape to recall from: the one expected to deliver first, not a random one.

A tape's expected completion time for a dataset is (bytes already in flight there + the dataset's
bytes) / the tape's throughput (measured, else the configured prior), so a fast but busy tape and a
slow idle one are compared on the same scale.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from .config import CarouselConfig
from .state import Load

NO_LOAD = Load()


def throughput_of(tape: str, throughput: Mapping[str, float], config: CarouselConfig) -> float:
    measured = throughput.get(tape)
    return measured if measured and measured > 0 else config.tape(tape).expected_bytes_per_second


def expected_completion_seconds(tape: str, n_bytes: int, tapes: Mapping[str, Load], throughput: Mapping[str, float], config: CarouselConfig) -> float:
    return (tapes.get(tape, NO_LOAD).bytes + n_bytes) / throughput_of(tape, throughput, config)


def rank_sources(
    sources: Iterable[str], n_bytes: int, tapes: Mapping[str, Load], throughput: Mapping[str, float], config: CarouselConfig
) -> list[str]:
    """Usable sources, best (earliest expected completion) first; ties go to the tape with fewer files queued."""
    usable = {s for s in sources if config.tape_usable(s)}
    return sorted(usable, key=lambda s: (expected_completion_seconds(s, n_bytes, tapes, throughput, config), tapes.get(s, NO_LOAD).files, s))


def fits_window(tape: str, n_files: int, n_bytes: int, config: CarouselConfig) -> bool:
    """Whether the dataset could ever be admitted on this tape (it is not larger than the window)."""
    limits = config.tape(tape)
    return n_files <= limits.max_files and n_bytes <= limits.max_bytes
