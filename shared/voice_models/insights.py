"""Reading across voice models: usage statistics, analytics, comparison and select-best.

Statistics (5 min) and analytics (15 min) are cached in the shared cache; both are
invalidated by usage events, and analytics also by any change to the user's models.
Analytics and statistics queries count against the per-user analytics rate limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.errors import NoQualifyingVoiceModelError, VoiceModelNotFoundError
from shared.store.rate_limits import rate_limited
from shared.voice_models.activation import rank
from shared.voice_models.crud import readable_model
from shared.voice_models.deps import (
    Caller,
    VoiceModelDeps,
    analytics_key,
    model_usage_scope,
    owner_usage_scope,
    stats_key,
    user_models_scope,
)
from shared.voice_models.model import (
    VoiceModel,
    VoiceModelPublic,
    VoiceModelStatus,
    VoiceModelUsageStats,
)
from shared.voice_models.repository import VoiceModelRepository
from shared.voice_models.schemas import (
    BestVoiceModel,
    ComparedVoiceModel,
    SelectionCriteria,
    VoiceModelAnalytics,
    VoiceModelComparison,
)
from shared.voice_models.usage import usage_by_owner, usage_for_models, usage_stats

STATS_TABLE = "cache_voice_stats"
ANALYTICS_TABLE = "cache_voice_analytics"
_BYTES_PER_MB = 1024 * 1024


def model_usage_stats(deps: VoiceModelDeps, model_id: str) -> VoiceModelUsageStats:
    """Return a model's usage statistics through the cache (no access check)."""
    value, _ = deps.cache.get_or_compute(
        stats_key(model_id),
        scopes=[model_usage_scope(model_id, deps.shards)],
        ttl=timedelta(seconds=deps.settings.voice_model_stats_cache_seconds),
        table=STATS_TABLE,
        compute=lambda: usage_stats(deps.store, model_id, shards=deps.shards).to_api(),
    )
    return VoiceModelUsageStats.model_validate(value)


def get_usage_stats(deps: VoiceModelDeps, caller: Caller, model_id: str) -> VoiceModelUsageStats:
    """Return the statistics of a model the caller may read.

    Raises VoiceModelNotFoundError or RateLimitedError.
    """
    model = readable_model(deps, caller, model_id)
    with rate_limited(deps.store, user_id=caller.user_id, rule=deps.rate_limit("analytics")):
        deps.log_access(caller, "usage_stats", [model.id], model.user_id)
        return model_usage_stats(deps, model_id)


def compute_analytics(deps: VoiceModelDeps, user_id: str) -> VoiceModelAnalytics:
    """Return the user's analytics computed from the store (no cache)."""
    models = VoiceModelRepository(deps.store).live_for_user(user_id)
    usage = usage_by_owner(deps.store, user_id)
    live_usage = [usage[m.id] for m in models if m.id in usage]
    by_provider: dict[str, int] = {}
    for model in models:
        by_provider[model.provider] = by_provider.get(model.provider, 0) + 1
    last_used: list[datetime] = [s.last_used for s in live_usage if s.last_used is not None]
    return VoiceModelAnalytics.model_validate(
        {
            "total_models": len(models),
            "active_models": sum(1 for m in models if m.is_active),
            "models_by_provider": by_provider,
            "average_quality_score": (
                round(sum(m.quality_score for m in models) / len(models), 6) if models else 0.0
            ),
            "total_usage_count": sum(s.usage_count for s in live_usage),
            "total_cost": round(sum(s.total_cost for s in live_usage), 6),
            "storage_used_mb": round(sum(m.size_bytes for m in models) / _BYTES_PER_MB, 6),
            "last_used": max(last_used) if last_used else None,
        }
    )


def user_analytics(deps: VoiceModelDeps, user_id: str) -> VoiceModelAnalytics:
    """Return the user's analytics through the cache (no access check)."""
    value, _ = deps.cache.get_or_compute(
        analytics_key(user_id),
        scopes=[user_models_scope(user_id), owner_usage_scope(user_id, deps.shards)],
        ttl=timedelta(seconds=deps.settings.voice_model_analytics_cache_seconds),
        table=ANALYTICS_TABLE,
        compute=lambda: compute_analytics(deps, user_id).to_api(),
    )
    return VoiceModelAnalytics.model_validate(value)


def get_analytics(deps: VoiceModelDeps, caller: Caller, user_id: str) -> VoiceModelAnalytics:
    """Return the analytics of the caller (admins: of ``user_id``).

    Raises AccessDeniedError or RateLimitedError.
    """
    owner = caller.acting_for(user_id)
    with rate_limited(deps.store, user_id=caller.user_id, rule=deps.rate_limit("analytics")):
        deps.log_access(caller, "analytics", [], owner)
        return user_analytics(deps, owner)


def compare_voice_models(
    deps: VoiceModelDeps, caller: Caller, model_ids: list[str], *, user_id: str | None = None
) -> VoiceModelComparison:
    """Return the readable models among ``model_ids`` with their usage, side by side."""
    caller.acting_for(user_id)
    compared, missing = [], []
    for model_id in dict.fromkeys(model_ids):
        try:
            model = readable_model(deps, caller, model_id)
        except VoiceModelNotFoundError:
            missing.append(model_id)
            continue
        compared.append(
            ComparedVoiceModel(
                model=VoiceModelPublic.from_entity(model),
                usage_stats=model_usage_stats(deps, model_id),
            )
        )
    deps.log_access(caller, "compare", [c.model.id for c in compared], None)
    return VoiceModelComparison(models=compared, not_found=missing)


def select_best_voice_model(
    deps: VoiceModelDeps, caller: Caller, criteria: SelectionCriteria, *, user_id: str | None = None
) -> BestVoiceModel:
    """Return the user's best completed model meeting ``criteria``.

    Ranking: quality score, then use count, then newest; a model with the preferred
    provider wins over any without. Raises NoQualifyingVoiceModelError saying why.
    """
    owner = caller.acting_for(user_id)
    models = [
        m
        for m in VoiceModelRepository(deps.store).live_for_user(owner)
        if m.status == VoiceModelStatus.COMPLETED
    ]
    usage = usage_for_models(deps.store, [m.id for m in models], shards=deps.shards)
    reasons = {"belowMinQualityScore": 0, "overMaxLatency": 0}
    qualifying: list[VoiceModel] = []
    for model in models:
        stats = usage[model.id]
        if (
            criteria.min_quality_score is not None
            and model.quality_score < criteria.min_quality_score
        ):
            reasons["belowMinQualityScore"] += 1
        elif (
            criteria.max_latency is not None
            and stats.usage_count > 0
            and stats.average_latency > criteria.max_latency
        ):
            reasons["overMaxLatency"] += 1
        else:
            qualifying.append(model)
    if not qualifying:
        raise NoQualifyingVoiceModelError(
            _why_none(len(models), reasons, criteria),
            details=[{"completedModels": len(models), **reasons}],
        )
    preferred = [m for m in qualifying if m.provider == criteria.preferred_provider]
    pool = preferred or qualifying
    best = max(pool, key=lambda m: rank(m, usage[m.id].usage_count))
    deps.log_access(caller, "select_best", [best.id], owner)
    return BestVoiceModel(
        model=VoiceModelPublic.from_entity(best),
        usage_stats=usage[best.id],
        matched_preferred_provider=bool(preferred),
        qualifying_models=len(qualifying),
    )


def _why_none(total: int, reasons: dict[str, int], criteria: SelectionCriteria) -> str:
    if total == 0:
        return "No voice model qualifies: the user has no completed voice models"
    parts = []
    if reasons["belowMinQualityScore"]:
        parts.append(
            f"{reasons['belowMinQualityScore']} below minQualityScore {criteria.min_quality_score}"
        )
    if reasons["overMaxLatency"]:
        parts.append(f"{reasons['overMaxLatency']} over maxLatency {criteria.max_latency} ms")
    return f"No voice model qualifies among {total} completed: " + ", ".join(parts)


def stats_by_id(deps: VoiceModelDeps, model_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Return each model's statistics as API dicts (for exports and backups)."""
    stats = usage_for_models(deps.store, model_ids, shards=deps.shards)
    return {model_id: s.to_api() for model_id, s in stats.items()}
