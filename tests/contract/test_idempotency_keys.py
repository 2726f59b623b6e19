"""Idempotency keys over both stores: one claim wins, answers replay, keys expire."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.idempotency import (
    KEY_TTL,
    Claim,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    IdempotencyKeys,
    StoredAnswer,
)


def test_one_of_racing_claims_runs_and_the_answer_then_replays(store):
    keys = IdempotencyKeys(store)
    now = datetime.now(UTC)
    won: list[Claim] = []
    busy: list[Exception] = []

    def claim() -> None:
        try:
            held = keys.claim("ann", "k1", "request-a", now)
        except IdempotencyKeyInUseError as exc:
            busy.append(exc)
        else:
            assert isinstance(held, Claim)
            won.append(held)

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(won), len(busy)) == (1, 5)
    answer = StoredAnswer(201, '{"id": "m1"}', {"Location": "/voice-models/m1"})
    keys.finish(won[0], answer)
    assert keys.claim("ann", "k1", "request-a", now) == answer
    with pytest.raises(IdempotencyKeyReusedError):
        keys.claim("ann", "k1", "request-b", now)
    assert isinstance(keys.claim("bob", "k1", "request-b", now), Claim)  # per user
    # After its time the key is free again.
    assert isinstance(keys.claim("ann", "k1", "request-b", now + KEY_TTL), Claim)


def test_a_released_claim_frees_the_key_and_a_stale_one_cannot_finish(store):
    keys = IdempotencyKeys(store)
    now = datetime.now(UTC)
    first = keys.claim("ann", "k2", "request", now)
    assert isinstance(first, Claim)
    keys.release(first)
    second = keys.claim("ann", "k2", "request", now)
    assert isinstance(second, Claim)
    keys.finish(first, StoredAnswer(500, "{}", {}))  # the old claim's answer is not kept
    keys.release(first)  # nor does it free the key the second request holds
    with pytest.raises(IdempotencyKeyInUseError):
        keys.claim("ann", "k2", "request", now + timedelta(seconds=5))
    keys.finish(second, StoredAnswer(200, "[]", {}))
    assert keys.claim("ann", "k2", "request", now) == StoredAnswer(200, "[]", {})
