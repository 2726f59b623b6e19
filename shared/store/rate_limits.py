"""Per-user rate limits shared by every instance: sliding windows kept in the store.

Each (user, action) has one document in ``rate_limits`` holding the times of its calls in
the last window (at most ``limit`` of them), taken in a transaction so that concurrent
requests on different instances can never admit more than the limit in any window. A
refused request raises ``RateLimitedError`` whose ``retry_after`` is honest: the seconds
until the oldest counted call leaves the window, after which the same request is admitted
(the HTTP layer turns it into ``Retry-After``). A fixed window would admit twice the limit
across a window boundary and tell a client to wait for the boundary instead. A request
counted with ``rate_limited`` gives its call back when it fails, so a user whose requests
are refused (not found, access denied, conflict) does not use up the limit. The documents
carry ``expires_at`` (when every counted call has left the window) for a Firestore TTL
policy.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.errors import RateLimitedError
from shared.model import utcnow
from shared.store.base import DocumentStore, Transaction

RATE_LIMITS = "rate_limits"
_TRANSACTION_ATTEMPTS = 10

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` calls of ``action`` per user in any ``window``."""

    action: str
    limit: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window.total_seconds() < 1:
            raise ValueError("a rate limit needs a positive limit and window")

    def describe(self) -> str:
        """Return the limit in words, e.g. ``5 per hour``."""
        seconds = int(self.window.total_seconds())
        names = {3600: "hour", 86400: "day", 60: "minute"}
        return f"{self.limit} per {names.get(seconds, f'{seconds} s')}"


def consume(
    store: DocumentStore, *, user_id: str, rule: RateLimit, now: datetime | None = None
) -> int:
    """Count one call of ``rule.action`` by ``user_id``; return how many remain.

    Raises RateLimitedError (with ``retry_after`` seconds) when ``rule.limit`` calls were
    already counted in the window ending now.
    """
    moment = (now or utcnow()).timestamp()
    window = rule.window.total_seconds()
    doc_id = _document_id(user_id, rule)

    def take(tx: Transaction) -> int:
        document = tx.get(RATE_LIMITS, doc_id)
        stored = document.data.get("calls", []) if document else []
        calls = sorted(float(t) for t in stored if moment - float(t) < window)
        if len(calls) >= rule.limit:
            # One slot frees when the call that holds it leaves the window.
            frees_at = calls[len(calls) - rule.limit] + window
            raise RateLimitedError(
                f"Rate limit for {rule.action} exceeded ({rule.describe()})",
                retry_after=max(1, math.ceil(frees_at - moment)),
            )
        calls.append(moment)
        tx.set(
            RATE_LIMITS,
            doc_id,
            {
                "user_id": user_id,
                "action": rule.action,
                "calls": calls,
                "expires_at": datetime.fromtimestamp(moment + window, UTC),
            },
        )
        return rule.limit - len(calls)

    return store.run_transaction(take, max_attempts=_TRANSACTION_ATTEMPTS)


@contextmanager
def rate_limited(
    store: DocumentStore, *, user_id: str, rule: RateLimit, now: datetime | None = None
) -> Iterator[None]:
    """Count one call of ``rule.action`` by ``user_id`` for the block; give it back if it fails.

    A block that raises takes its call off the count again and its exception propagates
    unchanged; should giving the call back fail too, that is logged, and the block's
    exception still propagates. Raises RateLimitedError (the block does not run) when
    ``rule.limit`` calls were already counted in the window ending now.
    """
    moment = now or utcnow()
    consume(store, user_id=user_id, rule=rule, now=moment)
    try:
        yield
    except Exception:
        try:
            _give_back(store, user_id=user_id, rule=rule, moment=moment.timestamp())
        except Exception:
            logger.exception("Could not give back the %s call of a failed request", rule.action)
        raise


def _give_back(store: DocumentStore, *, user_id: str, rule: RateLimit, moment: float) -> None:
    doc_id = _document_id(user_id, rule)

    def give_back(tx: Transaction) -> None:
        document = tx.get(RATE_LIMITS, doc_id)
        calls = [float(t) for t in document.data.get("calls", [])] if document else []
        if moment in calls:
            # One occurrence only: another call counted at the same instant keeps its own.
            calls.remove(moment)
            tx.update(RATE_LIMITS, doc_id, {"calls": calls})

    store.run_transaction(give_back, max_attempts=_TRANSACTION_ATTEMPTS)


def _document_id(user_id: str, rule: RateLimit) -> str:
    user_digest = hashlib.sha256(user_id.encode()).hexdigest()[:40]
    return f"{rule.action}-{user_digest}"
