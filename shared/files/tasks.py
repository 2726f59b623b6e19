"""The audio files' background work: the daily deletion of expired files.

``audio_files.cleanup`` deletes every expired file (records, objects, storage used); the
daily job fires it at 03:30 UTC.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from shared.config import Settings
from shared.files.deps import AudioDeps
from shared.files.storage import CLEANUP_TASK, cleanup_expired_files
from shared.tasks.base import TaskContext, TaskRegistry
from shared.tasks.scheduling import ScheduledJob


class AudioCleanupRequest(BaseModel):
    """Payload of ``audio_files.cleanup`` (the daily job sends ``{}``)."""


def daily_cleanup_job(settings: Settings) -> ScheduledJob:
    """Return the daily job that deletes expired audio files."""
    return ScheduledJob(
        name="audio-file-cleanup",
        cron="30 3 * * *",
        description="Delete expired audio files and free their owners' storage",
        queue=settings.default_queue,
        task_type=CLEANUP_TASK,
    )


def register_tasks(registry: TaskRegistry, deps: Callable[[], AudioDeps]) -> None:
    """Register the daily cleanup task (``audio_files.cleanup``)."""

    def run(payload: AudioCleanupRequest, context: TaskContext) -> None:
        del payload, context  # deleting is idempotent: a retry finds the files gone
        cleanup_expired_files(deps())

    registry.register(CLEANUP_TASK, AudioCleanupRequest, run)


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """Return the daily cleanup of expired audio files."""
    return [daily_cleanup_job(settings)]
