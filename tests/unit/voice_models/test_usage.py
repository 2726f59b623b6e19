"""Usage recording: sharded counters add up exactly, even when recorded concurrently."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from shared.store import Query
from shared.store.sqlite import SqliteDocumentStore
from shared.voice_models.model import VoiceModelUsageEvent, VoiceModelUsageStats
from shared.voice_models.usage import (
    USAGE_SHARDS,
    record_usage,
    replace_usage,
    usage_by_owner,
    usage_for_models,
    usage_stats,
)

SHARDS = 4


@pytest.fixture
def store(tmp_path):
    adapter = SqliteDocumentStore(tmp_path / "store.sqlite3")
    yield adapter
    adapter.close()


def record(
    store,
    model_id="m1",
    *,
    cost=0.0,
    latency=0.0,
    rating=None,
    now=None,
    owner="ann",
    shards=SHARDS,
):
    record_usage(
        store,
        model_id=model_id,
        owner_id=owner,
        event=VoiceModelUsageEvent(cost=cost, latency_ms=latency, quality_rating=rating),
        shards=shards,
        now=now,
    )


def test_a_use_recorded_late_never_moves_last_used_back(store):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    # One shard: both uses land on the same counter document, newest first.
    record(store, now=t0 + timedelta(minutes=5), shards=1)
    record(store, now=t0 + timedelta(minutes=1), shards=1)
    assert usage_stats(store, "m1", shards=1).last_used == t0 + timedelta(minutes=5)


def test_stats_sum_count_cost_latency_and_rating(store):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    record(store, cost=0.25, latency=500, rating=4, now=t0)
    record(store, cost=0.5, latency=700, rating=5, now=t0 + timedelta(minutes=5))
    record(store, cost=0.0, latency=900, now=t0 + timedelta(minutes=1))
    stats = usage_stats(store, "m1", shards=SHARDS)
    assert stats == VoiceModelUsageStats(
        model_id="m1",
        usage_count=3,
        total_cost=0.75,
        average_latency=700,
        last_used=t0 + timedelta(minutes=5),
        quality_rating=4.5,
    )
    assert usage_stats(store, "unused", shards=SHARDS).usage_count == 0


def test_concurrent_recording_loses_no_increment(store):
    def use(index):
        record(store, "hot", cost=0.01, latency=index % 10)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(use, range(400)))
    stats = usage_stats(store, "hot", shards=SHARDS)
    assert stats.usage_count == 400
    assert stats.total_cost == pytest.approx(4.0)
    assert stats.average_latency == pytest.approx(4.5)
    shards = store.count(Query(USAGE_SHARDS).where("model_id", "==", "hot"))
    assert 1 < shards <= SHARDS


def test_usage_by_model_and_by_owner(store):
    record(store, "a", cost=1)
    record(store, "b", cost=2)
    record(store, "c", cost=3, owner="bob")
    by_id = usage_for_models(store, ["a", "b", "never"], shards=SHARDS)
    assert {k: v.usage_count for k, v in by_id.items()} == {"a": 1, "b": 1, "never": 0}
    assert sorted(usage_by_owner(store, "ann")) == ["a", "b"]


def test_replace_usage_sets_the_counters_to_saved_stats(store):
    for _ in range(5):
        record(store, "m", cost=1, latency=100, rating=2)
    saved = VoiceModelUsageStats(
        model_id="m",
        usage_count=2,
        total_cost=3.5,
        average_latency=250,
        quality_rating=4.0,
        last_used=datetime(2026, 2, 1, tzinfo=UTC),
    )
    replace_usage(store, stats=saved, owner_id="ann", shards=SHARDS)
    assert usage_stats(store, "m", shards=SHARDS) == saved


def test_a_synthesis_use_and_its_characters_are_one_write(store):
    """Characters are counted in the usage shard's own update: no second document to lag."""
    event = VoiceModelUsageEvent(cost=0.1, latency_ms=5, characters=40, requested_characters=70)
    record_usage(store, model_id="m1", owner_id="ann", event=event, shards=SHARDS)
    record_usage(
        store,
        model_id="m1",
        owner_id="ann",
        event=VoiceModelUsageEvent(characters=3),
        shards=SHARDS,
    )
    stats = usage_stats(store, "m1", shards=SHARDS)
    assert (stats.usage_count, stats.characters, stats.requested_characters) == (2, 43, 73)
    # The second, separate counter documents of before are gone.
    assert store.count(Query("voice_model_characters")) == 0
    assert store.count(Query(USAGE_SHARDS)) <= 2
