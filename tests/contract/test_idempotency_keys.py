"""Idempotency keys over both stores: one claim wins, answers replay, keys expire."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.idempotency import (
    CLAIM_LEASE,
    COLLECTION,
    KEY_TTL,
    LONGEST_RUN,
    Claim,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    IdempotencyKeys,
    StoredAnswer,
)
from shared.store.base import DELETE_FIELD


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


def test_a_claim_not_renewed_within_its_lease_is_taken_over(store):
    # Its instance died: a retry runs once the lease lapses, not after the longest request.
    keys = IdempotencyKeys(store)
    now = datetime.now(UTC)
    died = keys.claim("ann", "k3", "request", now)
    assert isinstance(died, Claim)
    second = timedelta(seconds=1)
    with pytest.raises(IdempotencyKeyInUseError) as busy:
        keys.claim("ann", "k3", "request", now + CLAIM_LEASE - second)
    assert busy.value.retry_after == 1
    taken = keys.claim("ann", "k3", "request", now + CLAIM_LEASE + second)
    assert isinstance(taken, Claim)
    assert taken.token != died.token
    assert keys.renew(died, now + CLAIM_LEASE + second) is False  # lost: it stops renewing
    keys.finish(died, StoredAnswer(201, '{"id": "late"}', {}))  # nor is its answer kept
    keys.finish(taken, StoredAnswer(201, '{"id": "m3"}', {}))
    assert keys.claim("ann", "k3", "request", now) == StoredAnswer(201, '{"id": "m3"}', {})


def test_a_renewed_claim_is_kept_for_as_long_as_its_request_runs(store):
    keys = IdempotencyKeys(store)
    now = datetime.now(UTC)
    running = keys.claim("ann", "k4", "request", now)
    assert isinstance(running, Claim)
    renewed_at = now
    for _ in range(5):  # a request running five leases long, renewed every two thirds
        renewed_at += CLAIM_LEASE * 2 / 3
        assert keys.renew(running, renewed_at) is True
        with pytest.raises(IdempotencyKeyInUseError):
            keys.claim("ann", "k4", "request", renewed_at + CLAIM_LEASE / 2)
    # Once its renewals stop, it is taken over a lease after the last one.
    taken = keys.claim("ann", "k4", "request", renewed_at + CLAIM_LEASE + timedelta(seconds=1))
    assert isinstance(taken, Claim)


def test_a_finished_or_released_claim_is_not_renewed(store):
    keys = IdempotencyKeys(store)
    now = datetime.now(UTC)
    finished = keys.claim("ann", "k5", "request", now)
    assert isinstance(finished, Claim)
    keys.finish(finished, StoredAnswer(200, "{}", {}))
    assert keys.renew(finished, now) is False
    assert keys.claim("ann", "k5", "request", now) == StoredAnswer(200, "{}", {})  # unchanged
    released = keys.claim("ann", "k6", "request", now)
    assert isinstance(released, Claim)
    keys.release(released)
    assert keys.renew(released, now) is False
    assert isinstance(keys.claim("ann", "k6", "request", now), Claim)  # still free


def test_a_hung_request_keeps_its_key_no_longer_than_any_request_may_run(store):
    # A handler stuck in a live instance renews forever; its key is freed all the same.
    keys = IdempotencyKeys(store)
    now = datetime.now(UTC)
    hung = keys.claim("ann", "k7", "request", now)
    assert isinstance(hung, Claim)
    assert keys.renew(hung, now + LONGEST_RUN / 2) is True
    assert keys.renew(hung, now + LONGEST_RUN - CLAIM_LEASE / 2) is False  # the last one
    second = timedelta(seconds=1)
    with pytest.raises(IdempotencyKeyInUseError):
        keys.claim("ann", "k7", "request", now + LONGEST_RUN - second)
    assert isinstance(keys.claim("ann", "k7", "request", now + LONGEST_RUN + second), Claim)


def test_a_claim_written_before_leases_holds_as_long_as_any_request_may_run(store):
    # Written by the code before claims were leases (no lease_until), and never renewed.
    keys = IdempotencyKeys(store)
    now = datetime.now(UTC)
    old = keys.claim("ann", "k8", "request", now)
    assert isinstance(old, Claim)
    store.update(COLLECTION, old.document_id, {"lease_until": DELETE_FIELD})
    second = timedelta(seconds=1)
    with pytest.raises(IdempotencyKeyInUseError):
        keys.claim("ann", "k8", "request", now + CLAIM_LEASE + second)
    assert isinstance(keys.claim("ann", "k8", "request", now + LONGEST_RUN + second), Claim)
