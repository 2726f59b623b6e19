"""The catalog's background work: sync-job tasks and the daily sync of every provider.

``voices.sync_job`` runs one attempt of a sync job (``run_sync_job``) and asks the queue
to retry a transient failure (after the provider's ``Retry-After`` when it gave one);
``voices.sync_all`` starts one job per enabled provider, with the task id as the job-id
prefix so a redelivered task neither duplicates jobs nor queues them twice. The daily job
fires ``voices.sync_all`` at 03:00 UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.catalog.deps import CatalogDeps
from shared.catalog.sync import (
    DAILY_CRON,
    DAILY_JOB_NAME,
    SYNC_ALL_TASK,
    SYNC_JOB_TASK,
    SyncAllTask,
    SyncJobTask,
    run_sync_job,
    start_sync,
)
from shared.catalog.sync_repository import VoiceSyncJobNotFoundError
from shared.config import Settings
from shared.providers.registry import ProviderRegistry
from shared.tasks.base import TaskContext
from shared.tasks.errors import GiveUpTask, RetryTask
from shared.tasks.scheduling import ScheduledJob

if TYPE_CHECKING:
    from shared.tasks.base import TaskQueue, TaskRegistry


def handle_sync_job_task(
    payload: SyncJobTask, ctx: TaskContext, *, providers: ProviderRegistry
) -> None:
    """Run the job's attempt; raise RetryTask to retry it, GiveUpTask if it is gone."""
    try:
        attempt = run_sync_job(store=ctx.store, providers=providers, job_id=payload.job_id)
    except VoiceSyncJobNotFoundError as exc:
        raise GiveUpTask(exc.message) from exc
    if attempt.retry:
        raise RetryTask(attempt.job.error_message or "voice sync failed", delay=attempt.retry_after)


def register_voice_sync_tasks(
    registry: TaskRegistry,
    *,
    providers: Callable[[], ProviderRegistry],
    queue: Callable[[], TaskQueue],
    queue_name: str,
) -> None:
    """Register ``voices.sync_job`` and ``voices.sync_all`` with the task registry."""

    def sync_job(payload: SyncJobTask, ctx: TaskContext) -> None:
        handle_sync_job_task(payload, ctx, providers=providers())

    def sync_all(payload: SyncAllTask, ctx: TaskContext) -> None:
        start_sync(
            store=ctx.store,
            providers=providers(),
            queue=queue(),
            queue_name=queue_name,
            provider=payload.provider,
            id_prefix=ctx.task_id,
        )

    registry.register(SYNC_JOB_TASK, SyncJobTask, sync_job)
    registry.register(SYNC_ALL_TASK, SyncAllTask, sync_all)


def register_tasks(registry: TaskRegistry, deps: Callable[[], CatalogDeps]) -> None:
    """Register the catalog's task handlers; ``deps`` builds its dependencies on first use."""
    catalog = deps()
    register_voice_sync_tasks(
        registry,
        providers=catalog.providers,
        queue=catalog.queue,
        queue_name=catalog.settings.sync_queue,
    )


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """Return the catalog's scheduled jobs: the daily sync."""
    return [daily_sync_job(settings)]


def daily_sync_job(settings: Settings) -> ScheduledJob:
    """Return the daily job that syncs every enabled provider (03:00 UTC)."""
    return ScheduledJob(
        name=DAILY_JOB_NAME,
        cron=DAILY_CRON,
        description="Sync every enabled TTS provider's voices into the catalog",
        queue=settings.sync_queue,
        task_type=SYNC_ALL_TASK,
    )
