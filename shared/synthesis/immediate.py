"""Synthesis answered at once: from the cache, or rendered, stored and published.

``synthesize_now`` claims the request's cache key: a ready entry gives the user a record of
their own for the stored object (``cacheHit: true``, no provider call); the lease renders,
encodes and stores the audio (its timestamps computed while the audio is written) and
publishes the entry. ``finish`` completes the job, records each voice model's use and
builds the response.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from shared.audio.encode import encode
from shared.errors import NotFoundError
from shared.files.cache import CachedAudio, Lease
from shared.files.model import AudioFile
from shared.files.storage import (
    StoredAudio,
    adopt,
    read_timestamps,
    record_file,
    store_audio,
)
from shared.model import utcnow
from shared.store.leases import Heartbeat
from shared.synthesis.callbacks import notify_finished
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.model import (
    SynthesisJob,
    SynthesisResponse,
)
from shared.synthesis.prepare import Prepared, new_job
from shared.synthesis.render import timestamps_body
from shared.synthesis.repository import SynthesisJobRepository
from shared.synthesis.responses import response_for
from shared.synthesis.usage import cost_of, pend_model_use

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
            own = adopt(deps.audio, claimed, user_id)
            timestamps = read_timestamps(deps.audio, own.timestamps_path)
        except NotFoundError:
            flight.forget(prepared.key, claimed.file_path)  # cleaned up under us
            continue
        audio_file = record_file(deps.audio, user_id=user_id, job_id=job.id, cached=own)
        return finish(
            deps,
            job,
            prepared,
            audio_file=audio_file,
            cached=own,
            timestamps=timestamps,
            started=started,
            # Another user's render (a shared cache) is nobody's business: not a hit.
            hit=own is claimed,
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
    latency_ms = (time.perf_counter() - started) * 1000
    billed_characters, cost = 0, 0.0
    # The job's record and its voice models' uses land in one atomic batch: the uses
    # reach the counters later (shared.synthesis.usage), never lost, never twice.
    with deps.store.batch() as writes:
        SynthesisJobRepository(deps.store).add_in(writes, done)
        for voice, characters in prepared.billed():
            billed = 0 if hit else characters
            billed_characters += billed
            cost += cost_of(deps, voice.provider, billed)
            pend_model_use(
                deps,
                writes,
                voice,
                user_id=job.user_id,
                characters=billed,
                latency_ms=latency_ms,
                requested=characters,
            )
    notify_finished(deps.task_queue, deps.settings, done)
    body = response_for(
        deps, done, prepared.voice, audio_file=audio_file, cached=cached, timestamps=timestamps
    )
    body.billed_characters, body.cost = billed_characters, round(cost, 6)
    return body.model_copy(update=dict(prepared.extra))
