"""bench.cores: pinning a benchmark's threads to one core, and every core back afterwards."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from bench import cores


def _masks() -> dict[int, set[int]]:
    return {int(task): os.sched_getaffinity(int(task)) for task in os.listdir("/proc/self/task")}


@pytest.fixture
def helper() -> Iterator[int]:
    """A thread that waits while the test pins; yields its native id."""
    started, stop = threading.Event(), threading.Event()
    ident: list[int] = []

    def run() -> None:
        ident.append(threading.get_native_id())
        started.set()
        stop.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5)
    yield ident[0]
    stop.set()
    thread.join(5)


def test_the_process_or_one_thread_is_pinned_and_every_core_comes_back(helper: int) -> None:
    found = cores.cores()
    if not found:
        pytest.fail("this Linux machine should allow sched_setaffinity")
    everything = set(found)
    own = threading.get_native_id()
    with cores.alternating() as turns:
        first, second = turns.next(), turns.next()
        assert first == found[0]
        assert second == found[1 % len(found)]
        assert first is not None
        cores.pin_process({first})
        assert set(map(frozenset, _masks().values())) == {frozenset({first})}
        cores.pin_process(everything)
        cores.pin_thread({first})
        masks = _masks()
        assert masks[own] == {first}
        assert masks[helper] == everything  # other threads keep every core
    assert all(mask == everything for mask in _masks().values())


def test_pinned_rounds_put_each_round_on_the_next_core_and_give_every_core_back() -> None:
    found = cores.cores()
    if not found:
        pytest.fail("this Linux machine should allow sched_setaffinity")
    seen = []
    for round_ in cores.pinned_rounds(3):
        seen.append((round_, set(map(frozenset, _masks().values()))))
    assert seen == [(n, {frozenset({found[n % len(found)]})}) for n in range(3)]
    assert all(mask == set(found) for mask in _masks().values())
