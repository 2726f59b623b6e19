"""Rate limits over SQLite and Firestore: a request that fails gives its call back.

A call counted with ``rate_limited`` is taken off the count again when its block raises,
exactly that call: another call at the same instant keeps its slot, and calls given back
while others are counted neither free a slot twice nor lose one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import (
    PlatformError,
    RateLimitedError,
    TransactionContentionError,
    VoiceModelNotFoundError,
)
from shared.store import Query
from shared.store.rate_limits import RATE_LIMITS, RateLimit, consume, rate_limited
from shared.store.sqlite import SqliteDocumentStore

THREE_AN_HOUR = RateLimit("voice_model_create", 3, timedelta(hours=1))
NOW = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def test_a_request_that_fails_gives_its_call_back(store):
    for _ in range(5):
        with (
            pytest.raises(VoiceModelNotFoundError, match="m-1"),
            rate_limited(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW),
        ):
            raise VoiceModelNotFoundError("Voice model not found or access denied: m-1")
    for _ in range(3):
        with rate_limited(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW):
            pass
    with pytest.raises(RateLimitedError):
        consume(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW)


def test_a_refused_call_runs_nothing_and_gives_back_nothing(store):
    for _ in range(3):
        consume(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW)
    ran = []
    with (
        pytest.raises(RateLimitedError),
        rate_limited(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW),
    ):
        ran.append(True)
    assert ran == []
    with pytest.raises(RateLimitedError):
        consume(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW + timedelta(minutes=59))


def test_only_the_failed_call_is_given_back_when_another_has_the_same_instant(store):
    consume(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW)
    with (
        pytest.raises(VoiceModelNotFoundError),
        rate_limited(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW),
    ):
        raise VoiceModelNotFoundError()
    # The first call at the same instant still counts: two slots are left, not three.
    assert consume(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW) == 1
    assert consume(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW) == 0
    with pytest.raises(RateLimitedError):
        consume(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW)


def test_calls_given_back_while_others_are_counted_are_neither_lost_nor_freed_twice(store):
    count = 12 if isinstance(store, SqliteDocumentStore) else 4
    rule = RateLimit("voice_model_update", 100, timedelta(hours=1))

    def attempt(index: int) -> int:
        # Every call at the same instant: a give-back must remove one occurrence, not all.
        try:
            with rate_limited(store, user_id="ann", rule=rule, now=NOW):
                if index % 2:
                    raise VoiceModelNotFoundError()
        except VoiceModelNotFoundError:
            return 0
        except TransactionContentionError:  # the emulator's contention: never counted
            return 0
        return 1

    with ThreadPoolExecutor(max_workers=count) as pool:
        kept = sum(pool.map(attempt, range(count)))
    assert 0 < kept <= count // 2
    assert consume(store, user_id="ann", rule=rule, now=NOW) == rule.limit - kept - 1


def test_a_give_back_that_fails_is_logged_and_the_requests_own_error_raised(store, caplog):
    class Refused(PlatformError):
        pass

    def request() -> None:
        with rate_limited(store, user_id="ann", rule=THREE_AN_HOUR, now=NOW):
            # Something else spoils the counter while the request runs: the give-back fails.
            (counter,) = store.stream(Query(RATE_LIMITS).where("user_id", "==", "ann"))
            store.update(RATE_LIMITS, counter.id, {"calls": ["not a time"]})
            raise Refused("the request's own")

    with pytest.raises(Refused, match="the request's own"):
        request()
    assert "Could not give back the voice_model_create call" in caplog.text
