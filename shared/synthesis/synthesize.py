"""Text-to-speech use case (seed 002): ``POST /synthesize`` from request to stored file.

``prepare`` (``shared.synthesis.prepare``) validates the request (text or SSML, limits,
voice, provider, rate for the format) and computes its cache key. Short texts are answered
at once (``shared.synthesis.immediate``): from the cache, or rendered, stored and
published. Plain texts over ``synthesis_async_threshold_chars`` become an async job
(``shared.synthesis.jobs``); SSML is always answered at once (its markup cannot be cut at
sentence ends safely). Every synthesis with a voice model records a use of it (count, cost
from the per-provider price table, latency), which feeds the voice-model statistics and
analytics.
"""

from __future__ import annotations

from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.immediate import synthesize_now
from shared.synthesis.jobs import start_job
from shared.synthesis.model import (
    SynthesisResponse,
    SynthesizeRequest,
    check_audio_length,
)
from shared.synthesis.prepare import prepare


def synthesize(
    deps: SynthesisDeps, user_id: str, body: SynthesizeRequest, *, account_id: str | None = None
) -> SynthesisResponse:
    """Return the synthesis of ``body``: finished for short texts, a pending job for long ones.

    Raises the errors of ``prepare``, AudioTooLongError for SSML beyond what is answered at
    once, and ProviderError when the provider fails.
    """
    prepared = prepare(deps, user_id, body, account_id=account_id)
    settings = deps.settings
    long = (
        prepared.length > settings.synthesis_async_threshold_chars
        or prepared.seconds > settings.synthesis_sync_max_audio_seconds
    )
    if not prepared.ssml and long:
        return start_job(deps, user_id, prepared)
    check_audio_length(prepared.seconds, settings, at_once=True)
    return synthesize_now(deps, user_id, prepared)
