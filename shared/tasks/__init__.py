"""The task queue port and its adapters (in-process embedded default, Cloud Tasks)."""

from shared.tasks.base import (
    DeadLetterNotFoundError,
    GiveUpTask,
    QueuePolicy,
    RetryTask,
    ScheduledJobNotFoundError,
    TaskAlreadyExistsError,
    TaskContext,
    TaskEnvelope,
    TaskQueue,
    TaskRegistry,
    UnknownQueueError,
)
from shared.tasks.execution import DeadLetter, Outcome, execute_task

__all__ = [
    "DeadLetter",
    "DeadLetterNotFoundError",
    "GiveUpTask",
    "Outcome",
    "QueuePolicy",
    "RetryTask",
    "ScheduledJobNotFoundError",
    "TaskAlreadyExistsError",
    "TaskContext",
    "TaskEnvelope",
    "TaskQueue",
    "TaskRegistry",
    "UnknownQueueError",
    "execute_task",
]
