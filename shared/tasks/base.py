"""The task queue port: named queues with a retry policy, typed handlers, one envelope.

A producer calls ``TaskQueue.enqueue(queue, task_type, payload)``; an adapter (the
in-process worker or Cloud Tasks) later delivers the task's ``TaskEnvelope`` to
``shared.tasks.execution.execute_task``, which validates the payload against the model the
task type registered and runs its handler. A handler returns for success, raises
``RetryTask`` for a transient failure (so does any unexpected exception) and ``GiveUpTask``
for a permanent one. Delivery is at least once; ``TaskContext`` gives handlers what they
need to make their side effects happen once.

De-duplication is ours, not the backend's (the Cloud Tasks emulator ignores task names):
an enqueue with a ``dedup_key`` claims ``task_dedup/{id}`` in the document store, and a
second enqueue with the same key within ``dedup_window`` raises ``TaskAlreadyExistsError``
in both adapters. The claim holds the whole task, so an enqueue that stopped between its
claim and its submit (an instance that died) loses nothing: a later enqueue with the same
key, ``RESUBMIT_AFTER`` or more after the claim, submits the claimed task again unless it
has a run record. That is safe whether or not the first submit happened: the backend
refuses a task it already holds (the in-process queue by task id, Cloud Tasks by task
name), and a delivery of a task that already ran is acknowledged as a duplicate.
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import pydantic

from shared.errors import (
    DocumentAlreadyExistsError,
    InvalidRequestError,
    PlatformError,
)
from shared.store.base import DocumentStore, Transaction
from shared.tasks.errors import TaskAlreadyExistsError, UnknownQueueError

M = TypeVar("M", bound=pydantic.BaseModel)

logger = logging.getLogger(__name__)

DEDUP_CLAIMS = "task_dedup"
TASK_EFFECTS = "task_effects"
TASK_RUNS = "task_runs"  # one run record per task id (shared.tasks.execution)
DEFAULT_DEDUP_WINDOW = timedelta(hours=24)
# A claim this old whose task has no run record may have lost its submit: see the docstring.
RESUBMIT_AFTER = timedelta(minutes=2)
# Cloud Tasks task ids allow letters, digits, '-' and '_' (up to 500 characters).
_NOT_TASK_ID_CHAR = re.compile(r"[^A-Za-z0-9_-]")
_TASK_TYPE = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")


# -- policy and registry ---------------------------------------------------------------------


@dataclass(frozen=True)
class QueuePolicy:
    """How one named queue retries and paces its tasks (Cloud Tasks: the queue's config).

    Backoffs and the dispatch deadline are in seconds. ``max_attempts`` counts the first
    attempt, so 4 means one try and three retries.
    """

    max_attempts: int = 5
    min_backoff: float = 1.0
    max_backoff: float = 300.0
    max_concurrent: int = 10
    dispatch_deadline: float = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.min_backoff < 0 or self.max_backoff < self.min_backoff:
            raise ValueError("min_backoff must be at least 0 and at most max_backoff")
        if self.max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if self.dispatch_deadline <= 0:
            raise ValueError("dispatch_deadline must be positive")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the delay before the attempt after ``attempt``: exponential, full jitter.

        The ceiling doubles from ``min_backoff`` with each attempt up to ``max_backoff``;
        the delay is drawn uniformly between ``min_backoff`` and that ceiling.
        """
        ceiling = min(self.max_backoff, self.min_backoff * 2.0 ** max(attempt - 1, 0))
        draw = (rng or _jitter).uniform(self.min_backoff, ceiling)
        return float(draw)


_jitter = random.Random()  # noqa: S311 - backoff jitter, not a secret


Handler = Callable[[Any, "TaskContext"], None]


@dataclass(frozen=True)
class TaskType(Generic[M]):
    """A registered task type: its name, payload model and handler."""

    name: str
    payload_model: type[M]
    handler: Callable[[M, TaskContext], None]


class TaskRegistry:
    """Task types by name; both adapters execute tasks through one registry."""

    def __init__(self) -> None:
        self._types: dict[str, TaskType[Any]] = {}

    def register(
        self,
        task_type: str,
        payload_model: type[M],
        handler: Callable[[M, TaskContext], None],
    ) -> None:
        """Register ``handler`` for ``task_type``; raise ValueError for a bad or taken name."""
        if not _TASK_TYPE.match(task_type):
            raise ValueError(f"Invalid task type name: {task_type!r}")
        if task_type in self._types:
            raise ValueError(f"Task type already registered: {task_type}")
        self._types[task_type] = TaskType(task_type, payload_model, handler)

    def get(self, task_type: str) -> TaskType[Any] | None:
        """Return the registered task type, or None."""
        return self._types.get(task_type)

    def names(self) -> list[str]:
        """Return the registered task type names, sorted."""
        return sorted(self._types)


# -- the envelope and what a handler sees ---------------------------------------------------


class TaskEnvelope(pydantic.BaseModel):
    """One task as queued and delivered: the JSON body of a Cloud Tasks HTTP request."""

    # defer_build: the validator is built on first use, not by each cold start importing this.
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True, defer_build=True)

    task_id: str = pydantic.Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")
    queue: str = pydantic.Field(min_length=1, max_length=100)
    task_type: str = pydantic.Field(min_length=1, max_length=100)
    payload: dict[str, Any]
    dedup_key: str | None = None
    enqueued_at: datetime

    def to_json(self) -> bytes:
        """Return the envelope as compact JSON bytes."""
        return self.model_dump_json().encode()


@dataclass
class TaskContext:
    """What a handler gets beside its payload: which attempt this is, and the store.

    Delivery is at least once, so handlers keep their effects idempotent. For effects that
    are store writes, check and record a named effect inside the same transaction:
    ``if not ctx.effect_recorded(tx, "charge"): ...; ctx.record_effect(tx, "charge")``.
    For other effects, ``ctx.once("email", send)`` skips ``send`` once it has succeeded.
    """

    task_id: str
    queue: str
    task_type: str
    attempt: int
    max_attempts: int
    enqueued_at: datetime
    store: DocumentStore

    @property
    def is_last_attempt(self) -> bool:
        """True when a failure now dead-letters the task."""
        return self.attempt >= self.max_attempts

    def effect_id(self, name: str) -> str:
        """Return the document id recording the effect ``name`` of this task."""
        return f"{self.task_id}-{hashlib.sha256(name.encode()).hexdigest()[:24]}"

    def effect_recorded(self, transaction: Transaction, name: str) -> bool:
        """Return True when effect ``name`` was recorded (read it first in a transaction)."""
        return transaction.get(TASK_EFFECTS, self.effect_id(name)) is not None

    def record_effect(self, transaction: Transaction, name: str) -> None:
        """Record effect ``name`` in ``transaction`` beside the writes that perform it."""
        transaction.set(TASK_EFFECTS, self.effect_id(name), _effect_document(self, name))

    def once(self, name: str, action: Callable[[], None]) -> bool:
        """Run ``action`` unless effect ``name`` already succeeded; return whether it ran.

        The record is written after ``action`` returns, so a crash in between runs it
        again on the next attempt: use this for effects that tolerate a rare repeat.
        """
        if self.store.get(TASK_EFFECTS, self.effect_id(name)) is not None:
            return False
        action()
        self.store.set(TASK_EFFECTS, self.effect_id(name), _effect_document(self, name))
        return True


def _effect_document(ctx: TaskContext, name: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "task_id": ctx.task_id,
        "name": name,
        "recorded_at": now,
        # Firestore deletes it after this (a TTL policy on the field); nothing reads it then.
        "expires_at": now + timedelta(days=30),
    }


# -- the port ------------------------------------------------------------------------------


class TaskQueue(abc.ABC):
    """The port. Adapters: ``InProcessTaskQueue`` (embedded) and ``CloudTasksQueue``.

    ``enqueue`` validates, claims the de-duplication key, then hands the envelope to the
    adapter's ``_submit``; a failed submit releases the key so the caller may try again.
    """

    def __init__(
        self,
        *,
        store: DocumentStore,
        policies: Mapping[str, QueuePolicy],
        dedup_window: timedelta = DEFAULT_DEDUP_WINDOW,
    ) -> None:
        self.store = store
        self.policies = dict(policies)
        self.dedup_window = dedup_window

    def policy(self, queue: str) -> QueuePolicy:
        """Return the policy of ``queue``; raise UnknownQueueError."""
        try:
            return self.policies[queue]
        except KeyError:
            raise UnknownQueueError(f"No such task queue: {queue}") from None

    def enqueue(
        self,
        queue: str,
        task_type: str,
        payload: pydantic.BaseModel | Mapping[str, Any],
        *,
        delay: timedelta | float | None = None,
        dedup_key: str | None = None,
    ) -> str:
        """Queue a task and return its id (a new id for every accepted enqueue).

        Raises UnknownQueueError, InvalidRequestError for a payload that is not a JSON
        object, and TaskAlreadyExistsError when ``dedup_key`` was used within the
        de-duplication window. The payload is validated against the task type's model
        only when the task runs: a malformed payload is dead-lettered there.
        """
        self.policy(queue)
        if not _TASK_TYPE.match(task_type):
            raise InvalidRequestError(f"Invalid task type name: {task_type!r}")
        delay_seconds = _seconds(delay)
        envelope = TaskEnvelope(
            task_id=uuid.uuid4().hex,
            queue=queue,
            task_type=task_type,
            payload=_json_payload(payload),
            dedup_key=dedup_key,
            enqueued_at=datetime.now(UTC),
        )
        if dedup_key is None:
            self._submit(envelope, delay_seconds)
            return envelope.task_id
        claim_id = dedup_task_name(dedup_key)
        held = self._claim_dedup(claim_id, envelope, delay_seconds)
        if held is not None:
            self._resubmit_if_lost(held, envelope.enqueued_at)
            raise TaskAlreadyExistsError()
        try:
            self._submit(envelope, delay_seconds)
        except BaseException:
            self.store.delete(DEDUP_CLAIMS, claim_id)
            raise
        return envelope.task_id

    @abc.abstractmethod
    def _submit(self, envelope: TaskEnvelope, delay_seconds: float) -> None:
        """Hand the envelope to the backend, to run after ``delay_seconds``."""

    def start(self) -> None:  # noqa: B027 - only adapters that run tasks in process need it
        """Start delivering tasks in this process (the in-process worker only)."""

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop delivering tasks, waiting up to ``timeout`` seconds for running ones.

        Returns whether nothing is still running (always, where nothing runs in process).
        """
        del timeout
        return True

    def _claim_dedup(
        self, claim_id: str, envelope: TaskEnvelope, delay_seconds: float
    ) -> dict[str, Any] | None:
        """Claim the key for ``envelope``; return the claim that holds it instead, if any."""
        now = envelope.enqueued_at

        def claim(tx: Transaction) -> dict[str, Any] | None:
            existing = tx.get(DEDUP_CLAIMS, claim_id)
            if existing is not None and _aware(existing.data.get("expires_at")) > now:
                return existing.data
            tx.set(
                DEDUP_CLAIMS,
                claim_id,
                {
                    "task_id": envelope.task_id,
                    "dedup_key": envelope.dedup_key,
                    "queue": envelope.queue,
                    "task_type": envelope.task_type,
                    "payload": envelope.payload,
                    "created_at": now,
                    "due_at": now + timedelta(seconds=delay_seconds),
                    "expires_at": now + self.dedup_window,
                },
            )
            return None

        held: dict[str, Any] | None = self.store.run_transaction(claim)
        return held

    def _resubmit_if_lost(self, claim: dict[str, Any], now: datetime) -> None:
        """Submit the claimed task again if its enqueue may have stopped before submitting.

        See the module docstring: the backend and the run record make this safe either way.
        """
        created = _aware(claim.get("created_at"))
        if "payload" not in claim or now - created < RESUBMIT_AFTER:
            return  # too recent (its submit may be under way), or a claim of older code
        try:
            envelope = TaskEnvelope(
                task_id=claim["task_id"],
                queue=claim["queue"],
                task_type=claim["task_type"],
                payload=claim["payload"],
                dedup_key=claim["dedup_key"],
                enqueued_at=created,
            )
        except (KeyError, pydantic.ValidationError):
            logger.warning("An unreadable task de-duplication claim was left as it is")
            return
        if self.store.get(TASK_RUNS, envelope.task_id) is not None:
            return  # it ran (or runs): it was submitted
        delay = max(0.0, (_aware(claim.get("due_at")) - now).total_seconds())
        try:
            self._submit(envelope, delay)
        except (TaskAlreadyExistsError, DocumentAlreadyExistsError):
            return  # the backend holds it: the first submit happened
        except PlatformError as exc:
            logger.warning("Cannot submit a claimed task again: %s", exc.message)
            return
        logger.warning(
            "Submitted a task whose enqueue stopped between its claim and its submit",
            extra={"fields": {"taskId": envelope.task_id, "queue": envelope.queue}},
        )


def dedup_task_name(dedup_key: str) -> str:
    """Return a Cloud Tasks task id (and store document id) for ``dedup_key``.

    A hash comes first: Cloud Tasks spreads named tasks by the id's prefix, and the hash
    also keeps keys that sanitise alike (``a/b`` and ``a_b``) apart.
    """
    if not dedup_key:
        raise InvalidRequestError("dedup_key must not be empty")
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:20]
    readable = _NOT_TASK_ID_CHAR.sub("_", dedup_key)[:80]
    return f"{digest}-{readable}"


def _json_payload(payload: pydantic.BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(payload, pydantic.BaseModel):
        data: Any = payload.model_dump(mode="json", by_alias=True)
    else:
        try:
            data = json.loads(json.dumps(dict(payload), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError("A task payload must be JSON data") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("A task payload must be a JSON object")
    return data


def _seconds(delay: timedelta | float | None) -> float:
    if delay is None:
        return 0.0
    seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
    if seconds < 0:
        raise InvalidRequestError("A task delay cannot be negative")
    return seconds


def _aware(value: Any) -> datetime:
    if not isinstance(value, datetime):
        return datetime.min.replace(tzinfo=UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
