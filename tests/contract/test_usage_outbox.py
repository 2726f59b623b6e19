"""The usage outbox over SQLite and Firestore: late uses counted once, none lost.

Synthesis queues a voice model's use in the batch that stores its job's record; drains
apply it to the counters. These tests hold the outbox's promises on both adapters: a use
is counted once whether one drain retries or several race, a reader sees every use
queued before it read (it applies the pending ones itself), a queued use is invisible
until its batch commits, and the cached statistics are invalidated with it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from shared.errors import TransactionContentionError
from shared.model import new_id
from shared.store import Query
from shared.store.cache import DocumentCache
from shared.store.sqlite import SqliteDocumentStore
from shared.voice_models.deps import model_usage_scope
from shared.voice_models.model import VoiceModelUsageEvent
from shared.voice_models.usage import (
    replace_usage,
    usage_by_owner,
    usage_for_models,
    usage_stats,
)
from shared.voice_models.usage_outbox import (
    USAGE_OUTBOX,
    USAGE_SHARDS,
    add_pending_use,
    apply_pending_use,
    drain_usage,
    pending_uses,
)

SHARDS = 4


def queue_uses(store, count, *, model_id="m1", owner_id="ann", cost=0.25, cache=None):
    """Queue ``count`` uses, each in its own batch beside a job-like record; return ids."""
    ids = []
    for _ in range(count):
        with store.batch() as batch:
            batch.create("synthesis_jobs", new_id(), {"user_id": "bob"})
            ids.append(
                add_pending_use(
                    batch,
                    model_id=model_id,
                    owner_id=owner_id,
                    event=VoiceModelUsageEvent(
                        cost=cost, latency_ms=10.0, characters=40, requested_characters=50
                    ),
                    shards=SHARDS,
                    cache=cache,
                    user_id="bob",
                )
            )
    return ids


def shard_total(store, model_id):
    shards = store.stream(Query(USAGE_SHARDS).where("model_id", "==", model_id))
    return sum(int(document.data.get("usage_count", 0)) for document in shards)


def test_a_drain_applies_each_use_once_and_empties_the_outbox(store):
    queue_uses(store, 5)
    assert pending_uses(store) == 5
    assert shard_total(store, "m1") == 0  # not yet in the counters
    assert drain_usage(store) == 5
    assert drain_usage(store) == 0  # a retried drain finds nothing left
    assert pending_uses(store) == 0
    stats = usage_stats(store, "m1", shards=SHARDS)
    assert (stats.usage_count, stats.characters, stats.requested_characters) == (5, 200, 250)
    assert stats.total_cost == pytest.approx(1.25)
    assert stats.average_latency == pytest.approx(10.0)
    assert stats.last_used is not None


def test_applying_one_use_again_does_not_count_it_twice(store):
    (event_id,) = queue_uses(store, 1)
    assert apply_pending_use(store, event_id) is True
    assert apply_pending_use(store, event_id) is False
    assert shard_total(store, "m1") == 1


def test_racing_drains_count_every_use_exactly_once(store):
    count = 12 if isinstance(store, SqliteDocumentStore) else 4
    ids = queue_uses(store, count)
    drains = 4 if isinstance(store, SqliteDocumentStore) else 2
    barrier = threading.Barrier(drains)

    def drain(_):
        barrier.wait()
        applied = 0
        for event_id in ids:  # every drain tries every use, as racing drains would
            for _attempt in range(5):
                try:
                    applied += apply_pending_use(store, event_id)
                    break
                except TransactionContentionError:
                    continue  # the emulator gave up under contention: a task retry
        return applied

    with ThreadPoolExecutor(max_workers=drains) as pool:
        applied = sum(pool.map(drain, range(drains)))
    assert applied == count
    assert shard_total(store, "m1") == count
    assert pending_uses(store) == 0


def test_readers_apply_pending_uses_before_reading(store):
    queue_uses(store, 2, model_id="m1")
    queue_uses(store, 3, model_id="m2")
    queue_uses(store, 1, model_id="m3", owner_id="cat")
    assert usage_stats(store, "m1", shards=SHARDS).usage_count == 2
    by_id = usage_for_models(store, ["m1", "m2", "m3"], shards=SHARDS)
    assert [by_id[m].usage_count for m in ("m1", "m2", "m3")] == [2, 3, 1]
    queue_uses(store, 1, model_id="m2")
    owned = usage_by_owner(store, "ann")
    assert {m: s.usage_count for m, s in owned.items()} == {"m1": 2, "m2": 4}
    assert pending_uses(store) == 0


def test_a_use_exists_only_with_the_batch_it_was_queued_in(store):
    batch = store.batch()
    batch.create("synthesis_jobs", "job-x", {"user_id": "bob"})
    add_pending_use(
        batch,
        model_id="m1",
        owner_id="ann",
        event=VoiceModelUsageEvent(cost=0.1, latency_ms=1.0),
        shards=SHARDS,
    )
    assert pending_uses(store) == 0  # nothing before the commit
    batch.commit()
    assert pending_uses(store) == 1
    assert store.get("synthesis_jobs", "job-x") is not None


def test_a_queued_use_invalidates_the_cached_statistics(store):
    cache = DocumentCache(store)
    computed = []

    def compute():
        computed.append(usage_stats(store, "m1", shards=SHARDS).usage_count)
        return computed[-1]

    def stats():
        value, _ = cache.get_or_compute(
            "voice_stats:m1",
            scopes=[model_usage_scope("m1", SHARDS)],
            ttl=timedelta(minutes=5),
            table="voice_stats",
            compute=compute,
        )
        return value

    assert stats() == 0
    assert stats() == 0
    assert computed == [0]  # the second read was a hit
    queue_uses(store, 1, cache=cache)
    assert stats() == 1  # not the cached 0
    assert computed == [0, 1]
    assert store.count(Query(USAGE_OUTBOX)) == 0


def test_a_restore_sets_the_counters_and_discards_pending_uses(store):
    queue_uses(store, 2)
    saved = usage_stats(store, "m1", shards=SHARDS)  # 2, applied by the read
    queue_uses(store, 3)  # after the backup: the restore goes back to 2
    replace_usage(store, stats=saved, owner_id="ann", shards=SHARDS)
    assert pending_uses(store) == 0
    assert usage_stats(store, "m1", shards=SHARDS).usage_count == 2


def test_a_limited_drain_leaves_the_rest_for_the_next(store):
    queue_uses(store, 5)
    assert drain_usage(store, limit=3) == 3
    assert pending_uses(store) == 2
    assert drain_usage(store, limit=3) == 2
    assert shard_total(store, "m1") == 5
