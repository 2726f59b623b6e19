"""Running one delivered task, the same way for the in-process worker and Cloud Tasks.

``execute_task`` claims the task's run record (``task_runs/{taskId}``) in a transaction, so
a redelivery of a finished task is acknowledged without running the handler again and two
deliveries never run it at once; validates the payload (malformed is permanent); runs the
handler; and classifies what happened as an ``Outcome`` the adapter turns into "delete
from the queue", "retry later" or an HTTP status. Tasks that give up or exhaust their
attempts land in ``task_dead_letters/{taskId}`` with their last error, for the admin API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pydantic
from pydantic.alias_generators import to_camel

from shared.store.base import DocumentStore, Query, Transaction, WriteBatch
from shared.store.leases import Heartbeat
from shared.tasks.base import (
    TASK_RUNS,
    QueuePolicy,
    TaskContext,
    TaskEnvelope,
    TaskQueue,
    TaskRegistry,
)
from shared.tasks.errors import (
    DeadLetterNotFoundError,
    GiveUpTask,
    RetryTask,
    TaskAlreadyExistsError,
)

logger = logging.getLogger(__name__)

DEAD_LETTERS = "task_dead_letters"
# The ``event`` field of a dead letter's log line, which infra/monitoring.tf alerts on.
DEAD_LETTER_EVENT = "task.dead_lettered"
# Cloud Tasks keeps a task at most 31 days, so no redelivery can come after this.
RUN_RECORD_TTL = timedelta(days=31)
MAX_ERROR_CHARS = 2000

OutcomeKind = Literal["succeeded", "duplicate", "retry", "busy", "dead_lettered"]
DeadLetterReason = Literal[
    "gave_up", "exhausted", "malformed_payload", "unknown_task_type", "malformed_envelope"
]


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery; ``retry_in`` (seconds) is set for retry and busy."""

    kind: OutcomeKind
    error: str | None = None
    retry_in: float | None = None

    @property
    def acknowledged(self) -> bool:
        """True when the backend should forget the task (done, duplicate or dead)."""
        return self.kind in ("succeeded", "duplicate", "dead_lettered")


class DeadLetter(pydantic.BaseModel):
    """A task that will not run again unless an admin retries it."""

    # defer_build: the validator is built on first use, not by each cold start importing this.
    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    task_id: str
    queue: str
    task_type: str
    payload: dict[str, Any]
    dedup_key: str | None = None
    attempts: int
    reason: DeadLetterReason
    last_error: str
    enqueued_at: datetime | None = None
    dead_at: datetime


AckWrites = Callable[[WriteBatch], None]


def execute_task(
    *,
    registry: TaskRegistry,
    store: DocumentStore,
    envelope: TaskEnvelope,
    attempt: int,
    policy: QueuePolicy,
    claimed_exclusively: bool = False,
    on_acknowledged: AckWrites | None = None,
    lease_seconds: float = 30.0,
) -> Outcome:
    """Run one delivery of ``envelope`` (``attempt`` counts from 1) and return its outcome.

    Never raises for a handler's failure: transient ones become ``retry`` (or a dead
    letter once ``attempt`` reaches ``policy.max_attempts``), permanent ones a dead letter.
    Store errors propagate; the backend then redelivers. A caller that already holds an
    exclusive claim on the task (the in-process worker) passes ``claimed_exclusively``,
    which skips taking the run lease; ``on_acknowledged`` adds the caller's own writes
    (removing the task from its queue) to the batch that records success or a dead letter.
    The run lease lasts ``lease_seconds`` and is renewed while the handler runs (up to the
    dispatch deadline), so a redelivery after a crash runs within about one lease.
    """
    delivery = _Delivery(store, envelope, attempt, policy, on_acknowledged, lease_seconds)
    busy_for = delivery.begin(lease=not claimed_exclusively)
    if busy_for == _DONE:
        delivery.acknowledge_duplicate()
        return Outcome("duplicate")
    if busy_for > 0:
        return Outcome("busy", retry_in=busy_for)
    task_type = registry.get(envelope.task_type)
    if task_type is None:
        error = f"No handler is registered for task type {envelope.task_type!r}"
        return delivery.dead("unknown_task_type", error)
    try:
        payload = task_type.payload_model.model_validate(envelope.payload)
    except pydantic.ValidationError as exc:
        return delivery.dead("malformed_payload", _validation_summary(exc))
    context = TaskContext(
        task_id=envelope.task_id,
        queue=envelope.queue,
        task_type=envelope.task_type,
        attempt=attempt,
        max_attempts=policy.max_attempts,
        enqueued_at=envelope.enqueued_at,
        store=store,
    )
    return delivery.run(task_type.handler, payload, context)


_DONE = -1.0


@dataclass
class _Delivery:
    store: DocumentStore
    envelope: TaskEnvelope
    attempt: int
    policy: QueuePolicy
    on_acknowledged: AckWrites | None
    lease_seconds: float = 30.0
    leased: bool = False

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=min(self.lease_seconds, self.policy.dispatch_deadline))

    def begin(self, *, lease: bool) -> float:
        """Return 0 when this delivery may run, _DONE when finished, else seconds busy."""
        task_id = self.envelope.task_id
        if not lease:
            record = self.store.get(TASK_RUNS, task_id)
            finished = record is not None and record.data.get("state") in ("done", "dead")
            return _DONE if finished else 0.0

        def claim(tx: Transaction) -> float:
            now = datetime.now(UTC)
            record = tx.get(TASK_RUNS, task_id)
            if record is not None:
                state = record.data.get("state")
                if state in ("done", "dead"):
                    return _DONE
                until = record.data.get("lease_until")
                if state == "running" and isinstance(until, datetime) and until > now:
                    return max((until - now).total_seconds(), 0.001)
            tx.set(
                TASK_RUNS, task_id, _run_record("running", self.attempt, None, now + self._lease)
            )
            return 0.0

        busy_for = self.store.run_transaction(claim)
        self.leased = busy_for == 0.0
        return busy_for

    def renew(self, started: datetime) -> bool:
        """Extend the run lease while the handler runs; False once it is lost or overdue."""
        task_id = self.envelope.task_id
        deadline = started + timedelta(seconds=self.policy.dispatch_deadline)

        def renew(tx: Transaction) -> bool:
            record = tx.get(TASK_RUNS, task_id)
            if record is None or record.data.get("state") != "running":
                return False
            if record.data.get("attempt") != self.attempt:
                return False  # another delivery took the run over
            now = datetime.now(UTC)
            until = min(now + self._lease, deadline)
            tx.update(TASK_RUNS, task_id, {"lease_until": until, "updated_at": now})
            return until < deadline

        return self.store.run_transaction(renew)

    def run(
        self, handler: Callable[[Any, TaskContext], None], payload: Any, context: TaskContext
    ) -> Outcome:
        delay: float | None = None
        started = datetime.now(UTC)
        heartbeat = Heartbeat(
            lambda: self.renew(started),
            self._lease.total_seconds() / 3,
            name=self.envelope.task_id,
        )
        try:
            if self.leased:
                with heartbeat:
                    handler(payload, context)
            else:
                handler(payload, context)
        except GiveUpTask as exc:
            return self.dead("gave_up", exc.reason)
        except RetryTask as exc:
            error, delay = exc.reason, exc.delay
        except Exception as exc:
            logger.exception("Task %s (%s) failed", self.envelope.task_id, self.envelope.task_type)
            error = f"{type(exc).__name__}: {exc}"
        else:
            with self.store.batch() as batch:
                batch.set(TASK_RUNS, self.envelope.task_id, _run_record("done", self.attempt))
                self._add_ack_writes(batch)
            return Outcome("succeeded")
        if self.attempt >= self.policy.max_attempts:
            return self.dead("exhausted", error)
        record = _run_record("failed", self.attempt, error)
        self.store.set(TASK_RUNS, self.envelope.task_id, record)
        retry_in = delay if delay is not None else self.policy.backoff(self.attempt)
        return Outcome("retry", error=_clip(error), retry_in=retry_in)

    def dead(self, reason: DeadLetterReason, error: str) -> Outcome:
        envelope = self.envelope
        letter = DeadLetter(
            task_id=envelope.task_id,
            queue=envelope.queue,
            task_type=envelope.task_type,
            payload=envelope.payload,
            dedup_key=envelope.dedup_key,
            attempts=self.attempt,
            reason=reason,
            last_error=_clip(error),
            enqueued_at=envelope.enqueued_at,
            dead_at=datetime.now(UTC),
        )
        record_dead_letter(self.store, letter, on_acknowledged=self.on_acknowledged)
        return Outcome("dead_lettered", error=letter.last_error)

    def acknowledge_duplicate(self) -> None:
        if self.on_acknowledged is not None:
            with self.store.batch() as batch:
                self.on_acknowledged(batch)

    def _add_ack_writes(self, batch: WriteBatch) -> None:
        if self.on_acknowledged is not None:
            self.on_acknowledged(batch)


def _run_record(
    state: str, attempt: int, error: str | None = None, lease_until: datetime | None = None
) -> dict[str, Any]:
    now = datetime.now(UTC)
    record: dict[str, Any] = {
        "state": state,
        "attempt": attempt,
        "last_error": _clip(error) if error else None,
        "updated_at": now,
        "expires_at": now + RUN_RECORD_TTL,
    }
    if lease_until is not None:
        record["lease_until"] = lease_until
    return record


def record_dead_letter(
    store: DocumentStore, letter: DeadLetter, *, on_acknowledged: AckWrites | None = None
) -> None:
    """Store ``letter`` and mark its run dead, together (a redelivery is then a duplicate).

    ``on_acknowledged`` adds the caller's writes to the same atomic batch. Once stored, the
    letter is logged as an error with ``event`` set to ``DEAD_LETTER_EVENT``: the log-based
    metric that pages an operator (``infra/monitoring.tf``) counts those lines.
    """
    with store.batch() as batch:
        batch.set(DEAD_LETTERS, letter.task_id, letter.model_dump())
        batch.set(
            TASK_RUNS, letter.task_id, _run_record("dead", letter.attempts, letter.last_error)
        )
        if on_acknowledged is not None:
            on_acknowledged(batch)
    logger.error(
        "Task %s (%s) dead-lettered after %d attempt(s): %s",
        letter.task_id,
        letter.task_type,
        letter.attempts,
        letter.reason,
        extra={
            "fields": {
                "event": DEAD_LETTER_EVENT,
                "taskId": letter.task_id,
                "taskType": letter.task_type,
                "queue": letter.queue,
                "reason": letter.reason,
                "attempts": letter.attempts,
            }
        },
    )


def list_dead_letters(
    store: DocumentStore, *, limit: int, cursor: str | None = None, queue: str | None = None
) -> tuple[list[DeadLetter], str | None]:
    """Return one page of dead letters, newest first, and the next page's cursor."""
    query = Query(DEAD_LETTERS)
    if queue is not None:
        query = query.where("queue", "==", queue)
    page = store.query(query.order("dead_at", descending=True).take(limit).after(cursor))
    return [DeadLetter.model_validate(d.data) for d in page.documents], page.next_cursor


def get_dead_letter(store: DocumentStore, task_id: str) -> DeadLetter:
    """Return the dead letter of ``task_id``; raise DeadLetterNotFoundError."""
    document = store.get(DEAD_LETTERS, task_id)
    if document is None:
        raise DeadLetterNotFoundError()
    return DeadLetter.model_validate(document.data)


def retry_dead_letter(store: DocumentStore, queue: TaskQueue, task_id: str) -> str:
    """Enqueue a dead-lettered task again as a new task; return the new task's id.

    The dead letter is removed once the new task is queued. Two retries of one letter at
    once queue it once: the new task's de-duplication key names the letter, and the retry
    that loses answers as a later one does. Raises DeadLetterNotFoundError, and
    UnknownQueueError when its queue no longer exists.
    """
    letter = get_dead_letter(store, task_id)
    dead_at = letter.dead_at.astimezone(UTC).isoformat()
    try:
        new_id = queue.enqueue(
            letter.queue,
            letter.task_type,
            letter.payload,
            dedup_key=f"dead-letter-retry:{task_id}:{dead_at}",
        )
    except TaskAlreadyExistsError:
        # Another retry queued it (and may have died before removing the letter).
        store.delete(DEAD_LETTERS, task_id)
        raise DeadLetterNotFoundError("The dead letter was already retried") from None
    store.delete(DEAD_LETTERS, task_id)
    logger.info("Dead letter %s retried as task %s", task_id, new_id)
    return new_id


def _validation_summary(exc: pydantic.ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in error['loc']) or '(payload)'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    ]
    return "Malformed payload: " + "; ".join(problems)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
