"""The voice models' background work: the daily cleanup, and the usage outbox's drain.

``voice_models.cleanup`` removes the models that meet the cleanup criteria (see
``shared.voice_models.cleanup``); the daily job fires it at 03:00 UTC.
``voice_models.usage_drain`` applies the uses synthesis left in the usage outbox
(``shared.voice_models.usage_outbox``) to the counters; it runs every minute.
"""

from __future__ import annotations

from collections.abc import Callable

import pydantic

from shared.config import Settings
from shared.tasks.base import TaskContext, TaskRegistry
from shared.tasks.scheduling import ScheduledJob
from shared.voice_models.cleanup import CLEANUP_TASK, cleanup_expired_models
from shared.voice_models.deps import VoiceModelDeps
from shared.voice_models.schemas import CleanupRequest
from shared.voice_models.usage_outbox import drain_usage

USAGE_DRAIN_TASK = "voice_models.usage_drain"
# Uses applied per run at most (each one transaction): a backlog goes on the next minute,
# so one run stays far inside the queue's dispatch deadline.
USAGE_DRAIN_LIMIT = 5_000


class UsageDrainRequest(pydantic.BaseModel):
    """Payload of ``voice_models.usage_drain``: none needed."""


def register_tasks(registry: TaskRegistry, deps: Callable[[], VoiceModelDeps]) -> None:
    """Register the daily cleanup task and the usage outbox's drain."""

    def run(payload: CleanupRequest, context: TaskContext) -> None:
        del context  # removal is idempotent: a retry finds the removed models deleted
        cleanup_expired_models(deps(), dry_run=payload.dry_run)

    registry.register(CLEANUP_TASK, CleanupRequest, run)

    def drain(payload: UsageDrainRequest, context: TaskContext) -> None:
        del payload, context  # each use is applied once, however often this runs
        drain_usage(deps().store, limit=USAGE_DRAIN_LIMIT)

    registry.register(USAGE_DRAIN_TASK, UsageDrainRequest, drain)


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """Return the daily cleanup of expired voice models and the usage drain."""
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
        ),
        ScheduledJob(
            name="voice-model-usage-drain",
            cron="* * * * *",
            description=(
                "Apply the voice model uses synthesis recorded in the usage outbox to the "
                "usage counters (readers apply a model's pending uses themselves first)"
            ),
            queue=settings.default_queue,
            task_type=USAGE_DRAIN_TASK,
        ),
    ]
