"""In-process task queue: dispatch rate and enqueue→start latency for no-op tasks.

Two runs on a fresh SQLite store: a burst of N tasks enqueued at once (dispatch rate:
tasks finished per second, from the first enqueue to the last handler's end), and tasks
enqueued one at a time with a pause (latency from ``enqueue`` to the handler starting,
p50 and p99, so queueing behind other tasks does not count). Targets: at least 500 tasks/s
and p50 at most 5 ms. ``python -m bench.tasks [--tasks N] [--samples M]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pydantic

from shared.store.sqlite import SqliteDocumentStore
from shared.tasks import QueuePolicy, TaskContext, TaskRegistry
from shared.tasks.inprocess import InProcessTaskQueue

TARGET_RATE = 500.0
TARGET_P50_MS = 5.0
QUEUE = "bench"


class Tick(pydantic.BaseModel):
    sent: float


def _queue(path: Path, registry: TaskRegistry, concurrency: int) -> InProcessTaskQueue:
    policy = QueuePolicy(
        max_attempts=3, min_backoff=0.01, max_backoff=0.1, max_concurrent=concurrency
    )
    return InProcessTaskQueue(
        store=SqliteDocumentStore(path), policies={QUEUE: policy}, registry=registry
    )


def dispatch_rate(path: Path, tasks: int, concurrency: int) -> float:
    """Return tasks per second for a burst of ``tasks`` no-op tasks."""
    registry = TaskRegistry()
    done = threading.Semaphore(0)
    registry.register("bench.noop", Tick, lambda payload, ctx: done.release())
    queue = _queue(path, registry, concurrency)
    queue.start()
    try:
        started = time.perf_counter()
        for _ in range(tasks):
            queue.enqueue(QUEUE, "bench.noop", {"sent": 0.0})
        for _ in range(tasks):
            done.acquire(timeout=60)
        # The last handler returned; its bookkeeping (run record, queue delete) follows.
        while queue.pending_count(QUEUE):
            time.sleep(0.001)
        return tasks / (time.perf_counter() - started)
    finally:
        queue.stop()


def start_latencies(path: Path, samples: int, concurrency: int) -> list[float]:
    """Return enqueue→handler-start latencies in milliseconds."""
    registry = TaskRegistry()
    latencies: list[float] = []
    started = threading.Event()

    def record(payload: Tick, ctx: TaskContext) -> None:
        latencies.append((time.perf_counter() - payload.sent) * 1000)
        started.set()

    registry.register("bench.latency", Tick, record)
    queue = _queue(path, registry, concurrency)
    queue.start()
    try:
        time.sleep(0.2)
        for _ in range(samples):
            started.clear()
            queue.enqueue(QUEUE, "bench.latency", {"sent": time.perf_counter()})
            started.wait(5)
            time.sleep(0.005)
    finally:
        queue.stop()
    return latencies


def main(argv: Sequence[str] | None = None) -> None:
    """Run both measurements and print the figures beside the targets."""
    parser = argparse.ArgumentParser(prog="python -m bench.tasks")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        rate = dispatch_rate(Path(folder) / "rate.sqlite3", args.tasks, args.concurrency)
        latencies = start_latencies(Path(folder) / "lat.sqlite3", args.samples, args.concurrency)
    cuts = statistics.quantiles(latencies, n=100)
    p50, p99 = statistics.median(latencies), cuts[98]
    print(f"in-process queue, SQLite store, {args.concurrency} runners")
    print(
        f"dispatch rate   {rate:8.0f} tasks/s  target >= {TARGET_RATE:.0f}  "
        f"ratio {rate / TARGET_RATE:.2f}x  {'OK' if rate >= TARGET_RATE else 'MISS'}"
    )
    print(
        f"enqueue->start  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  target p50 <= {TARGET_P50_MS} ms  "
        f"ratio {TARGET_P50_MS / p50:.2f}x  {'OK' if p50 <= TARGET_P50_MS else 'MISS'}"
    )


if __name__ == "__main__":
    main()
