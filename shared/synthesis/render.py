"""Text to timed PCM: one provider call per piece, timings aligned, pieces stitched.

``render_piece`` makes one provider call and aligns every word of the input to the
provider's own timings (``shared.audio.timestamps``); a volume the provider could not
apply is applied to the PCM here. ``render_text`` cuts text longer than the provider
accepts at sentence boundaries, renders the chunks and joins them without clicks
(``shared.audio.stitch``), offsetting each chunk's words exactly. ``timestamps_body``
turns words into the API's ``{words, syllables}`` (syllables from eSpeak phonemes when a
phonemizer is given, one per character for CJK). A provider outage always carries a
``retry_after`` so the HTTP answer has ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.audio.pcm import scale_volume
from shared.audio.stitch import stitch
from shared.audio.syllables import syllable_timestamps
from shared.audio.text import TextChunk, split_sentences
from shared.audio.timestamps import (
    TimedWord,
    align_words,
    fit_to_speech,
    in_order,
    offset_timings,
)
from shared.audio.timing import WordTiming
from shared.providers.base import (
    AudioSettings,
    ProviderUnavailableError,
    SynthesisRequest,
    TTSProvider,
)
from shared.providers.ssml import ssml_to_text
from shared.synthesis.model import TimestampGranularity
from shared.synthesis.voices import ResolvedVoice

DEFAULT_RETRY_AFTER = 5
Phonemizer = Callable[[Sequence[str], str | None], list[str | None]]
"""Returns the phonemes of each word (None where unknown) for a language."""


@dataclass
class Rendered:
    """Joined PCM at ``sample_rate`` with one timed word per word of the input."""

    pcm: bytes
    sample_rate: int
    words: list[TimedWord]
    unapplied: list[str] = field(default_factory=list)
    provider_seconds: float = 0.0

    @property
    def duration(self) -> float:
        """Return the audio's length in seconds."""
        return len(self.pcm) // 2 / self.sample_rate


def render_piece(
    provider: TTSProvider,
    voice: ResolvedVoice,
    text: str,
    settings: AudioSettings,
    *,
    ssml: bool = False,
) -> Rendered:
    """Return one provider call's audio with every word of ``text`` timed.

    For SSML the words are those the document says, matched to the timings by text.

    Raises:
        ProviderError: the provider failed (unavailable ones with ``retry_after`` set).
    """
    request = SynthesisRequest(
        text=text, voice_id=voice.voice_id, ssml=ssml, language=voice.language, settings=settings
    )
    started = time.perf_counter()
    try:
        result = provider.synthesize(request)
    except ProviderUnavailableError as exc:
        if exc.retry_after is None:
            exc.retry_after = DEFAULT_RETRY_AFTER
        raise
    elapsed = time.perf_counter() - started
    pcm = result.pcm
    unapplied: list[str] = list(result.unapplied)
    if "volume" in unapplied:
        pcm = scale_volume(pcm, settings.volume)
        unapplied.remove("volume")
    duration = len(pcm) // 2 / result.sample_rate
    if ssml:
        spoken = ssml_to_text(text)
        timings = [
            WordTiming(word.text, word.start_seconds, word.end_seconds) for word in result.words
        ]
        words = align_words(spoken, timings, duration)
    else:
        words = align_words(text, result.words, duration)
    words = fit_to_speech(words, pcm, result.sample_rate)
    return Rendered(pcm, result.sample_rate, words, unapplied, elapsed)


def plan_chunks(text: str, limit: int) -> list[TextChunk]:
    """Return ``text`` as sentence chunks of at most ``limit`` characters (one when it fits)."""
    stripped = text.strip()
    if len(text) <= limit:
        start = text.index(stripped[0]) if stripped else 0
        return [TextChunk(stripped, start, start + len(stripped))]
    return split_sentences(text, limit)


def join_pieces(pieces: Sequence[Rendered], chunks: Sequence[TextChunk]) -> Rendered:
    """Return the pieces stitched in order, their words shifted into the whole text."""
    if len(pieces) == 1:
        return pieces[0]
    rate = pieces[0].sample_rate
    joined = stitch([piece.pcm for piece in pieces], rate)
    words: list[TimedWord] = []
    unapplied: list[str] = []
    for piece, chunk, offset in zip(pieces, chunks, joined.offsets, strict=True):
        words.extend(offset_timings(piece.words, offset, chunk.start))
        unapplied.extend(name for name in piece.unapplied if name not in unapplied)
    seconds = sum(piece.provider_seconds for piece in pieces)
    return Rendered(joined.pcm, rate, in_order(words, joined.duration_seconds), unapplied, seconds)


def render_text(
    provider: TTSProvider,
    voice: ResolvedVoice,
    text: str,
    settings: AudioSettings,
    *,
    ssml: bool,
    chunk_chars: int,
) -> Rendered:
    """Return ``text`` rendered, chunked at sentence ends when the provider needs it.

    Raises:
        ProviderError: a provider call failed.
    """
    limit = provider.capabilities.max_input_chars
    if ssml or len(text) <= limit:
        return render_piece(provider, voice, text, settings, ssml=ssml)
    chunks = plan_chunks(text, min(chunk_chars, limit))
    pieces = [render_piece(provider, voice, chunk.text, settings) for chunk in chunks]
    return join_pieces(pieces, chunks)


def timestamps_body(
    words: Sequence[TimedWord],
    granularity: TimestampGranularity,
    *,
    language: str | None,
    phonemizer: Phonemizer | None = None,
) -> dict[str, Any]:
    """Return ``{words, syllables}`` in seconds, each list present per ``granularity``."""
    body: dict[str, Any] = {}
    if granularity in (TimestampGranularity.WORD, TimestampGranularity.BOTH):
        body["words"] = [word.to_api() for word in words]
    if granularity in (TimestampGranularity.SYLLABLE, TimestampGranularity.BOTH):
        phonemes = phonemizer([w.text for w in words], language) if phonemizer else None
        syllables = syllable_timestamps(words, language, phonemes)
        extra = [(w.speaker, w.turn_index) for w in words]
        body["syllables"] = [
            {**syllable.to_api(), **_speaker_of(extra[syllable.word_index])}
            for syllable in syllables
        ]
    return body


def _speaker_of(tags: tuple[str | None, int | None]) -> dict[str, Any]:
    speaker, turn = tags
    body: dict[str, Any] = {}
    if speaker is not None:
        body["speaker"] = speaker
    if turn is not None:
        body["turnIndex"] = turn
    return body
