"""Work that runs ahead of its reader by a bounded amount: back-pressure for streams.

``RunAhead`` takes items from a source iterator (each ``next`` does the work: a sentence
synthesized, a piece of a provider's stream read) on a thread of its own, so the next items
are ready while the reader is busy, but never more than ``ahead`` items beyond what the
reader has finished with. A reader that stops reading therefore stops the work within that
bound; ``stop`` (a client that went away) ends it after the item in progress, and closes
the source. An error of the source reaches the reader where the item would have. With
``first_alone`` the reader makes the first item itself and the worker starts only after
it, so nothing competes with delivering the first item (a stream's first chunk).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
_JOIN_SECONDS = 60.0  # a provider call in progress is waited for at most this long


@dataclass(frozen=True)
class _End:
    error: BaseException | None = None


class RunAhead(Generic[T]):
    """Iterates ``source`` on a worker thread at most ``ahead`` items ahead of the reader."""

    def __init__(
        self, source: Iterator[T], ahead: int, *, name: str = "run-ahead", first_alone: bool = False
    ) -> None:
        if ahead < 1:
            raise ValueError("ahead must be at least 1")
        self.ahead = ahead
        self._source = source
        # ``first_alone``: the reader makes the first item itself, and the worker starts only
        # once the reader is done with it (no thread start, nothing competing, before it).
        self._first_alone = first_alone
        self._slots = threading.Semaphore(ahead)
        self._items: queue.SimpleQueue[T | _End] = queue.SimpleQueue()
        self._stopped = threading.Event()
        self._waiting = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.produced = 0

    def __iter__(self) -> Iterator[T]:
        """Yield the source's items in order; an item's slot frees once the reader asks for
        the next one. Raises what the source raised."""
        if self._first_alone:
            try:
                first = next(self._source)
            except StopIteration:
                return
            self.produced += 1
            yield first
        if self._stopped.is_set():
            return
        self._thread.start()
        while True:
            item = self._items.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
            self._slots.release()

    def waiting(self) -> bool:
        """Return whether the worker is held back, waiting for the reader to take items."""
        return self._waiting.is_set()

    def stop(self) -> None:
        """Stop the work after the item in progress and wait for the worker to end."""
        self._stopped.set()
        self._slots.release(self.ahead + 1)
        if self._thread.ident is None:  # never started: the source is closed here
            _close(self._source)
        elif self._thread.is_alive():
            self._thread.join(_JOIN_SECONDS)

    def _run(self) -> None:
        try:
            while True:
                if not self._slots.acquire(blocking=False):
                    logger.debug("Run-ahead waits for its reader (%d items ahead)", self.ahead)
                    self._waiting.set()
                    self._slots.acquire()
                    self._waiting.clear()
                if self._stopped.is_set():
                    return
                try:
                    item = next(self._source)
                except StopIteration:
                    self._items.put(_End())
                    return
                self.produced += 1
                self._items.put(item)
        except BaseException as exc:
            self._items.put(_End(exc))
        finally:
            _close(self._source)


def _close(source: Iterator[Any]) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        close()
