"""Pre-call analytics of one account over a half-open time range ``[from, to)``.

- **Clone success rate**: successful ``voice_clone_log`` attempts over all attempts.
- **Clone time** (mean, p95): ``clone_duration_ms`` of the ready events that made a new
  clone (from the task's start to the clone being usable: sample read and check, the
  provider's work, the commit).
- **Cache reuse ratio**: ready events served from the cache over all ready events.
- **Calls by status**: the calls started in the range, counted by status.
- **Call start to clone ready** (mean, p95): from each call's start to its clone's ready
  time, for the calls whose clone became ready.

Records are selected by ``created_at`` (a call by its start); ``from`` defaults to 30 days
before ``to`` (or the earliest time there is), which defaults to now; a range that ends
before it starts is refused.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

from shared.errors import InvalidRequestError
from shared.precall.deps import Caller, PrecallDeps
from shared.precall.model import CallStatus, CloneReadyEvent, CloneStatus, VoiceCloneLog
from shared.precall.repository import CALLS, CLONE_LOG, READY_EVENTS, call_from
from shared.precall.schemas import AnalyticsQuery, PrecallAnalytics, Timing
from shared.store.base import Document, Query

DEFAULT_RANGE = timedelta(days=30)


def get_analytics(deps: PrecallDeps, caller: Caller, query: AnalyticsQuery) -> PrecallAnalytics:
    """Return the account's analytics.

    Raises AccessDeniedError, or InvalidRequestError when ``from`` is not before ``to``.
    """
    account_id = caller.account_for(query.account_id)
    to = query.to or deps.clock()
    start = query.from_ or _default_start(to)
    if start >= to:
        raise InvalidRequestError("from must be before to")

    def records(collection: str, field: str = "created_at") -> list[Document]:
        selection = (
            Query(collection)
            .where("account_id", "==", account_id)
            .where(field, ">=", start)
            .where(field, "<", to)
        )
        return list(deps.store.stream(selection))

    attempts = [VoiceCloneLog.model_validate(d.data) for d in records(CLONE_LOG)]
    successes = sum(1 for attempt in attempts if attempt.status is CloneStatus.SUCCESS)
    ready = [CloneReadyEvent.model_validate(d.data) for d in records(READY_EVENTS)]
    hits = sum(1 for event in ready if event.cache_hit)
    calls = [call_from(d) for d in records(CALLS, "call_started_at")]
    by_status = Counter(call.status.value for call in calls)
    waits = [
        (call.clone_ready_at - call.call_started_at).total_seconds() * 1000
        for call in calls
        if call.clone_ready_at is not None
    ]
    return PrecallAnalytics(
        account_id=account_id,
        from_=start,
        to=to,
        clone_attempts=len(attempts),
        clone_successes=successes,
        clone_success_rate=_ratio(successes, len(attempts)),
        clone_time=timing([float(e.clone_duration_ms) for e in ready if not e.cache_hit]),
        ready_events=len(ready),
        cache_hits=hits,
        cache_reuse_ratio=_ratio(hits, len(ready)),
        calls_by_status={status.value: by_status.get(status.value, 0) for status in CallStatus},
        call_start_to_ready=timing(waits),
    )


def timing(values: list[float]) -> Timing:
    """Return the count, mean and nearest-rank 95th percentile of ``values``."""
    if not values:
        return Timing(count=0, mean_ms=None, p95_ms=None)
    ordered = sorted(values)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return Timing(
        count=len(values),
        mean_ms=round(sum(values) / len(values), 1),
        p95_ms=round(ordered[rank - 1], 1),
    )


def _default_start(to: datetime) -> datetime:
    try:
        return to - DEFAULT_RANGE
    except OverflowError:  # ``to`` within the range of the first representable time
        return datetime.min.replace(tzinfo=UTC)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
