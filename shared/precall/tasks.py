"""Pre-call background work: clones, webhook notifications, and the two scheduled jobs.

``precall.clone`` settles a call's clone (``shared.precall.cloning``); ``precall.notify``
calls the configured webhook (``shared.precall.webhooks``); ``precall.warm_cloner`` gets
the embedded cloner ready for a mapping's language (``shared.precall.warmup``); every 10 minutes
``precall.expire_clones`` expires cached clones past their TTL and deletes their provider
voices, and daily at 03:45 UTC ``precall.purge_deleted`` deletes soft-deleted rows past
the retention (``shared.precall.expiry``).
"""

from __future__ import annotations

from collections.abc import Callable

from shared.config import Settings
from shared.precall.calls import CLONE_TASK
from shared.precall.cloning import CloneTask, run_clone_task
from shared.precall.deps import PrecallDeps
from shared.precall.expiry import EXPIRE_TASK, PURGE_TASK, expire_clones, purge_deleted
from shared.precall.warmup import WARM_TASK, WarmTask, warm_cloner
from shared.precall.webhooks import NOTIFY_TASK, Notification, send_notification
from shared.tasks.base import TaskContext, TaskRegistry
from shared.tasks.scheduling import JobRun, ScheduledJob


def register_tasks(registry: TaskRegistry, deps: Callable[[], PrecallDeps]) -> None:
    """Register the clone, notification, warm-up, expiry and purge tasks."""

    def clone(payload: CloneTask, context: TaskContext) -> None:
        run_clone_task(deps(), payload, context)

    def notify(payload: Notification, context: TaskContext) -> None:
        del context  # the receiver drops repeats by X-Voice-Event-Id
        send_notification(deps(), payload)

    def warm(payload: WarmTask, context: TaskContext) -> None:
        del context  # warming twice finds the table stored the first time
        warm_cloner(deps(), payload)

    def expire(payload: JobRun, context: TaskContext) -> None:
        del payload, context  # each entry expires in its own transaction, once
        expire_clones(deps())

    def purge(payload: JobRun, context: TaskContext) -> None:
        del payload, context  # deleting what is already gone is a no-op
        purge_deleted(deps())

    registry.register(CLONE_TASK, CloneTask, clone)
    registry.register(NOTIFY_TASK, Notification, notify)
    registry.register(WARM_TASK, WarmTask, warm)
    registry.register(EXPIRE_TASK, JobRun, expire)
    registry.register(PURGE_TASK, JobRun, purge)


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """Return the clone expiry (every 10 minutes) and the retention purge (daily)."""
    return [
        ScheduledJob(
            name="precall-clone-expiry",
            cron="*/10 * * * *",
            description="Expire cached pre-call clones past their TTL and delete provider voices",
            queue=settings.default_queue,
            task_type=EXPIRE_TASK,
        ),
        ScheduledJob(
            name="precall-retention-purge",
            cron="45 3 * * *",
            description="Delete soft-deleted pre-call mappings and clones past the retention",
            queue=settings.default_queue,
            task_type=PURGE_TASK,
        ),
    ]
