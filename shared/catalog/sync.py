"""Syncing provider voices into the catalog: sync jobs and what each attempt does.

A sync run creates one ``VoiceSyncJob`` per provider and queues one task per job. The task
moves its job PENDING -> RUNNING -> COMPLETED or FAILED through the domain's state machine:

* it fetches the provider's complete voice list (a list cut short raises, so nothing is
  deprecated on a partial list), upserts it in transactions of 500 that count added,
  updated (data changed) and deprecated voices, deprecates the provider's voices missing
  from the list, and restores deprecated voices that reappear;
* a transient or rate-limited failure fails the job and, while ``retry_count < 3``, puts it
  back to PENDING in the same write and asks the queue to retry (after ``Retry-After``
  when the provider gave one); auth and permanent failures, and the fourth failure, leave
  it FAILED with the error message;
* a redelivered task for a job already COMPLETED (or FAILED for good) changes nothing, and
  a job left RUNNING by a crashed attempt counts as a failed attempt.

The queue's ``max_attempts`` for the sync queue must be at least ``MAX_SYNC_RETRIES + 1``
(the platform's sync policy has 4). The task handlers and the daily schedule are in
``shared.catalog.tasks``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.catalog.model import MAX_SYNC_RETRIES, VoiceSyncJob, VoiceSyncStatus
from shared.catalog.repository import UpsertCounts, VoiceRepository
from shared.catalog.sync_repository import VoiceSyncJobRepository
from shared.errors import ConfigurationError, NotFoundError, PlatformError
from shared.model import new_id, utcnow
from shared.providers.base import (
    ErrorCategory,
    ProviderError,
    TTSProvider,
    UnknownProviderError,
    provider_error,
)
from shared.providers.registry import ProviderRegistry
from shared.providers.voices import VoiceProfile
from shared.store.base import MAX_BATCH_WRITES, DocumentStore
from shared.tasks.errors import TaskAlreadyExistsError

if TYPE_CHECKING:
    from shared.tasks.base import TaskQueue

logger = logging.getLogger(__name__)

SYNC_JOB_TASK = "voices.sync_job"
SYNC_ALL_TASK = "voices.sync_all"
DAILY_JOB_NAME = "sync-voices"
DAILY_CRON = "0 3 * * *"
UPSERT_BATCH = MAX_BATCH_WRITES

Clock = Callable[[], datetime]


class SyncJobTask(BaseModel):
    """Payload of ``voices.sync_job``: the job to run."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    job_id: str = Field(min_length=1, max_length=200)


class SyncAllTask(BaseModel):
    """Payload of ``voices.sync_all`` (the daily firing): every provider, or one."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    provider: str | None = None


@dataclass
class SyncResult:
    """What one provider sync changed, and the languages of its active voices."""

    counts: UpsertCounts = field(default_factory=UpsertCounts)
    languages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class JobAttempt:
    """The job after one attempt; ``retry`` says whether the task should run again."""

    job: VoiceSyncJob
    retry: bool = False
    retry_after: float | None = None


# -- the sync itself ---------------------------------------------------------------------


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sync_provider_voices(
    *, store: DocumentStore, provider: TTSProvider, now: datetime
) -> SyncResult:
    """Upsert ``provider``'s complete voice list and deprecate the voices it dropped.

    Raises:
        ProviderError: the provider failed (nothing is deprecated), or it returned no
            voices while the catalog has some (treated as transient, never as "all gone").
    """
    listed = provider.list_voices()
    voices: dict[str, VoiceProfile] = {}
    for voice in listed:
        if voice.provider != provider.name:
            logger.warning("Provider %s listed a voice of %s", provider.name, voice.provider)
            continue
        voices.setdefault(voice.id, voice.model_copy(update={"synced_at": now}))
    repository = VoiceRepository(store)
    active = repository.active_ids(provider.name)
    if not voices and active:
        raise provider_error(
            provider.name,
            ErrorCategory.TRANSIENT,
            f"{provider.name} listed no voices; keeping the {len(active)} in the catalog",
        )
    result = SyncResult()
    for batch in _batches(list(voices.values()), UPSERT_BATCH):
        result.counts += repository.upsert(batch)
    missing = [voice_id for voice_id in active if voice_id not in voices]
    for batch in _batches(missing, UPSERT_BATCH):
        result.counts.deprecated += repository.deprecate(batch)
    result.languages = sorted({v.language for v in voices.values() if not v.is_deprecated})
    return result


def run_sync_job(
    *, store: DocumentStore, providers: ProviderRegistry, job_id: str, clock: Clock = utcnow
) -> JobAttempt:
    """Run one attempt of the job and return it as stored afterwards.

    Raises:
        VoiceSyncJobNotFoundError: no such job.
    """
    jobs = VoiceSyncJobRepository(store)
    job = jobs.transition(job_id, lambda current: _claim(current, clock()))
    if job.status is not VoiceSyncStatus.RUNNING:
        logger.info("Voice sync job %s is %s: nothing to run", job_id, job.status.value)
        return JobAttempt(job)
    try:
        if job.provider is None:
            raise ConfigurationError("A sync job needs a provider")
        provider = providers.get(job.provider)
        result = sync_provider_voices(store=store, provider=provider, now=clock())
    except ProviderError as exc:
        return _failed(
            jobs,
            job_id,
            exc.message,
            retryable=exc.retryable,
            retry_after=exc.retry_after,
            clock=clock,
        )
    except PlatformError as exc:
        # Not enabled or misconfigured: retrying cannot help until an operator acts. Other
        # platform errors (store contention, a service briefly away) pass with time.
        permanent = isinstance(exc, ConfigurationError | NotFoundError)
        return _failed(
            jobs, job_id, exc.message, retryable=not permanent, retry_after=None, clock=clock
        )
    except Exception as exc:
        logger.exception("Voice sync job %s failed unexpectedly", job_id)
        message = f"Unexpected {type(exc).__name__}"
        return _failed(jobs, job_id, message, retryable=True, retry_after=None, clock=clock)
    counts = result.counts
    done = jobs.transition(
        job_id,
        lambda current: (
            current.complete(
                added=counts.added,
                updated=counts.updated,
                deprecated=counts.deprecated,
                now=clock(),
            )
            if current.status is VoiceSyncStatus.RUNNING
            else None
        ),
        languages=result.languages,
    )
    logger.info(
        "Voice sync job %s for %s: %d added, %d updated, %d deprecated",
        job_id,
        job.provider,
        counts.added,
        counts.updated,
        counts.deprecated,
    )
    return JobAttempt(done)


def _claim(job: VoiceSyncJob, now: datetime) -> VoiceSyncJob | None:
    if job.status is VoiceSyncStatus.COMPLETED:
        return None
    if job.status is VoiceSyncStatus.RUNNING:
        # The attempt that started it never reported back (its process died).
        job = job.fail("The previous attempt was interrupted", now)
    if job.status is VoiceSyncStatus.FAILED:
        if not job.can_retry:
            return job
        job = job.retry()
    return job.start(now)


def _failed(
    jobs: VoiceSyncJobRepository,
    job_id: str,
    message: str,
    *,
    retryable: bool,
    retry_after: float | None,
    clock: Clock,
) -> JobAttempt:
    def fail(current: VoiceSyncJob) -> VoiceSyncJob | None:
        if current.status is not VoiceSyncStatus.RUNNING:
            return None
        failed = current.fail(message, clock())
        # FAILED -> PENDING in the same write, so no crash can strand a retryable job.
        return failed.retry() if retryable and failed.can_retry else failed

    job = jobs.transition(job_id, fail)
    retry = job.status is VoiceSyncStatus.PENDING
    logger.warning(
        "Voice sync job %s failed (%s), %s",
        job_id,
        message,
        f"retry {job.retry_count} of {MAX_SYNC_RETRIES}" if retry else "giving up",
    )
    return JobAttempt(job, retry=retry, retry_after=retry_after)


# -- starting runs -------------------------------------------------------------------------


def start_sync(
    *,
    store: DocumentStore,
    providers: ProviderRegistry,
    queue: TaskQueue,
    queue_name: str,
    provider: str | None = None,
    id_prefix: str | None = None,
) -> list[VoiceSyncJob]:
    """Create one PENDING job per provider (or for ``provider``) and queue a task each.

    With ``id_prefix`` the job ids are ``{prefix}-{provider}``, so a retried caller (the
    daily task) neither duplicates jobs nor queues them twice.

    Raises:
        UnknownProviderError: ``provider`` is not enabled.
    """
    if provider is not None and provider not in providers:
        raise UnknownProviderError(f"Voice provider {provider!r} is not enabled")
    names = [provider] if provider else providers.names
    jobs = VoiceSyncJobRepository(store)
    started: list[VoiceSyncJob] = []
    for name in names:
        job = VoiceSyncJob(id=f"{id_prefix}-{name}" if id_prefix else new_id(), provider=name)
        created = jobs.add(job)
        try:
            queue.enqueue(
                queue_name,
                SYNC_JOB_TASK,
                SyncJobTask(job_id=job.id),
                dedup_key=f"voice-sync:{job.id}",
            )
        except TaskAlreadyExistsError:
            pass
        except BaseException:
            if created:
                jobs.remove(job.id)
            raise
        started.append(jobs.require(job.id))
    return started
