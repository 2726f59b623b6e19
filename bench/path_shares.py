"""Where a cache miss spends its time: each store write, object write and stage, timed.

``PathTimer`` wraps the methods of a running container's document store and object
storage (and the eSpeak provider and the encoder synthesis calls) so that every call made
while a request is served is timed and labelled by what asked for it: the nearest caller
outside the adapters (``shared.files.repository.add`` for the audio file's record,
``shared.synthesis.repository.add`` for the job's, ``shared.files.cache.claim`` for the
cache lease, ...). The wrappers call the real adapters; only the clock is added. Only the
outermost call of a thread is timed, so a transaction's own reads are not counted twice.
Calls on other threads (the audio upload pool, the task worker) are labelled with the
thread's kind, so what runs beside the request, or after it, shows apart.

Used by ``bench.synthesis`` (part 1).
"""

from __future__ import annotations

import collections
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

_STORE_METHODS = (
    "get",
    "get_many",
    "create",
    "set",
    "update",
    "delete",
    "query",
    "count",
    "commit_writes",
    "run_transaction",
)
_BLOB_METHODS = ("put", "get", "copy", "delete", "exists", "signed_url")
_SKIP_MODULES = ("shared.store.", "shared.blobs.", "bench.path_shares")


def _caller() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if not module.startswith(_SKIP_MODULES) and module != "shared.store":
            return f"{module.removeprefix('shared.')}.{frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]  # None ends the loop
    return "?"


def _thread_kind() -> str:
    name = threading.current_thread().name
    if name.startswith("audio-upload"):
        return "upload thread"
    if name.startswith("waitress"):
        return ""
    return "other thread"


class PathTimer:
    """Seconds per label, per request: ``begin()`` a request, ``end()`` it, then ``report``."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.current: collections.defaultdict[str, float] = collections.defaultdict(float)
        self.requests: list[collections.defaultdict[str, float]] = []

    def begin(self) -> None:
        """Start counting a new request's calls."""
        with self._lock:
            self.current = collections.defaultdict(float)

    def end(self) -> None:
        """Keep the current request's counts."""
        with self._lock:
            self.requests.append(self.current)
            self.current = collections.defaultdict(float)

    def _add(self, label: str, seconds: float) -> None:
        with self._lock:
            self.current[label] += seconds

    def wrap(self, target: object, name: str, kind: str, *, label: str | None = None) -> None:
        """Time ``target.name`` (an instance attribute shadows the class's method)."""
        original: Callable[..., Any] = getattr(target, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._local, "depth", 0)
            if depth:
                return original(*args, **kwargs)
            where = label or f"{kind} {name} <- {_caller()}"
            thread = _thread_kind()
            if thread:
                where = f"[{thread}] {where}"
            self._local.depth = 1
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._add(where, time.perf_counter() - started)
                self._local.depth = 0

        setattr(target, name, timed)

    def stage(self, target: object, name: str, label: str) -> None:
        """Time ``target.name`` as a stage: it may hold timed calls (shown apart, not summed)."""
        original: Callable[..., Any] = getattr(target, name)
        where = f"(stage) {label}"

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._add(where, time.perf_counter() - started)

        setattr(target, name, timed)

    def instrument(self, store: object, blobs: object) -> None:
        """Time every call to the store and the object storage."""
        for name in _STORE_METHODS:
            self.wrap(store, name, "store")
        for name in _BLOB_METHODS:
            if hasattr(blobs, name):
                self.wrap(blobs, name, "blob")

    def report(self, total_seconds: list[float], *, indent: str = "   ") -> None:
        """Print each label's median per request and its share of the median total."""
        labels = sorted({label for counts in self.requests for label in counts})
        total = statistics.median(total_seconds)
        rows = []
        for label in labels:
            values = [counts.get(label, 0.0) for counts in self.requests]
            rows.append((statistics.median(values), label))
        rows.sort(reverse=True)
        print(f"{indent}{'p50 ms':>8} {'share':>6}  what (median over {len(self.requests)} misses)")
        for seconds, label in rows:
            if label.startswith("(stage)"):
                continue
            print(f"{indent}{seconds * 1000:8.2f} {seconds / total:6.1%}  {label}")
        on_path = sum(s for s, label in rows if not label.startswith(("[", "(stage)")))
        print(
            f"{indent}{on_path * 1000:8.2f} {on_path / total:6.1%}  sum of the timed calls on "
            f"the request thread; the rest of {total * 1000:.2f} ms is HTTP, auth, parsing, "
            "voice resolution and the response"
        )
        for seconds, label in rows:
            if label.startswith("(stage)"):
                print(f"{indent}{seconds * 1000:8.2f} {seconds / total:6.1%}  {label}")
