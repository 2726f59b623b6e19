"""Usage of voice models by synthesis: count, cost, latency and characters, in one write.

Each synthesis with a voice model records one use through the voice-model usage counters
(``shared.voice_models.usage``: sharded documents updated with ``Increment``): the
characters the provider billed (none for a cache hit) and those asked for, the cost from
``synthesis_price_per_million_chars`` for the provider, and the latency. They feed the
model's statistics and the owner's analytics. Synthesis answered at once does not wait for
the counters: ``pend_model_use`` queues the use in the commit that stores the job's record
(``shared.voice_models.usage_outbox``), applied to the counters before anyone reads them
and by a drain every minute.

A synthesis with a catalog voice records nothing, and loads no voice-model code: the
counters' modules are imported by the first use of a voice model (a cold start that speaks
with a catalog voice does not pay for them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.store.cache import DocumentCache
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.model import ResolvedVoice

if TYPE_CHECKING:
    from shared.store.base import Transaction, WriteBatch
    from shared.voice_models.model import VoiceModelUsageEvent


def cost_of(deps: SynthesisDeps, provider: str, characters: int) -> float:
    """Return what ``characters`` billed by ``provider`` cost, in US dollars."""
    price = deps.settings.synthesis_price_per_million_chars.get(provider, 0.0)
    return round(price * characters / 1_000_000, 6)


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
    ``characters``) are the characters asked for.
    """
    if voice.model is None:
        return
    from shared.voice_models.usage import record_usage  # noqa: PLC0415 - see the module docstring

    record_usage(
        deps.store,
        model_id=voice.model.id,
        owner_id=voice.model.user_id,
        event=_use(deps, voice, characters, latency_ms, requested),
        shards=deps.settings.usage_counter_shards,
        cache=_usage_cache(deps),
        user_id=user_id,
    )


def pend_model_use(
    deps: SynthesisDeps,
    writes: WriteBatch | Transaction,
    voice: ResolvedVoice,
    *,
    user_id: str,
    characters: int,
    latency_ms: float,
    requested: int,
) -> None:
    """Queue in ``writes`` one use of the voice's model (nothing for catalog voices).

    What ``record_model_use`` records, counted once ``writes`` commit (see the module).
    """
    if voice.model is None:
        return
    from shared.voice_models.usage_outbox import add_pending_use  # noqa: PLC0415 - see the module docstring

    add_pending_use(
        writes,
        model_id=voice.model.id,
        owner_id=voice.model.user_id,
        event=_use(deps, voice, characters, latency_ms, requested),
        shards=deps.settings.usage_counter_shards,
        cache=_usage_cache(deps),
        user_id=user_id,
    )


def _use(
    deps: SynthesisDeps,
    voice: ResolvedVoice,
    characters: int,
    latency_ms: float,
    requested: int | None,
) -> VoiceModelUsageEvent:
    from shared.voice_models.model import VoiceModelUsageEvent  # noqa: PLC0415 - see the module docstring

    return VoiceModelUsageEvent(
        cost=cost_of(deps, voice.provider, characters),
        latency_ms=latency_ms,
        characters=characters,
        requested_characters=characters if requested is None else requested,
    )


def _usage_cache(deps: SynthesisDeps) -> DocumentCache:
    return DocumentCache(deps.store, enabled=deps.settings.voice_model_cache_enabled)
