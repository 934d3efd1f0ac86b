"""Guards against blow-ups (quadratic time, an alias bomb) that count the CPU the test itself used, not the wall
clock: a loaded machine (CI beside other jobs) does not fail them. The bounds sit far above the real cost (the
blow-ups they catch take seconds to minutes); speed targets live in ``benchmarks/``, never here."""

from __future__ import annotations

import contextlib
import time


@contextlib.contextmanager
def cpu_at_most(seconds: float, what: object = ""):
    """Fail when the block used ``seconds`` of this process's CPU or more."""
    start = time.process_time()
    yield
    used = time.process_time() - start
    assert used < seconds, f"{what}: {used:.2f} s of CPU, the bound is {seconds} s"
