"""The samples' background work: processing uploaded samples and training voice models.

``samples.process`` analyses one sample (``shared.samples.processing``); ``samples.train``
runs one model's trainer (``shared.samples.training.run``). Both are idempotent and fail
their subject, rather than leave it half done, on their last attempt. Daily at 04:15 UTC
``samples.expire_uploads`` deletes samples whose signed upload never came
(``shared.samples.expiry``); every 15 minutes ``samples.reconcile_training`` applies the
training results whose storage event never came (``shared.samples.training.reconcile``).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from shared.config import Settings
from shared.model import RequestModel
from shared.samples.deps import SampleDeps
from shared.samples.expiry import EXPIRE_UPLOADS_TASK, expire_awaited_uploads
from shared.samples.processing import process_sample
from shared.samples.training.reconcile import RECONCILE_TASK, reconcile_training
from shared.samples.training.run import run_training
from shared.samples.training.start import TRAIN_TASK
from shared.samples.uploads import PROCESS_TASK
from shared.tasks.base import TaskContext, TaskRegistry
from shared.tasks.scheduling import JobRun, ScheduledJob


class ProcessSample(RequestModel):
    """Payload of ``samples.process``."""

    sample_id: str = Field(min_length=1, max_length=255)


class TrainModel(RequestModel):
    """Payload of ``samples.train``."""

    model_id: str = Field(min_length=1, max_length=255)


def register_tasks(registry: TaskRegistry, deps: Callable[[], SampleDeps]) -> None:
    """Register ``samples.process``, ``samples.train`` and ``samples.expire_uploads``."""

    def process(payload: ProcessSample, context: TaskContext) -> None:
        process_sample(deps(), payload.sample_id, last_attempt=context.is_last_attempt)

    def train(payload: TrainModel, context: TaskContext) -> None:
        run_training(deps(), payload.model_id, last_attempt=context.is_last_attempt)

    def expire_uploads(payload: JobRun, context: TaskContext) -> None:
        del payload, context  # each sample is deleted in its own transaction, once
        expire_awaited_uploads(deps())

    def reconcile(payload: JobRun, context: TaskContext) -> None:
        del payload, context  # each result is applied in its own transaction, once
        reconcile_training(deps())

    registry.register(PROCESS_TASK, ProcessSample, process)
    registry.register(TRAIN_TASK, TrainModel, train)
    registry.register(EXPIRE_UPLOADS_TASK, JobRun, expire_uploads)
    registry.register(RECONCILE_TASK, JobRun, reconcile)


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """Return the deletion of samples whose upload never came and the training sweep."""
    return [
        ScheduledJob(
            name="samples-upload-expiry",
            cron="15 4 * * *",
            description="Delete voice samples whose signed upload never came",
            queue=settings.default_queue,
            task_type=EXPIRE_UPLOADS_TASK,
        ),
        ScheduledJob(
            name="training-reconcile",
            cron="*/15 * * * *",
            description="Apply the training results whose storage event never came",
            queue=settings.default_queue,
            task_type=RECONCILE_TASK,
        ),
    ]
