"""Voice sync: jobs through the real in-process task queue, against a SQLite store.

Covers the issue's cases: add / update / deprecate / reappear, a provider failing part-way,
a transient failure twice then success, a failure on every attempt, auth failures that are
not retried, redelivery of a completed job, and two concurrent syncs of one provider.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.catalog.model import VoiceSyncJob, VoiceSyncStatus
from shared.catalog.repository import VOICES, VoiceFilters, VoiceRepository
from shared.catalog.sync import SYNC_JOB_TASK, run_sync_job, start_sync, sync_provider_voices
from shared.catalog.sync_repository import (
    PROVIDER_STATE,
    VoiceSyncJobNotFoundError,
    VoiceSyncJobRepository,
)
from shared.catalog.tasks import daily_sync_job, register_voice_sync_tasks
from shared.errors import InvalidStateTransitionError
from shared.providers.base import ErrorCategory, UnknownProviderError
from shared.providers.registry import ProviderRegistry
from shared.store.base import Query
from shared.store.sqlite import SqliteDocumentStore
from shared.tasks.base import QueuePolicy, TaskRegistry
from shared.tasks.execution import DEAD_LETTERS
from shared.tasks.inprocess import InProcessTaskQueue
from shared.tasks.scheduling import fire_job
from tests.support.fake_provider import FakeProvider, make_voice, make_voices

QUEUE = "voice-sync"
FAST_RETRIES = QueuePolicy(max_attempts=4, min_backoff=0.01, max_backoff=0.05, max_concurrent=4)
NOW = datetime(2026, 1, 22, 3, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    adapter = SqliteDocumentStore(tmp_path / "store.sqlite3")
    yield adapter
    adapter.close()


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider("acme", make_voices("acme", 5))


@pytest.fixture
def providers(provider: FakeProvider) -> ProviderRegistry:
    return ProviderRegistry.of([provider, FakeProvider("other", make_voices("other", 3))])


@pytest.fixture
def queue(store, providers) -> Iterator[InProcessTaskQueue]:
    registry = TaskRegistry()
    holder: dict[str, InProcessTaskQueue] = {}
    register_voice_sync_tasks(
        registry, providers=lambda: providers, queue=lambda: holder["queue"], queue_name=QUEUE
    )
    worker = InProcessTaskQueue(
        store=store, policies={QUEUE: FAST_RETRIES}, registry=registry, poll_interval=0.02
    )
    holder["queue"] = worker
    worker.start()
    yield worker
    worker.stop()


def sync(store, providers, queue, provider: str | None = "acme") -> list[VoiceSyncJob]:
    jobs = start_sync(
        store=store, providers=providers, queue=queue, queue_name=QUEUE, provider=provider
    )
    return [wait_for(store, job.id) for job in jobs]


def wait_for(store, job_id: str, timeout: float = 15.0) -> VoiceSyncJob:
    repository = VoiceSyncJobRepository(store)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = repository.require(job_id)
        # A retryable failure goes straight back to PENDING: FAILED is final here.
        if job.status in (VoiceSyncStatus.COMPLETED, VoiceSyncStatus.FAILED):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {repository.require(job_id)}")


def counts(job: VoiceSyncJob) -> tuple[int, int, int]:
    return job.voices_added, job.voices_updated, job.voices_deprecated


def catalog(store, provider="acme", include_deprecated=True):
    voices, _ = VoiceRepository(store).find(
        VoiceFilters(provider=provider, include_deprecated=include_deprecated), limit=100
    )
    return {voice.voice_id: voice for voice in voices}


# -- the sync's effect on the catalog -----------------------------------------------------


def test_first_sync_adds_every_voice_and_completes(store, providers, queue):
    [job] = sync(store, providers, queue)
    assert job.status is VoiceSyncStatus.COMPLETED
    assert counts(job) == (5, 0, 0)
    assert job.retry_count == 0
    assert job.started_at is not None
    assert job.completed_at >= job.started_at
    voices = catalog(store)
    assert len(voices) == 5
    assert all(v.synced_at is not None and not v.is_deprecated for v in voices.values())


def test_second_sync_with_nothing_changed_reports_zeros(store, providers, queue):
    sync(store, providers, queue)
    [again] = sync(store, providers, queue)
    assert counts(again) == (0, 0, 0)


def test_add_update_deprecate_and_reappear(store, providers, queue, provider):
    sync(store, providers, queue)
    provider.voices = [
        *provider.voices[:3],
        provider.voices[3].model_copy(update={"display_name": "Renamed"}),
        *make_voices("acme", 2, start=100),
    ]
    # voice-0004 disappeared; voice-0003 changed; two new voices.
    [second] = sync(store, providers, queue)
    assert counts(second) == (2, 1, 1)
    voices = catalog(store)
    assert voices["voice-0004"].is_deprecated, "a dropped voice is kept, deprecated"
    assert voices["voice-0003"].display_name == "Renamed"
    assert "voice-0004" not in catalog(store, include_deprecated=False)

    provider.voices.append(make_voice("acme", 4))
    [third] = sync(store, providers, queue)
    assert counts(third) == (0, 1, 0), "a reappearing voice is restored, counted as updated"
    assert not catalog(store)["voice-0004"].is_deprecated


def test_deprecated_voices_are_not_deprecated_twice(store, providers, queue, provider):
    sync(store, providers, queue)
    provider.voices = provider.voices[:2]
    [first] = sync(store, providers, queue)
    [second] = sync(store, providers, queue)
    assert first.voices_deprecated == 3
    assert counts(second) == (0, 0, 0)


def test_provider_failing_part_way_deprecates_nothing(store, providers, queue, provider):
    sync(store, providers, queue)
    provider.voices = make_voices("acme", 250)
    provider.page_size = 100
    provider.fail_after_pages = 1  # every attempt gets one page, then the connection drops
    [job] = sync(store, providers, queue)
    assert job.status is VoiceSyncStatus.FAILED
    assert job.retry_count == 3
    assert "mid-list" in (job.error_message or "")
    voices = catalog(store)
    assert len(voices) == 5, "nothing from the partial list is written"
    assert not any(v.is_deprecated for v in voices.values())


def test_empty_list_never_deprecates_the_whole_provider(store, providers, provider):
    sync_provider_voices(store=store, provider=provider, now=NOW)
    provider.voices = []
    with pytest.raises(Exception, match="listed no voices"):
        sync_provider_voices(store=store, provider=provider, now=NOW)
    assert len(catalog(store, include_deprecated=False)) == 5


# -- retries -----------------------------------------------------------------------------------


def test_transient_failure_twice_then_success(store, providers, queue, provider):
    provider.fail_with(ErrorCategory.TRANSIENT, times=2)
    [job] = sync(store, providers, queue)
    assert job.status is VoiceSyncStatus.COMPLETED
    assert job.retry_count == 2
    assert job.error_message is None
    assert counts(job) == (5, 0, 0)
    assert provider.calls == 3


def test_rate_limited_then_success_waits_for_retry_after(store, providers, queue, provider):
    provider.fail_with(ErrorCategory.RATE_LIMITED, retry_after=0)
    [job] = sync(store, providers, queue)
    assert job.status is VoiceSyncStatus.COMPLETED
    assert job.retry_count == 1


def test_failure_on_every_attempt_fails_after_three_retries(store, providers, queue, provider):
    provider.fail_with(ErrorCategory.TRANSIENT, times=10)
    [job] = sync(store, providers, queue)
    assert job.status is VoiceSyncStatus.FAILED
    assert job.retry_count == 3
    assert job.error_message == "acme transient failure"
    time.sleep(0.2)
    assert provider.calls == 4, "one attempt and three retries, then no more"
    assert store.count(Query(DEAD_LETTERS)) == 0, "the job records the failure; not a dead letter"


@pytest.mark.parametrize("category", [ErrorCategory.AUTH, ErrorCategory.PERMANENT])
def test_auth_and_permanent_failures_are_not_retried(store, providers, queue, provider, category):
    provider.fail_with(category, times=10)
    [job] = sync(store, providers, queue)
    assert job.status is VoiceSyncStatus.FAILED
    assert job.retry_count == 0
    assert provider.calls == 1
    assert catalog(store) == {}


def test_rerunning_a_completed_job_changes_nothing(store, providers, queue, provider):
    [job] = sync(store, providers, queue)
    provider.voices = provider.voices[:1]
    again = run_sync_job(store=store, providers=providers, job_id=job.id)
    assert again.job == job
    assert not again.retry
    assert provider.calls == 1
    assert len(catalog(store, include_deprecated=False)) == 5


def test_redelivered_task_for_a_completed_job_is_acknowledged(store, providers, queue, provider):
    [job] = sync(store, providers, queue)
    queue.enqueue(QUEUE, SYNC_JOB_TASK, {"jobId": job.id})
    deadline = time.monotonic() + 5
    while queue.pending_count(QUEUE) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert queue.pending_count(QUEUE) == 0
    assert VoiceSyncJobRepository(store).require(job.id) == job
    assert provider.calls == 1


def test_a_job_left_running_by_a_crash_counts_as_a_failed_attempt(store, providers):
    jobs = VoiceSyncJobRepository(store)
    job = VoiceSyncJob(provider="acme")
    jobs.add(job)
    jobs.transition(job.id, lambda j: j.start(NOW))  # the process died here
    attempt = run_sync_job(store=store, providers=providers, job_id=job.id)
    assert attempt.job.status is VoiceSyncStatus.COMPLETED
    assert attempt.job.retry_count == 1


def test_illegal_transitions_are_refused(store):
    jobs = VoiceSyncJobRepository(store)
    job = VoiceSyncJob(provider="acme")
    jobs.add(job)
    with pytest.raises(InvalidStateTransitionError):
        jobs.transition(job.id, lambda j: j.complete(added=1, updated=0, deprecated=0, now=NOW))
    assert jobs.require(job.id).status is VoiceSyncStatus.PENDING


def test_missing_job_is_not_found(store, providers):
    with pytest.raises(VoiceSyncJobNotFoundError):
        run_sync_job(store=store, providers=providers, job_id="no-such-job")


# -- starting runs and concurrency --------------------------------------------------------------


def test_sync_of_every_provider_creates_one_job_each(store, providers, queue):
    jobs = sync(store, providers, queue, provider=None)
    assert sorted(job.provider for job in jobs) == ["acme", "other"]
    assert all(job.status is VoiceSyncStatus.COMPLETED for job in jobs)
    states = VoiceSyncJobRepository(store).provider_states(["acme", "other"])
    assert states["acme"]["last_job_status"] == "completed"
    assert states["acme"]["languages"] == sorted({v.language for v in make_voices("acme", 5)})


def test_unknown_provider_is_refused_before_any_job(store, providers, queue):
    with pytest.raises(UnknownProviderError):
        start_sync(store=store, providers=providers, queue=queue, queue_name=QUEUE, provider="nope")
    assert VoiceSyncJobRepository(store).list_recent(limit=10)[0] == []


def test_two_concurrent_syncs_of_one_provider(store, providers, provider, tmp_path):
    provider.voices = make_voices("acme", 700)
    jobs = VoiceSyncJobRepository(store)
    ids = []
    for _ in range(2):
        job = VoiceSyncJob(provider="acme")
        jobs.add(job)
        ids.append(job.id)
    barrier = threading.Barrier(2)
    results = {}

    def run(job_id: str) -> None:
        # Each thread its own store object on the same file, like two instances.
        own = SqliteDocumentStore(tmp_path / "store.sqlite3")
        barrier.wait()
        results[job_id] = run_sync_job(store=own, providers=providers, job_id=job_id).job
        own.close()

    threads = [threading.Thread(target=run, args=(job_id,)) for job_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(job.status is VoiceSyncStatus.COMPLETED for job in results.values())
    assert sum(job.voices_added for job in results.values()) == 700, "each voice added once"
    assert sum(job.voices_updated for job in results.values()) == 0
    assert store.count(Query(VOICES)) == 700


def test_daily_job_starts_every_provider_once_per_firing(store, providers, queue):
    class Settings:
        sync_queue = QUEUE

    job = daily_sync_job(Settings())
    assert job.task_type == "voices.sync_all"
    assert job.cron == "0 3 * * *"
    fired_at = datetime(2026, 1, 22, 3, 0, tzinfo=UTC)
    assert fire_job(queue, job, fired_at) is not None
    assert fire_job(queue, job, fired_at) is None, "a second firing of one time is dropped"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        finished, _ = VoiceSyncJobRepository(store).list_recent(limit=10)
        if len(finished) == 2 and all(j.status is VoiceSyncStatus.COMPLETED for j in finished):
            break
        time.sleep(0.05)
    assert sorted(j.provider for j in finished) == ["acme", "other"]
    assert all(j.status is VoiceSyncStatus.COMPLETED for j in finished)
    assert store.get(PROVIDER_STATE, "other") is not None
