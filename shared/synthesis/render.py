"""Text to timed PCM: one provider call per piece, timings aligned, pieces stitched.

``render_piece`` makes one provider call, with the request's pronunciation lexicons said
in the provider's best form (``shared.synthesis.pronunciation``), and aligns every word of
the input to the provider's own timings (``shared.audio.timestamps``), mapped back to the
words the user wrote, when the words are first asked for; a volume the provider could not
apply is applied to the PCM here. ``render_text`` cuts text longer than the provider
accepts at sentence boundaries, renders the chunks and joins them without clicks
(``shared.audio.stitch``), offsetting each chunk's words exactly; ``PieceJoiner`` does the
same join a piece at a time, for a long job whose audio is never whole in memory.
``timestamps_body``
turns words into the API's ``{words, syllables}`` (syllables from eSpeak phonemes when a
phonemizer is given, one per character for CJK). A provider outage always carries a
``retry_after`` so the HTTP answer has ``Retry-After``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.audio.pcm import scale_volume
from shared.audio.stitch import Stitcher, stitch
from shared.audio.syllables import syllable_timestamps
from shared.audio.text import TextChunk, split_sentences
from shared.audio.timestamps import (
    TimedWord,
    align_words,
    fit_to_speech,
    in_order,
    offset_timings,
)
from shared.lazy import lazy_module
from shared.providers.base import (
    AudioSettings,
    ProviderUnavailableError,
    TTSProvider,
    UnsupportedTextError,
)
from shared.synthesis.model import ResolvedVoice, TimestampGranularity
from shared.synthesis.pronunciation import original_words, pronounced_request
from shared.synthesis.spans import in_source

if TYPE_CHECKING:
    from shared.audio import respelling
    from shared.lexicons.lexicons import LexiconSelection
    from shared.providers import ssml as markup
else:
    # SSML's words as written: only SSML input loads them.
    respelling = lazy_module("shared.audio.respelling")
    markup = lazy_module("shared.providers.ssml")

DEFAULT_RETRY_AFTER = 5
Phonemizer = Callable[[Sequence[str], str | None], list[str | None]]
"""Returns the phonemes of each word (None where unknown) for a language."""


SAID_NOTHING = "The voice says nothing for this text: it rendered no audio"
"""Why a text the voice rendered no audio for (as eSpeak does for control characters) is
refused: nothing is stored, and the client must change the text."""


def said_nothing(provider: TTSProvider) -> UnsupportedTextError:
    """Return the error for a text ``provider`` rendered no audio for (``SAID_NOTHING``)."""
    return UnsupportedTextError(SAID_NOTHING, provider=provider.name)


@dataclass
class Rendered:
    """Joined PCM at ``sample_rate`` with one timed word per word of the input.

    ``timing`` is the words, or what aligns them on first use of ``words``: the audio can
    be encoded and its upload started before the words are aligned, and a request without
    timestamps never aligns them.
    """

    pcm: bytes
    sample_rate: int
    timing: list[TimedWord] | Callable[[], list[TimedWord]]
    unapplied: list[str] = field(default_factory=list)
    provider_seconds: float = 0.0

    @functools.cached_property
    def words(self) -> list[TimedWord]:
        """Return one timed word per word of the input (aligned now if not yet)."""
        return self.timing() if callable(self.timing) else self.timing

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
    lexicons: LexiconSelection | None = None,
) -> Rendered:
    """Return one provider call's audio with every word of ``text`` timed.

    For SSML the words are those the author wrote, each ``<sub>``'s content timed over
    its alias's words (matched to the timings by text), their spans in the document's
    source (``shared.synthesis.spans``); plain text's words span the text as given.
    ``lexicons``' rules are said in the provider's best form; the words stay the user's.

    Raises:
        ProviderError: the provider failed (unavailable ones with ``retry_after`` set).
    """
    spoken = pronounced_request(provider, voice, text, settings, ssml=ssml, lexicons=lexicons)
    started = time.perf_counter()
    try:
        result = provider.synthesize(spoken.request)
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

    def timing() -> list[TimedWord]:
        timings = original_words(spoken.applied, text, result.words, ssml=ssml)
        if ssml:
            # Timed on the words said, shown as the author wrote them (a <sub>'s content),
            # each spanning where it is written in the document.
            document = markup.ssml_text(markup.validate_ssml(text))
            said = align_words(document.spoken, timings, duration)
            written = respelling.words_as_written(
                said, document.written, document.respellings, duration
            )
            words = in_source(written, text, document.written)
        else:
            words = align_words(text, timings, duration)
        return fit_to_speech(words, pcm, result.sample_rate)

    return Rendered(pcm, result.sample_rate, timing, unapplied, elapsed)


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


class JoinedRest(NamedTuple):
    """The end of a piecewise join: the last PCM, and every word and unapplied setting."""

    pcm: bytes
    words: list[TimedWord]
    unapplied: list[str]
    duration: float


class PieceJoiner:
    """Joins rendered pieces in order as ``join_pieces`` does, one piece at a time.

    ``add`` returns the PCM the piece completes and ``finish`` the rest with the words;
    the PCM, words and unapplied settings are those of ``join_pieces`` over the same
    pieces. Only a crossfade's worth of audio is held between calls.
    """

    def __init__(self, sample_rate: int) -> None:
        self._stitcher = Stitcher(sample_rate)
        self._first: Rendered | None = None
        self._count = 0
        self._words: list[TimedWord] = []
        self._unapplied: list[str] = []

    def add(self, piece: Rendered, chunk: TextChunk) -> bytes:
        """Return the joined PCM that adding ``piece`` (spoken from ``chunk``) completes.

        Raises:
            ValueError: ``piece`` has another sample rate than the joiner.
        """
        if piece.sample_rate != self._stitcher.sample_rate:
            raise ValueError("pieces of one join must share one sample rate")
        pcm = self._stitcher.add(piece.pcm)
        if self._first is None:
            # A lone piece is taken as it is (join_pieces does not shift or reorder it);
            # its PCM is not kept, only its words and settings.
            self._first = Rendered(b"", piece.sample_rate, piece.words, piece.unapplied)
        offset = self._stitcher.offsets[-1]
        self._words.extend(offset_timings(piece.words, offset, chunk.start))
        self._unapplied.extend(name for name in piece.unapplied if name not in self._unapplied)
        self._count += 1
        return pcm

    def finish(self) -> JoinedRest:
        """Return the last of the PCM with the words of the whole (after every ``add``).

        Raises:
            ValueError: no piece was added.
        """
        pcm = self._stitcher.finish()
        duration = self._stitcher.duration_seconds
        if self._count == 1 and self._first is not None:
            return JoinedRest(pcm, self._first.words, self._first.unapplied, duration)
        return JoinedRest(pcm, in_order(self._words, duration), self._unapplied, duration)


def render_text(
    provider: TTSProvider,
    voice: ResolvedVoice,
    text: str,
    settings: AudioSettings,
    *,
    ssml: bool,
    chunk_chars: int,
    lexicons: LexiconSelection | None = None,
) -> Rendered:
    """Return ``text`` rendered, chunked at sentence ends when the provider needs it.

    Raises:
        ProviderError: a provider call failed.
    """
    limit = provider.capabilities.max_input_chars
    if ssml or len(text) <= limit:
        return render_piece(provider, voice, text, settings, ssml=ssml, lexicons=lexicons)
    chunks = plan_chunks(text, min(chunk_chars, limit))
    pieces = [
        render_piece(provider, voice, chunk.text, settings, lexicons=lexicons) for chunk in chunks
    ]
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
