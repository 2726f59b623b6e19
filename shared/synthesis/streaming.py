"""Synthesis that streams: audio chunks as they are produced, then stored as usual.

``open_stream`` returns a ``SynthesisStream`` of ``StreamChunk`` (encoded bytes and the
words they hold, timed on the whole utterance's clock). A ready cache entry is served from
the stored object (``cache_hit``). Otherwise the request's cache key is claimed as
``synthesize_now`` claims it, and the text is synthesized sentence chunk by sentence chunk
(``synthesis_stream_chunk_chars``) in text order, each chunk encoded as it comes
(``shared.audio.stream_encode``), at most ``synthesis_stream_ahead_chunks`` chunks ahead
of what the reader has taken (``RunAhead``). A provider that streams a request itself
(``provider.streams``) is read as it produces when the request wants no timings. When the
last chunk is encoded the whole audio is stored, published to the cache and recorded as a
completed job (usage counted once), exactly as a non-streamed request would, so the next
identical request, streamed or not, is a hit. Closing the stream early (the client went
away) stops the synthesis after the chunk in progress, releases the cache key and stores
nothing. ``store=False`` (OpenAI-compatible speech that keeps nothing) streams a hit or a
render and records only the voice model's use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.audio.formats import content_type_of
from shared.audio.stream_encode import STREAMED_FORMATS, StreamEncoder, stream_encoder
from shared.audio.text import TextChunk, split_sentences
from shared.audio.timestamps import TimedWord, in_order, offset_timings
from shared.errors import NotFoundError, UnsupportedAudioFormatError
from shared.files.cache import CachedAudio, Lease
from shared.files.storage import adopt, read_timestamps, record_file, store_audio
from shared.providers.base import ErrorCategory, provider_error
from shared.store.leases import Heartbeat
from shared.synthesis.ahead import RunAhead
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.immediate import finish
from shared.synthesis.model import SynthesisJob, SynthesisResponse
from shared.synthesis.prepare import Prepared, new_job
from shared.synthesis.pronunciation import pronounced_request
from shared.synthesis.render import timestamps_body
from shared.synthesis.usage import record_model_use

logger = logging.getLogger(__name__)

CACHED_CHUNK_BYTES = 32 * 1024
_MAX_ATTEMPTS_ON_VANISHED_ENTRY = 3


@dataclass(frozen=True)
class StreamChunk:
    """Encoded audio in stream order and the words it holds (whole-utterance clock)."""

    audio: bytes
    words: tuple[TimedWord, ...] = ()
    # Index of the chunk's first word among all the utterance's words.
    first_word: int = 0


@dataclass
class SynthesisStream:
    """The chunks of one streamed synthesis; ``result`` is set once the last is taken."""

    chunks: Iterator[StreamChunk]
    content_type: str
    cache_hit: bool
    prepared: Prepared
    result: SynthesisResponse | None = None
    duration: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[StreamChunk]:
        return self.chunks

    def close(self) -> None:
        """Stop the work (nothing partial is stored)."""
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()

    def syllables_of(self, deps: SynthesisDeps, chunk: StreamChunk) -> dict[str, Any]:
        """Return the chunk's ``{words, syllables}`` per the request's granularity, each
        syllable's ``wordIndex`` counted over the whole utterance."""
        body = timestamps_body(
            chunk.words,
            self.prepared.options.timestamp_granularity,
            language=self.prepared.voice.language,
            phonemizer=deps.phonemizer,
        )
        for syllable in body.get("syllables", []):
            syllable["wordIndex"] += chunk.first_word
        return body


@dataclass(frozen=True)
class _Piece:
    pcm: bytes
    sample_rate: int
    words: list[TimedWord]
    char_start: int
    unapplied: tuple[str, ...] = ()


def open_stream(
    deps: SynthesisDeps, user_id: str, prepared: Prepared, *, store: bool = True
) -> SynthesisStream:
    """Return the stream of ``prepared``'s audio (nothing runs until it is iterated).

    Raises UnsupportedAudioFormatError for a format that cannot be streamed (flac).
    """
    fmt = prepared.options.output_format
    if fmt not in STREAMED_FORMATS:
        names = ", ".join(f.value for f in STREAMED_FORMATS)
        raise UnsupportedAudioFormatError(f"{fmt.value} cannot be streamed; use one of {names}")
    started = time.perf_counter()
    if not store:
        cached = deps.flight.lookup(prepared.key)
        stream = SynthesisStream(iter(()), "", cache_hit=cached is not None, prepared=prepared)
        stream.chunks = _unstored(deps, user_id, stream, cached, started)
        return _typed(stream, cached)
    job = new_job(user_id, prepared).start()
    claimed = _claim(deps, user_id, prepared, job, started)
    if isinstance(claimed, Lease):
        stream = SynthesisStream(iter(()), "", cache_hit=False, prepared=prepared)
        stream.chunks = _rendered(deps, user_id, stream, job=job, lease=claimed, started=started)
        return _typed(stream, None)
    response, own = claimed
    stream = SynthesisStream(iter(()), "", cache_hit=response.cache_hit, prepared=prepared)
    stream.result, stream.duration = response, own.duration
    data = deps.blobs.get(deps.settings.audio_bucket, own.file_path)
    stream.chunks = _stored(data, response.timestamps, own.duration)
    return _typed(stream, own)


def _typed(stream: SynthesisStream, cached: CachedAudio | None) -> SynthesisStream:
    # Encoders write at the request's rate (``audio_settings`` chose one the format takes).
    prepared = stream.prepared
    rate = cached.sample_rate if cached is not None else prepared.settings.sample_rate
    stream.content_type = content_type_of(prepared.options.output_format, rate)
    return stream


def _claim(
    deps: SynthesisDeps, user_id: str, prepared: Prepared, job: SynthesisJob, started: float
) -> Lease | tuple[SynthesisResponse, CachedAudio]:
    """Return a lease to render, or a hit's finished response and its stored object."""
    flight = deps.flight
    for _ in range(_MAX_ATTEMPTS_ON_VANISHED_ENTRY):
        claimed = flight.claim(prepared.key)
        if not isinstance(claimed, CachedAudio):
            return claimed
        try:
            own = adopt(deps.audio, claimed, user_id)
            timestamps = read_timestamps(deps.audio, own.timestamps_path)
        except NotFoundError:
            flight.forget(prepared.key, claimed.file_path)
            continue
        audio_file = record_file(deps.audio, user_id=user_id, job_id=job.id, cached=own)
        response = finish(
            deps,
            job,
            prepared,
            audio_file=audio_file,
            cached=own,
            timestamps=timestamps,
            started=started,
            hit=own is claimed,
        )
        return response, own
    return Lease(prepared.key, job.id, cached=False)


def _stored(
    data: bytes, timestamps: dict[str, Any] | None, duration: float
) -> Iterator[StreamChunk]:
    """Yield a stored file in pieces; each word goes with the piece holding its start
    (by byte position, which is proportional to time for these formats up to headers)."""
    words = [
        TimedWord(w["text"], w["start"], w["end"], 0, 0)
        for w in (timestamps or {}).get("words", [])
    ]
    size = max(len(data), 1)
    given = 0
    for begin in range(0, len(data), CACHED_CHUNK_BYTES):
        end = min(begin + CACHED_CHUNK_BYTES, len(data))
        last = end >= len(data)
        until = duration * end / size
        mine = [w for w in words[given:] if last or w.start < until]
        yield StreamChunk(data[begin:end], tuple(mine), given)
        given += len(mine)


def stream_chunks(text: str, limit: int) -> list[TextChunk]:
    """Return ``text`` in sentence chunks of at most ``limit`` characters: the first
    sentence alone (the first audio comes soonest), the rest merged up to the limit."""
    sentences = split_sentences(text, limit, merge=False)
    if not sentences:
        return []
    first = sentences[0]
    rest = [
        TextChunk(chunk.text, chunk.start + first.end, chunk.end + first.end)
        for chunk in split_sentences(text[first.end :], limit)
    ]
    return [first, *rest]


def _pieces(deps: SynthesisDeps, prepared: Prepared) -> Iterator[_Piece]:
    """Yield the audio in text order: the provider's own stream, or sentence chunks."""
    provider = prepared.provider
    spoken = pronounced_request(
        provider,
        prepared.voice,
        prepared.text,
        prepared.settings,
        ssml=prepared.ssml,
        lexicons=prepared.lexicons,
    )
    wants_timings = prepared.options.include_timestamps
    if not wants_timings and provider.streams(spoken.request):
        for pcm in provider.stream_pcm(spoken.request):
            yield _Piece(pcm, prepared.settings.sample_rate, [], 0)
        return
    limit = min(deps.settings.synthesis_stream_chunk_chars, provider.capabilities.max_input_chars)
    text = prepared.text
    chunks = [TextChunk(text, 0, len(text))] if prepared.ssml else stream_chunks(text, limit)
    for chunk in chunks:
        rendered = prepared.render_piece(chunk.text)
        yield _Piece(
            rendered.pcm,
            rendered.sample_rate,
            rendered.words,
            chunk.start,
            tuple(rendered.unapplied),
        )


class _Encoding:
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

    def chunks(self) -> Generator[StreamChunk, None, None]:
        """Yield each piece encoded; closing it stops the synthesis running ahead."""
        prepared = self.prepared
        ahead = RunAhead(
            _pieces(self.deps, prepared),
            self.deps.settings.synthesis_stream_ahead_chunks,
            name="synthesis-stream",
        )
        offset = 0.0
        try:
            for piece in ahead:
                head = b""
                if self.encoder is None:
                    self.encoder = stream_encoder(
                        prepared.options.output_format,
                        piece.sample_rate,
                        prepared.settings.sample_rate,
                    )
                    head = self.encoder.start()
                moved = offset_timings(piece.words, offset, piece.char_start)
                offset += len(piece.pcm) // 2 / piece.sample_rate
                audio = head + self.encoder.write(piece.pcm)
                yield StreamChunk(audio, tuple(moved), len(self.words))
                self.words.extend(moved)
                self.unapplied.extend(n for n in piece.unapplied if n not in self.unapplied)
        finally:
            ahead.stop()

    def finish(self) -> StreamEncoder:
        """Return the finished encoder (its ``file`` is the whole audio); raise ProviderError
        when no audio came."""
        if self.encoder is None:
            name = self.prepared.provider.name
            raise provider_error(name, ErrorCategory.PERMANENT, "the provider sent no audio")
        self.tail = self.encoder.finish()
        return self.encoder

    def tail_chunk(self) -> Iterator[StreamChunk]:
        """Yield what the encoder held back, if anything."""
        if self.tail:
            yield StreamChunk(self.tail, (), len(self.words))


def _rendered(
    deps: SynthesisDeps,
    user_id: str,
    stream: SynthesisStream,
    *,
    job: SynthesisJob,
    lease: Lease,
    started: float,
) -> Iterator[StreamChunk]:
    prepared = stream.prepared
    flight = deps.flight
    heartbeat = Heartbeat(lambda: flight.renew(lease), flight.renew_every, name=lease.key[:16])
    encoding = _Encoding(deps, prepared)
    chunks = encoding.chunks()
    try:
        with heartbeat:
            yield from chunks
            encoded = encoding.finish().file()
            options = prepared.options
            timestamps = (
                timestamps_body(
                    in_order(encoding.words, encoded.duration_seconds),
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
                job_id=job.id,
                encoded=encoded,
                timestamps=timestamps,
                unapplied=tuple(encoding.unapplied),
            )
    except BaseException as exc:
        chunks.close()  # the synthesis running ahead stops first
        flight.abandon(lease)
        if isinstance(exc, GeneratorExit):
            logger.info("A streamed synthesis stopped before its end (its reader went away)")
        raise
    flight.publish(lease, stored.cached)
    stream.duration = encoded.duration_seconds
    stream.result = finish(
        deps,
        job,
        prepared,
        audio_file=stored.audio_file,
        cached=stored.cached,
        timestamps=stored.timestamps,
        started=started,
        hit=False,
    )
    yield from encoding.tail_chunk()


def _unstored(
    deps: SynthesisDeps,
    user_id: str,
    stream: SynthesisStream,
    cached: CachedAudio | None,
    started: float,
) -> Iterator[StreamChunk]:
    data = None
    if cached is not None:
        try:
            data = deps.blobs.get(deps.settings.audio_bucket, cached.file_path)
        except NotFoundError:
            stream.cache_hit = False  # cleaned up meanwhile: render it
    if data is not None and cached is not None:
        yield from _stored(data, None, cached.duration)
        stream.duration = cached.duration
    else:
        encoding = _Encoding(deps, stream.prepared)
        chunks = encoding.chunks()
        try:
            yield from chunks
        finally:
            chunks.close()
        stream.duration = encoding.finish().duration_seconds
        yield from encoding.tail_chunk()
    latency_ms = (time.perf_counter() - started) * 1000
    for voice, characters in stream.prepared.billed():
        record_model_use(
            deps,
            voice,
            user_id=user_id,
            characters=0 if stream.cache_hit else characters,
            latency_ms=latency_ms,
            requested=characters,
        )
