"""Synthesis jobs in the document store (``synthesis_jobs/{jobId}``).

A job document holds the ``SynthesisJob`` fields plus, for long texts, the chunk plan
(``chunks``: character spans) and a marker per finished chunk (``chunks_done.c{index}``).
Each chunk task sets its own marker with one field write, not a transaction: a job's
chunks finish together, and transactions that all read the one job document contend (on
the Firestore emulator each such deadlock lasts a lock timeout). So while a long job runs,
its status and progress are read from the markers: PROCESSING once any chunk is done,
progress done/total of the chunks' share of the work (``chunk_share``: rendering is most
of a WAV job, encoding most of an MP3 or Opus one); the assembly then records its own
progress as it encodes (``record_progress``), and completing the job makes it 1.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from shared.audio.formats import OutputFormat
from shared.errors import DocumentNotFoundError, SynthesisJobNotFoundError, echoed
from shared.store.base import Document, DocumentStore, Maximum, Query, Transaction, WriteBatch
from shared.synthesis.model import SynthesisJob, SynthesisStatus

SYNTHESIS_JOBS = "synthesis_jobs"
_EXTRA = ("chunks", "chunks_done", "result", "speakers")
_RUNNING = (SynthesisStatus.PENDING.value, SynthesisStatus.PROCESSING.value)
_ENDED = (SynthesisStatus.COMPLETED.value, SynthesisStatus.FAILED.value)
ASSEMBLED = 0.98  # the progress of a job whose audio is encoded but not yet stored

ENCODE_WEIGHTS: dict[OutputFormat, float] = {
    OutputFormat.PCM: 0.02,
    OutputFormat.WAV: 0.05,
    OutputFormat.FLAC: 0.3,
    OutputFormat.MP3: 5.0,
    OutputFormat.OGG_OPUS: 40.0,
}
"""Encoding time per unit of eSpeak rendering time, by format (``python -m bench.encode``)."""


def chunk_share(output_format: OutputFormat | str) -> float:
    """Return the share of a long job's work its chunks' rendering is (the rest: encoding)."""
    weight = ENCODE_WEIGHTS.get(OutputFormat(output_format), 1.0)
    return ASSEMBLED / (1.0 + weight)


def _chunk_marker(index: int) -> str:
    """Return the field path of chunk ``index``'s done marker."""
    return f"chunks_done.c{index}"


def _chunks_finished(document: Document) -> tuple[int, int]:
    """Return (chunks done, chunks planned) of a long job's document; (0, 0) for others."""
    return len(document.data.get("chunks_done") or {}), len(document.data.get("chunks") or [])


class ChunkMarked(NamedTuple):
    """What setting a chunk's done marker found (``SynthesisJobRepository.mark_chunk``)."""

    all_done: bool
    ended: bool


def job_from(document: Document) -> SynthesisJob:
    """Return the job stored in ``document``, its progress read from the chunk markers."""
    data = {key: value for key, value in document.data.items() if key not in _EXTRA}
    done, total = _chunks_finished(document)
    if done and data.get("status") in _RUNNING:
        data["status"] = SynthesisStatus.PROCESSING.value
        rendered = done / total * chunk_share(data.get("output_format", OutputFormat.WAV))
        data["progress"] = min(max(float(data.get("progress", 0.0)), rendered), ASSEMBLED)
    return SynthesisJob.model_validate({**data, "id": document.id})


def job_document(job: SynthesisJob, **extra: Any) -> dict[str, Any]:
    """Return the stored fields of ``job`` plus ``extra`` bookkeeping fields."""
    document = job.to_document()
    document["status"] = job.status.value
    document["output_format"] = job.output_format.value
    document.update(extra)
    return document


class SynthesisJobRepository:
    """Reads and writes of synthesis jobs."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def add(self, job: SynthesisJob, **extra: Any) -> None:
        """Store a new job."""
        self._store.create(SYNTHESIS_JOBS, job.id, job_document(job, **extra))

    def add_in(self, writes: WriteBatch | Transaction, job: SynthesisJob, **extra: Any) -> None:
        """Queue the creation of a new job in ``writes`` (stored when they commit)."""
        writes.create(SYNTHESIS_JOBS, job.id, job_document(job, **extra))

    def save(self, job: SynthesisJob, **extra: Any) -> None:
        """Write the job's fields (bookkeeping fields not named are kept)."""
        self._store.set(SYNTHESIS_JOBS, job.id, job_document(job, **extra), merge=True)

    def save_in(self, writes: WriteBatch | Transaction, job: SynthesisJob) -> None:
        """Queue in ``writes`` what ``save`` writes (stored when they commit)."""
        writes.set(SYNTHESIS_JOBS, job.id, job_document(job), merge=True)

    def document(self, job_id: str) -> Document:
        """Return the job's document; raise SynthesisJobNotFoundError."""
        document = self._store.get(SYNTHESIS_JOBS, job_id)
        if document is None:
            raise SynthesisJobNotFoundError(f"Synthesis job not found: {echoed(job_id)}")
        return document

    def newest_of(
        self,
        user_id: str,
        *,
        stored_statuses: list[str] | None,
        limit: int,
        cursor: str | None = None,
    ) -> tuple[list[SynthesisJob], str | None]:
        """Return one page of the user's jobs, newest first, and the next page's cursor.

        ``stored_statuses`` filters on the stored status (a running long job is stored
        pending; ``job_from`` reads its status from its chunk markers).
        """
        query = Query(SYNTHESIS_JOBS).where("user_id", "==", user_id)
        if stored_statuses:
            query = query.where("status", "in", stored_statuses)
        query = query.order("created_at", descending=True).take(limit).after(cursor)
        page = self._store.query(query)
        return [job_from(document) for document in page.documents], page.next_cursor

    def record_progress(self, job_id: str, progress: float) -> None:
        """Raise the job's stored progress to ``progress`` (never lowers it)."""
        self._store.update(SYNTHESIS_JOBS, job_id, {"progress": Maximum(round(progress, 4))})

    def mark_chunk_done(self, job_id: str, index: int) -> bool:
        """Set chunk ``index``'s done marker; return True once every chunk's marker is set.

        When the last chunks finish together more than one caller may get True; the
        assembly task's dedup key lets only one of them enqueue it.
        """
        return self.mark_chunk(job_id, index).all_done

    def mark_chunk(self, job_id: str, index: int) -> ChunkMarked:
        """Set chunk ``index``'s done marker; say whether every chunk's is set, and whether
        the job had ended (completed, failed, or gone with its owner) when it was set.

        Both from the one read after the write.
        """
        try:
            self._store.update(SYNTHESIS_JOBS, job_id, {_chunk_marker(index): True})
            document = self.document(job_id)
        except (DocumentNotFoundError, SynthesisJobNotFoundError):
            return ChunkMarked(all_done=False, ended=True)
        done, total = _chunks_finished(document)
        ended = document.data.get("status") in _ENDED
        return ChunkMarked(all_done=done == total, ended=ended)

    @staticmethod
    def tx_document(tx: Transaction, job_id: str) -> Document:
        """Return the job's document read in ``tx``; raise SynthesisJobNotFoundError."""
        document = tx.get(SYNTHESIS_JOBS, job_id)
        if document is None:
            raise SynthesisJobNotFoundError(f"Synthesis job not found: {echoed(job_id)}")
        return document
