"""Sliding-window rate limits in the store: exact under concurrency, an honest Retry-After."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import RateLimitedError
from shared.store.rate_limits import RateLimit, consume
from shared.store.sqlite import SqliteDocumentStore

HOURLY = RateLimit("voice_model_create", 5, timedelta(hours=1))


@pytest.fixture
def store(tmp_path):
    adapter = SqliteDocumentStore(tmp_path / "store.sqlite3")
    yield adapter
    adapter.close()


def test_limit_per_user_in_any_window_with_an_honest_retry_after(store):
    start = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    for used in range(5):
        at = start + timedelta(minutes=used)
        assert consume(store, user_id="ann", rule=HOURLY, now=at) == 4 - used
    refused_at = start + timedelta(minutes=15)
    with pytest.raises(RateLimitedError) as refused:
        consume(store, user_id="ann", rule=HOURLY, now=refused_at)
    # The first call (10:00) leaves the window at 11:00: that is when a call is admitted.
    assert refused.value.retry_after == 45 * 60
    assert "5 per hour" in refused.value.message
    assert consume(store, user_id="bob", rule=HOURLY, now=start) == 4
    retry_after = timedelta(seconds=refused.value.retry_after)
    with pytest.raises(RateLimitedError):
        consume(
            store, user_id="ann", rule=HOURLY, now=refused_at + retry_after - timedelta(seconds=1)
        )
    assert consume(store, user_id="ann", rule=HOURLY, now=refused_at + retry_after) == 0
    # The second call (10:01) frees the next slot one minute later, not a whole window later.
    with pytest.raises(RateLimitedError) as again:
        consume(store, user_id="ann", rule=HOURLY, now=start + timedelta(hours=1, seconds=30))
    assert again.value.retry_after == 30


def test_no_burst_of_twice_the_limit_across_a_window_boundary(store):
    # A fixed window (10:00-11:00, 11:00-12:00) would admit 5 at 10:59 and 5 more at 11:00.
    before = datetime(2026, 1, 1, 10, 59, tzinfo=UTC)
    for _ in range(5):
        consume(store, user_id="ann", rule=HOURLY, now=before)
    with pytest.raises(RateLimitedError) as refused:
        consume(store, user_id="ann", rule=HOURLY, now=before + timedelta(minutes=1))
    assert refused.value.retry_after == 59 * 60


def test_other_actions_have_their_own_counters(store):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    daily = RateLimit("voice_model_backup", 2, timedelta(days=1))
    for _ in range(5):
        consume(store, user_id="ann", rule=HOURLY, now=now)
    assert consume(store, user_id="ann", rule=daily, now=now) == 1


def test_concurrent_requests_never_exceed_the_limit(store):
    rule = RateLimit("voice_model_update", 20, timedelta(hours=1))

    def attempt(_):
        try:
            consume(store, user_id="ann", rule=rule)
        except RateLimitedError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        admitted = sum(pool.map(attempt, range(60)))
    assert admitted == 20


def test_a_rule_needs_a_positive_limit_and_window():
    with pytest.raises(ValueError, match="positive"):
        RateLimit("x", 0, timedelta(hours=1))
