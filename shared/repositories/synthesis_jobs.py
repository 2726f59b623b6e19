"""Synthesis jobs in the document store (``synthesis_jobs/{jobId}``).

A job document holds the ``SynthesisJob`` fields plus, for long texts, the chunk plan
(``chunks``: character spans) and which chunks are done (``chunks_done``); the chunk
tasks update those in transactions so the last one to finish starts the assembly.
"""

from __future__ import annotations

from typing import Any

from shared.domain.synthesis import SynthesisJob
from shared.errors import SynthesisJobNotFoundError
from shared.store.base import Document, DocumentStore, Transaction

SYNTHESIS_JOBS = "synthesis_jobs"
_EXTRA = ("chunks", "chunks_done", "result", "assembling", "speakers")


def job_from(document: Document) -> SynthesisJob:
    """Return the job stored in ``document`` (the chunk bookkeeping is left out)."""
    data = {key: value for key, value in document.data.items() if key not in _EXTRA}
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

    def save(self, job: SynthesisJob, **extra: Any) -> None:
        """Write the job's fields (bookkeeping fields not named are kept)."""
        self._store.set(SYNTHESIS_JOBS, job.id, job_document(job, **extra), merge=True)

    def document(self, job_id: str) -> Document:
        """Return the job's document; raise SynthesisJobNotFoundError."""
        document = self._store.get(SYNTHESIS_JOBS, job_id)
        if document is None:
            raise SynthesisJobNotFoundError(f"Synthesis job not found: {job_id}")
        return document

    @staticmethod
    def tx_document(tx: Transaction, job_id: str) -> Document:
        """Return the job's document read in ``tx``; raise SynthesisJobNotFoundError."""
        document = tx.get(SYNTHESIS_JOBS, job_id)
        if document is None:
            raise SynthesisJobNotFoundError(f"Synthesis job not found: {job_id}")
        return document
