"""The chunk bookkeeping of long synthesis jobs, once per document store adapter."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from shared.audio.formats import OutputFormat
from shared.store.base import DocumentStore
from shared.synthesis.model import SynthesisJob, SynthesisStatus
from shared.synthesis.repository import (
    ASSEMBLED,
    SynthesisJobRepository,
    chunk_share,
    job_from,
)

TEXT = "One. Two. Three. Four."


def add_job(
    store: DocumentStore, chunks: int, output_format: OutputFormat = OutputFormat.WAV
) -> SynthesisJob:
    job = SynthesisJob(
        user_id="ann",
        voice_id="espeak:en-US",
        text_content=TEXT,
        text_hash=hashlib.sha256(TEXT.encode()).hexdigest(),
        output_format=output_format,
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

    share = chunk_share(OutputFormat.WAV)  # rendering is most of a WAV job's work
    assert 0.9 < share < ASSEMBLED
    assert read() == (SynthesisStatus.PENDING, 0.0)
    assert repository.mark_chunk_done(job.id, 2) is False
    assert read() == (SynthesisStatus.PROCESSING, pytest.approx(0.25 * share))
    assert repository.mark_chunk_done(job.id, 2) is False  # a redelivered chunk counts once
    assert read() == (SynthesisStatus.PROCESSING, pytest.approx(0.25 * share))
    assert [repository.mark_chunk_done(job.id, i) for i in (0, 1, 3)] == [False, False, True]
    assert read() == (SynthesisStatus.PROCESSING, pytest.approx(share))  # not 1 yet
    repository.record_progress(job.id, 0.97)
    repository.record_progress(job.id, 0.5)  # a late, lower report never moves it back
    assert read() == (SynthesisStatus.PROCESSING, pytest.approx(0.97))
    running = job_from(repository.document(job.id))
    done = running.complete(
        audio_file_id="file-1",
        now=datetime.now(UTC),
        billed_characters=2500,
        cost=0.04,
        unapplied=["emphasis"],
    )
    repository.save(done)
    assert read() == (SynthesisStatus.COMPLETED, 1.0)
    stored = job_from(repository.document(job.id))
    assert (stored.billed_characters, stored.cost, stored.unapplied) == (2500, 0.04, ["emphasis"])


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
    assert job_from(repository.document(job.id)).progress == pytest.approx(chunk_share("wav"))


def test_an_mp3_job_leaves_most_of_its_progress_to_the_encoding(store):
    """Rendering an MP3 job's chunks is a sixth of its work: encoding the rest, reported."""
    repository = SynthesisJobRepository(store)
    job = add_job(store, chunks=2, output_format=OutputFormat.MP3)
    for index in (0, 1):
        repository.mark_chunk_done(job.id, index)
    rendered = job_from(repository.document(job.id)).progress
    assert rendered == pytest.approx(chunk_share("mp3"))
    assert rendered < 0.2
    for fraction in (0.3, 0.6, 0.9):
        repository.record_progress(job.id, rendered + (ASSEMBLED - rendered) * fraction)
        assert job_from(repository.document(job.id)).progress > rendered


def test_a_failed_job_stays_failed_when_its_other_chunks_finish(store):
    repository = SynthesisJobRepository(store)
    job = add_job(store, chunks=4)
    repository.mark_chunk_done(job.id, 0)
    running = job_from(repository.document(job.id))
    repository.save(running.fail("Chunk 2 of 4 failed", datetime.now(UTC)))
    repository.mark_chunk_done(job.id, 1)
    failed = job_from(repository.document(job.id))
    assert failed.status is SynthesisStatus.FAILED
    assert failed.progress == pytest.approx(0.25 * chunk_share("wav"))


def test_marking_a_chunk_says_whether_its_job_has_ended(store):
    # One read after the write tells the chunk task both: every chunk done, the job ended
    # (a chunk stored after its job failed, completed or went with its owner is not kept).
    repository = SynthesisJobRepository(store)
    job = add_job(store, chunks=2)
    assert repository.mark_chunk(job.id, 0) == (False, False)
    assert repository.mark_chunk(job.id, 1) == (True, False)
    failed = add_job(store, chunks=2)
    store.update("synthesis_jobs", failed.id, {"status": SynthesisStatus.FAILED.value})
    assert repository.mark_chunk(failed.id, 0) == (False, True)
    assert repository.mark_chunk("gone", 0) == (False, True)
