"""The chunk bookkeeping of long synthesis jobs, once per document store adapter."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from shared.store.base import DocumentStore
from shared.synthesis.model import SynthesisJob, SynthesisStatus
from shared.synthesis.repository import SynthesisJobRepository, job_from

TEXT = "One. Two. Three. Four."


def add_job(store: DocumentStore, chunks: int) -> SynthesisJob:
    job = SynthesisJob(
        user_id="ann",
        voice_id="espeak:en-US",
        text_content=TEXT,
        text_hash=hashlib.sha256(TEXT.encode()).hexdigest(),
    )
    spans = [{"start": 0, "end": len(TEXT)} for _ in range(chunks)]
    SynthesisJobRepository(store).add(job, chunks=spans, chunks_done={})
    return job


def test_a_job_runs_from_its_first_done_chunk_and_progress_follows_the_chunks(store):
    repository = SynthesisJobRepository(store)
    job = add_job(store, chunks=4)

    def read() -> tuple[SynthesisStatus, float]:
        found = job_from(repository.document(job.id))
        return found.status, found.progress

    assert read() == (SynthesisStatus.PENDING, 0.0)
    assert repository.mark_chunk_done(job.id, 2) is False
    assert read() == (SynthesisStatus.PROCESSING, 0.25)
    assert repository.mark_chunk_done(job.id, 2) is False  # a redelivered chunk counts once
    assert read() == (SynthesisStatus.PROCESSING, 0.25)
    assert [repository.mark_chunk_done(job.id, i) for i in (0, 1, 3)] == [False, False, True]
    assert read() == (SynthesisStatus.PROCESSING, 0.99)  # not 1 before the file is assembled
    running = job_from(repository.document(job.id))
    repository.save(running.complete(audio_file_id="file-1", now=datetime.now(UTC)))
    assert read() == (SynthesisStatus.COMPLETED, 1.0)


def test_chunks_finishing_together_are_all_recorded_without_contention_errors(store):
    """Ten chunk tasks finish at once: each marker is set, and at least one sees the set done.

    Transactions that all read and write the one job document fail this on the Firestore
    emulator: its deadlocks between them end one lock timeout at a time.
    """
    repository = SynthesisJobRepository(store)
    total = 10
    job = add_job(store, chunks=total)
    barrier = threading.Barrier(total)

    def finish(index: int) -> bool | Exception:
        barrier.wait()
        try:
            return repository.mark_chunk_done(job.id, index)
        except Exception as exc:  # reported by the assertion below
            return exc

    with ThreadPoolExecutor(max_workers=total) as pool:
        outcomes = list(pool.map(finish, range(total)))
    errors = [o for o in outcomes if isinstance(o, Exception)]
    seen_done = [o for o in outcomes if isinstance(o, bool)]
    assert errors == []
    assert len(seen_done) == total
    assert any(seen_done)
    assert job_from(repository.document(job.id)).progress == 0.99


def test_a_failed_job_stays_failed_when_its_other_chunks_finish(store):
    repository = SynthesisJobRepository(store)
    job = add_job(store, chunks=4)
    repository.mark_chunk_done(job.id, 0)
    running = job_from(repository.document(job.id))
    repository.save(running.fail("Chunk 2 of 4 failed", datetime.now(UTC)))
    repository.mark_chunk_done(job.id, 1)
    failed = job_from(repository.document(job.id))
    assert (failed.status, failed.progress) == (SynthesisStatus.FAILED, 0.25)
