"""Erasing a deleted account's voice-model data: every record, object and cache entry.

Voice models are biometric data (seed 001), so nothing of a deleted user may stay: their
models, the grants they made and received, usage counters, the activation pointer, the
access-log entries they made or that concern their models, the cached metadata, lists,
statistics and analytics (every scope computed from them is bumped, so no other user's
cached view of a shared model is served again), and the objects under their
``models/``, ``deleted/`` and ``backups/`` folders. Where their id only marks another
user's model as last used by them, the mark is cleared.
"""

from __future__ import annotations

from shared.store.base import DELETE_FIELD, Query
from shared.voice_models.access_log import ACCESS_LOG
from shared.voice_models.artifacts import (
    BACKUPS_PREFIX,
    DELETED_PREFIX,
    MODELS_PREFIX,
    user_prefix,
)
from shared.voice_models.deps import (
    VoiceModelDeps,
    analytics_key,
    model_key,
    model_scope,
    model_usage_scope,
    owner_usage_scope,
    stats_key,
    user_models_scope,
)
from shared.voice_models.repository import ACTIVE_POINTERS, SHARES, VOICE_MODELS
from shared.voice_models.usage import USAGE_SHARDS
from shared.voice_models.usage_outbox import USAGE_OUTBOX


def purge_voice_models(deps: VoiceModelDeps, user_id: str) -> int:
    """Delete everything of ``user_id``'s voice models; return how many models went."""
    store = deps.store
    models = [document.id for document in store.stream(_owned(VOICE_MODELS, "user_id", user_id))]
    shards = deps.shards
    deps.cache.purge(
        keys=[analytics_key(user_id)]
        + [key for model_id in models for key in (model_key(model_id), stats_key(model_id))],
        key_prefixes=[f"voice_models:user:{user_id}:"],
        scopes=[
            user_models_scope(user_id),
            owner_usage_scope(user_id, shards),
            *(model_scope(model_id) for model_id in models),
            *(model_usage_scope(model_id, shards) for model_id in models),
        ],
    )
    removed = store.delete_matching(_owned(VOICE_MODELS, "user_id", user_id))
    for collection, field in (
        # Pending uses first: a drain must not recreate the counters deleted next.
        (USAGE_OUTBOX, "owner_id"),
        (SHARES, "owner_id"),
        (SHARES, "target_user_id"),
        (USAGE_SHARDS, "owner_id"),
        (ACCESS_LOG, "actor_id"),
        (ACCESS_LOG, "owner_id"),
    ):
        store.delete_matching(_owned(collection, field, user_id))
    store.delete(ACTIVE_POINTERS, user_id)
    for shard in list(store.stream(_owned(USAGE_SHARDS, "last_user_id", user_id))):
        store.update(USAGE_SHARDS, shard.id, {"last_user_id": DELETE_FIELD})
    for pending in list(store.stream(_owned(USAGE_OUTBOX, "user_id", user_id))):
        store.update(USAGE_OUTBOX, pending.id, {"user_id": DELETE_FIELD})
    for area in (MODELS_PREFIX, DELETED_PREFIX, BACKUPS_PREFIX):
        deps.blobs.delete_prefix(deps.bucket, user_prefix(area, user_id))
    return removed


def _owned(collection: str, field: str, user_id: str) -> Query:
    return Query(collection).where(field, "==", user_id)
