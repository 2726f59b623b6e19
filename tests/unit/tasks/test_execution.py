"""The task port's rules and ``execute_task``'s classification, on a real SQLite store."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from shared.errors import InvalidRequestError
from shared.store.sqlite import SqliteDocumentStore
from shared.tasks import (
    DeadLetterNotFoundError,
    GiveUpTask,
    QueuePolicy,
    RetryTask,
    TaskAlreadyExistsError,
    TaskContext,
    TaskEnvelope,
    TaskRegistry,
    UnknownQueueError,
    execute_task,
)
from shared.tasks.base import TaskQueue, dedup_task_name
from shared.tasks.execution import DEAD_LETTERS, TASK_RUNS, list_dead_letters, retry_dead_letter

POLICY = QueuePolicy(max_attempts=3, min_backoff=0.5, max_backoff=8, max_concurrent=2)


class Voice(pydantic.BaseModel):
    voice_id: str
    speed: float = 1.0


class RecordingQueue(TaskQueue):
    """A queue that keeps what it was given (the base class's own rules under test)."""

    def __init__(self, store, **kwargs):
        super().__init__(store=store, policies={"q": POLICY}, **kwargs)
        self.submitted: list[tuple[TaskEnvelope, float]] = []
        self.fail_next = False
        self.backend_seconds = 0.0  # how long the backend takes to accept a task

    def _submit(self, envelope, delay_seconds):
        time.sleep(self.backend_seconds)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("backend down")
        self.submitted.append((envelope, delay_seconds))


@pytest.fixture
def store(tmp_path):
    adapter = SqliteDocumentStore(tmp_path / "store.sqlite3")
    yield adapter
    adapter.close()


def envelope(payload=None, task_type="voice.train", task_id="t1") -> TaskEnvelope:
    return TaskEnvelope(
        task_id=task_id,
        queue="q",
        task_type=task_type,
        payload={"voice_id": "v1"} if payload is None else payload,
        enqueued_at=datetime.now(UTC),
    )


def run(registry, store, env, attempt=1, policy=POLICY, **options):
    return execute_task(
        registry=registry, store=store, envelope=env, attempt=attempt, policy=policy, **options
    )


# -- policy --------------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_full_jitter_inside_the_bounds():
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = min(8, 0.5 * 2 ** (attempt - 1))
        draws = [POLICY.backoff(attempt, rng) for _ in range(200)]
        assert all(0.5 <= d <= ceiling for d in draws)
    assert max(POLICY.backoff(8, rng) for _ in range(200)) > 4  # reaches toward the cap


@pytest.mark.parametrize(
    "bad",
    [
        {"max_attempts": 0},
        {"min_backoff": 5, "max_backoff": 1},
        {"max_concurrent": 0},
        {"dispatch_deadline": 0},
    ],
)
def test_nonsense_policies_are_refused(bad):
    with pytest.raises(ValueError, match="must"):
        QueuePolicy(**bad)


# -- enqueue rules --------------------------------------------------------------------------


def test_enqueue_returns_a_new_id_and_serialises_models(store):
    queue = RecordingQueue(store)
    first = queue.enqueue("q", "voice.train", Voice(voice_id="v1"), delay=timedelta(seconds=2))
    second = queue.enqueue("q", "voice.train", {"voice_id": "v2"})
    assert first != second
    env, delay = queue.submitted[0]
    assert env.task_id == first
    assert env.payload == {"voice_id": "v1", "speed": 1.0}
    assert delay == 2.0


def test_enqueue_refuses_unknown_queues_bad_payloads_and_negative_delays(store):
    queue = RecordingQueue(store)
    with pytest.raises(UnknownQueueError):
        queue.enqueue("nope", "voice.train", {})
    with pytest.raises(InvalidRequestError):
        queue.enqueue("q", "voice.train", {"when": datetime.now(UTC)})
    with pytest.raises(InvalidRequestError):
        queue.enqueue("q", "voice.train", {"x": float("nan")})
    with pytest.raises(InvalidRequestError):
        queue.enqueue("q", "voice.train", {}, delay=-1)
    with pytest.raises(InvalidRequestError):
        queue.enqueue("q", "Bad Type", {})
    assert queue.submitted == []


def test_a_dedup_key_is_refused_within_its_window_then_accepted_again(store):
    queue = RecordingQueue(store, dedup_window=timedelta(milliseconds=300))
    queue.enqueue("q", "voice.train", {}, dedup_key="k")
    with pytest.raises(TaskAlreadyExistsError):
        queue.enqueue("q", "voice.train", {}, dedup_key="k")
    time.sleep(0.35)
    queue.enqueue("q", "voice.train", {}, dedup_key="k")
    assert len(queue.submitted) == 2


def test_a_failed_submit_releases_the_dedup_key(store):
    queue = RecordingQueue(store)
    queue.fail_next = True
    with pytest.raises(RuntimeError):
        queue.enqueue("q", "voice.train", {}, dedup_key="k")
    queue.enqueue("q", "voice.train", {}, dedup_key="k")
    assert len(queue.submitted) == 1


def test_dedup_task_names_are_valid_cloud_tasks_ids_and_distinct():
    names = {dedup_task_name(k) for k in ["a/b", "a_b", "a b", "ü", "x" * 600]}
    assert len(names) == 5
    for name in names:
        assert all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
        assert len(name) <= 500
    with pytest.raises(InvalidRequestError):
        dedup_task_name("")


def test_a_task_type_cannot_be_registered_twice():
    registry = TaskRegistry()
    registry.register("voice.train", Voice, lambda p, c: None)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("voice.train", Voice, lambda p, c: None)
    with pytest.raises(ValueError, match="Invalid task type"):
        registry.register("Not Valid", Voice, lambda p, c: None)
    assert registry.names() == ["voice.train"]


# -- execute_task ---------------------------------------------------------------------------


def test_success_is_recorded_and_a_redelivery_is_a_duplicate(store):
    registry = TaskRegistry()
    seen: list[tuple[str, int, bool]] = []
    registry.register(
        "voice.train", Voice, lambda p, c: seen.append((p.voice_id, c.attempt, c.is_last_attempt))
    )
    assert run(registry, store, envelope()).kind == "succeeded"
    assert run(registry, store, envelope(), attempt=2).kind == "duplicate"
    assert seen == [("v1", 1, False)]
    assert store.get(TASK_RUNS, "t1").data["state"] == "done"


def test_a_delivery_while_another_holds_the_run_is_busy(store):
    registry = TaskRegistry()
    outcomes = []

    def nested(payload, ctx):
        # A second delivery of the same task arrives while this one runs.
        outcomes.append(run(registry, store, envelope(), attempt=2))

    registry.register("voice.train", Voice, nested)
    assert run(registry, store, envelope()).kind == "succeeded"
    assert outcomes[0].kind == "busy"
    assert 0 < outcomes[0].retry_in <= POLICY.dispatch_deadline


def test_a_claimed_delivery_of_a_finished_or_dead_task_is_a_duplicate(store):
    registry = TaskRegistry()
    ran: list[str] = []
    registry.register("voice.train", Voice, lambda p, c: ran.append(c.task_type))
    assert run(registry, store, envelope()).kind == "succeeded"
    dead = run(TaskRegistry(), store, envelope(task_type="nobody.home", task_id="t2"))
    assert dead.kind == "dead_lettered"
    registry.register("nobody.home", Voice, lambda p, c: ran.append(c.task_type))
    acknowledged: list[str] = []
    for task_id, task_type in (("t1", "voice.train"), ("t2", "nobody.home")):
        # The in-process worker holds its own claim, so it takes no run lease.
        outcome = execute_task(
            registry=registry,
            store=store,
            envelope=envelope(task_type=task_type, task_id=task_id),
            attempt=2,
            policy=POLICY,
            claimed_exclusively=True,
            on_acknowledged=lambda batch, task_id=task_id: acknowledged.append(task_id),
        )
        assert outcome.kind == "duplicate"
    assert ran == ["voice.train"]
    assert acknowledged == ["t1", "t2"]


def test_retry_uses_the_handlers_delay_or_the_backoff(store):
    registry = TaskRegistry()
    registry.register(
        "voice.train", Voice, lambda p, c: (_ for _ in ()).throw(RetryTask("x", delay=3))
    )
    registry.register("voice.other", Voice, lambda p, c: 1 / 0)
    first = run(registry, store, envelope())
    assert (first.kind, first.error, first.retry_in) == ("retry", "x", 3)
    second = run(registry, store, envelope(task_type="voice.other", task_id="t2"))
    assert second.kind == "retry"
    assert second.error.startswith("ZeroDivisionError")
    assert 0.5 <= second.retry_in <= 0.5  # attempt 1: the ceiling is min_backoff


def test_the_last_attempt_dead_letters_and_give_up_is_immediate(store):
    registry = TaskRegistry()

    def fails(payload, ctx):
        if payload.voice_id == "gone":
            raise GiveUpTask("model deleted")
        raise RetryTask(f"attempt {ctx.attempt}")

    registry.register("voice.train", Voice, fails)
    assert run(registry, store, envelope(), attempt=3).kind == "dead_lettered"
    assert (
        run(registry, store, envelope({"voice_id": "gone"}, task_id="t2")).kind == "dead_lettered"
    )
    letters, cursor = list_dead_letters(store, limit=10)
    assert cursor is None
    by_id = {letter.task_id: letter for letter in letters}
    assert by_id["t1"].reason == "exhausted"
    assert by_id["t1"].last_error == "attempt 3"
    assert by_id["t2"].reason == "gave_up"
    assert by_id["t2"].attempts == 1
    # A dead task redelivered is acknowledged, not run again.
    assert run(registry, store, envelope(), attempt=4).kind == "duplicate"


def test_malformed_payloads_and_unknown_types_are_permanent(store):
    registry = TaskRegistry()
    registry.register("voice.train", Voice, lambda p, c: None)
    outcome = run(registry, store, envelope({"speed": "fast"}))
    assert outcome.kind == "dead_lettered"
    letter = store.get(DEAD_LETTERS, "t1").data
    assert letter["reason"] == "malformed_payload"
    assert "voice_id" in letter["last_error"]
    assert "speed" in letter["last_error"]
    assert (
        run(registry, store, envelope(task_type="who.knows", task_id="t2")).kind == "dead_lettered"
    )
    assert store.get(DEAD_LETTERS, "t2").data["reason"] == "unknown_task_type"


def test_dead_letters_page_newest_first_and_filter_by_queue(store):
    registry = TaskRegistry()
    for i in range(5):
        run(registry, store, envelope(task_type="nobody.home", task_id=f"t{i}"))
    page, cursor = list_dead_letters(store, limit=2)
    assert [d.task_id for d in page] == ["t4", "t3"]
    page2, cursor2 = list_dead_letters(store, limit=10, cursor=cursor)
    assert [d.task_id for d in page2] == ["t2", "t1", "t0"]
    assert cursor2 is None
    assert list_dead_letters(store, limit=10, queue="other")[0] == []


def test_effects_recorded_in_a_transaction_happen_once(store):
    registry = TaskRegistry()
    attempts = []

    def credit(payload, ctx: TaskContext):
        attempts.append(ctx.attempt)

        def write(tx):
            if ctx.effect_recorded(tx, "credit"):
                return
            balance = tx.get("balances", "u1")
            tx.set("balances", "u1", {"n": (balance.data["n"] if balance else 0) + 1})
            ctx.record_effect(tx, "credit")

        store.run_transaction(write)
        if ctx.attempt == 1:
            raise RetryTask("crashed after the credit")

    registry.register("voice.train", Voice, credit)
    assert run(registry, store, envelope()).kind == "retry"
    assert run(registry, store, envelope(), attempt=2).kind == "succeeded"
    assert attempts == [1, 2]
    assert store.get("balances", "u1").data == {"n": 1}


# -- run leases (Cloud Tasks deliveries) ---------------------------------------------------------


def test_a_live_delivery_renews_its_run_lease_so_a_redelivery_stays_busy(store):
    registry = TaskRegistry()
    release = threading.Event()
    registry.register("voice.train", Voice, lambda p, c: release.wait(10))
    outcomes = []
    first = threading.Thread(
        target=lambda: outcomes.append(run(registry, store, envelope(), lease_seconds=1.0))
    )
    first.start()
    try:
        time.sleep(3.5)  # three and a half leases
        second = run(registry, store, envelope(), attempt=2, lease_seconds=1.0)
        assert second.kind == "busy"
        assert 0 < second.retry_in <= 1.0
    finally:
        release.set()
        first.join()
    assert outcomes[0].kind == "succeeded"


def test_a_delivery_whose_run_was_taken_over_stops_renewing_it(store):
    registry = TaskRegistry()
    release = threading.Event()
    ran: list[int] = []

    def handler(payload, ctx):
        ran.append(ctx.attempt)
        if ctx.attempt == 1:
            release.wait(10)

    registry.register("voice.train", Voice, handler)
    first = threading.Thread(target=lambda: run(registry, store, envelope(), lease_seconds=1.0))
    first.start()
    try:
        deadline = time.monotonic() + 5
        while ran != [1] and time.monotonic() < deadline:
            time.sleep(0.01)
        # The first delivery stalled past its lease; a redelivery took the run, then died.
        until = datetime.now(UTC) + timedelta(seconds=0.5)
        store.set(TASK_RUNS, "t1", {"state": "running", "attempt": 2, "lease_until": until})
        time.sleep(1.5)  # the first delivery's heartbeat came due several times
        third = run(registry, store, envelope(), attempt=3, lease_seconds=1.0)
        assert third.kind == "succeeded"
    finally:
        release.set()
        first.join()
    assert ran == [1, 3]


def test_a_delivery_whose_process_died_is_run_again_within_a_lease(store):
    registry = TaskRegistry()
    ran: list[int] = []
    registry.register("voice.train", Voice, lambda p, c: ran.append(c.attempt))
    # A delivery that took the run and then died: its lease is never renewed.
    store.set(
        TASK_RUNS,
        "t1",
        {"state": "running", "attempt": 1, "lease_until": datetime.now(UTC) + timedelta(seconds=1)},
    )
    busy = run(registry, store, envelope(), attempt=2)
    assert busy.kind == "busy"
    assert busy.retry_in <= 1.0
    time.sleep(busy.retry_in + 0.05)
    assert run(registry, store, envelope(), attempt=3).kind == "succeeded"
    assert ran == [3]


def test_a_dead_letter_retried_by_several_admins_at_once_is_queued_once(store):
    queue = RecordingQueue(store)
    queue.backend_seconds = 0.05  # every admin reads the letter before the first is queued
    answers: list[str] = []

    def retry(task_id: str, start: threading.Barrier) -> None:
        start.wait()
        try:
            answers.append(retry_dead_letter(store, queue, task_id))
        except DeadLetterNotFoundError as exc:
            answers.append(exc.code)

    for round_ in range(5):
        task_id = f"d{round_}"
        run(TaskRegistry(), store, envelope(task_type="nobody.home", task_id=task_id))
        start = threading.Barrier(6)
        threads = [threading.Thread(target=retry, args=(task_id, start)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert store.get(DEAD_LETTERS, task_id) is None
    # One new task per letter; every other admin hears it is gone, as after a retry.
    assert len(queue.submitted) == 5
    assert answers.count("DEAD_LETTER_NOT_FOUND") == 25
    assert {a for a in answers if a != "DEAD_LETTER_NOT_FOUND"} == {
        queued.task_id for queued, _ in queue.submitted
    }
