"""Long texts as async jobs: chunk tasks on the real in-process queue, then assembly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.audio.encode import decode_duration
from shared.audio.text import split_sentences
from shared.bootstrap import get_container
from shared.errors import ServiceUnavailableError
from shared.model import new_id, utcnow
from shared.providers.base import ErrorCategory, SynthesisRequest, SynthesisResult, provider_error
from shared.providers.registry import ProviderRegistry
from shared.store import Query
from shared.synthesis import CAPABILITY as SYNTHESIS
from shared.synthesis import jobs as synthesis_jobs
from shared.synthesis import tasks as synthesis_tasks
from shared.synthesis.callbacks import CALLBACK_TASK
from shared.synthesis.job_sweep import REQUEUE_TASK, STALL_GRACE, requeue_stalled_jobs
from shared.synthesis.job_tasks import run_chunk
from shared.synthesis.repository import SYNTHESIS_JOBS
from shared.tasks.base import QueuePolicy, TaskContext, TaskRegistry
from shared.tasks.inprocess import QUEUED_TASKS, InProcessTaskQueue
from shared.tasks.push_auth import AdminTokenPushVerifier
from shared.tasks.runtime import TaskRuntime
from shared.tasks.scheduling import JobRegistry
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis import fetch
from tests.functions.test_synthesis_fixtures import CountingEspeak
from tests.functions.test_synthesis_spans import assert_placed

FAST = QueuePolicy(max_attempts=3, min_backoff=0.01, max_backoff=0.05, max_concurrent=4)
SENTENCES = [
    "Long texts are split at sentence boundaries before synthesis.",
    "Each chunk is synthesized by its own task on the queue.",
    "The chunks are stitched together without clicks.",
    "Word timestamps are shifted by each chunk's exact offset.",
    "Progress is reported as the share of chunks done.",
]
LONG_TEXT = " ".join(SENTENCES[i % len(SENTENCES)] for i in range(45))  # about 2,500 chars

# The shared fixtures, registered in this module.
ann = fx.ann
bob = fx.bob
espeak = fx.espeak
synthesis_client = fx.synthesis_client


class FlakyEspeak(CountingEspeak):
    """eSpeak failing its first ``failures`` calls with a transient error."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self._flaky_lock = threading.Lock()

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        with self._flaky_lock:
            if self.failures > 0:
                self.failures -= 1
                self.calls += 1
                raise provider_error("espeak", ErrorCategory.TRANSIENT, "engine hiccup")
        return super().synthesize(request)


def synthesis_worker() -> InProcessTaskQueue:
    """Return the in-process queue running synthesis's tasks, installed but not started."""
    container = get_container()
    registry = TaskRegistry()
    synthesis_tasks.register_tasks(registry, lambda: container.deps(SYNTHESIS))
    name = container.settings.synthesis_queue
    tasks = InProcessTaskQueue(
        store=container.store, policies={name: FAST}, registry=registry, poll_interval=0.01
    )
    container.use_task_runtime(
        TaskRuntime(registry, tasks, AdminTokenPushVerifier(container.verifier), JobRegistry([]))
    )
    return tasks


def task_context(task_type: str, task_id: str = "t1") -> TaskContext:
    """Return a first attempt's context of ``task_type`` on the synthesis queue."""
    container = get_container()
    return TaskContext(
        task_id=task_id,
        queue=container.settings.synthesis_queue,
        task_type=task_type,
        attempt=1,
        max_attempts=FAST.max_attempts,
        enqueued_at=datetime.now(UTC),
        store=container.store,
    )


@pytest.fixture
def queue(espeak: CountingEspeak) -> Iterator[InProcessTaskQueue]:
    tasks = synthesis_worker()
    tasks.start()
    yield tasks
    tasks.stop()


def use_provider(provider: CountingEspeak) -> None:
    get_container().use_provider_registry(ProviderRegistry.of([provider]))


def start(client: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"text": LONG_TEXT, "voice": "espeak:en-US", **fields}
    response = client.post("/synthesize", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"].endswith(response.get_json()["jobId"])
    return dict(response.get_json())


def wait(client: Any, headers: dict[str, str], job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: list[float] = []
    while time.monotonic() < deadline:
        body = dict(client.get(f"/synthesis/jobs/{job_id}", headers=headers).get_json())
        seen.append(body["progress"])
        if body["status"] in ("completed", "failed"):
            assert seen == sorted(seen)  # progress never goes back
            return body
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def test_long_text_becomes_a_job_that_completes(synthesis_client, ann, queue, espeak):
    assert len(LONG_TEXT) > get_container().settings.synthesis_async_threshold_chars
    started = start(synthesis_client, ann, outputFormat="mp3")
    assert started["status"] == "pending"
    assert started["progress"] == 0.0
    assert started["estimatedDuration"] > 60
    done = wait(synthesis_client, ann, started["jobId"])
    assert done["status"] == "completed"
    assert done["progress"] == 1.0
    chunks = len(split_sentences(LONG_TEXT, 400))
    assert chunks > 3
    assert espeak.calls == chunks
    data = fetch(done["downloadUrl"])
    assert decode_duration(data, "mp3") == pytest.approx(done["duration"], abs=0.03)
    words = done["timestamps"]["words"]
    assert [w["text"] for w in words] == [w.strip(".") for w in LONG_TEXT.split()]
    previous = 0.0
    for word in words:
        assert previous <= word["start"] <= word["end"] <= done["duration"]
        assert word["end"] - word["start"] < 2.0  # no word swallowed a chunk's gap
        previous = word["end"]
    assert words[-1]["end"] > done["duration"] * 0.9
    # The result is cached: the same request again is answered at once, no provider call.
    again = synthesis_client.post(
        "/synthesize",
        json={"text": LONG_TEXT, "voice": "espeak:en-US", "outputFormat": "mp3"},
        headers=ann,
    )
    assert again.status_code == 200
    assert again.get_json()["cacheHit"] is True
    assert espeak.calls == chunks


def test_a_jobs_words_are_placed_in_its_whole_text_across_its_chunks(
    synthesis_client, ann, queue, espeak
):
    sentence = "Hello 🎉 world, hello world! It costs $5 to learn C++ (not C#). 你好\uff0c世界。"
    text = "  " + " ".join([sentence] * 30)
    started = start(synthesis_client, ann, text=text, timestampGranularity="both")
    done = wait(synthesis_client, ann, started["jobId"])
    assert espeak.calls == len(split_sentences(text, 400)) > 3
    assert len(done["timestamps"]["words"]) == 30 * 14
    assert_placed(text, done["timestamps"])
    # The text spaced otherwise is a hit, answered at once and placed on its own text.
    spaced = text.strip().replace("! It", "!   It")
    hit = synthesis_client.post(
        "/synthesize", json={"text": spaced, "voice": "espeak:en-US"}, headers=ann
    ).get_json()
    assert hit["cacheHit"] is True
    assert_placed(spaced, hit["timestamps"])


def test_chunk_tasks_that_both_see_every_chunk_done_queue_one_assembly(
    synthesis_client, ann, espeak
):
    """The last chunk's task, delivered twice, finds every marker set both times."""
    container = get_container()
    synthesis_worker()  # not started: queued tasks stay queued, and this test runs them itself
    job_id = start(synthesis_client, ann)["jobId"]
    chunks = len(split_sentences(LONG_TEXT, 400))
    deps = container.deps(SYNTHESIS)
    context = task_context(synthesis_jobs.CHUNK_TASK, "chunk")
    for index in [*range(chunks), chunks - 1]:
        run_chunk(deps, synthesis_jobs.ChunkTask(job_id=job_id, index=index), context)
    queued = Query(QUEUED_TASKS).where("task_type", "==", synthesis_jobs.ASSEMBLE_TASK)
    assert container.store.count(queued) == 1
    assert espeak.calls == chunks  # the redelivered chunk was not rendered again


def test_the_tasks_of_a_job_that_is_gone_are_acknowledged(synthesis_client, ann, espeak):
    # Its owner deleted their account while its tasks waited: nothing to do, no retries.
    container = get_container()
    registry = TaskRegistry()
    synthesis_tasks.register_tasks(registry, lambda: container.deps(SYNTHESIS))
    for task_type, payload in (
        (synthesis_jobs.CHUNK_TASK, {"job_id": "gone", "index": 0}),
        (synthesis_jobs.ASSEMBLE_TASK, {"job_id": "gone"}),
        (CALLBACK_TASK, {"job_id": "gone"}),
    ):
        registered = registry.get(task_type)
        assert registered is not None
        context = task_context(task_type, f"t-{task_type}")
        registered.handler(registered.payload_model.model_validate(payload), context)
    assert espeak.calls == 0


def test_a_long_job_whose_tasks_were_never_queued_is_finished_by_the_sweep(
    synthesis_client, ann, espeak
):
    container = get_container()
    tasks = synthesis_worker()  # started below, once the sweep has run
    queued = start(synthesis_client, ann)["jobId"]
    # The same job as an instance that died before queuing any of its tasks leaves it.
    stalled = new_id()
    document = container.store.get(SYNTHESIS_JOBS, queued)
    assert document is not None
    container.store.create(SYNTHESIS_JOBS, stalled, dict(document.data))
    deps = container.deps(SYNTHESIS)
    assert requeue_stalled_jobs(deps) == 0  # within the grace: its tasks may be on their way
    later = utcnow() + STALL_GRACE + timedelta(minutes=1)
    chunks = len(split_sentences(LONG_TEXT, 400))
    assert requeue_stalled_jobs(deps, later) == chunks  # the stalled job's; none of the other's
    assert requeue_stalled_jobs(deps, later) == 0  # queued once
    tasks.start()
    try:
        assert wait(synthesis_client, ann, stalled)["status"] == "completed"
        assert wait(synthesis_client, ann, queued)["status"] == "completed"
    finally:
        tasks.stop()
    assert requeue_stalled_jobs(deps, later) == 0  # finished jobs are left alone


def test_the_sweep_is_scheduled(platform):
    jobs = {job.name: job for job in get_container().scheduled_jobs()}
    assert jobs["synthesis-job-requeue"].task_type == REQUEUE_TASK


def test_chunk_failures_are_retried_by_the_queue(synthesis_client, ann, queue):
    flaky = FlakyEspeak(failures=2)
    use_provider(flaky)
    done = wait(synthesis_client, ann, start(synthesis_client, ann)["jobId"])
    assert done["status"] == "completed"
    assert flaky.failures == 0


def test_job_fails_with_a_clear_error_when_retries_are_exhausted(synthesis_client, ann, queue):
    use_provider(FlakyEspeak(failures=10_000))
    done = wait(synthesis_client, ann, start(synthesis_client, ann)["jobId"])
    assert done["status"] == "failed"
    assert "failed after 3 attempts" in done["error"]
    assert "engine hiccup" in done["error"]
    assert done["audioFileId"] is None


MARKER = "Quetzalcoatl cannot be said here."


class RefusingOneSentence(CountingEspeak):
    """eSpeak refusing, for good, any text holding ``MARKER``."""

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        if MARKER in request.text:
            raise provider_error("espeak", ErrorCategory.PERMANENT, "cannot say this")
        return super().synthesize(request)


def test_a_failed_job_leaves_none_of_its_chunks_stored(synthesis_client, ann, espeak):
    # The chunks rendered before one gave up are deleted with the job's failure (and a
    # chunk still rendering then deletes its own), so a failed job costs no storage.
    use_provider(RefusingOneSentence())
    tasks = synthesis_worker()
    tasks.start()
    try:
        job_id = start(synthesis_client, ann, text=f"{LONG_TEXT} {MARKER}")["jobId"]
        done = wait(synthesis_client, ann, job_id)
        assert done["status"] == "failed"
        assert "cannot say this" in done["error"]
    finally:
        assert tasks.stop()  # every chunk task has finished
    container = get_container()
    bucket = container.settings.audio_bucket
    assert container.blobs.list(bucket, f"{synthesis_jobs.CHUNK_PREFIX}/{job_id}/").items == []


class FailingTheJobWhileSpeaking(CountingEspeak):
    """eSpeak during whose synthesis another chunk fails the job (``job_id``, once set)."""

    job_id: str | None = None

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        result = super().synthesize(request)
        if self.job_id is not None:
            synthesis_jobs.fail_job(get_container().deps(SYNTHESIS), self.job_id, "another chunk")
        return result


def test_a_chunk_rendered_while_its_job_failed_is_not_kept(synthesis_client, ann, espeak):
    container = get_container()
    provider = FailingTheJobWhileSpeaking()
    use_provider(provider)
    synthesis_worker()  # not started: this test runs the chunk itself
    job_id = start(synthesis_client, ann)["jobId"]
    provider.job_id = job_id
    deps = container.deps(SYNTHESIS)
    context = task_context(synthesis_jobs.CHUNK_TASK, "chunk")
    run_chunk(deps, synthesis_jobs.ChunkTask(job_id=job_id, index=0), context)
    assert provider.calls == 1
    bucket = container.settings.audio_bucket
    assert container.blobs.list(bucket, f"{synthesis_jobs.CHUNK_PREFIX}/{job_id}/").items == []
    job = synthesis_client.get(f"/synthesis/jobs/{job_id}", headers=ann).get_json()
    assert (job["status"], job["error"]) == ("failed", "another chunk")


def test_a_job_fails_even_when_its_chunks_cannot_be_deleted(
    synthesis_client, ann, espeak, monkeypatch, caplog
):
    # Storage down while the chunks are deleted: the job's failure stands,
    # the objects are left for the account's purge, and the failure is logged.
    container = get_container()
    synthesis_worker()  # not started: this test runs the chunk itself
    job_id = start(synthesis_client, ann)["jobId"]
    deps = container.deps(SYNTHESIS)
    run_chunk(deps, synthesis_jobs.ChunkTask(job_id=job_id, index=0), task_context("c", "c0"))

    def storage_down(bucket: str, prefix: str) -> int:
        raise ServiceUnavailableError("storage is down")

    monkeypatch.setattr(container.blobs, "delete_prefix", storage_down)
    synthesis_jobs.fail_job(deps, job_id, "given up")
    job = synthesis_client.get(f"/synthesis/jobs/{job_id}", headers=ann).get_json()
    assert (job["status"], job["error"]) == ("failed", "given up")
    assert f"The chunks of synthesis job {job_id} were not deleted" in caplog.text
    bucket = container.settings.audio_bucket
    assert container.blobs.list(bucket, f"{synthesis_jobs.CHUNK_PREFIX}/{job_id}/").items
    monkeypatch.undo()
    synthesis_jobs.fail_job(deps, job_id, "again")  # a later call deletes what this could not
    assert not container.blobs.list(bucket, f"{synthesis_jobs.CHUNK_PREFIX}/{job_id}/").items


def test_jobs_are_private(synthesis_client, ann, bob, queue):
    job_id = start(synthesis_client, ann)["jobId"]
    response = synthesis_client.get(f"/synthesis/jobs/{job_id}", headers=bob)
    assert response.status_code == 404
    assert response.get_json()["code"] == "SYNTHESIS_JOB_NOT_FOUND"
    wait(synthesis_client, ann, job_id)


def test_short_and_long_synthesis_on_firestore(
    monkeypatch, platform, function_client, firestore_emulator
):
    """The same flows with the Firestore adapter (its emulator): documents it accepts."""
    from shared.auth import build_dev_verifier
    from shared.bootstrap import reset_container
    from shared.catalog.repository import VoiceRepository
    from tests.conftest import FIRESTORE_PROJECT, reset_firestore
    from tests.functions.conftest import bearer

    reset_firestore(firestore_emulator)
    monkeypatch.setenv("VOICE_STORE", "gcp")
    monkeypatch.setenv("VOICE_PROJECT", FIRESTORE_PROJECT)
    reset_container()
    container = get_container()
    ann = bearer(build_dev_verifier(container.settings).mint("ann"))  # the new project's
    provider = CountingEspeak()
    container.use_provider_registry(ProviderRegistry.of([provider]))
    VoiceRepository(container.store).upsert(
        [v for v in fx.espeak_voices() if v.id in ("espeak:en-US", "espeak:en-US+f3")]
    )
    tasks = synthesis_worker()
    tasks.start()
    try:
        client = function_client("synthesis")
        short = {"text": "Stored in Firestore.", "voice": "espeak:en-US"}
        first = client.post("/synthesize", json=short, headers=ann).get_json()
        again = client.post("/synthesize", json=short, headers=ann).get_json()
        assert (first["cacheHit"], again["cacheHit"], provider.calls) == (False, True, 1)
        done = wait(client, ann, start(client, ann)["jobId"], timeout=60)
        assert done["status"] == "completed"
        assert len(done["timestamps"]["words"]) == len(LONG_TEXT.split())
    finally:
        tasks.stop()
