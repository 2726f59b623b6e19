"""RunAhead: work on a thread of its own, never more than ``ahead`` items past its reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from shared.synthesis.ahead import RunAhead


class Source:
    """Counts the items made; ``made_event`` fires whenever the count changes."""

    def __init__(self, total: int, fail_at: int | None = None) -> None:
        self.total = total
        self.fail_at = fail_at
        self.made = 0
        self.closed = False
        self.changed = threading.Condition()

    def items(self) -> Iterator[int]:
        try:
            for number in range(self.total):
                if number == self.fail_at:
                    raise RuntimeError(f"item {number} failed")
                with self.changed:
                    self.made += 1
                    self.changed.notify_all()
                yield number
        finally:
            self.closed = True

    def wait_for(self, made: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.made >= made, timeout=30)


def settled(source: Source, ahead: RunAhead[int]) -> int:
    """Return the count once the worker waits for its reader (a deadlock guard, no timing)."""
    deadline = time.monotonic() + 30
    while not ahead.waiting():
        assert time.monotonic() < deadline, "the worker never waited for its reader"
        time.sleep(0.001)
    return source.made


def test_the_work_stops_ahead_items_past_the_reader_and_follows_it():
    source = Source(100)
    ahead = RunAhead(source.items(), 3)
    items = iter(ahead)
    assert next(items) == 0
    assert settled(source, ahead) == 3  # the item read and two more: three not yet finished
    assert next(items) == 1
    source.wait_for(4)
    assert settled(source, ahead) == 4
    ahead.stop()
    assert source.made == 4
    assert source.closed


def test_first_alone_holds_the_work_until_the_first_item_is_done_with():
    source = Source(100)
    ahead = RunAhead(source.items(), 3, first_alone=True)
    items = iter(ahead)
    assert next(items) == 0
    assert source.made == 1  # made by the reader itself: no worker runs yet
    assert next(items) == 1
    source.wait_for(4)
    assert settled(source, ahead) == 4  # then the full look-ahead: items 1, 2 and 3
    ahead.stop()
    assert source.made == 4


def test_all_items_come_in_order_and_errors_where_the_item_would_have():
    assert list(RunAhead(Source(10).items(), 2)) == list(range(10))
    failing = RunAhead(Source(10, fail_at=5).items(), 2)
    seen = []
    with pytest.raises(RuntimeError, match="item 5 failed"):
        seen.extend(failing)
    assert seen == [0, 1, 2, 3, 4]


def test_a_run_stopped_before_its_worker_starts_closes_the_source():
    source = Source(10)
    ahead = RunAhead(source.items(), 2, first_alone=True)
    items = iter(ahead)
    assert next(items) == 0
    ahead.stop()
    assert source.closed
    assert list(items) == []


def test_ahead_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        RunAhead(iter(()), 0)
