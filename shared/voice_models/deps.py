"""What every voice-model use case needs: its adapters, the caller, and the cache scopes.

``VoiceModelDeps`` bundles the store, object storage, settings and the shared cache, each
taken from the platform's ``Ports`` on first use (listing or activating models never builds
object storage, a cloud client in production);
``Caller`` is the verified token's user. The cache keys are the seed's
(``voice_model:{id}``, ``voice_models:user:{userId}:{filtersHash}``,
``voice_analytics:{userId}``, plus ``voice_stats:{id}`` for usage statistics), and the
scopes below say which writes invalidate which entries: model changes invalidate the
model's metadata, the owner's lists and analytics; usage events invalidate the model's
statistics and the owner's analytics.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any, NamedTuple

from shared.capability import PortsDeps
from shared.errors import AccessDeniedError
from shared.store.cache import DocumentCache, Scope
from shared.store.rate_limits import RateLimit
from shared.voice_models.access_log import record_access

ME = "me"
"""The user id that names the caller in paths and bodies (``/voice-models/user/me``)."""


class Caller(NamedTuple):
    """The authenticated user making a request."""

    user_id: str
    is_admin: bool = False
    request_id: str | None = None

    def acting_for(self, given_user_id: str | None) -> str:
        """Return whose models the request concerns: ``given_user_id`` or the caller.

        ``me`` (as in ``/voice-models/user/me``) names the caller.
        Raises AccessDeniedError when a non-admin names another user.
        """
        if given_user_id is None or given_user_id in (self.user_id, ME):
            return self.user_id
        if self.is_admin:
            return given_user_id
        raise AccessDeniedError("You can only act on your own voice models")


@dataclass
class VoiceModelDeps(PortsDeps):
    """The adapters and settings of the voice-model services, each read from ``ports``."""

    @cached_property
    def cache(self) -> DocumentCache:
        """Return the cache of model metadata, lists and analytics over the store."""
        return DocumentCache(self.store, enabled=self.settings.voice_model_cache_enabled)

    @property
    def bucket(self) -> str:
        """Return the bucket holding ``models/``, ``backups/`` and ``deleted/`` (seed 001)."""
        return self.settings.models_bucket

    @property
    def shards(self) -> int:
        """Return how many shards usage counters and usage cache scopes use."""
        return self.settings.usage_counter_shards

    def rate_limit(self, action: str) -> RateLimit:
        """Return the configured limit for ``action`` (create, update, analytics, backup)."""
        settings = self.settings
        hour, day = timedelta(hours=1), timedelta(days=1)
        rules = {
            "create": RateLimit(
                "voice_model_create", settings.rate_limit_model_creates_per_hour, hour
            ),
            "update": RateLimit(
                "voice_model_update", settings.rate_limit_model_updates_per_hour, hour
            ),
            "analytics": RateLimit(
                "voice_model_analytics", settings.rate_limit_analytics_per_hour, hour
            ),
            "backup": RateLimit("voice_model_backup", settings.rate_limit_backups_per_day, day),
        }
        return rules[action]

    def log_access(
        self, caller: Caller, action: str, model_ids: list[str], owner_id: str | None
    ) -> None:
        """Record in the access log that ``caller`` did ``action`` on ``model_ids``."""
        record_access(
            self.store,
            actor_id=caller.user_id,
            action=action,
            model_ids=model_ids,
            owner_id=owner_id,
            request_id=caller.request_id,
        )

    def invalidate_models(self, user_id: str, model_ids: Iterable[str]) -> None:
        """Invalidate what a change to ``model_ids`` of ``user_id`` makes stale."""
        scopes = [model_scope(model_id) for model_id in model_ids]
        self.cache.invalidate([*scopes, user_models_scope(user_id)])


def model_key(model_id: str) -> str:
    """Return the seed's cache key of a model's metadata."""
    return f"voice_model:{model_id}"


def list_key(user_id: str, filters: dict[str, Any]) -> str:
    """Return the seed's cache key of one filtered, paged list of a user's models."""
    digest = hashlib.sha256(json.dumps(filters, sort_keys=True).encode()).hexdigest()[:32]
    return f"voice_models:user:{user_id}:{digest}"


def analytics_key(user_id: str) -> str:
    """Return the seed's cache key of a user's analytics."""
    return f"voice_analytics:{user_id}"


def stats_key(model_id: str) -> str:
    """Return the cache key of a model's usage statistics."""
    return f"voice_stats:{model_id}"


def model_scope(model_id: str) -> Scope:
    """Return the scope a change to the model bumps."""
    return Scope(f"voice_model:{model_id}")


def user_models_scope(user_id: str) -> Scope:
    """Return the scope any change to the user's models (add, remove, activate) bumps."""
    return Scope(f"voice_models:user:{user_id}")


def model_usage_scope(model_id: str, shards: int) -> Scope:
    """Return the scope a usage event of the model bumps."""
    return Scope(f"voice_stats:{model_id}", shards)


def owner_usage_scope(user_id: str, shards: int) -> Scope:
    """Return the scope a usage event of any of the user's models bumps."""
    return Scope(f"voice_analytics:{user_id}", shards)
