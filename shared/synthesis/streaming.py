"""Synthesis that streams: audio chunks as they are produced, then stored as usual.

``open_stream`` returns a ``SynthesisStream`` of ``StreamChunk`` (encoded bytes and the
words they hold, timed on the whole utterance's clock and spanning its text). A ready cache
entry is served from the stored object (``cache_hit``) with the timings stored beside it
(words, syllables or both, as the render computed them) placed on the request's own text
(``shared.synthesis.spans``). Otherwise the request's cache key is claimed as
``synthesize_now`` claims it, and the audio comes from ``shared.synthesis.stream_render``
as it is iterated: sentence chunks in text order (or the provider's own stream), each
encoded as it comes, synthesized at most ``synthesis_stream_ahead_chunks`` chunks ahead
of what the reader has taken. When the
last chunk is encoded the whole audio is stored, published to the cache and recorded as a
completed job (usage counted once), exactly as a non-streamed request would, so the next
identical request, streamed or not, is a hit. Closing the stream early (the client went
away) stops the synthesis after the chunk in progress, releases the cache key and stores
nothing. ``store=False`` (OpenAI-compatible speech that keeps nothing) streams a hit or a
render and records only the voice model's use.
"""

from __future__ import annotations

import inspect
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from shared.audio.formats import content_type_of
from shared.audio.stream_encode import STREAMED_FORMATS
from shared.audio.timestamps import in_order
from shared.errors import NotFoundError, UnsupportedAudioFormatError
from shared.files.cache import CachedAudio, Lease
from shared.files.storage import adopt, read_timestamps, upload_audio
from shared.store.leases import Heartbeat
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.immediate import finish, timestamps_source
from shared.synthesis.model import SynthesisJob, SynthesisResponse
from shared.synthesis.prepare import Prepared, new_job
from shared.synthesis.render import timestamps_body
from shared.synthesis.spans import UnplacedWordsError, shifted
from shared.synthesis.stream_render import Encoding, StreamChunk
from shared.synthesis.usage import record_model_use

logger = logging.getLogger(__name__)

CACHED_CHUNK_BYTES = 32 * 1024
_MAX_ATTEMPTS_ON_VANISHED_ENTRY = 3


@dataclass
class SynthesisStream:
    """The chunks of one streamed synthesis; ``result`` is set once the last is taken."""

    chunks: Iterator[StreamChunk]
    content_type: str
    cache_hit: bool
    prepared: Prepared
    result: SynthesisResponse | None = None
    duration: float = 0.0
    # Releases the claimed cache key of a stream closed before it was ever iterated.
    release: Callable[[], None] | None = None

    def __iter__(self) -> Iterator[StreamChunk]:
        return self.chunks

    def close(self) -> None:
        """Stop the work (nothing partial is stored)."""
        if not isinstance(self.chunks, Generator):
            return
        unstarted = inspect.getgeneratorstate(self.chunks) == inspect.GEN_CREATED
        self.chunks.close()
        if unstarted and self.release is not None:
            self.release()

    def timings_of(self, deps: SynthesisDeps, chunk: StreamChunk) -> dict[str, Any]:
        """Return the chunk's ``{words, syllables}`` per the request's granularity, each
        syllable's ``wordIndex`` counted over the whole utterance, its spans on its text
        as sent: a hit's as stored, a render's computed from its words."""
        if chunk.stored is not None:
            return shifted(chunk.stored, self.prepared.leads)
        body = timestamps_body(
            chunk.words,
            self.prepared.options.timestamp_granularity,
            language=self.prepared.voice.language,
            phonemizer=deps.phonemizer,
        )
        for syllable in body.get("syllables", []):
            syllable["wordIndex"] += chunk.first_word
        return shifted(body, self.prepared.leads)


def open_stream(
    deps: SynthesisDeps, user_id: str, prepared: Prepared, *, store: bool = True
) -> SynthesisStream:
    """Return the stream of ``prepared``'s audio: the cache key is claimed (a hit recorded)
    now, the synthesis runs as the stream is iterated; iterate it or close it.

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
        lease = claimed
        stream.release = lambda: deps.flight.abandon(lease)
        return _typed(stream, None)
    response, own, timestamps = claimed
    stream = SynthesisStream(iter(()), "", cache_hit=response.cache_hit, prepared=prepared)
    stream.result, stream.duration = response, own.duration
    data = deps.blobs.get(deps.settings.audio_bucket, own.file_path)
    stream.chunks = _stored(data, timestamps, own.duration)
    return _typed(stream, own)


def _typed(stream: SynthesisStream, cached: CachedAudio | None) -> SynthesisStream:
    # Encoders write at the request's rate (``audio_settings`` chose one the format takes).
    prepared = stream.prepared
    rate = cached.sample_rate if cached is not None else prepared.settings.sample_rate
    stream.content_type = content_type_of(prepared.options.output_format, rate)
    return stream


def _claim(
    deps: SynthesisDeps, user_id: str, prepared: Prepared, job: SynthesisJob, started: float
) -> Lease | tuple[SynthesisResponse, CachedAudio, dict[str, Any] | None]:
    """Return a lease to render, or a hit's finished response, its stored object and its
    timestamps placed on the request's text (as a render's: ``timings_of`` shows them)."""
    flight = deps.flight
    for _ in range(_MAX_ATTEMPTS_ON_VANISHED_ENTRY):
        claimed = flight.claim(prepared.key)
        if not isinstance(claimed, CachedAudio):
            return claimed
        try:
            timestamps = prepared.placed(read_timestamps(deps.audio, claimed.timestamps_path))
            own = adopt(deps.audio, claimed, user_id)
        except NotFoundError:
            flight.forget(prepared.key, claimed.file_path)
            continue
        except UnplacedWordsError:
            logger.warning("A cached render's words are not its request's: rendered again")
            break
        response = finish(
            deps,
            job,
            prepared,
            cached=own,
            timestamps=timestamps,
            started=started,
            hit=own is claimed,
        )
        return response, own, timestamps
    return Lease(prepared.key, job.id, cached=False)


def _stored(
    data: bytes, timestamps: dict[str, Any] | None, duration: float
) -> Iterator[StreamChunk]:
    """Yield a stored file in pieces; each word's stored timings (its syllables with it)
    go with the piece holding its start (by byte position, which is proportional to time
    for these formats up to headers)."""
    starts = _word_starts(timestamps or {})
    # Each stored syllable's word: they are in word order, as ``timestamps_body`` made them.
    owners = [syllable["wordIndex"] for syllable in (timestamps or {}).get("syllables", [])]
    size = max(len(data), 1)
    given = 0
    for begin in range(0, len(data), CACHED_CHUNK_BYTES):
        end = min(begin + CACHED_CHUNK_BYTES, len(data))
        last = end >= len(data)
        until = duration * end / size
        taken = given
        while taken < len(starts) and (last or starts[taken] < until):
            taken += 1
        mine = None if timestamps is None else _timings_of_words(timestamps, owners, given, taken)
        yield StreamChunk(data[begin:end], first_word=given, stored=mine)
        given = taken


def _word_starts(timestamps: dict[str, Any]) -> list[float]:
    """Return when each stored word starts: its own start, or its first syllable's (a
    request for syllables only stores no words)."""
    if "words" in timestamps:
        return [word["start"] for word in timestamps["words"]]
    starts: list[float] = []
    for syllable in timestamps.get("syllables", []):
        if syllable["wordIndex"] == len(starts):
            starts.append(syllable["start"])
    return starts


def _timings_of_words(
    timestamps: dict[str, Any], owners: Sequence[int], first: int, stop: int
) -> dict[str, Any]:
    """Return the stored ``{words, syllables}`` of the words ``first`` to ``stop`` (end
    exclusive; ``owners`` names each syllable's word), each list present as it is stored
    (per the request's granularity)."""
    mine: dict[str, Any] = {}
    if "words" in timestamps:
        mine["words"] = timestamps["words"][first:stop]
    if "syllables" in timestamps:
        syllables = timestamps["syllables"]
        mine["syllables"] = syllables[bisect_left(owners, first) : bisect_left(owners, stop)]
    return mine


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
    encoding = Encoding(deps, prepared)
    chunks = encoding.chunks()
    try:
        with heartbeat:
            yield from chunks
            encoded = encoding.finish().file()
            words = in_order(encoding.words, encoded.duration_seconds)
            uploaded = upload_audio(
                deps.audio,
                user_id=user_id,
                encoded=encoded,
                timestamps=timestamps_source(deps, prepared, lambda: words),
                unapplied=tuple(encoding.unapplied),
            )
    except BaseException as exc:
        chunks.close()  # the synthesis running ahead stops first
        flight.abandon(lease)
        if isinstance(exc, GeneratorExit):
            logger.info("A streamed synthesis stopped before its end (its reader went away)")
        raise
    stream.duration = encoded.duration_seconds
    stream.result = finish(
        deps,
        job,
        prepared,
        cached=uploaded.cached,
        timestamps=uploaded.timestamps,
        started=started,
        hit=False,
        uploaded=uploaded,
        lease=lease,
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
        encoding = Encoding(deps, stream.prepared)
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
