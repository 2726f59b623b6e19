"""Synthesis answered with the audio bytes alone, storing nothing for the user.

The OpenAI-compatible speech route answers audio, not a file record, so by default
(``openai_speech_storage = "none"``) it keeps nothing: a ready cache entry's bytes are
served as they are (a hit), anything else is rendered and encoded in memory and answered.
No audio file, job record or cache entry is written, so these calls never fill the user's
storage quota. Each use of a voice model is recorded as any short synthesis's is: in the
usage outbox, counted before anyone reads the counters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared.audio.encode import encode
from shared.audio.formats import content_type_of
from shared.errors import NotFoundError
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.prepare import Prepared
from shared.synthesis.usage import pend_model_use


@dataclass(frozen=True)
class SpokenAudio:
    """Encoded audio, its Content-Type, and whether it came from the cache."""

    data: bytes
    content_type: str
    cache_hit: bool


def speak_unstored(deps: SynthesisDeps, user_id: str, prepared: Prepared) -> SpokenAudio:
    """Return the audio of ``prepared`` without storing anything for ``user_id``.

    Raises ProviderError when the provider fails.
    """
    started = time.perf_counter()
    cached = deps.flight.lookup(prepared.key)
    spoken: SpokenAudio | None = None
    if cached is not None:
        try:
            data = deps.blobs.get(deps.settings.audio_bucket, cached.file_path)
        except NotFoundError:
            data = None  # cleaned up meanwhile: render it
        if data is not None:
            fmt = prepared.options.output_format
            spoken = SpokenAudio(data, content_type_of(fmt, cached.sample_rate), cache_hit=True)
    if spoken is None:
        rendered = prepared.render(deps.settings.synthesis_chunk_chars)
        encoded = encode(
            rendered.pcm,
            rendered.sample_rate,
            prepared.options.output_format,
            target_rate=prepared.settings.sample_rate,
        )
        spoken = SpokenAudio(encoded.data, encoded.content_type, cache_hit=False)
    latency_ms = (time.perf_counter() - started) * 1000
    # One commit for the uses and their cache scope bumps; counted late (synthesis.usage).
    with deps.store.batch() as writes:
        for voice, characters in prepared.billed():
            pend_model_use(
                deps,
                writes,
                voice,
                user_id=user_id,
                characters=0 if spoken.cache_hit else characters,
                latency_ms=latency_ms,
                requested=characters,
            )
    return spoken
