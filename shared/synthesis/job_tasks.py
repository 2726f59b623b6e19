"""The tasks of long synthesis jobs: one per sentence chunk, then one assembly.

A chunk task renders its chunk unless its PCM is already stored
(``synthesis-jobs/{jobId}/{index}.pcm`` plus its word timings, so a redelivered task does
no work twice), then sets its done marker on the job (one field write; progress is
done/total of the chunks' share of the work); a task that sees every marker set enqueues
``synthesis.assemble`` (once: its dedup key). A failed chunk is retried by the queue; on
the last attempt, or when the provider refuses for good, the job fails with a message
naming the chunk and the reason. Chunks say the pronunciation lexicons in the versions the
job was accepted with (its config pins them); one deleted meanwhile fails the job.
Assembly reads, stitches and encodes the chunks one at a time (the job's PCM is never
whole in memory; its progress on the job follows the chunks), offsets their timings and
uploads the file; then one transaction records the file, makes the cache entry ready,
completes the job and queues the model's use, unless a redelivered assembly did first
(its objects are then deleted again).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.audio.encode import EncodedAudio
from shared.audio.file_encode import file_encoder
from shared.audio.text import TextChunk
from shared.audio.timestamps import TimedWord
from shared.errors import SynthesisJobNotFoundError
from shared.files.repository import AudioFileRepository
from shared.files.storage import discard_upload, new_file, upload_audio
from shared.lexicons.lexicons import LexiconNotFoundError, select_lexicons
from shared.model import utcnow
from shared.providers.base import AudioSettings, ProviderError
from shared.store.base import Document, Transaction
from shared.synthesis.callbacks import notify_finished
from shared.synthesis.deps import SynthesisDeps
from shared.synthesis.jobs import (
    CHUNK_PREFIX,
    AssembleTask,
    ChunkTask,
    chunk_spans,
    delete_chunks,
    fail_job,
    queue_assembly,
    voice_of,
)
from shared.synthesis.model import (
    ResolvedVoice,
    SynthesisJob,
    SynthesisStatus,
    TimestampGranularity,
)
from shared.synthesis.render import (
    SAID_NOTHING,
    JoinedRest,
    PieceJoiner,
    Rendered,
    render_piece,
    timestamps_body,
)
from shared.synthesis.repository import (
    ASSEMBLED,
    SYNTHESIS_JOBS,
    SynthesisJobRepository,
    chunk_share,
    job_from,
)
from shared.synthesis.usage import cost_of, pend_model_use
from shared.synthesis.voices import provider_for
from shared.tasks.base import TaskContext
from shared.tasks.errors import GiveUpTask, RetryTask

logger = logging.getLogger(__name__)
_PROGRESS_INTERVAL_SECONDS = 0.5


def _chunk_names(job_id: str, index: int) -> tuple[str, str]:
    base = f"{CHUNK_PREFIX}/{job_id}/{index:04d}"
    return base + ".pcm", base + ".json"


def _job_document(repository: SynthesisJobRepository, job_id: str) -> Document | None:
    """Return the job's document, or None when the job is gone (its owner deleted their
    account): its remaining tasks have nothing to do, and retrying would not bring it back."""
    try:
        return repository.document(job_id)
    except SynthesisJobNotFoundError:
        logger.info("Synthesis job %s is gone: its task has nothing to do", job_id)
        return None


def run_chunk(deps: SynthesisDeps, payload: ChunkTask, ctx: TaskContext) -> None:
    """Render one chunk (once), record it done, and start assembly after the last one."""
    repository = SynthesisJobRepository(deps.store)
    document = _job_document(repository, payload.job_id)
    if document is None:
        return
    job = job_from(document)
    if job.status in (SynthesisStatus.COMPLETED, SynthesisStatus.FAILED):
        return
    spans = chunk_spans(document.data)
    start, end = spans[payload.index]
    pcm_name, words_name = _chunk_names(job.id, payload.index)
    bucket = deps.settings.audio_bucket
    stored_here = False
    if not deps.blobs.exists(bucket, words_name):
        try:
            rendered = _render_chunk(deps, job, job.text_content[start:end])
        except ProviderError as exc:
            failure = Failure(exc.message, retryable=exc.retryable)
            raise _retry_or_give_up(deps, ctx, job, (payload.index, len(spans)), failure) from exc
        except LexiconNotFoundError as exc:
            # Deleted since the job was accepted: its versions cannot be said any more.
            failure = Failure(exc.message, retryable=False)
            raise _retry_or_give_up(deps, ctx, job, (payload.index, len(spans)), failure) from exc
        except Exception as exc:
            failure = Failure("internal error", retryable=True)
            raise _retry_or_give_up(deps, ctx, job, (payload.index, len(spans)), failure) from exc
        deps.blobs.put(bucket, pcm_name, rendered.pcm, content_type="audio/L16")
        words = [word.to_row() for word in rendered.words]
        meta = {"sampleRate": rendered.sample_rate, "words": words, "unapplied": rendered.unapplied}
        deps.blobs.put(
            bucket, words_name, json.dumps(meta).encode(), content_type="application/json"
        )
        stored_here = True
    marked = repository.mark_chunk(job.id, payload.index)
    if marked.ended:
        if stored_here:
            # The job ended while this chunk rendered: failed (its failure deleted the
            # chunks stored before this one, ``fail_job``), completed (a redelivered
            # chunk's assembly deleted them) or gone: this one is of no use either.
            for name in (pcm_name, words_name):
                deps.blobs.delete(bucket, name)
        return
    if marked.all_done:
        queue_assembly(deps, job.id)


def _render_chunk(deps: SynthesisDeps, job: SynthesisJob, text: str) -> Rendered:
    voice = voice_of(job)
    provider = provider_for(deps.providers, voice)
    settings = AudioSettings.model_validate(job.config["settings"])
    # The versions the job was accepted with (pinned), not whatever is latest now.
    lexicons = select_lexicons(deps.store, job.user_id, job.config.get("lexicons"))
    return render_piece(provider, voice, text, settings, lexicons=lexicons)


@dataclass(frozen=True)
class Failure:
    """Why a chunk failed, and whether trying again may help."""

    reason: str
    retryable: bool


def _retry_or_give_up(
    deps: SynthesisDeps,
    ctx: TaskContext,
    job: SynthesisJob,
    position: tuple[int, int],
    failure: Failure,
) -> Exception:
    """Return the exception for the queue: retry, or (failing the job) give up."""
    index, total = position
    if failure.retryable and not ctx.is_last_attempt:
        return RetryTask(f"chunk {index} of job {job.id}: {failure.reason}")
    message = f"Chunk {index + 1} of {total} failed after {ctx.attempt} attempts: {failure.reason}"
    fail_job(deps, job.id, message)
    return GiveUpTask(message)


def _progress_recorder(
    repository: SynthesisJobRepository, job: SynthesisJob
) -> Callable[[float], None]:
    """Return what records the assembly's progress on the job, at most every half second."""
    share = chunk_share(job.output_format)
    last = [float("-inf")]

    def record(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_INTERVAL_SECONDS:
            last[0] = now
            repository.record_progress(job.id, share + (ASSEMBLED - share) * fraction)

    return record


def _stored_chunk(deps: SynthesisDeps, job_id: str, index: int) -> Rendered:
    """Return chunk ``index``'s stored PCM and timings."""
    bucket = deps.settings.audio_bucket
    pcm_name, words_name = _chunk_names(job_id, index)
    meta = json.loads(deps.blobs.get(bucket, words_name))
    words = [TimedWord.from_row(row) for row in meta["words"]]
    pcm = deps.blobs.get(bucket, pcm_name)
    return Rendered(pcm, int(meta["sampleRate"]), words, list(meta["unapplied"]))


def _assemble_audio(
    deps: SynthesisDeps,
    job: SynthesisJob,
    chunks: list[TextChunk],
    on_progress: Callable[[float], None],
) -> tuple[EncodedAudio | None, JoinedRest]:
    """Return the job's file, encoded as its chunks are read and stitched one at a time
    (None when they hold no audio at all), and the words of the whole; ``on_progress``
    gets the fraction of the chunks done."""
    piece = _stored_chunk(deps, job.id, 0)
    joiner = PieceJoiner(piece.sample_rate)
    encoder = file_encoder(job.output_format, piece.sample_rate, target_rate=job.sample_rate)
    encoder.start()
    for index, chunk in enumerate(chunks):
        if index:
            piece = _stored_chunk(deps, job.id, index)
        encoder.write(joiner.add(piece, chunk))
        on_progress((index + 1) / len(chunks))
    rest = joiner.finish()
    encoder.write(rest.pcm)
    encoder.finish()
    if not rest.duration:
        return None, rest
    return encoder.file(), rest


def run_assemble(deps: SynthesisDeps, payload: AssembleTask) -> None:
    """Stitch the chunks, store the file, publish the cache entry and complete the job.

    The chunks are read, stitched and encoded one at a time: the job's PCM is never whole
    in memory, only the encoded file is (``shared.audio.file_encode``).
    """
    started = time.perf_counter()
    repository = SynthesisJobRepository(deps.store)
    document = _job_document(repository, payload.job_id)
    if document is None:
        return
    job = job_from(document)
    if job.status is not SynthesisStatus.PROCESSING:
        return
    chunks = [TextChunk(job.text_content[s:e], s, e) for s, e in chunk_spans(document.data)]
    encoded, joined = _assemble_audio(deps, job, chunks, _progress_recorder(repository, job))
    if encoded is None:
        fail_job(deps, job.id, SAID_NOTHING)  # which deletes the chunks
        return
    config = job.config
    timestamps = None
    if config.get("includeTimestamps"):
        timestamps = functools.partial(
            timestamps_body,
            joined.words,
            TimestampGranularity(config["timestampGranularity"]),
            language=config.get("language"),
            phonemizer=deps.phonemizer,
        )
    uploaded = upload_audio(
        deps.audio,
        user_id=job.user_id,
        encoded=encoded,
        timestamps=timestamps,
        unapplied=tuple(joined.unapplied),
    )
    voice = voice_of(job)
    if job.voice_model_id:
        from shared.voice_models.repository import VoiceModelRepository  # noqa: PLC0415

        model = VoiceModelRepository(deps.store).get(job.voice_model_id)
        if model is not None:
            voice = ResolvedVoice(voice.provider, voice.voice_id, voice.language, model)
    audio_file = new_file(deps.audio, user_id=job.user_id, job_id=job.id, cached=uploaded.cached)
    characters = len(job.text_content)
    completed = job.complete(
        audio_file_id=audio_file.id,
        now=utcnow(),
        billed_characters=characters,
        cost=cost_of(deps, voice.provider, characters),
        unapplied=joined.unapplied,
    )
    latency_ms = (time.perf_counter() - started) * 1000

    def commit(tx: Transaction) -> bool:
        # A redelivered assembly that ran beside this one may have completed the job.
        current = tx.get(SYNTHESIS_JOBS, job.id)
        if current is None or job_from(current).status is not SynthesisStatus.PROCESSING:
            return False
        AudioFileRepository(deps.store).add_in(tx, audio_file)
        deps.flight.store_ready_in(tx, job.text_hash, uploaded.cached)
        repository.save_in(tx, completed)
        pend_model_use(
            deps,
            tx,
            voice,
            user_id=job.user_id,
            characters=characters,
            latency_ms=latency_ms,
            requested=characters,
        )
        return True

    try:
        committed = deps.store.run_transaction(commit)
    except BaseException:
        discard_upload(deps.audio, uploaded)
        raise
    if not committed:
        discard_upload(deps.audio, uploaded)
        return
    notify_finished(deps.task_queue, deps.settings, completed)
    delete_chunks(deps, job.id)
