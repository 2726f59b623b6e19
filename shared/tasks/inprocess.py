"""The embedded task queue: pending tasks in the document store, run by threads in process.

Each task is ``queued_tasks/{taskId}`` with ``available_at``: when a pending task comes due,
or when a running task's lease runs out. One dispatcher thread per queue claims available
tasks in a transaction (state → running, ``available_at`` → end of a short lease, attempt
+ 1) and runs each in its own thread, at most ``max_concurrent`` at once; a heartbeat
renews the lease while the task runs, up to the queue's dispatch deadline. A finished
task is deleted; a failed one goes back to pending after the backoff. Nothing lives only
in memory: a task whose process died mid-run is claimed again within one lease
(``lease_seconds``), by this process after a restart or by another one sharing the store,
and a live task is never claimed twice. An enqueue in this process
wakes the dispatcher at once; tasks from other processes, and delayed ones, are found by
polling every ``poll_interval`` seconds.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from queue import SimpleQueue

from shared.store.base import DocumentStore, Query, Transaction, WriteBatch
from shared.store.leases import Heartbeat
from shared.tasks.base import (
    DEFAULT_DEDUP_WINDOW,
    QueuePolicy,
    TaskEnvelope,
    TaskQueue,
    TaskRegistry,
)
from shared.tasks.execution import DeadLetter, execute_task, record_dead_letter

logger = logging.getLogger(__name__)

QUEUED_TASKS = "queued_tasks"
# A lease outlives the run record's lease, so a reclaimed task finds its run free.
LEASE_MARGIN_SECONDS = 1.0


@dataclass(frozen=True)
class ClaimedTask:
    """A task this process holds the lease of, and the attempt it is on."""

    envelope: TaskEnvelope
    attempt: int
    lease_token: str
    last_error: str | None


class InProcessTaskQueue(TaskQueue):
    """Task queue run by this process's threads, with every task kept in the store."""

    def __init__(
        self,
        *,
        store: DocumentStore,
        policies: Mapping[str, QueuePolicy],
        registry: TaskRegistry,
        poll_interval: float = 0.5,
        dedup_window: timedelta = DEFAULT_DEDUP_WINDOW,
        lease_seconds: float = 30.0,
    ) -> None:
        super().__init__(store=store, policies=policies, dedup_window=dedup_window)
        self.registry = registry
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self._stopping = threading.Event()
        self._workers: dict[str, _QueueWorker] = {}

    # -- producing -----------------------------------------------------------------------

    def _submit(self, envelope: TaskEnvelope, delay_seconds: float) -> None:
        due = datetime.now(UTC) + timedelta(seconds=delay_seconds)
        self.store.create(
            QUEUED_TASKS,
            envelope.task_id,
            {
                **envelope.model_dump(),
                "state": "pending",
                "attempt": 0,
                "available_at": due,
                "lease_token": None,
                "last_error": None,
            },
        )
        worker = self._workers.get(envelope.queue)
        if worker is not None:
            worker.wake(due.timestamp())

    # -- running -------------------------------------------------------------------------

    def start(self) -> None:
        """Start one dispatcher per queue; a no-op when already running."""
        if self._workers:
            return
        self._stopping.clear()
        for name, policy in self.policies.items():
            worker = _QueueWorker(self, name, policy)
            self._workers[name] = worker
            worker.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop claiming tasks and wait up to ``timeout`` seconds for running handlers.

        Returns whether every handler finished. One still running after that keeps its
        lease; the task is claimed again when the lease expires (after a restart, or by
        another process).
        """
        self._stopping.set()
        deadline = time.monotonic() + timeout
        workers = list(self._workers.values())
        for worker in workers:
            worker.wake(None)
        for worker in workers:
            worker.join(max(deadline - time.monotonic(), 0.0))
        self._workers.clear()
        return not any(worker.alive() for worker in workers)

    def pending_count(self, queue: str | None = None) -> int:
        """Return how many tasks are queued (pending or running), in ``queue`` or in all."""
        query = Query(QUEUED_TASKS)
        if queue is not None:
            query = query.where("queue", "==", queue)
        return self.store.count(query)

    def claim(self, queue: str, limit: int) -> list[ClaimedTask]:
        """Claim up to ``limit`` available tasks of ``queue`` (leased to this process)."""
        policy = self.policy(queue)
        lease = timedelta(seconds=self._lease_seconds(policy) + LEASE_MARGIN_SECONDS)

        def claim(tx: Transaction) -> list[ClaimedTask]:
            now = datetime.now(UTC)
            query = (
                Query(QUEUED_TASKS)
                .where("queue", "==", queue)
                .where("available_at", "<=", now)
                .order("available_at")
                .take(limit)
            )
            claimed: list[ClaimedTask] = []
            for document in tx.query(query):
                data = document.data
                attempt = int(data.get("attempt", 0)) + 1
                token = uuid.uuid4().hex
                tx.update(
                    QUEUED_TASKS,
                    document.id,
                    {
                        "state": "running",
                        "attempt": attempt,
                        "available_at": now + lease,
                        "lease_token": token,
                        "claimed_at": now,
                    },
                )
                envelope = TaskEnvelope.model_validate(data)
                claimed.append(ClaimedTask(envelope, attempt, token, data.get("last_error")))
            return claimed

        return self.store.run_transaction(claim)

    def run_claimed(self, task: ClaimedTask) -> None:
        """Run one claimed task and record its outcome in the queue."""
        policy = self.policy(task.envelope.queue)
        task_id = task.envelope.task_id

        def remove_from_queue(batch: WriteBatch) -> None:
            batch.delete(QUEUED_TASKS, task_id)

        if task.attempt > policy.max_attempts:
            # Its last attempt never reported back (the process died or overran its lease).
            record_dead_letter(self.store, _lost(task), on_acknowledged=remove_from_queue)
            return
        heartbeat = Heartbeat(
            lambda: self._renew(task, policy), self._lease_seconds(policy) / 3, name=task_id
        )
        with heartbeat:
            outcome = execute_task(
                registry=self.registry,
                store=self.store,
                envelope=task.envelope,
                attempt=task.attempt,
                policy=policy,
                claimed_exclusively=True,
                on_acknowledged=remove_from_queue,
            )
        if outcome.acknowledged:
            return
        retry_in = outcome.retry_in or 0.0
        due = datetime.now(UTC) + timedelta(seconds=retry_in)
        # A busy task (another delivery holds its run) does not use up an attempt.
        attempt = task.attempt if outcome.kind == "retry" else task.attempt - 1

        def release(tx: Transaction) -> None:
            current = tx.get(QUEUED_TASKS, task_id)
            if current is None or current.data.get("lease_token") != task.lease_token:
                return  # another claimant owns it now
            tx.update(
                QUEUED_TASKS,
                task_id,
                {
                    "state": "pending",
                    "attempt": attempt,
                    "available_at": due,
                    "lease_token": None,
                    "last_error": outcome.error or task.last_error,
                },
            )

        self.store.run_transaction(release)
        worker = self._workers.get(task.envelope.queue)
        if worker is not None:
            worker.wake(due.timestamp())

    def _lease_seconds(self, policy: QueuePolicy) -> float:
        return min(self.lease_seconds, policy.dispatch_deadline)

    def _renew(self, task: ClaimedTask, policy: QueuePolicy) -> bool:
        """Extend a running task's lease; False once it is lost or its deadline passed."""
        task_id = task.envelope.task_id
        lease = timedelta(seconds=self._lease_seconds(policy) + LEASE_MARGIN_SECONDS)

        def renew(tx: Transaction) -> bool:
            current = tx.get(QUEUED_TASKS, task_id)
            if current is None or current.data.get("lease_token") != task.lease_token:
                return False
            now = datetime.now(UTC)
            claimed_at = current.data.get("claimed_at")
            started = claimed_at if isinstance(claimed_at, datetime) else now
            deadline = started + timedelta(seconds=policy.dispatch_deadline + LEASE_MARGIN_SECONDS)
            # A task past its dispatch deadline is not renewed: it may be claimed again.
            tx.update(QUEUED_TASKS, task_id, {"available_at": min(now + lease, deadline)})
            return now + lease < deadline

        return self.store.run_transaction(renew)


def _lost(task: ClaimedTask) -> DeadLetter:
    envelope = task.envelope
    return DeadLetter(
        task_id=envelope.task_id,
        queue=envelope.queue,
        task_type=envelope.task_type,
        payload=envelope.payload,
        dedup_key=envelope.dedup_key,
        attempts=task.attempt - 1,
        reason="exhausted",
        last_error=task.last_error or "The last attempt did not finish within its lease",
        enqueued_at=envelope.enqueued_at,
        dead_at=datetime.now(UTC),
    )


class _QueueWorker:
    """The dispatcher of one queue and its ``max_concurrent`` long-lived runner threads.

    Runners live as long as the worker, so each keeps one store connection; the dispatcher
    never claims more tasks than there are idle runners.
    """

    def __init__(self, owner: InProcessTaskQueue, name: str, policy: QueuePolicy) -> None:
        self._owner = owner
        self._name = name
        self._condition = threading.Condition()
        self._free = policy.max_concurrent
        self._signals = 0
        self._due: list[float] = []  # wall-clock times at which a known task comes due
        self._work: SimpleQueue[ClaimedTask | None] = SimpleQueue()
        self._dispatcher = threading.Thread(
            target=self._dispatch_forever, name=f"tasks-{name}", daemon=True
        )
        self._runners = [
            threading.Thread(target=self._run_forever, name=f"tasks-{name}-{i}", daemon=True)
            for i in range(policy.max_concurrent)
        ]

    def start(self) -> None:
        for runner in self._runners:
            runner.start()
        self._dispatcher.start()

    def wake(self, due_at: float | None) -> None:
        with self._condition:
            if due_at is not None and due_at > time.time():
                heapq.heappush(self._due, due_at)
            else:
                self._signals += 1
            self._condition.notify_all()

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in (self._dispatcher, *self._runners))

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._dispatcher.join(timeout)
        for _ in self._runners:
            self._work.put(None)
        for runner in self._runners:
            runner.join(max(deadline - time.monotonic(), 0.0))

    def _dispatch_forever(self) -> None:
        self._warm_up()
        stopping = self._owner._stopping
        while not stopping.is_set():
            with self._condition:
                while self._free == 0 and not stopping.is_set():
                    self._condition.wait(self._owner.poll_interval)
                if stopping.is_set():
                    return
                limit = self._free
                # Everything signalled so far is in the store: the claim below will see it.
                self._signals = 0
                now = time.time()
                while self._due and self._due[0] <= now:
                    heapq.heappop(self._due)
            claimed = self._claim(limit)
            if claimed:
                with self._condition:
                    self._free -= len(claimed)
                for task in claimed:
                    self._work.put(task)
                continue
            with self._condition:
                if self._signals == 0 and not stopping.is_set():
                    self._condition.wait(self._idle_wait())

    def _claim(self, limit: int) -> list[ClaimedTask]:
        try:
            return self._owner.claim(self._name, limit)
        except Exception:
            logger.exception("Cannot claim tasks from queue %s", self._name)
            self._owner._stopping.wait(self._owner.poll_interval)
            return []

    def _run_forever(self) -> None:
        self._warm_up()
        while True:
            task = self._work.get()
            if task is None:
                return
            try:
                self._owner.run_claimed(task)
            except Exception:
                # The store failed: the lease expires and the task is claimed again.
                logger.exception("Task %s could not be recorded", task.envelope.task_id)
            finally:
                with self._condition:
                    self._free += 1
                    self._condition.notify_all()

    def _warm_up(self) -> None:
        # Open this thread's store connection now rather than on its first task: opening
        # one can fail while another thread writes (SQLite switching to WAL), so retry.
        for _ in range(100):
            try:
                self._owner.store.get(QUEUED_TASKS, "warm-up")
                return
            except Exception:
                time.sleep(0.02)

    def _idle_wait(self) -> float:
        wait = self._owner.poll_interval
        if self._due:
            wait = min(wait, max(self._due[0] - time.time(), 0.0))
        return wait
