"""daemons/processor/task_changes.KeptChanges: the wake-up's changes kept in the order of their change time, so that
what a pass adds or drops costs what changed."""

import datetime

from pandajedi_wf.daemons.processor.task_changes import KeptChanges
from pandajedi_wf.taskbuffer.workflows import TaskChange

T0 = datetime.datetime(2026, 12, 3, 12, 0)


def change(minutes: float) -> TaskChange:
    return TaskChange(T0 + datetime.timedelta(minutes=minutes), T0)


def test_changes_are_kept_oldest_first_and_a_later_change_of_a_task_replaces_its_earlier_one():
    kept = KeptChanges()
    kept.replace({3: change(3), 1: change(1), 2: change(2)})
    assert list(kept.by_task) == [1, 2, 3] and kept.newest == change(3).changed_at
    kept.add_later({5: change(6), 1: change(5)})
    assert list(kept.by_task) == [2, 3, 1, 5] and kept.get(1) == change(5) and kept.newest == change(6).changed_at


def test_drop_before_forgets_exactly_the_changes_older_than_the_window():
    kept = KeptChanges()
    kept.replace({t: change(t) for t in range(10)})
    kept.drop_before(change(4).changed_at)
    assert list(kept.by_task) == [4, 5, 6, 7, 8, 9]
    kept.drop_before(change(100).changed_at)
    assert len(kept) == 0 and kept.newest is None


def test_forget_keeps_the_order_of_the_rest():
    kept = KeptChanges()
    kept.replace({t: change(t) for t in range(5)})
    kept.forget({1, 3, 99})
    assert list(kept.by_task) == [0, 2, 4] and kept.newest == change(4).changed_at
