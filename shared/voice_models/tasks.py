"""The voice models' background work: the daily cleanup of expired models.

``voice_models.cleanup`` removes the models that meet the cleanup criteria (see
``shared.voice_models.cleanup``); the daily job fires it at 03:00 UTC.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.config import Settings
from shared.tasks.base import TaskContext, TaskRegistry
from shared.tasks.scheduling import ScheduledJob
from shared.voice_models.cleanup import CLEANUP_TASK, cleanup_expired_models
from shared.voice_models.deps import VoiceModelDeps
from shared.voice_models.model import CleanupRequest


def register_tasks(registry: TaskRegistry, deps: Callable[[], VoiceModelDeps]) -> None:
    """Register the daily cleanup task (``voice_models.cleanup``)."""

    def run(payload: CleanupRequest, context: TaskContext) -> None:
        del context  # removal is idempotent: a retry finds the removed models deleted
        cleanup_expired_models(deps(), dry_run=payload.dry_run)

    registry.register(CLEANUP_TASK, CleanupRequest, run)


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """Return the daily cleanup of expired voice models."""
    return [
        ScheduledJob(
            name="voice-model-cleanup",
            cron="0 3 * * *",
            description=(
                "Remove voice models older than six months, inactive, scoring under 0.5 "
                "and unused for 30 days"
            ),
            queue=settings.default_queue,
            task_type=CLEANUP_TASK,
        )
    ]
