"""The samples' background work: processing uploaded samples and training voice models.

``samples.process`` analyses one sample (``shared.samples.processing``); ``samples.train``
runs one model's trainer (``shared.samples.training.run``). Both are idempotent and fail
their subject, rather than leave it half done, on their last attempt. No scheduled jobs.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from shared.config import Settings
from shared.model import RequestModel
from shared.samples.deps import SampleDeps
from shared.samples.processing import process_sample
from shared.samples.training.run import run_training
from shared.samples.training.start import TRAIN_TASK
from shared.samples.uploads import PROCESS_TASK
from shared.tasks.base import TaskContext, TaskRegistry
from shared.tasks.scheduling import ScheduledJob


class ProcessSample(RequestModel):
    """Payload of ``samples.process``."""

    sample_id: str = Field(min_length=1, max_length=255)


class TrainModel(RequestModel):
    """Payload of ``samples.train``."""

    model_id: str = Field(min_length=1, max_length=255)


def register_tasks(registry: TaskRegistry, deps: Callable[[], SampleDeps]) -> None:
    """Register ``samples.process`` and ``samples.train``."""

    def process(payload: ProcessSample, context: TaskContext) -> None:
        process_sample(deps(), payload.sample_id, last_attempt=context.is_last_attempt)

    def train(payload: TrainModel, context: TaskContext) -> None:
        run_training(deps(), payload.model_id, last_attempt=context.is_last_attempt)

    registry.register(PROCESS_TASK, ProcessSample, process)
    registry.register(TRAIN_TASK, TrainModel, train)


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """Return the samples' scheduled jobs: none."""
    del settings
    return []
