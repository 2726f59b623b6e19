"""Streamed synthesis, the audio side: text order pieces synthesized ahead of the reader
and encoded as they come.

``stream_chunks`` cuts the text for streaming: the first sentence alone (cut at a clause
mark or a space beyond ``synthesis_stream_first_chunk_chars``: the first audio comes
soonest), then sentence chunks merged up to the chunk size. ``pieces`` yields the
audio of those chunks in order, or, when the request wants no timings and the provider
streams the request itself (``provider.streams``), the provider's own pieces. ``Encoding``
runs ``pieces`` at most ``synthesis_stream_ahead_chunks`` ahead of its reader
(``RunAhead``), encodes each piece as it comes and keeps the words, moved onto the whole
utterance's clock.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from shared.audio.stream_encode import StreamEncoder, stream_encoder
from shared.audio.text import TextChunk, split_sentences
from shared.audio.timestamps import TimedWord, offset_timings
from shared.providers.base import ErrorCategory, provider_error
from shared.synthesis.ahead import RunAhead
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.prepare import Prepared
from shared.synthesis.pronunciation import pronounced_request
from shared.synthesis.render import said_nothing


@dataclass(frozen=True)
class StreamChunk:
    """Encoded audio in stream order and the words it holds (whole-utterance clock).

    A cache hit's chunk carries its words' timings as they were stored (``stored``: the
    ``{words, syllables}`` its render computed, each syllable's ``wordIndex`` counted over
    the whole utterance) instead of ``words`` to compute them from.
    """

    audio: bytes
    words: tuple[TimedWord, ...] = ()
    # Index of the chunk's first word among all the utterance's words.
    first_word: int = 0
    stored: dict[str, Any] | None = None


@dataclass(frozen=True)
class Piece:
    """PCM of a stretch of the text, its words, and where the stretch starts in it."""

    pcm: bytes
    sample_rate: int
    words: list[TimedWord]
    char_start: int
    unapplied: tuple[str, ...] = ()


def stream_chunks(text: str, limit: int, first_limit: int) -> list[TextChunk]:
    """Return ``text`` in sentence chunks of at most ``limit`` characters, the rest merged up
    to the limit, after a first chunk that is the first sentence alone, cut at a clause mark
    or a space when longer than ``first_limit`` (so the first audio comes soonest)."""
    sentences = split_sentences(text, min(first_limit, limit), merge=False)
    if not sentences:
        return []
    first = sentences[0]
    rest = [
        TextChunk(chunk.text, chunk.start + first.end, chunk.end + first.end)
        for chunk in split_sentences(text[first.end :], limit)
    ]
    return [first, *rest]


def pieces(deps: SynthesisDeps, prepared: Prepared) -> Iterator[Piece]:
    """Yield the audio in text order: the provider's own stream, or sentence chunks."""
    provider = prepared.provider
    if not prepared.options.include_timestamps:
        spoken = pronounced_request(
            provider,
            prepared.voice,
            prepared.text,
            prepared.settings,
            ssml=prepared.ssml,
            lexicons=prepared.lexicons,
        )
        if provider.streams(spoken.request):
            for pcm in provider.stream_pcm(spoken.request):
                yield Piece(pcm, prepared.settings.sample_rate, [], 0)
            return
    limit = min(deps.settings.synthesis_stream_chunk_chars, provider.capabilities.max_input_chars)
    text = prepared.text
    first_limit = deps.settings.synthesis_stream_first_chunk_chars
    chunks = (
        [TextChunk(text, 0, len(text))]
        if prepared.ssml
        else stream_chunks(text, limit, first_limit)
    )
    for chunk in chunks:
        rendered = prepared.render_piece(chunk.text)
        yield Piece(
            rendered.pcm,
            rendered.sample_rate,
            rendered.words,
            chunk.start,
            tuple(rendered.unapplied),
        )


class Encoding:
    """The request's pieces, synthesized ahead of the reader and encoded as they come; the
    words collected on the whole utterance's clock."""

    def __init__(self, deps: SynthesisDeps, prepared: Prepared) -> None:
        self.deps = deps
        self.prepared = prepared
        self.words: list[TimedWord] = []
        self.encoder: StreamEncoder | None = None
        self.tail = b""
        # Settings the provider could not apply, as the stored entry reports them.
        self.unapplied: list[str] = []
        self.pieces = 0  # rendered so far, with audio or not

    def chunks(self) -> Generator[StreamChunk, None, None]:
        """Yield each piece encoded; closing it stops the synthesis running ahead."""
        prepared = self.prepared
        ahead = RunAhead(
            pieces(self.deps, prepared),
            self.deps.settings.synthesis_stream_ahead_chunks,
            name="synthesis-stream",
            first_alone=True,
        )
        offset = 0.0
        # Words of pieces said as no audio before the first that has some: they go out with
        # it, so that a text said as nothing at all fails before the answer's first byte.
        held: list[TimedWord] = []
        try:
            for piece in ahead:
                self.pieces += 1
                moved = offset_timings(piece.words, offset, piece.char_start)
                offset += len(piece.pcm) // 2 / piece.sample_rate
                self.unapplied.extend(n for n in piece.unapplied if n not in self.unapplied)
                if self.encoder is None and not piece.pcm:
                    held.extend(moved)
                    continue
                head = b""
                if self.encoder is None:
                    self.encoder = stream_encoder(
                        prepared.options.output_format,
                        piece.sample_rate,
                        prepared.settings.sample_rate,
                    )
                    head = self.encoder.start()
                words = (*held, *moved)
                held = []
                audio = head + self.encoder.write(piece.pcm)
                yield StreamChunk(audio, words, len(self.words))
                self.words.extend(words)
        finally:
            ahead.stop()

    def finish(self) -> StreamEncoder:
        """Return the finished encoder (its ``file`` is the whole audio).

        Raises:
            UnsupportedTextError: the provider's pieces held no audio (the text said nothing).
            ProviderError: the provider sent no piece at all.
        """
        if self.encoder is None:
            if self.pieces:
                raise said_nothing(self.prepared.provider)
            name = self.prepared.provider.name
            raise provider_error(name, ErrorCategory.PERMANENT, "the provider sent no audio")
        self.tail = self.encoder.finish()
        return self.encoder

    def tail_chunk(self) -> Iterator[StreamChunk]:
        """Yield what the encoder held back, if anything."""
        if self.tail:
            yield StreamChunk(self.tail, (), len(self.words))
