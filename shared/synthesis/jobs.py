"""Long texts as async jobs: a job with its chunk plan, chunk tasks, and its status.

``start_job`` answers a cache hit at once; otherwise it stores a job with its chunk plan
(sentence chunks of ``synthesis_chunk_chars``, character spans into the text) and
enqueues one ``synthesis.chunk`` task per chunk on the synthesis queue (de-duplicated by
job and index), so the chunks are synthesized in parallel up to the queue's concurrency;
``shared.synthesis.job_tasks`` runs them and the final assembly. ``job_status``
shows the owner the job: status, progress 0..1, estimated duration, its file and
timestamps once completed, the error once failed; ``list_jobs`` pages through the owner's
jobs, newest first. Concurrent identical long jobs are not
single-flighted (each runs once); the cache serves every later request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import NotFoundError, SynthesisJobNotFoundError, echoed
from shared.files.repository import AudioFileRepository
from shared.model import RequestModel, utcnow
from shared.synthesis.model import ResolvedVoice, SynthesisJob, SynthesisResponse, SynthesisStatus
from shared.synthesis.repository import (
    SYNTHESIS_JOBS,
    SynthesisJobRepository,
    job_document,
    job_from,
)
from shared.synthesis.responses import TEXT_LEADS, TURN_LENGTHS, response_for
from shared.tasks.errors import TaskAlreadyExistsError

if TYPE_CHECKING:
    from shared.store.base import Transaction
    from shared.synthesis.deps import SynthesisDeps
    from shared.synthesis.prepare import Prepared

# Starting and failing a job load the speech path and the task queue's callbacks where they
# run; showing and listing jobs (the synthesis function's cold start) read the store only.

logger = logging.getLogger(__name__)

CHUNK_TASK = "synthesis.chunk"
ASSEMBLE_TASK = "synthesis.assemble"
CHUNK_PREFIX = "synthesis-jobs"
"""Where a long job's rendered chunks wait for its assembly: ``{CHUNK_PREFIX}/{jobId}/``."""
MAX_JOBS_PAGE = 100


class ChunkTask(BaseModel):
    """Payload of ``synthesis.chunk``."""

    # defer_build: the validator is built on first use, not by each cold start importing this.
    model_config = ConfigDict(defer_build=True)

    job_id: str
    index: int


class AssembleTask(BaseModel):
    """Payload of ``synthesis.assemble``."""

    model_config = ConfigDict(defer_build=True)

    job_id: str


def start_job(deps: SynthesisDeps, user_id: str, prepared: Prepared) -> SynthesisResponse:
    """Return a cache hit at once, or a pending job whose chunk tasks are queued."""
    from shared.audio.text import split_sentences  # noqa: PLC0415 - see the imports
    from shared.synthesis.immediate import synthesize_now  # noqa: PLC0415 - see the imports
    from shared.synthesis.prepare import new_job  # noqa: PLC0415 - see the imports

    cached = deps.flight.lookup(prepared.key)
    if cached is not None:
        return synthesize_now(deps, user_id, prepared)
    chunks = split_sentences(prepared.text, deps.settings.synthesis_chunk_chars)
    job = new_job(
        user_id,
        prepared,
        estimated_duration=max(1, round(prepared.seconds)),
    )
    SynthesisJobRepository(deps.store).add(
        job, chunks=[{"start": c.start, "end": c.end} for c in chunks], chunks_done={}
    )
    # An instance that dies before every chunk is queued leaves the rest to the sweep
    # (``shared.synthesis.job_sweep``), which queues them under the same keys.
    queue_chunks(deps, job.id, range(len(chunks)))
    return response_for(deps, job, prepared.voice)


def queue_chunks(deps: SynthesisDeps, job_id: str, indexes: Iterable[int]) -> int:
    """Queue the chunk tasks of ``job_id``'s ``indexes``; return how many were new.

    Each is de-duplicated by job and index: one already queued is not queued again.
    """
    queue = deps.task_queue()
    queued = 0
    for index in indexes:
        try:
            queue.enqueue(
                deps.settings.synthesis_queue,
                CHUNK_TASK,
                ChunkTask(job_id=job_id, index=index),
                dedup_key=f"synthesis-chunk:{job_id}:{index}",
            )
        except TaskAlreadyExistsError:
            continue
        queued += 1
    return queued


def queue_assembly(deps: SynthesisDeps, job_id: str) -> bool:
    """Queue the assembly of ``job_id`` unless it was queued already; return whether."""
    try:
        deps.task_queue().enqueue(
            deps.settings.synthesis_queue,
            ASSEMBLE_TASK,
            AssembleTask(job_id=job_id),
            dedup_key=f"synthesis-assemble:{job_id}",
        )
    except TaskAlreadyExistsError:
        logger.info("Assembly of synthesis job %s was already queued", job_id)
        return False
    return True


def chunk_spans(data: dict[str, Any]) -> list[tuple[int, int]]:
    """Return the (start, end) character spans of a job document's chunks.

    Stored as maps, not pairs: Firestore refuses arrays nested in arrays.
    """
    return [(int(span["start"]), int(span["end"])) for span in data["chunks"]]


def job_status(deps: SynthesisDeps, user_id: str, job_id: str) -> SynthesisResponse:
    """Return the caller's job with its file once completed; raise SynthesisJobNotFoundError."""
    repository = SynthesisJobRepository(deps.store)
    job = job_from(repository.document(job_id))
    if job.user_id != user_id:
        raise SynthesisJobNotFoundError(f"Synthesis job not found: {echoed(job_id)}")
    return job_with_file(deps, job)


def job_with_file(
    deps: SynthesisDeps, job: SynthesisJob, *, callback: bool = False
) -> SynthesisResponse:
    """Return ``job``'s answer with its file's details once completed (and its timestamps,
    when asked for and the request took them): ``GET /synthesis/jobs/{id}``.

    For the job's ``callback``: no timestamps (a long text's are large) and no download URL
    (a retried delivery is the same event, and may come after such a URL expired); that
    GET gives both.
    """
    voice = voice_of(job)
    files = AudioFileRepository(deps.store)
    audio_file = files.get(job.audio_file_id) if job.audio_file_id else None
    shown = None
    if audio_file is not None and not callback and job.config.get("includeTimestamps"):
        from shared.files.storage import (  # noqa: PLC0415 - see the imports
            read_timestamps,
            timestamps_path_of,
        )

        try:
            shown = _placed(job, read_timestamps(deps.audio, timestamps_path_of(audio_file)))
        except NotFoundError:
            shown = None
    return response_for(
        deps, job, voice, audio_file=audio_file, timestamps=shown, download_url=not callback
    )


def _placed(job: SynthesisJob, timestamps: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the stored ``timestamps`` of ``job``'s file placed on the job's own text as
    sent (a cache hit's file is the render of a text that may be spaced otherwise)."""
    from shared.synthesis.spans import (  # noqa: PLC0415 - see the imports
        UnplacedWordsError,
        placed,
        shifted,
    )

    leads = job.config.get(TEXT_LEADS) or [0]
    turns: list[str] = []
    start = 0
    for length in job.config.get(TURN_LENGTHS) or ():
        turns.append(job.text_content[start : start + length])
        start += length + 1  # the line break joining the turns
    try:
        shown = placed(timestamps, job.text_content, ssml=bool(job.config.get("ssml")), turns=turns)
    except UnplacedWordsError:
        # Words timed before they had spans, another way (SSML's said words): as they are.
        return timestamps
    return None if shown is None else shifted(shown, leads)


class SynthesisJobListQuery(RequestModel):
    """Query of ``GET /synthesis/jobs``: one page of the caller's jobs, newest first."""

    status: SynthesisStatus | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_JOBS_PAGE)] = 20
    cursor: Annotated[str, Field(max_length=2000)] | None = None


_STORED_AS: dict[SynthesisStatus, list[str]] = {
    SynthesisStatus.PENDING: ["pending"],
    # A long job runs stored as pending; its chunk markers say it is processing.
    SynthesisStatus.PROCESSING: ["pending", "processing"],
    SynthesisStatus.COMPLETED: ["completed"],
    SynthesisStatus.FAILED: ["failed"],
}


def list_jobs(
    deps: SynthesisDeps, user_id: str, query: SynthesisJobListQuery
) -> tuple[list[SynthesisResponse], str | None]:
    """Return one page of the user's jobs (without their audio), newest first, and a cursor.

    A page filtered by status may hold fewer than ``limit`` jobs while ``nextCursor`` goes
    on (long jobs move from pending to processing without a write of their status).
    """
    stored = _STORED_AS[query.status] if query.status else None
    jobs, cursor = SynthesisJobRepository(deps.store).newest_of(
        user_id, stored_statuses=stored, limit=query.limit, cursor=query.cursor
    )
    if query.status:
        jobs = [job for job in jobs if job.status is query.status]
    return [job_summary(deps, job) for job in jobs], cursor


def job_summary(deps: SynthesisDeps, job: SynthesisJob) -> SynthesisResponse:
    """Return a job's answer without its file's details (``GET /files/{id}/info`` has them)."""
    body = response_for(deps, job, voice_of(job))
    return body.model_copy(update={"audio_file_id": job.audio_file_id})


def voice_of(job: SynthesisJob) -> ResolvedVoice:
    config = job.config
    return ResolvedVoice(
        provider=str(config["provider"]),
        voice_id=str(config["providerVoiceId"]),
        language=config.get("language"),
    )


def fail_job(deps: SynthesisDeps, job_id: str, message: str) -> None:
    """Mark the job failed with ``message`` unless it already finished; delete its chunks.

    The chunks already rendered are of no use to a failed job: they are deleted whenever
    the job ends failed, by this call or an earlier one (so a later call deletes what an
    earlier one could not). A chunk still rendering deletes its own once it sees the job
    failed (``shared.synthesis.job_tasks.run_chunk``).
    """

    def fail(tx: Transaction) -> tuple[SynthesisJob, bool]:
        document = SynthesisJobRepository.tx_document(tx, job_id)
        job = job_from(document)
        if job.status in (SynthesisStatus.COMPLETED, SynthesisStatus.FAILED):
            return job, False
        failed = job.fail(message, utcnow())
        tx.update(SYNTHESIS_JOBS, job_id, job_document(failed))
        return failed, True

    ended, failed_now = deps.store.run_transaction(fail)
    if ended.status is SynthesisStatus.FAILED:
        delete_chunks(deps, job_id)
    if failed_now:
        from shared.synthesis.callbacks import notify_finished  # noqa: PLC0415 - see the imports

        notify_finished(deps.task_queue, deps.settings, ended)


def delete_chunks(deps: SynthesisDeps, job_id: str) -> None:
    """Delete the stored chunks of a job that has ended (completed or failed), if any.

    A storage error is logged, not raised: the job's outcome is recorded already, so a
    failure here leaves objects behind (deleted with the account, ``shared.synthesis.purge``),
    never a job in the wrong state.
    """
    try:
        deps.blobs.delete_prefix(deps.settings.audio_bucket, f"{CHUNK_PREFIX}/{job_id}/")
    except Exception:
        logger.warning("The chunks of synthesis job %s were not deleted", job_id, exc_info=True)
