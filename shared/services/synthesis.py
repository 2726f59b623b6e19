"""Text-to-speech use case (seed 002): ``POST /synthesize`` from request to stored file.

``prepare`` validates the request (text or SSML, limits, voice, provider, rate for the
format) and computes its cache key. ``synthesize`` answers short texts at once: the
cache's single-flight either hands back a ready entry (no provider call; the user gets a
record of their own for the stored object, ``cacheHit: true``) or the lease to render,
encode, store and publish it. Plain texts over ``synthesis_async_threshold_chars`` become
an async job (``shared.services.synthesis_jobs``); SSML is always answered at once (its
markup cannot be cut at sentence ends safely). Every synthesis with a voice model records
a use of it (count, cost from the per-provider price table, latency), which feeds the
voice-model statistics and analytics.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from shared.audio.encode import encode
from shared.domain.synthesis import AudioFile, SynthesisJob
from shared.errors import InvalidRequestError, NotFoundError
from shared.model import utcnow
from shared.repositories.synthesis_jobs import SynthesisJobRepository
from shared.services.audio_files import (
    StoredAudio,
    download_url,
    read_timestamps,
    record_file,
    store_audio,
)
from shared.services.synthesis_cache import CachedAudio, Lease, cache_key
from shared.services.synthesis_models import (
    AudioOptions,
    Prepared,
    SynthesisDeps,
    SynthesisResponse,
    SynthesizeRequest,
    audio_settings,
    check_text,
)
from shared.services.synthesis_render import timestamps_body
from shared.services.synthesis_usage import record_model_use
from shared.services.synthesis_voices import ResolvedVoice, provider_for, resolve_voice
from shared.ssml import ssml_to_text

__all__ = [
    "AudioOptions",
    "Prepared",
    "SynthesisDeps",
    "SynthesisResponse",
    "SynthesizeRequest",
    "audio_settings",
    "check_text",
    "prepare",
    "synthesize",
    "synthesize_now",
]

_MAX_ATTEMPTS_ON_VANISHED_ENTRY = 3


def prepare(deps: SynthesisDeps, user_id: str, body: SynthesizeRequest) -> Prepared:
    """Return the validated request.

    Raises InvalidRequestError, TextTooLongError, voice and model lookup errors, or
    ProviderNotConfiguredError.
    """
    if (body.text is None) == (body.ssml is None):
        raise InvalidRequestError("Give exactly one of text or ssml")
    ssml = body.ssml is not None
    text = body.ssml if body.ssml is not None else body.text or ""
    spoken = ssml_to_text(text) if ssml else text
    check_text(spoken, deps.settings)
    settings = audio_settings(body)
    voice = resolve_voice(deps.models, user_id, body.voice)
    provider = provider_for(deps.providers, voice)
    key = cache_key(
        text=text,
        ssml=ssml,
        voice=voice,
        settings=settings,
        output_format=body.output_format,
        include_timestamps=body.include_timestamps,
        granularity=body.timestamp_granularity,
    )
    return Prepared(text, spoken, ssml, voice, provider, settings, body, key)


def new_job(user_id: str, prepared: Prepared, **fields: Any) -> SynthesisJob:
    """Return a pending job for ``prepared``; its config says how to synthesize it again."""
    voice = prepared.voice
    options = prepared.options
    return SynthesisJob(
        user_id=user_id,
        voice_model_id=voice.model.id if voice.model else None,
        voice_id=None if voice.model else f"{voice.provider}:{voice.voice_id}",
        text_content=prepared.text,
        text_hash=prepared.key,
        output_format=options.output_format,
        sample_rate=prepared.settings.sample_rate,
        config={
            "provider": voice.provider,
            "providerVoiceId": voice.voice_id,
            "language": voice.language,
            "modelOwnerId": voice.model.user_id if voice.model else None,
            "ssml": prepared.ssml,
            "settings": prepared.settings.model_dump(),
            "includeTimestamps": options.include_timestamps,
            "timestampGranularity": options.timestamp_granularity.value,
        },
        **fields,
    )


def synthesize(deps: SynthesisDeps, user_id: str, body: SynthesizeRequest) -> SynthesisResponse:
    """Return the synthesis of ``body``: finished for short texts, a pending job for long ones.

    Raises the errors of ``prepare``, and ProviderError when the provider fails.
    """
    prepared = prepare(deps, user_id, body)
    if not prepared.ssml and prepared.length > deps.settings.synthesis_async_threshold_chars:
        from shared.services.synthesis_jobs import start_job  # noqa: PLC0415 - it imports us

        return start_job(deps, user_id, prepared)
    return synthesize_now(deps, user_id, prepared)


def synthesize_now(deps: SynthesisDeps, user_id: str, prepared: Prepared) -> SynthesisResponse:
    """Return the finished synthesis of ``prepared``, from the cache or the provider."""
    started = time.perf_counter()
    job = new_job(user_id, prepared).start()
    flight = deps.flight
    # Without a claim after these attempts (entries vanishing under us), render uncached.
    claim = Lease(prepared.key, job.id, cached=False)
    for _ in range(_MAX_ATTEMPTS_ON_VANISHED_ENTRY):
        claimed = flight.claim(prepared.key)
        if not isinstance(claimed, CachedAudio):
            claim = claimed
            break
        try:
            timestamps = read_timestamps(deps.audio, claimed.timestamps_path)
        except NotFoundError:
            flight.forget(prepared.key, claimed.file_path)  # cleaned up under us
            continue
        audio_file = record_file(deps.audio, user_id=user_id, job_id=job.id, cached=claimed)
        return finish(
            deps,
            job,
            prepared,
            audio_file=audio_file,
            cached=claimed,
            timestamps=timestamps,
            started=started,
            hit=True,
        )
    stored = render_and_store(deps, user_id, job.id, prepared, claim)
    return finish(
        deps,
        job,
        prepared,
        audio_file=stored.audio_file,
        cached=stored.cached,
        timestamps=stored.timestamps,
        started=started,
        hit=False,
    )


def render_and_store(
    deps: SynthesisDeps, user_id: str, job_id: str, prepared: Prepared, lease: Lease
) -> StoredAudio:
    """Render, encode and store ``prepared`` under ``lease``, then publish it to the cache.

    The timestamps are computed while the audio is being written.
    """
    try:
        rendered = prepared.render(deps.settings.synthesis_chunk_chars)
        options = prepared.options
        encoded = encode(
            rendered.pcm,
            rendered.sample_rate,
            options.output_format,
            target_rate=prepared.settings.sample_rate,
        )
        timestamps = (
            functools.partial(
                timestamps_body,
                rendered.words,
                options.timestamp_granularity,
                language=prepared.voice.language,
                phonemizer=deps.phonemizer,
            )
            if options.include_timestamps
            else None
        )
        stored = store_audio(
            deps.audio,
            user_id=user_id,
            job_id=job_id,
            encoded=encoded,
            timestamps=timestamps,
            unapplied=tuple(rendered.unapplied),
        )
    except BaseException:
        deps.flight.abandon(lease)
        raise
    deps.flight.publish(lease, stored.cached)
    return stored


def finish(
    deps: SynthesisDeps,
    job: SynthesisJob,
    prepared: Prepared,
    *,
    audio_file: AudioFile,
    cached: CachedAudio,
    timestamps: dict[str, Any] | None,
    started: float,
    hit: bool,
) -> SynthesisResponse:
    """Record the completed job and the model's use; return the response."""
    done = job.complete(audio_file_id=audio_file.id, now=utcnow(), cache_hit=hit)
    SynthesisJobRepository(deps.store).add(done)
    latency_ms = (time.perf_counter() - started) * 1000
    for voice, characters in prepared.billed():
        billed = 0 if hit else characters
        record_model_use(
            deps,
            voice,
            user_id=job.user_id,
            characters=billed,
            latency_ms=latency_ms,
            requested=characters,
        )
    body = response_for(
        deps, done, prepared.voice, audio_file=audio_file, cached=cached, timestamps=timestamps
    )
    return body.model_copy(update=dict(prepared.extra))


def response_for(
    deps: SynthesisDeps,
    job: SynthesisJob,
    voice: ResolvedVoice,
    *,
    audio_file: AudioFile | None = None,
    cached: CachedAudio | None = None,
    timestamps: dict[str, Any] | None = None,
) -> SynthesisResponse:
    """Return the API body of ``job`` and, when finished, its file."""
    body = SynthesisResponse(
        job_id=job.id,
        status=job.status,
        voice=voice.label,
        provider=voice.provider,
        format=job.output_format,
        cache_hit=job.cache_hit,
        progress=job.progress,
        estimated_duration=job.estimated_duration,
        error=job.error_message,
    )
    if audio_file is not None:
        body.audio_file_id = audio_file.id
        body.download_url = download_url(deps.audio, audio_file)
        body.duration = audio_file.duration
        body.sample_rate = audio_file.sample_rate
        body.size = audio_file.file_size
        body.checksum = audio_file.checksum
        body.expires_at = audio_file.expires_at
        body.timestamps = timestamps
    if cached is not None:
        body.unapplied = list(cached.unapplied)
    return body
