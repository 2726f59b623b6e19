"""Usage of voice models: synthesis records each use; statistics and analytics read them.

Each use adds to one of ``shards`` counter documents of the model
(``voice_model_usage_shards/{modelId}_{n}``, n random) with ``Increment`` transforms, so
concurrent recordings never lose an increment and one hot model spreads its writes over
several documents (Firestore sustains about one write per second per document). A shard
holds the count, cost, latency sum, rating sum and count, and the time of its last use;
reading sums the shards and takes the latest ``last_used``. Synthesis records the
characters of each use in the same write, so one use is one atomic update. Each use then bumps the
model's statistics and the owner's analytics cache scopes (sharded the same way).

Synthesis answered at once records its uses late, through the outbox of
``shared.voice_models.usage_outbox``; every reader here applies the pending uses of what it
reads first, so the figures it returns count every use that was answered before.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.model import utcnow
from shared.store.base import MAX_BATCH_WRITES, Document, DocumentStore, Query
from shared.store.cache import DocumentCache
from shared.voice_models.deps import model_usage_scope, owner_usage_scope
from shared.voice_models.model import VoiceModelUsageEvent, VoiceModelUsageStats
from shared.voice_models.usage_outbox import (
    USAGE_OUTBOX,
    USAGE_SHARDS,
    drain_usage_of_models,
    drain_usage_of_owner,
    shard_increments,
    use_record,
)

__all__ = ["USAGE_SHARDS", "record_usage", "usage_by_owner", "usage_for_models", "usage_stats"]
_DECIMALS = 6


def shard_ids(model_id: str, shards: int) -> list[str]:
    """Return the ids of the model's counter documents."""
    return [f"{model_id}_{shard}" for shard in range(shards)]


def record_usage(
    store: DocumentStore,
    *,
    model_id: str,
    owner_id: str,
    event: VoiceModelUsageEvent,
    shards: int,
    cache: DocumentCache | None = None,
    user_id: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record one use of ``model_id`` (owned by ``owner_id``) by ``user_id``.

    Invalidates the cached statistics of the model and analytics of the owner.
    """
    moment = now or utcnow()
    shard = random.randrange(shards)  # noqa: S311 - load spreading only
    record = use_record(model_id, owner_id, user_id, event, moment)
    store.set(USAGE_SHARDS, f"{model_id}_{shard}", shard_increments(record), merge=True)
    if cache is not None:
        cache.invalidate([model_usage_scope(model_id, shards), owner_usage_scope(owner_id, shards)])


def stats_from_shards(model_id: str, documents: Iterable[Document]) -> VoiceModelUsageStats:
    """Return the statistics of one model summed over its shard documents."""
    count = characters = requested = 0
    cost = latency = rating_sum = 0.0
    rating_count = 0
    last_used: datetime | None = None
    for document in documents:
        data = document.data
        count += int(data.get("usage_count", 0))
        characters += int(data.get("characters", 0))
        requested += int(data.get("requested_characters", 0))
        cost += float(data.get("total_cost", 0.0))
        latency += float(data.get("latency_sum_ms", 0.0))
        rating_sum += float(data.get("rating_sum", 0.0))
        rating_count += int(data.get("rating_count", 0))
        epoch = data.get("last_used_epoch")
        if isinstance(epoch, int | float):
            used = datetime.fromtimestamp(epoch, UTC)
            if last_used is None or used > last_used:
                last_used = used
    return VoiceModelUsageStats(
        model_id=model_id,
        usage_count=count,
        characters=characters,
        requested_characters=requested,
        total_cost=round(cost, _DECIMALS),
        average_latency=round(latency / count, _DECIMALS) if count else 0.0,
        last_used=last_used,
        quality_rating=round(rating_sum / rating_count, _DECIMALS) if rating_count else 0.0,
    )


def usage_stats(store: DocumentStore, model_id: str, *, shards: int) -> VoiceModelUsageStats:
    """Return the usage statistics of one model (its pending uses applied first)."""
    drain_usage_of_models(store, [model_id])
    found = store.get_many(USAGE_SHARDS, shard_ids(model_id, shards))
    return stats_from_shards(model_id, found.values())


def usage_for_models(
    store: DocumentStore, model_ids: Sequence[str], *, shards: int
) -> dict[str, VoiceModelUsageStats]:
    """Return the usage statistics of each model, by id (zeros for unused models).

    Their pending uses are applied first.
    """
    drain_usage_of_models(store, model_ids)
    ids = [doc_id for model_id in model_ids for doc_id in shard_ids(model_id, shards)]
    found = store.get_many(USAGE_SHARDS, ids) if ids else {}
    by_model: dict[str, list[Document]] = {model_id: [] for model_id in model_ids}
    for document in found.values():
        owner = document.data.get("model_id")
        if isinstance(owner, str) and owner in by_model:
            by_model[owner].append(document)
    return {model_id: stats_from_shards(model_id, docs) for model_id, docs in by_model.items()}


def usage_by_owner(store: DocumentStore, owner_id: str) -> dict[str, VoiceModelUsageStats]:
    """Return the statistics of every model of ``owner_id`` that was ever used, by id.

    Their pending uses are applied first.
    """
    drain_usage_of_owner(store, owner_id)
    by_model: dict[str, list[Document]] = {}
    for document in store.stream(Query(USAGE_SHARDS).where("owner_id", "==", owner_id)):
        model_id = document.data.get("model_id")
        if isinstance(model_id, str):
            by_model.setdefault(model_id, []).append(document)
    return {model_id: stats_from_shards(model_id, docs) for model_id, docs in by_model.items()}


def replace_usage(
    store: DocumentStore,
    *,
    stats: VoiceModelUsageStats,
    owner_id: str,
    shards: int,
    rating_count: int | None = None,
) -> None:
    """Set the model's counters to ``stats`` (a restore): shard 0 holds it, others go.

    Uses still pending in the outbox go in the same batch: the counters are ``stats``.
    """
    ids = shard_ids(stats.model_id, shards)
    pending = [
        document.id
        for document in store.stream(Query(USAGE_OUTBOX).where("model_id", "==", stats.model_id))
    ]
    count = stats.usage_count
    ratings = rating_count if rating_count is not None else (count if stats.quality_rating else 0)
    data: dict[str, Any] = {
        "model_id": stats.model_id,
        "owner_id": owner_id,
        "usage_count": count,
        "characters": stats.characters,
        "requested_characters": stats.requested_characters,
        "total_cost": stats.total_cost,
        "latency_sum_ms": stats.average_latency * count,
        "rating_sum": stats.quality_rating * ratings,
        "rating_count": ratings,
        "last_used_epoch": stats.last_used.timestamp() if stats.last_used else None,
    }
    room = MAX_BATCH_WRITES - len(ids)
    while len(pending) > room:  # discarded either way: the surplus may go first
        with store.batch() as surplus:
            for doc_id in pending[:room]:
                surplus.delete(USAGE_OUTBOX, doc_id)
        pending = pending[room:]
    with store.batch() as batch:
        for doc_id in pending:
            batch.delete(USAGE_OUTBOX, doc_id)
        for doc_id in ids[1:]:
            batch.delete(USAGE_SHARDS, doc_id)
        if count or stats.last_used is not None:
            batch.set(USAGE_SHARDS, ids[0], data)
        else:
            batch.delete(USAGE_SHARDS, ids[0])
