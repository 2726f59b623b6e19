"""Both sides of a ratio on the same core: pinning a benchmark's threads to one CPU.

This machine's cores do not run at one speed, and which is the slower changes from one
minute to the next: pinned with ``taskset -c``, one core rendered eSpeak's 30-word sentence
in little more than half the time the other took, in the same minute; and a thread keeps
to the core it started on. A ratio whose baseline ran on one core and whose subject ran on the other
measures the cores, in either direction. So a benchmark pins the threads that do the work
being compared to one core for each pair of measurements, and alternates the cores from one
pair to the next: the figures cover every core, and each pair compares like with like.

Two ways to pin (Linux only, ``sched_setaffinity``; elsewhere, or where a sandbox refuses
the call, nothing is pinned and ``cores`` is empty):

- ``pin_process``: every thread of the process, and what it starts later, on the core. One
  core is what a Cloud Functions instance of up to 2 GiB has (one vCPU or a share of one).
- ``pin_thread``: the calling thread alone (a server's request thread, the thread that
  times the baseline); the helper threads keep every core, as on a machine with several.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def cores() -> list[int]:
    """Return the CPUs this process may run on (none where it may not pin its threads)."""
    if not hasattr(os, "sched_getaffinity"):
        return []
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, allowed)  # a sandbox may refuse the call itself
    except OSError:
        return []
    return sorted(allowed)


def pin_process(allowed: set[int]) -> None:
    """Let every thread of this process (and what it starts from now on) run on ``allowed``."""
    if not hasattr(os, "sched_setaffinity"):
        return
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), allowed)
        except ProcessLookupError:  # the thread ended meanwhile
            continue


def pin_thread(allowed: set[int]) -> None:
    """Let the calling thread (and the threads it starts from now on) run on ``allowed``."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, allowed)  # 0: the calling thread, on Linux


class Turns:
    """Alternates over the cores: ``next()`` returns the core of the next pair."""

    def __init__(self, found: list[int]) -> None:
        self.cores = found
        self._turn = 0

    def next(self) -> int | None:
        """Return the core of the next pair (None where pinning is not supported)."""
        if not self.cores:
            return None
        core = self.cores[self._turn % len(self.cores)]
        self._turn += 1
        return core


@contextmanager
def alternating() -> Iterator[Turns]:
    """Yield the turns over this process's cores; every thread gets every core on exit."""
    found = cores()
    try:
        yield Turns(found)
    finally:
        if found:
            pin_process(set(found))


def pinned_rounds(count: int) -> Iterator[int]:
    """Yield the rounds 0 .. ``count - 1``, the whole process pinned to the next core
    before each (``pin_process``: what it starts inherits the core); every thread gets
    every core again when the rounds end."""
    with alternating() as turns:
        for round_ in range(count):
            core = turns.next()
            if core is not None:
                pin_process({core})
            yield round_
