"""StepRowCache: rows kept between passes are handed back only to the claim that follows our own released claim."""

import datetime

import pytest

from pandajedi_wf.daemons.processor.step_cache import StepRowCache
from pandajedi_wf.daemons.processor.step_row import StepRow

CLAIMED = datetime.datetime(2030, 1, 1, 12, 0, 0, 250000)


def rows(n=2, **extra):
    return [StepRow(i, 1, f"s{i}", i, f"step{i}", "prun", "running", **extra) for i in range(n)]


def same(left, right):
    return [r.columns() for r in left] == [r.columns() for r in right]


@pytest.fixture
def cache():
    kept = StepRowCache()
    assert kept.keep(7, CLAIMED, rows(2))
    return kept


def test_take_returns_the_rows_after_our_own_released_claim(cache):
    """The replaced lease (our claim time, no owner) means no one else wrote the steps: the kept rows come back."""
    assert same(cache.take(7, (CLAIMED, None)), rows(2))


@pytest.mark.parametrize("lease", [
    (CLAIMED + datetime.timedelta(microseconds=1), None),  # someone claimed (and released) after us
    (CLAIMED - datetime.timedelta(seconds=1), None),
    (None, None),
    (CLAIMED, "proc-b"),  # our own time but still held: an expired lease taken over
    (CLAIMED + datetime.timedelta(minutes=5), "proc-b"),
])
def test_take_gives_nothing_after_any_other_lease(cache, lease):
    """A different claim time, or any owner on the replaced lease, means the rows may be stale: None."""
    assert cache.take(7, lease) is None


def test_take_of_an_unknown_workflow_gives_nothing(cache):
    assert cache.take(8, (CLAIMED, None)) is None
    assert cache.rows == 2


def test_take_hands_the_entry_over(cache):
    """A pass owns the rows it took: a second take finds nothing and the row count drops."""
    assert cache.take(7, (CLAIMED, None)) is not None
    assert cache.rows == 0
    assert cache.take(7, (CLAIMED, None)) is None


def test_a_take_that_does_not_match_drops_the_entry(cache):
    """Stale rows are not left behind for a later take that would match by accident."""
    assert cache.take(7, (CLAIMED, "proc-b")) is None
    assert cache.rows == 0
    assert cache.take(7, (CLAIMED, None)) is None


def test_keep_ends_the_pass_of_its_rows():
    """JEDI's view, plan bookkeeping and task parameters belong to one pass and are not kept."""
    cache = StepRowCache()
    cache.keep(7, CLAIMED, rows(1, orig="submitted", jedi_status="running", jedi_dialog="x", retry_pending=True, retry_reset=True,
                                task_params={"taskName": "t"}))

    (row,) = cache.take(7, (CLAIMED, None))
    assert row.columns() == rows(1)[0].columns()
    assert (row.orig, row.jedi_status, row.jedi_dialog, row.task_params, row.retry_pending, row.retry_reset) == (None, None, None, None, False, False)


def test_keep_makes_room_only_from_stale_entries_and_the_count_stays_right():
    """Past the bound, entries kept before ``stale_before`` go, oldest first; fresh ones stay and the newcomer is not
    kept (a pass visiting more workflows than fit must not evict each entry just before its next use); a workflow
    bigger than the bound is not kept at all."""
    later = CLAIMED + datetime.timedelta(minutes=5)
    cache = StepRowCache(max_rows=5)
    assert cache.keep(1, CLAIMED, rows(3))
    assert not cache.keep(2, later, rows(3), stale_before=CLAIMED)  # workflow 1 is not stale: no room
    assert cache.rows == 3 and set(cache._entries) == {1}
    assert cache.keep(2, later, rows(3), stale_before=later)  # now it is: it makes room
    assert cache.rows == 3 and set(cache._entries) == {2}
    assert cache.keep(3, later, rows(2), stale_before=CLAIMED)
    assert cache.rows == 5 and list(cache._entries) == [2, 3]
    assert not cache.keep(4, later, rows(6), stale_before=later + datetime.timedelta(days=1))  # bigger than the whole cache
    assert cache.rows == 5 and list(cache._entries) == [2, 3]
    assert cache.take(1, (CLAIMED, None)) is None  # the dropped one is read from the database again


def test_keep_again_replaces_the_entry_and_its_count():
    """Keeping a workflow that is still kept must not count its old rows twice."""
    cache = StepRowCache()
    cache.keep(7, CLAIMED, rows(3))
    cache.keep(7, CLAIMED + datetime.timedelta(minutes=1), rows(2))

    assert cache.rows == 2
    assert same(cache.take(7, (CLAIMED + datetime.timedelta(minutes=1), None)), rows(2))
    assert cache.rows == 0


def test_forget_drops_one_workflow(cache):
    cache.keep(8, CLAIMED, rows(3))
    cache.forget(7)
    cache.forget(99)  # nothing kept: no error
    assert cache.rows == 3 and set(cache._entries) == {8}


def test_clear_drops_everything(cache):
    cache.keep(8, CLAIMED, rows(3))
    cache.clear()
    assert cache.rows == 0 and cache.take(8, (CLAIMED, None)) is None


def test_a_step_row_holds_exactly_the_light_columns_and_refuses_other_names():
    """The processor's row type and the columns its reads select are one list; a name outside it is an error, not a
    key that grows on the way."""
    from pandajedi_wf.taskbuffer.steps import LIGHT_COLUMNS

    row = rows(1)[0]
    assert list(row.columns()) == [c.strip() for c in LIGHT_COLUMNS.split(",")]
    with pytest.raises(KeyError):
        row["retries_made"]
    with pytest.raises(KeyError):
        row["new_key"] = 1
    with pytest.raises(AttributeError):
        row.new_key = 1  # slots
    assert row.get("task_id") is None  # the name API rows give task ids (read by the shared control code)
