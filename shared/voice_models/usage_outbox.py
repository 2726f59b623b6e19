"""Uses of voice models recorded late: an outbox written with the synthesis, drained once.

Synthesis answers before a use reaches the model's counters. The use is written as one
``voice_model_usage_outbox/{eventId}`` document in the same atomic batch as the synthesis
job's record (``add_pending_use``), together with the bumps of the model's statistics
and the owner's analytics cache scopes, so the request pays no write of its own for it
and a crash after the response loses nothing: the record is there, or the job is not.

``apply_pending_use`` moves one record into the counters in one transaction that reads
the record, adds it to its shard (``Increment``) and deletes it, so a use is counted
exactly once however often a drain retries and whichever of two racing drains commits
(the other's transaction reads the record again and finds it gone). ``drain_usage``
applies every pending record (the scheduled job ``usage-outbox-drain``, every minute);
``drain_usage_of_models`` and ``drain_usage_of_owner`` apply those of the models or
owner about to be read, which every reader of the counters (``shared.voice_models.usage``)
does first: the counters a reader sees always hold every use whose synthesis answered
before the read began, and the minute of delay only bounds how long the records stay.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.model import new_id, utcnow
from shared.store.base import (
    MAX_IN_VALUES,
    Document,
    DocumentStore,
    Increment,
    Maximum,
    Query,
    Transaction,
    WriteBatch,
)
from shared.store.cache import DocumentCache
from shared.voice_models.deps import model_usage_scope, owner_usage_scope
from shared.voice_models.model import VoiceModelUsageEvent

logger = logging.getLogger(__name__)

USAGE_OUTBOX = "voice_model_usage_outbox"
USAGE_SHARDS = "voice_model_usage_shards"
DRAIN_BATCH = 200


def add_pending_use(
    writes: WriteBatch | Transaction,
    *,
    model_id: str,
    owner_id: str,
    event: VoiceModelUsageEvent,
    shards: int,
    cache: DocumentCache | None = None,
    user_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """Queue in ``writes`` one use of ``model_id`` by ``user_id``; return the event's id.

    The use counts once ``writes`` commit (readers apply pending uses first); the cached
    statistics of the model and analytics of the owner are invalidated in the same commit.
    """
    event_id = new_id()
    moment = now or utcnow()
    record = use_record(model_id, owner_id, user_id, event, moment)
    # The shard is chosen now, so every drain of this record adds to the same shard.
    record["shard"] = random.randrange(shards)  # noqa: S311 - load spreading only
    writes.create(USAGE_OUTBOX, event_id, {**record, "used_at": moment})
    if cache is not None:
        cache.invalidate_in(
            writes, [model_usage_scope(model_id, shards), owner_usage_scope(owner_id, shards)]
        )
    return event_id


def use_record(
    model_id: str,
    owner_id: str,
    user_id: str | None,
    event: VoiceModelUsageEvent,
    moment: datetime,
) -> dict[str, Any]:
    """Return one use as the fields ``shard_increments`` adds to a counter shard."""
    requested = (
        event.characters if event.requested_characters is None else event.requested_characters
    )
    return {
        "model_id": model_id,
        "owner_id": owner_id,
        "user_id": user_id or owner_id,
        "characters": event.characters,
        "requested_characters": requested,
        "cost": event.cost,
        "latency_ms": event.latency_ms,
        "quality_rating": event.quality_rating,
        "used_at_epoch": moment.timestamp(),
    }


def shard_increments(record: dict[str, Any]) -> dict[str, Any]:
    """Return the shard write that adds one use described by an outbox ``record``."""
    rating = record.get("quality_rating")
    write = {
        "model_id": record["model_id"],
        "owner_id": record["owner_id"],
        "usage_count": Increment(1),
        "characters": Increment(int(record.get("characters", 0))),
        "requested_characters": Increment(int(record.get("requested_characters", 0))),
        "total_cost": Increment(float(record.get("cost", 0.0))),
        "latency_sum_ms": Increment(float(record.get("latency_ms", 0.0))),
        "rating_sum": Increment(float(rating) if rating is not None else 0.0),
        "rating_count": Increment(0 if rating is None else 1),
        # Epoch seconds kept as a maximum: an older use drained late never wins.
        "last_used_epoch": Maximum(float(record["used_at_epoch"])),
    }
    if record.get("user_id"):  # gone when that user's account was deleted meanwhile
        write["last_user_id"] = record["user_id"]
    return write


def apply_pending_use(store: DocumentStore, event_id: str) -> bool:
    """Add the pending use ``event_id`` to its model's counters and delete it, atomically.

    Returns False when it was already applied (by another drain, or an earlier attempt).
    """

    def apply(tx: Transaction) -> bool:
        pending = tx.get(USAGE_OUTBOX, event_id)
        if pending is None:
            return False
        record = pending.data
        shard_id = f"{record['model_id']}_{int(record.get('shard', 0))}"
        tx.set(USAGE_SHARDS, shard_id, shard_increments(record), merge=True)
        tx.delete(USAGE_OUTBOX, event_id)
        return True

    return store.run_transaction(apply)


def _apply_all(store: DocumentStore, documents: Sequence[Document]) -> int:
    return sum(1 for document in documents if apply_pending_use(store, document.id))


def drain_usage(store: DocumentStore, *, limit: int | None = None) -> int:
    """Apply pending uses, oldest first, up to ``limit`` (all when None); return how many.

    Safe to run anywhere at any time, concurrently too: each use is counted once.
    """
    applied = 0
    while limit is None or applied < limit:
        size = DRAIN_BATCH if limit is None else min(DRAIN_BATCH, limit - applied)
        page = store.query(Query(USAGE_OUTBOX).order("used_at_epoch").take(size)).documents
        if not page:
            break
        applied += _apply_all(store, page)
        if len(page) < size:
            break
    if applied:
        logger.info("Applied %d pending voice model uses to their counters", applied)
    return applied


def drain_usage_of_models(store: DocumentStore, model_ids: Sequence[str]) -> int:
    """Apply the pending uses of ``model_ids``; return how many were applied here."""
    ids = list(dict.fromkeys(model_ids))
    applied = 0
    for start in range(0, len(ids), MAX_IN_VALUES):
        chunk = ids[start : start + MAX_IN_VALUES]
        query = Query(USAGE_OUTBOX).where("model_id", "in", chunk)
        applied += _apply_all(store, list(store.stream(query)))
    return applied


def drain_usage_of_owner(store: DocumentStore, owner_id: str) -> int:
    """Apply the pending uses of every model of ``owner_id``; return how many."""
    query = Query(USAGE_OUTBOX).where("owner_id", "==", owner_id)
    return _apply_all(store, list(store.stream(query)))


def pending_uses(store: DocumentStore) -> int:
    """Return how many uses wait in the outbox."""
    return store.count(Query(USAGE_OUTBOX))
