"""The processor's pass runs with Python's cyclic collector off and freezes what survives it (workflow_processor.collector_paused)."""

import gc
import time
import weakref

import pytest

from pandajedi_wf.daemons import workflow_processor
from pandajedi_wf.daemons.processor import workers


class _Node:
    pass


def _frozen_cycle() -> weakref.ref:
    """An object in a reference cycle, frozen into the permanent generation and then dropped: only a collection
    after a thaw can free it."""
    node = _Node()
    node.me = node
    ref = weakref.ref(node)
    gc.freeze()
    del node
    return ref


@pytest.fixture
def collector():
    gc.unfreeze()
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    gc.collect()
    (gc.enable if was_enabled else gc.disable)()


def test_the_collector_is_off_during_the_pass_and_back_after_it(collector):
    with workflow_processor.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_stays_off_after_the_pass_if_it_was_off_before(collector):
    gc.disable()
    with workflow_processor.collector_paused():
        pass
    assert not gc.isenabled()


def test_the_collector_comes_back_when_the_pass_raises(collector):
    with pytest.raises(RuntimeError):
        with workflow_processor.collector_paused():
            raise RuntimeError("a failed pass")
    assert gc.isenabled()


def test_survivors_of_a_pass_are_frozen_out_of_later_collections(collector, monkeypatch):
    monkeypatch.setattr(workers, "thawed", [time.monotonic()])
    survivor = [_Node() for _ in range(100)]
    with workflow_processor.collector_paused():
        pass
    assert gc.get_freeze_count() >= len(survivor)


def test_frozen_cyclic_garbage_waits_for_the_thaw_and_is_collected_by_it(collector, monkeypatch):
    monkeypatch.setattr(workers, "thawed", [time.monotonic()])
    ref = _frozen_cycle()
    with workflow_processor.collector_paused():
        pass
    gc.collect()
    assert ref() is not None  # frozen: no collection sees it before the thaw is due

    monkeypatch.setattr(workers, "thawed", [time.monotonic() - workers.THAW_SECONDS - 1])
    with workflow_processor.collector_paused():
        pass
    assert ref() is None  # the thaw after this pass collected it
    assert time.monotonic() - workers.thawed[0] < 60  # and the next thaw is an hour away again


def _cyclic_garbage_of(work) -> int:
    """How many objects ``work()`` left in reference cycles (what a pass with the collector off would keep)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        work()
        return gc.collect()
    finally:
        (gc.enable if was_enabled else gc.disable)()


@pytest.mark.parametrize("example", ["chain.yaml", "fork.yaml", "nested.yaml", "scatter_overlay.yaml"])
def test_what_a_pass_computes_per_workflow_leaves_no_reference_cycles(example):
    """The pass runs with the collector off: a per-workflow computation that makes reference cycles (a closure that
    calls itself, say) keeps all it made until the hourly thaw. 50,000 workflows' pre-stage plans did (300 MiB)."""
    import datetime
    from pathlib import Path

    from pandajedi_wf.placement.prestage import PrestagePolicy, plan_prestages, steps_of_definition
    from pandajedi_wf.workflow import RunContext, next_actions, parse_workflow

    folder = Path(__file__).parent / "examples" / "native"
    definition = parse_workflow("yaml", (folder / example).read_text(), None, str(folder))
    now = datetime.datetime(2026, 12, 3)

    def per_workflow():
        for _ in range(20):
            plan_prestages(steps_of_definition(definition), now, PrestagePolicy())
            next_actions(definition, {}, RunContext(out_ds="user.test.cycles", workflow_status="parsed"))

    assert _cyclic_garbage_of(per_workflow) == 0
