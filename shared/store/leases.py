"""Keeping a lease alive: a heartbeat that renews it while the work it covers runs.

Work that holds a lease in the store (a running task, a cache entry being rendered) takes a
short lease and renews it every third of its length, so a process that dies is noticed
within one lease, while work that runs long is never taken over as long as its process
lives. ``Heartbeat`` schedules the renewals for the duration of a ``with`` block on one
daemon thread shared by the whole process (entering and leaving a block costs a heap push
and a flag, not a thread: most blocks end long before their first renewal is due). A
renewal that reports the lease lost stops that heartbeat (the work's own conditional writes
then fail safely); a renewal that fails is logged and tried again at the next beat.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType

logger = logging.getLogger(__name__)


class Heartbeat:
    """Calls ``renew`` every ``interval`` seconds while the ``with`` block runs.

    ``renew`` returns False when the lease is lost (someone else holds it now); the
    heartbeat then stops and ``lost`` is True.
    """

    def __init__(self, renew: Callable[[], bool], interval: float, *, name: str) -> None:
        self.renew = renew
        self.interval = interval
        self.name = name
        self.lost = False
        self.active = False

    def __enter__(self) -> Heartbeat:
        self.active = True
        _RENEWER.schedule(self, time.monotonic() + self.interval)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.active = False


class _Renewer:
    """The process's one renewal thread: a heap of heartbeats by when they are next due."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Heartbeat]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def reset(self) -> None:
        """Forget the thread and its heap (a forked child has neither)."""
        self._due = []
        self._condition = threading.Condition()
        self._thread = None

    def schedule(self, heartbeat: Heartbeat, due: float) -> None:
        with self._condition:
            heapq.heappush(self._due, (due, next(self._order), heartbeat))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._due or self._due[0][0] > time.monotonic():
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._condition.wait(wait)
                _, _, heartbeat = heapq.heappop(self._due)
            if not heartbeat.active:
                continue
            try:
                if not heartbeat.renew():
                    heartbeat.lost = True
                    continue
            except Exception:
                logger.exception(
                    "The lease of %s could not be renewed; trying again", heartbeat.name
                )
            if heartbeat.active:
                self.schedule(heartbeat, time.monotonic() + heartbeat.interval)


_RENEWER = _Renewer()
os.register_at_fork(after_in_child=_RENEWER.reset)
