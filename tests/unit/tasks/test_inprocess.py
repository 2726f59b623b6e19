"""The in-process queue keeps every task in the store: restarts and crashes lose none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydantic
import pytest

from shared.store.sqlite import SqliteDocumentStore
from shared.tasks import QueuePolicy, RetryTask, TaskRegistry
from shared.tasks.execution import DEAD_LETTERS
from shared.tasks.inprocess import QUEUED_TASKS, InProcessTaskQueue

POLICY = QueuePolicy(
    max_attempts=2, min_backoff=0.01, max_backoff=0.02, max_concurrent=2, dispatch_deadline=0.2
)


class Job(pydantic.BaseModel):
    n: int


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


@pytest.fixture
def path(tmp_path):
    return tmp_path / "store.sqlite3"


def new_queue(path, registry, poll_interval=0.05):
    return InProcessTaskQueue(
        store=SqliteDocumentStore(path),
        policies={"q": POLICY},
        registry=registry,
        poll_interval=poll_interval,
    )


def test_a_task_queued_before_a_restart_runs_after_it(path):
    first = new_queue(path, TaskRegistry())
    first.enqueue("q", "job.run", {"n": 1})  # never started: as if the process stopped
    first.store.close()

    ran: list[int] = []
    registry = TaskRegistry()
    registry.register("job.run", Job, lambda p, c: ran.append(p.n))
    second = new_queue(path, registry)
    second.start()
    try:
        wait_for(lambda: ran == [1])
        wait_for(lambda: second.pending_count() == 0)
    finally:
        second.stop()


def test_a_task_whose_worker_died_mid_run_is_claimed_again_after_its_lease(path):
    crashed = new_queue(path, TaskRegistry())
    task_id = crashed.enqueue("q", "job.run", {"n": 2})
    [claimed] = crashed.claim("q", limit=5)  # claimed, then the process "dies"
    assert claimed.attempt == 1
    assert crashed.claim("q", limit=5) == []  # leased: nobody else takes it meanwhile

    attempts: list[int] = []
    registry = TaskRegistry()
    registry.register("job.run", Job, lambda p, c: attempts.append(c.attempt))
    survivor = new_queue(path, registry)
    survivor.start()
    try:
        wait_for(lambda: attempts == [2], timeout=5)
        wait_for(lambda: survivor.store.get(QUEUED_TASKS, task_id) is None)
    finally:
        survivor.stop()


def test_a_task_lost_on_its_last_attempt_is_dead_lettered(path):
    crashed = new_queue(path, TaskRegistry())
    task_id = crashed.enqueue("q", "job.run", {"n": 3})
    crashed.claim("q", limit=1)
    time.sleep(1.3)  # lease: dispatch deadline + margin
    crashed.claim("q", limit=1)  # the second (last) attempt dies too

    registry = TaskRegistry()
    ran: list[int] = []
    registry.register("job.run", Job, lambda p, c: ran.append(p.n))
    survivor = new_queue(path, registry)
    survivor.start()
    try:
        wait_for(lambda: survivor.store.get(DEAD_LETTERS, task_id) is not None, timeout=5)
    finally:
        survivor.stop()
    letter = survivor.store.get(DEAD_LETTERS, task_id).data
    assert letter["reason"] == "exhausted"
    assert letter["attempts"] == 2
    assert ran == []
    assert survivor.store.get(QUEUED_TASKS, task_id) is None


def test_a_holder_that_lost_its_lease_neither_renews_nor_releases_the_task(path):
    later = datetime.now(UTC) + timedelta(minutes=5)

    def overrun(payload, ctx):
        # Meanwhile another process claimed the task: its lease token, its lease.
        ctx.store.update(QUEUED_TASKS, ctx.task_id, {"lease_token": "other", "available_at": later})
        time.sleep(0.3)  # the old holder's heartbeat (every lease / 3) comes due
        raise RetryTask("failed after losing the lease")

    registry = TaskRegistry()
    registry.register("job.run", Job, overrun)
    queue = new_queue(path, registry)
    task_id = queue.enqueue("q", "job.run", {"n": 4})
    [claimed] = queue.claim("q", limit=1)
    queue.run_claimed(claimed)
    current = queue.store.get(QUEUED_TASKS, task_id).data
    assert (current["state"], current["lease_token"]) == ("running", "other")
    assert current["available_at"] == later


def test_stop_waits_for_running_handlers(path):
    registry = TaskRegistry()
    started = threading.Event()
    finished: list[int] = []

    def slow(payload, ctx):
        started.set()
        time.sleep(0.3)
        finished.append(payload.n)

    registry.register("job.run", Job, slow)
    queue = new_queue(path, registry)
    queue.start()
    queue.enqueue("q", "job.run", {"n": 4})
    assert started.wait(5)
    queue.stop(timeout=5)
    assert finished == [4]
    assert queue.pending_count() == 0


def test_an_enqueue_wakes_the_worker_without_waiting_for_the_poll(path):
    registry = TaskRegistry()
    started = threading.Event()
    registry.register("job.run", Job, lambda p, c: started.set())
    queue = new_queue(path, registry, poll_interval=5.0)
    queue.start()
    try:
        time.sleep(0.1)
        begin = time.monotonic()
        queue.enqueue("q", "job.run", {"n": 5})
        assert started.wait(2)
        assert time.monotonic() - begin < 0.5
    finally:
        queue.stop()


def test_tasks_from_another_process_are_found_by_polling(path):
    registry = TaskRegistry()
    ran: list[int] = []
    registry.register("job.run", Job, lambda p, c: ran.append(p.n))
    worker = new_queue(path, registry, poll_interval=0.1)
    worker.start()
    try:
        producer = new_queue(path, TaskRegistry())  # another process: it does not wake ours
        producer.enqueue("q", "job.run", {"n": 6})
        wait_for(lambda: ran == [6], timeout=3)
    finally:
        worker.stop()


LONG = QueuePolicy(
    max_attempts=3, min_backoff=0.01, max_backoff=0.02, max_concurrent=2, dispatch_deadline=600
)
ROOT = Path(__file__).resolve().parents[3]
CRASHING_WORKER = """
import sys, time, pydantic
from shared.store.sqlite import SqliteDocumentStore
from shared.tasks import QueuePolicy, RetryTask, TaskRegistry
from shared.tasks.inprocess import InProcessTaskQueue

class Job(pydantic.BaseModel):
    n: int

registry = TaskRegistry()
registry.register("job.run", Job, lambda p, c: (print("running", flush=True), time.sleep(600)))
queue = InProcessTaskQueue(
    store=SqliteDocumentStore(sys.argv[1]),
    policies={"q": QueuePolicy(max_attempts=3, min_backoff=0.01, max_backoff=0.02,
                               max_concurrent=2, dispatch_deadline=600)},
    registry=registry, poll_interval=0.05, lease_seconds=1.5,
)
queue.start()
time.sleep(600)
"""


def long_queue(path, registry, lease_seconds=1.5):
    return InProcessTaskQueue(
        store=SqliteDocumentStore(path),
        policies={"q": LONG},
        registry=registry,
        poll_interval=0.05,
        lease_seconds=lease_seconds,
    )


def test_a_long_task_keeps_its_lease_while_its_process_lives(path):
    """Runs four leases long; a second worker on the same store never takes it."""
    runs: list[str] = []
    release = threading.Event()

    def slow(payload, ctx):
        runs.append("first")
        release.wait(6.5)

    registry = TaskRegistry()
    registry.register("job.run", Job, slow)
    owner = long_queue(path, registry)
    task_id = owner.enqueue("q", "job.run", {"n": 1})
    owner.start()
    other_runs: list[str] = []
    other_registry = TaskRegistry()
    other_registry.register("job.run", Job, lambda p, c: other_runs.append("second"))
    other = long_queue(path, other_registry)
    other.start()
    try:
        wait_for(lambda: runs == ["first"])
        time.sleep(6.0)  # four leases of 1.5 s
        assert other_runs == []
        release.set()
        wait_for(lambda: owner.store.get(QUEUED_TASKS, task_id) is None)
        assert other_runs == []
    finally:
        release.set()
        owner.stop()
        other.stop()


def test_a_task_of_a_killed_process_runs_again_within_a_lease(path):
    task_id = long_queue(path, TaskRegistry()).enqueue("q", "job.run", {"n": 7})
    worker = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WORKER, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "running"
        time.sleep(2.0)  # the dead worker's heartbeat had renewed the lease by now
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    killed_at = time.monotonic()
    attempts: list[int] = []
    registry = TaskRegistry()
    registry.register("job.run", Job, lambda p, c: attempts.append(c.attempt))
    survivor = long_queue(path, registry)
    survivor.start()
    try:
        wait_for(lambda: attempts == [2], timeout=10)
        assert time.monotonic() - killed_at < 1.5 + 1.0 + 1.0  # a lease, the margin, slack
        wait_for(lambda: survivor.store.get(QUEUED_TASKS, task_id) is None)
    finally:
        survivor.stop()
