"""One contract for the task queue, run unchanged over the in-process worker and Cloud Tasks.

The Cloud Tasks side is real end to end: ``gcloud-tasks-emulator`` (its own virtualenv)
pushes each task over HTTP to the ``tasks`` function, served by werkzeug from a thread
and built as the Cloud Functions runtime builds it, with a dev-signed admin token standing
in for the OIDC token the emulator drops. The emulator ignores retry config and task-name
de-duplication, so these tests also prove our own code enforces both.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pydantic
import pytest
from google.cloud import tasks_v2
from werkzeug.serving import make_server

from shared.bootstrap import get_container, reset_container
from shared.store.base import DocumentStore
from shared.store.sqlite import SqliteDocumentStore
from shared.tasks import GiveUpTask, QueuePolicy, RetryTask, TaskAlreadyExistsError, TaskRegistry
from shared.tasks.base import (
    DEDUP_CLAIMS,
    RESUBMIT_AFTER,
    TaskContext,
    TaskEnvelope,
    TaskQueue,
    dedup_task_name,
)
from shared.tasks.cloudtasks import CloudTasksQueue, emulator_client
from shared.tasks.execution import DEAD_LETTERS, get_dead_letter, retry_dead_letter
from shared.tasks.inprocess import ClaimedTask, InProcessTaskQueue
from shared.tasks.push_auth import AdminTokenPushVerifier
from shared.tasks.runtime import TaskRuntime, dev_push_headers
from shared.tasks.scheduling import JobRegistry
from tests.support.processes import Emulator, free_port
from tests.support.tasks_emulator import start_tasks_emulator

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "demo-voice-test"
LOCATION = "us-central1"
FAST = QueuePolicy(
    max_attempts=3, min_backoff=0.01, max_backoff=0.05, max_concurrent=4, dispatch_deadline=30
)
PAIR = QueuePolicy(
    max_attempts=3, min_backoff=0.01, max_backoff=0.05, max_concurrent=2, dispatch_deadline=30
)


class Number(pydantic.BaseModel):
    n: int


@dataclass
class Harness:
    """One adapter under test, with its queue names, registry and delivery counter."""

    kind: str
    queue: TaskQueue
    store: DocumentStore
    registry: TaskRegistry
    fast: str
    pair: str
    envelopes: dict[str, TaskEnvelope] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)

    def deliver_again(self, task_id: str) -> None:
        """Hand a task's envelope to the backend once more, as an at-least-once redelivery."""
        self.queue._submit(self.envelopes[task_id], 0.0)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- the adapters ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tasks_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    log_path = tmp_path_factory.mktemp("tasks-emulator") / "emulator.log"
    emulator = start_tasks_emulator(log_path, queues=[])
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(params=["inprocess", "cloudtasks"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "inprocess":
        yield from _inprocess(tmp_path)
    else:
        yield from _cloudtasks(request, tmp_path)


def _inprocess(tmp_path: Path) -> Iterator[Harness]:
    store = SqliteDocumentStore(tmp_path / "store.sqlite3")
    registry = TaskRegistry()
    fast, pair = unique("fast"), unique("pair")
    holder: list[Harness] = []

    class Recording(InProcessTaskQueue):
        def _submit(self, envelope: TaskEnvelope, delay_seconds: float) -> None:
            holder[0].envelopes[envelope.task_id] = envelope
            super()._submit(envelope, delay_seconds)

        def run_claimed(self, task: ClaimedTask) -> None:
            super().run_claimed(task)
            holder[0].finished.append(task.envelope.task_id)

    queue = Recording(
        store=store, policies={fast: FAST, pair: PAIR}, registry=registry, poll_interval=0.05
    )
    holder.append(Harness("inprocess", queue, store, registry, fast, pair))
    queue.start()
    try:
        yield holder[0]
    finally:
        queue.stop(timeout=5)
        store.close()


def _cloudtasks(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    emulator = request.getfixturevalue("tasks_emulator")
    monkeypatch = request.getfixturevalue("monkeypatch")
    for variable in ("K_SERVICE", "VOICE_STORE", "VOICE_AUTH_MODE", "VOICE_TASKS"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("VOICE_ENVIRONMENT", "test")
    monkeypatch.setenv("VOICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VOICE_DEV_AUTH_SECRET", "contract-tests-" + "s" * 32)
    reset_container()
    container = get_container()
    client = emulator_client(emulator.host)
    fast, pair = unique("fast"), unique("pair")
    for name in (fast, pair):
        path = f"projects/{PROJECT}/locations/{LOCATION}/queues/{name}"
        client.create_queue(
            parent=f"projects/{PROJECT}/locations/{LOCATION}", queue=tasks_v2.Queue(name=path)
        )
    holder: list[Harness] = []
    app = functions_framework.create_app("tasks", str(ROOT / "functions" / "tasks.py"))

    def counting_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = list(app(environ, start_response))
        if environ.get("PATH_INFO") == "/tasks/run":
            holder[0].finished.append(environ.get("HTTP_X_CLOUDTASKS_TASKNAME", ""))
        return body

    port = free_port()
    server = make_server("127.0.0.1", port, counting_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Recording(CloudTasksQueue):
        def _submit(self, envelope: TaskEnvelope, delay_seconds: float) -> None:
            holder[0].envelopes[envelope.task_id] = envelope
            super()._submit(envelope, delay_seconds)

    registry = TaskRegistry()
    queue = Recording(
        client=client,
        project=PROJECT,
        location=LOCATION,
        handler_url=f"http://127.0.0.1:{port}/tasks/run",
        store=container.store,
        policies={fast: FAST, pair: PAIR},
        service_account_email=None,
        extra_headers=dev_push_headers(container.settings),
    )
    runtime = TaskRuntime(
        registry=registry,
        queue=queue,
        push_verifier=AdminTokenPushVerifier(container.verifier),
        jobs=JobRegistry(),
    )
    container.use_task_runtime(runtime)
    holder.append(Harness("cloudtasks", queue, container.store, registry, fast, pair))
    try:
        yield holder[0]
    finally:
        for name in (fast, pair):
            client.purge_queue(name=f"projects/{PROJECT}/locations/{LOCATION}/queues/{name}")
        server.shutdown()
        reset_container()


# -- helpers for handlers ------------------------------------------------------------------


@dataclass
class Calls:
    """What a test handler saw, thread-safe."""

    seen: list[tuple[int, int]] = field(default_factory=list)  # (payload n, attempt)
    contexts: list[TaskContext] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, payload: Number, ctx: TaskContext) -> None:
        with self.lock:
            self.seen.append((payload.n, ctx.attempt))
            self.contexts.append(ctx)

    def attempts(self) -> list[int]:
        with self.lock:
            return [attempt for _, attempt in self.seen]


def dead_letter_of(harness: Harness, task_id: str) -> Any:
    document = harness.store.get(DEAD_LETTERS, task_id)
    return document.data if document else None


# -- the contract ---------------------------------------------------------------------------


def test_a_task_runs_once_with_its_payload(harness):
    calls = Calls()
    harness.registry.register("test.echo", Number, calls.add)
    task_id = harness.queue.enqueue(harness.fast, "test.echo", Number(n=7))
    wait_for(lambda: calls.seen)
    wait_for(lambda: task_id in harness.envelopes and harness.finished)
    assert calls.seen == [(7, 1)]
    ctx = calls.contexts[0]
    assert ctx.task_id == task_id
    assert ctx.queue == harness.fast
    assert ctx.task_type == "test.echo"
    assert dead_letter_of(harness, task_id) is None


def test_a_transient_failure_is_retried_with_increasing_attempts(harness):
    calls = Calls()

    def flaky(payload: Number, ctx: TaskContext) -> None:
        calls.add(payload, ctx)
        if ctx.attempt < 3:
            raise RetryTask(f"not yet ({ctx.attempt})", delay=0.01)

    harness.registry.register("test.flaky", Number, flaky)
    task_id = harness.queue.enqueue(harness.fast, "test.flaky", {"n": 1})
    wait_for(lambda: len(calls.seen) == 3)
    time.sleep(0.3)
    assert calls.attempts() == [1, 2, 3]
    assert dead_letter_of(harness, task_id) is None


def test_an_unexpected_exception_counts_as_transient(harness):
    calls = Calls()

    def crashes_once(payload: Number, ctx: TaskContext) -> None:
        calls.add(payload, ctx)
        if ctx.attempt == 1:
            raise RuntimeError("provider timed out")

    harness.registry.register("test.crash", Number, crashes_once)
    harness.queue.enqueue(harness.fast, "test.crash", {"n": 1})
    wait_for(lambda: len(calls.seen) == 2)
    assert calls.attempts() == [1, 2]


def test_giving_up_dead_letters_without_a_retry(harness):
    calls = Calls()

    def refuses(payload: Number, ctx: TaskContext) -> None:
        calls.add(payload, ctx)
        raise GiveUpTask("voice model was deleted")

    harness.registry.register("test.refuse", Number, refuses)
    task_id = harness.queue.enqueue(harness.fast, "test.refuse", {"n": 5})
    letter = wait_for(lambda: dead_letter_of(harness, task_id))
    time.sleep(0.3)
    assert calls.attempts() == [1]
    assert letter["reason"] == "gave_up"
    assert letter["last_error"] == "voice model was deleted"
    assert letter["attempts"] == 1
    assert letter["payload"] == {"n": 5}
    assert letter["task_type"] == "test.refuse"
    assert letter["queue"] == harness.fast


def test_exhausted_attempts_dead_letter_with_the_last_error(harness):
    calls = Calls()

    def always_fails(payload: Number, ctx: TaskContext) -> None:
        calls.add(payload, ctx)
        raise RetryTask(f"still down on attempt {ctx.attempt}")

    harness.registry.register("test.down", Number, always_fails)
    task_id = harness.queue.enqueue(harness.fast, "test.down", {"n": 1})
    letter = wait_for(lambda: dead_letter_of(harness, task_id))
    time.sleep(0.4)
    assert calls.attempts() == [1, 2, 3]
    assert letter["reason"] == "exhausted"
    assert letter["attempts"] == 3
    assert letter["last_error"] == "still down on attempt 3"


def test_a_malformed_payload_is_dead_lettered_at_once(harness):
    calls = Calls()
    harness.registry.register("test.typed", Number, calls.add)
    task_id = harness.queue.enqueue(harness.fast, "test.typed", {"n": "seven"})
    letter = wait_for(lambda: dead_letter_of(harness, task_id))
    time.sleep(0.3)
    assert calls.seen == []
    assert letter["reason"] == "malformed_payload"
    assert letter["attempts"] == 1
    assert "n:" in letter["last_error"]


def test_an_unknown_task_type_is_dead_lettered(harness):
    task_id = harness.queue.enqueue(harness.fast, "test.nobody-handles-this", {"n": 1})
    letter = wait_for(lambda: dead_letter_of(harness, task_id))
    assert letter["reason"] == "unknown_task_type"


def test_a_duplicate_dedup_key_is_refused(harness):
    calls = Calls()
    harness.registry.register("test.once", Number, calls.add)
    harness.queue.enqueue(harness.fast, "test.once", {"n": 1}, dedup_key="sync/2026-01-01")
    with pytest.raises(TaskAlreadyExistsError):
        harness.queue.enqueue(harness.fast, "test.once", {"n": 2}, dedup_key="sync/2026-01-01")
    # A key that sanitises to the same characters is still a different key.
    harness.queue.enqueue(harness.fast, "test.once", {"n": 3}, dedup_key="sync_2026-01-01")
    wait_for(lambda: len(calls.seen) == 2)
    time.sleep(0.3)
    assert sorted(n for n, _ in calls.seen) == [1, 3]


def test_a_task_whose_enqueue_stopped_after_its_claim_is_submitted_by_the_next(harness):
    calls = Calls()
    harness.registry.register("test.lost", Number, calls.add)
    key = f"lost/{uuid.uuid4().hex}"
    lost = TaskEnvelope(
        task_id=uuid.uuid4().hex,
        queue=harness.fast,
        task_type="test.lost",
        payload={"n": 1},
        dedup_key=key,
        enqueued_at=datetime.now(UTC) - RESUBMIT_AFTER - timedelta(seconds=1),
    )
    # What an enqueue does before it submits; then its instance died.
    assert harness.queue._claim_dedup(dedup_task_name(key), lost, 0.0) is None
    with pytest.raises(TaskAlreadyExistsError):  # a sweep queueing the same work again
        harness.queue.enqueue(harness.fast, "test.lost", {"n": 2}, dedup_key=key)
    wait_for(lambda: calls.seen)
    with pytest.raises(TaskAlreadyExistsError):  # it ran: nothing is submitted again
        harness.queue.enqueue(harness.fast, "test.lost", {"n": 3}, dedup_key=key)
    time.sleep(0.5)
    assert calls.seen == [(1, 1)]  # the claimed task, once


def test_a_task_held_by_its_backend_is_not_run_twice_by_a_late_duplicate(harness):
    calls = Calls()
    harness.registry.register("test.held", Number, calls.add)
    key = f"held/{uuid.uuid4().hex}"
    harness.queue.enqueue(harness.fast, "test.held", {"n": 1}, dedup_key=key, delay=1.5)
    claim = dedup_task_name(key)
    earlier = datetime.now(UTC) - RESUBMIT_AFTER - timedelta(seconds=1)
    harness.store.update(DEDUP_CLAIMS, claim, {"created_at": earlier})
    with pytest.raises(TaskAlreadyExistsError):  # queued, not yet run: submitted again,
        harness.queue.enqueue(harness.fast, "test.held", {"n": 2}, dedup_key=key)
    wait_for(lambda: calls.seen, timeout=5)  # which the backend or the run record refuses
    time.sleep(1.0)
    assert calls.seen == [(1, 1)]


def test_a_delayed_task_does_not_run_before_its_time(harness):
    started: list[float] = []
    harness.registry.register("test.later", Number, lambda p, ctx: started.append(time.time()))
    enqueued = time.time()
    harness.queue.enqueue(harness.fast, "test.later", {"n": 1}, delay=1.0)
    time.sleep(0.6)
    assert started == []
    wait_for(lambda: started, timeout=5)
    assert started[0] - enqueued >= 0.95


def test_a_redelivered_task_does_not_run_twice(harness):
    calls = Calls()
    harness.registry.register("test.idem", Number, calls.add)
    task_id = harness.queue.enqueue(harness.fast, "test.idem", {"n": 1})
    wait_for(lambda: len(harness.finished) == 1)
    harness.deliver_again(task_id)
    wait_for(lambda: len(harness.finished) == 2)
    assert calls.seen == [(1, 1)]


def test_a_handlers_own_effect_happens_once_across_retries(harness):
    effects: list[int] = []
    calls = Calls()

    def charges_then_fails(payload: Number, ctx: TaskContext) -> None:
        calls.add(payload, ctx)
        ctx.once("charge", lambda: effects.append(payload.n))
        if ctx.attempt == 1:
            raise RetryTask("the step after the charge failed")

    harness.registry.register("test.charge", Number, charges_then_fails)
    harness.queue.enqueue(harness.fast, "test.charge", {"n": 42})
    wait_for(lambda: len(calls.seen) == 2)
    assert effects == [42]


def test_no_more_than_max_concurrent_handlers_run_at_once(harness):
    lock = threading.Lock()
    active = [0]
    peak = [0]
    done: list[int] = []

    def slow(payload: Number, ctx: TaskContext) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        with lock:
            active[0] -= 1
            done.append(payload.n)

    harness.registry.register("test.slow", Number, slow)
    for n in range(6):
        harness.queue.enqueue(harness.pair, "test.slow", {"n": n})
    wait_for(lambda: len(done) == 6, timeout=15)
    assert sorted(done) == list(range(6))
    assert 1 <= peak[0] <= 2
    if harness.kind == "inprocess":
        assert peak[0] == 2  # the emulator delivers one at a time; our worker uses both slots


def test_an_admin_retry_runs_a_dead_letter_again(harness):
    attempts_by_task: dict[str, int] = {}
    fail = [True]

    def sometimes(payload: Number, ctx: TaskContext) -> None:
        attempts_by_task[ctx.task_id] = ctx.attempt
        if fail[0]:
            raise GiveUpTask("upstream said no")

    harness.registry.register("test.sometimes", Number, sometimes)
    first = harness.queue.enqueue(harness.fast, "test.sometimes", {"n": 1})
    wait_for(lambda: dead_letter_of(harness, first))
    assert get_dead_letter(harness.store, first).reason == "gave_up"
    fail[0] = False
    second = retry_dead_letter(harness.store, harness.queue, first)
    assert second != first
    wait_for(lambda: second in attempts_by_task)
    assert dead_letter_of(harness, first) is None
    wait_for(lambda: len(harness.finished) == 2)
    assert dead_letter_of(harness, second) is None
