"""A long job's assembly reads, stitches and encodes its chunks one at a time.

The chunks are rendered by the real chunk tasks (run here by hand, the queue not started),
then assembled by the real ``run_assemble``. What it stores is compared with what the
whole-in-memory path gave for the same stored chunks (``encode(join_pieces(...))`` and
``timestamps_body`` over its words, our own functions, computed here): the same bytes (for
ogg_opus, whose stream serial number is random, the same decoded samples) and the same
timings, exactly. A second test traces the memory allocated while a long job is assembled;
a last one delivers the assembly twice at once (the queue's at-least-once delivery).
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from shared.audio.encode import EncodedAudio, encode
from shared.audio.pcm import decode_audio
from shared.audio.text import TextChunk
from shared.audio.timestamps import TimedWord
from shared.bootstrap import get_container, reset_container
from shared.catalog.repository import VoiceRepository
from shared.errors import NotFoundError
from shared.files.repository import AUDIO_FILES
from shared.providers.registry import ProviderRegistry
from shared.store.base import Query
from shared.synthesis import CAPABILITY as SYNTHESIS
from shared.synthesis import jobs as synthesis_jobs
from shared.synthesis import tasks as synthesis_tasks
from shared.synthesis.job_tasks import run_assemble, run_chunk
from shared.synthesis.jobs import CHUNK_PREFIX, chunk_spans
from shared.synthesis.model import SynthesisStatus, TimestampGranularity
from shared.synthesis.render import Rendered, join_pieces, timestamps_body
from shared.synthesis.repository import ASSEMBLED, SynthesisJobRepository, chunk_share, job_from
from shared.tasks.base import TaskContext, TaskRegistry
from shared.tasks.inprocess import InProcessTaskQueue
from shared.tasks.push_auth import AdminTokenPushVerifier
from shared.tasks.runtime import TaskRuntime
from shared.tasks.scheduling import JobRegistry
from shared.users.storage import USERS
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis import fetch
from tests.functions.test_synthesis_fixtures import CountingEspeak
from tests.functions.test_synthesis_jobs import FAST, LONG_TEXT

ann = fx.ann
synthesis_client = fx.synthesis_client
CHUNK_CHARS = 120  # many chunks, so that one chunk is a small part of the job


@pytest.fixture
def espeak(platform: Any, monkeypatch: pytest.MonkeyPatch) -> CountingEspeak:
    """The counting eSpeak provider; jobs cut into chunks of ``CHUNK_CHARS``."""
    monkeypatch.setenv("VOICE_SYNTHESIS_CHUNK_CHARS", str(CHUNK_CHARS))
    reset_container()
    provider = CountingEspeak()
    container = get_container()
    container.use_provider_registry(ProviderRegistry.of([provider]))
    VoiceRepository(container.store).upsert(fx.espeak_voices())
    # A queue that is not started: queued tasks stay queued, the tests run them.
    registry = TaskRegistry()
    synthesis_tasks.register_tasks(registry, lambda: container.deps(SYNTHESIS))
    name = container.settings.synthesis_queue
    tasks = InProcessTaskQueue(store=container.store, policies={name: FAST}, registry=registry)
    container.use_task_runtime(
        TaskRuntime(registry, tasks, AdminTokenPushVerifier(container.verifier), JobRegistry([]))
    )
    return provider


def rendered_job(client: Any, headers: dict[str, str], **fields: Any) -> str:
    """Start a job, run its chunk tasks, and return its id (assembly not run)."""
    body = {"text": LONG_TEXT, "voice": "espeak:en-US", **fields}
    response = client.post("/synthesize", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    job_id = str(response.get_json()["jobId"])
    container = get_container()
    deps = container.deps(SYNTHESIS)
    context = TaskContext(
        task_id="chunk",
        queue=container.settings.synthesis_queue,
        task_type=synthesis_jobs.CHUNK_TASK,
        attempt=1,
        max_attempts=FAST.max_attempts,
        enqueued_at=datetime.now(UTC),
        store=container.store,
    )
    for index in range(len(spans_of(job_id))):
        run_chunk(deps, synthesis_jobs.ChunkTask(job_id=job_id, index=index), context)
    return job_id


def spans_of(job_id: str) -> list[tuple[int, int]]:
    document = SynthesisJobRepository(get_container().store).document(job_id)
    return chunk_spans(document.data)


def stored_pieces(job_id: str) -> tuple[list[Rendered], list[TextChunk]]:
    """Return the job's stored chunks as the assembly reads them, and their text spans."""
    container = get_container()
    bucket = container.settings.audio_bucket
    text = job_from(SynthesisJobRepository(container.store).document(job_id)).text_content
    pieces, chunks = [], []
    for index, (start, end) in enumerate(spans_of(job_id)):
        base = f"{CHUNK_PREFIX}/{job_id}/{index:04d}"
        meta = json.loads(container.blobs.get(bucket, base + ".json"))
        words = [TimedWord.from_row(row) for row in meta["words"]]
        pcm = container.blobs.get(bucket, base + ".pcm")
        pieces.append(Rendered(pcm, meta["sampleRate"], words, list(meta["unapplied"])))
        chunks.append(TextChunk(text[start:end], start, end))
    return pieces, chunks


def whole_in_memory(job_id: str, granularity: str) -> tuple[EncodedAudio, dict[str, Any]]:
    """Return what the assembly stored before it went a chunk at a time: the file and
    timestamps made from the whole joined audio."""
    job = job_from(SynthesisJobRepository(get_container().store).document(job_id))
    joined = join_pieces(*stored_pieces(job_id))
    encoded = encode(joined.pcm, joined.sample_rate, job.output_format, target_rate=job.sample_rate)
    timestamps = timestamps_body(
        joined.words,
        TimestampGranularity(granularity),
        language=job.config.get("language"),
        phonemizer=get_container().deps(SYNTHESIS).phonemizer,
    )
    return encoded, json.loads(json.dumps(timestamps))


def samples(data: bytes) -> np.ndarray:
    pcm, _ = decode_audio(data)
    return np.frombuffer(pcm, "<i2").astype(np.float64)


@pytest.mark.parametrize(
    ("fmt", "granularity"),
    [("pcm", "word"), ("wav", "both"), ("mp3", "word"), ("flac", "syllable"), ("ogg_opus", "word")],
)
def test_an_assembled_job_is_the_audio_and_timings_of_the_whole_in_memory_join(
    synthesis_client, ann, espeak, fmt, granularity
):
    job_id = rendered_job(synthesis_client, ann, outputFormat=fmt, timestampGranularity=granularity)
    assert len(spans_of(job_id)) > 10
    before, before_timestamps = whole_in_memory(job_id, granularity)

    run_assemble(get_container().deps(SYNTHESIS), synthesis_jobs.AssembleTask(job_id=job_id))

    done = synthesis_client.get(f"/synthesis/jobs/{job_id}", headers=ann).get_json()
    assert done["status"] == "completed"
    assert done["progress"] == 1.0
    assert done["sampleRate"] == before.sample_rate
    assert done["duration"] == pytest.approx(before.duration_seconds, abs=1e-6)
    data = fetch(done["downloadUrl"])
    if fmt == "ogg_opus":
        # Two Ogg files of the same packets differ in their random stream serial number.
        assert np.array_equal(samples(data), samples(before.data))
        assert len(data) == len(before.data)
    else:
        assert data == before.data
    assert done["timestamps"] == before_timestamps
    timed = done["timestamps"].get("words") or done["timestamps"]["syllables"]
    assert timed[-1]["end"] > done["duration"] * 0.9
    # The chunks are deleted once the file is stored.
    bucket = get_container().settings.audio_bucket
    assert not get_container().blobs.exists(bucket, f"{CHUNK_PREFIX}/{job_id}/0000.pcm")


def traced_peak(work: Callable[[], object]) -> int:
    """Return the most memory traced (Python and numpy allocations) while ``work`` runs."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_assembling_a_long_job_holds_a_few_chunks_of_pcm_never_the_whole(
    synthesis_client, ann, espeak
):
    job_id = rendered_job(synthesis_client, ann, outputFormat="ogg_opus", speed=0.25)
    sizes = [len(piece.pcm) for piece in stored_pieces(job_id)[0]]
    total_pcm, largest_chunk = sum(sizes), max(sizes)
    assert len(sizes) > 15
    assert total_pcm > 10_000_000  # about five minutes of audio
    # The measure tells the two apart: joining and encoding the whole at once, as the
    # assembly did before, traces more than the job's PCM.
    assert traced_peak(lambda: whole_in_memory(job_id, "word")) > total_pcm

    deps = get_container().deps(SYNTHESIS)
    peak = traced_peak(lambda: run_assemble(deps, synthesis_jobs.AssembleTask(job_id=job_id)))

    done = synthesis_client.get(f"/synthesis/jobs/{job_id}", headers=ann).get_json()
    assert done["status"] == "completed"
    # The encoded file is held whole (and copied as it is stored); of the PCM, only the
    # chunk being joined and its converted copies (measured: 5.0 MB against 14.3 MB of
    # PCM in 23 chunks of at most 0.7 MB and a 1.8 MB file; the whole at once: 286 MB).
    assert peak < 3 * done["size"] + 4 * largest_chunk
    assert peak < total_pcm / 2


def test_assembly_records_its_progress_as_it_goes_through_the_chunks(synthesis_client, ann, espeak):
    job_id = rendered_job(synthesis_client, ann, outputFormat="mp3")
    total = len(spans_of(job_id))
    repository = SynthesisJobRepository(get_container().store)
    rendered = job_from(repository.document(job_id)).progress
    assert rendered == pytest.approx(chunk_share("mp3"))
    # A chunk lost half way stops the assembly there (the queue would retry it).
    bucket = get_container().settings.audio_bucket
    get_container().blobs.delete(bucket, f"{CHUNK_PREFIX}/{job_id}/{total // 2:04d}.pcm")

    with pytest.raises(NotFoundError):
        run_assemble(get_container().deps(SYNTHESIS), synthesis_jobs.AssembleTask(job_id=job_id))

    stopped = job_from(repository.document(job_id))
    assert stopped.status == SynthesisStatus.PROCESSING
    # The first chunk's share of the assembly was recorded before the lost one was read.
    first = rendered + (ASSEMBLED - rendered) / total
    assert rendered < stopped.progress < ASSEMBLED
    assert stopped.progress >= first - 1e-3  # stored to four decimals


def test_an_assembly_delivered_twice_at_once_stores_one_file(
    function_client, synthesis_client, ann, espeak, monkeypatch
):
    users = function_client("users")
    assert users.post("/users", json={"email": "ann@example.com"}, headers=ann).status_code == 201
    job_id = rendered_job(synthesis_client, ann, outputFormat="mp3")
    container = get_container()
    deps = container.deps(SYNTHESIS)
    task = synthesis_jobs.AssembleTask(job_id=job_id)
    store = container.store
    real = store.run_transaction
    raced: list[bool] = []

    def run(function: Callable[..., Any], **options: Any) -> Any:
        # Just before this delivery commits, the other one runs whole and commits first.
        if function.__qualname__ == "run_assemble.<locals>.commit" and not raced:
            raced.append(True)
            run_assemble(deps, task)
        return real(function, **options)

    monkeypatch.setattr(store, "run_transaction", run)
    run_assemble(deps, task)

    assert raced
    files = list(store.stream(Query(AUDIO_FILES).where("synthesis_job_id", "==", job_id)))
    assert len(files) == 1
    done = synthesis_client.get(f"/synthesis/jobs/{job_id}", headers=ann).get_json()
    assert (done["status"], done["audioFileId"]) == ("completed", files[0].id)
    # Counted once, and the late delivery's own upload deleted again.
    owner = store.get(USERS, "ann")
    assert owner is not None
    assert owner.data["storage_used_bytes"] == done["size"]
    bucket = container.settings.audio_bucket
    names = [info.name for info in container.blobs.list(bucket, prefix="audio/").items]
    assert sorted(names) == sorted(
        [files[0].data["file_path"], files[0].data["file_path"] + ".timestamps.json"]
    )
