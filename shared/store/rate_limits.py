"""Per-user rate limits shared by every instance: fixed-window counters in the store.

Each (user, action, window) has one counter document in ``rate_limits``, taken in a
transaction so that concurrent requests on different instances can never admit more than
the limit. A refused request raises ``RateLimitedError`` whose ``retry_after`` is the
number of seconds to the end of the window (the HTTP layer turns it into ``Retry-After``).
The counters carry ``expires_at`` for a Firestore TTL policy.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.errors import RateLimitedError
from shared.model import utcnow
from shared.store.base import DocumentStore, Transaction

RATE_LIMITS = "rate_limits"
_TRANSACTION_ATTEMPTS = 10


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` calls of ``action`` per user in each fixed ``window``."""

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

    Raises RateLimitedError (with ``retry_after`` seconds) when the window is used up.
    """
    moment = now or utcnow()
    window_seconds = int(rule.window.total_seconds())
    epoch = moment.timestamp()
    start = int(epoch) - int(epoch) % window_seconds
    end = start + window_seconds
    user_digest = hashlib.sha256(user_id.encode()).hexdigest()[:40]
    doc_id = f"{rule.action}-{start}-{user_digest}"

    def take(tx: Transaction) -> int:
        document = tx.get(RATE_LIMITS, doc_id)
        used = int(document.data.get("count", 0)) if document else 0
        if used >= rule.limit:
            raise RateLimitedError(
                f"Rate limit for {rule.action} exceeded ({rule.describe()})",
                retry_after=max(1, math.ceil(end - epoch)),
            )
        tx.set(
            RATE_LIMITS,
            doc_id,
            {
                "user_id": user_id,
                "action": rule.action,
                "count": used + 1,
                "window_start": datetime.fromtimestamp(start, UTC),
                "expires_at": datetime.fromtimestamp(end, UTC),
            },
        )
        return rule.limit - used - 1

    return store.run_transaction(take, max_attempts=_TRANSACTION_ATTEMPTS)
