"""Usage of voice models by synthesis: count, cost, latency and characters.

Each synthesis with a voice model records one use through the voice-model usage service
(count, cost from ``synthesis_price_per_million_chars`` for the provider, latency), which
feeds the model's statistics and the owner's analytics. A cache hit is a use that costs
nothing. The usage event has no characters field, so characters billed and requested are
counted beside it in ``voice_model_characters/{modelId}_{shard}`` (Increment, sharded
like the usage counters).
"""

from __future__ import annotations

import random

from shared.store.base import Increment
from shared.store.cache import DocumentCache
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.voices import ResolvedVoice
from shared.voice_models.model import VoiceModelUsageEvent
from shared.voice_models.usage import record_usage

CHARACTER_SHARDS = "voice_model_characters"


def record_model_use(
    deps: SynthesisDeps,
    voice: ResolvedVoice,
    *,
    user_id: str,
    characters: int,
    latency_ms: float,
    requested: int | None = None,
) -> None:
    """Record one use of the voice's model (nothing for catalog voices).

    ``characters`` are the characters billed by the provider (0 for a cache hit), and the
    cost is that times the provider's price per million characters; ``requested`` (default
    ``characters``) are the characters asked for. Count, cost and latency go to the
    voice-model usage counters; characters to ``voice_model_characters`` shards.
    """
    requested = characters if requested is None else requested
    if voice.model is None:
        return
    price = deps.settings.synthesis_price_per_million_chars.get(voice.provider, 0.0)
    event = VoiceModelUsageEvent(
        cost=round(price * characters / 1_000_000, 6), latency_ms=latency_ms
    )
    record_usage(
        deps.store,
        model_id=voice.model.id,
        owner_id=voice.model.user_id,
        event=event,
        shards=deps.settings.usage_counter_shards,
        cache=DocumentCache(deps.store, enabled=deps.settings.voice_model_cache_enabled),
        user_id=user_id,
    )
    # The usage event has no characters field: count them beside it, sharded the same way.
    shard = random.randrange(deps.settings.usage_counter_shards)  # noqa: S311 - load spreading
    deps.store.set(
        CHARACTER_SHARDS,
        f"{voice.model.id}_{shard}",
        {
            "model_id": voice.model.id,
            "owner_id": voice.model.user_id,
            "characters": Increment(characters),
            "requested_characters": Increment(requested),
        },
        merge=True,
    )


def model_characters(deps: SynthesisDeps, model_id: str) -> tuple[int, int]:
    """Return the characters billed and requested with ``model_id`` (summed over shards)."""
    ids = [f"{model_id}_{n}" for n in range(deps.settings.usage_counter_shards)]
    found = deps.store.get_many(CHARACTER_SHARDS, ids).values()
    billed = sum(int(d.data.get("characters", 0)) for d in found)
    requested = sum(int(d.data.get("requested_characters", 0)) for d in found)
    return billed, requested
