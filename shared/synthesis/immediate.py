"""Synthesis answered at once: from the cache, or rendered, stored and published.

``synthesize_now`` claims the request's cache key: a ready entry gives the user a record of
their own for the stored object (``cacheHit: true``, no provider call), its words placed on
the request's own text (``shared.synthesis.spans``); the lease renders,
encodes and uploads the audio (its words aligned and timestamps computed while the audio
is written). ``finish`` then commits in one transaction what the request did: the user's
file record (and storage used), the cache entry made ready, the completed job and each
voice model's use; it builds the response. One commit is one round trip to Firestore, and
nothing is half-recorded: a failed commit leaves no record, no entry naming objects that
no record holds (they are deleted again) and no use counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from shared.audio.encode import encode
from shared.audio.timestamps import TimedWord
from shared.errors import NotFoundError
from shared.files.cache import CachedAudio, Lease
from shared.files.repository import AudioFileRepository
from shared.files.storage import (
    UploadedAudio,
    adopt,
    discard_upload,
    new_file,
    read_timestamps,
    upload_audio,
)
from shared.model import utcnow
from shared.store.base import Transaction
from shared.store.leases import Heartbeat
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.model import (
    SynthesisJob,
    SynthesisResponse,
)
from shared.synthesis.prepare import Prepared, new_job
from shared.synthesis.render import timestamps_body
from shared.synthesis.repository import SynthesisJobRepository
from shared.synthesis.responses import response_for
from shared.synthesis.spans import UnplacedWordsError, shifted
from shared.synthesis.usage import cost_of, pend_model_use

logger = logging.getLogger(__name__)

_MAX_ATTEMPTS_ON_VANISHED_ENTRY = 3


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
            # The render may be of this text spaced otherwise: its words, placed on this.
            timestamps = prepared.placed(read_timestamps(deps.audio, claimed.timestamps_path))
            own = adopt(deps.audio, claimed, user_id)
        except NotFoundError:
            flight.forget(prepared.key, claimed.file_path)  # cleaned up under us
            continue
        except UnplacedWordsError:
            logger.warning("A cached render's words are not its request's: rendered again")
            break
        return finish(
            deps,
            job,
            prepared,
            cached=own,
            timestamps=timestamps,
            started=started,
            # Another user's render (a shared cache) is nobody's business: not a hit.
            hit=own is claimed,
        )
    uploaded = render_and_upload(deps, user_id, prepared, claim)
    return finish(
        deps,
        job,
        prepared,
        cached=uploaded.cached,
        timestamps=uploaded.timestamps,
        started=started,
        hit=False,
        uploaded=uploaded,
        lease=claim,
    )


def render_and_upload(
    deps: SynthesisDeps, user_id: str, prepared: Prepared, lease: Lease
) -> UploadedAudio:
    """Render, encode and upload ``prepared`` while holding ``lease``.

    The upload starts as soon as the audio is encoded; the words are aligned and the
    timestamps computed while it is written. The lease is abandoned on failure; on success
    ``finish`` publishes it.
    """
    flight = deps.flight
    heartbeat = Heartbeat(lambda: flight.renew(lease), flight.renew_every, name=lease.key[:16])
    try:
        with heartbeat:
            rendered = prepared.render(deps.settings.synthesis_chunk_chars)
            options = prepared.options
            encoded = encode(
                rendered.pcm,
                rendered.sample_rate,
                options.output_format,
                target_rate=prepared.settings.sample_rate,
            )
            return upload_audio(
                deps.audio,
                user_id=user_id,
                encoded=encoded,
                timestamps=timestamps_source(deps, prepared, lambda: rendered.words),
                unapplied=tuple(rendered.unapplied),
            )
    except BaseException:
        flight.abandon(lease)
        raise


def timestamps_source(
    deps: SynthesisDeps, prepared: Prepared, words: Callable[[], Sequence[TimedWord]]
) -> Callable[[], dict[str, Any]] | None:
    """Return what computes the request's timestamps from ``words()`` (``upload_audio``
    calls it while the audio is written), or None when the request asks for none."""
    options = prepared.options
    if not options.include_timestamps:
        return None
    return lambda: timestamps_body(
        words(),
        options.timestamp_granularity,
        language=prepared.voice.language,
        phonemizer=deps.phonemizer,
    )


def finish(
    deps: SynthesisDeps,
    job: SynthesisJob,
    prepared: Prepared,
    *,
    cached: CachedAudio,
    timestamps: dict[str, Any] | None,
    started: float,
    hit: bool,
    uploaded: UploadedAudio | None = None,
    lease: Lease | None = None,
) -> SynthesisResponse:
    """Commit the request's records in one transaction; return the response.

    ``cached`` is the user's own stored object (adopted from the cache, or ``uploaded``
    by this request under ``lease``, whose entry becomes ready in the same commit). When
    the commit fails, the lease is abandoned and the uploaded objects are deleted again.
    """
    now = utcnow()
    audio_file = new_file(
        deps.audio,
        user_id=job.user_id,
        job_id=job.id,
        cached=cached,
        file_id=uploaded.file_id if uploaded is not None else None,
        now=now,
    )
    billed = [
        (voice, characters, 0 if hit else characters) for voice, characters in prepared.billed()
    ]
    done = job.complete(
        audio_file_id=audio_file.id,
        now=now,
        cache_hit=hit,
        billed_characters=sum(characters for _, _, characters in billed),
        cost=round(sum(cost_of(deps, voice.provider, c) for voice, _, c in billed), 6),
        unapplied=cached.unapplied,
    )
    # The model's use records the latency in the commit below, so it is the time to the
    # finished audio: the commit that records it cannot time itself.
    latency_ms = (time.perf_counter() - started) * 1000

    def commit(tx: Transaction) -> None:
        AudioFileRepository(deps.store).add_in(tx, audio_file)
        if lease is not None:
            deps.flight.publish_in(tx, lease, cached)
        SynthesisJobRepository(deps.store).add_in(tx, done)
        # The uses reach the counters later (shared.synthesis.usage), never lost, never twice.
        for voice, requested, characters in billed:
            pend_model_use(
                deps,
                tx,
                voice,
                user_id=job.user_id,
                characters=characters,
                latency_ms=latency_ms,
                requested=requested,
            )

    try:
        deps.store.run_transaction(commit)
    except BaseException:
        if lease is not None:
            deps.flight.abandon(lease)
        if uploaded is not None:
            discard_upload(deps.audio, uploaded)
        raise
    if done.config.get("callbackUrl"):
        # Only a request that asked for a callback loads the callbacks' code (cold starts).
        from shared.synthesis.callbacks import notify_finished  # noqa: PLC0415

        notify_finished(deps.task_queue, deps.settings, done)
    shown = None if timestamps is None else shifted(timestamps, prepared.leads)
    return response_for(deps, done, prepared.voice, audio_file=audio_file, timestamps=shown)
