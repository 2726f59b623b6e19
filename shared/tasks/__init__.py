"""The task queue port and its adapters (in-process embedded default, Cloud Tasks).

The names below are imported from their modules on first use (``shared.lazy``), so a
module that needs only ``shared.tasks.base`` does not load the execution machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.lazy import lazy_exports

if TYPE_CHECKING:
    from shared.tasks.base import QueuePolicy, TaskContext, TaskEnvelope, TaskQueue, TaskRegistry
    from shared.tasks.errors import (
        DeadLetterNotFoundError,
        GiveUpTask,
        RetryTask,
        ScheduledJobNotFoundError,
        TaskAlreadyExistsError,
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

__getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "shared.tasks.base": [
            "QueuePolicy",
            "TaskContext",
            "TaskEnvelope",
            "TaskQueue",
            "TaskRegistry",
        ],
        "shared.tasks.errors": [
            "DeadLetterNotFoundError",
            "GiveUpTask",
            "RetryTask",
            "ScheduledJobNotFoundError",
            "TaskAlreadyExistsError",
            "UnknownQueueError",
        ],
        "shared.tasks.execution": ["DeadLetter", "Outcome", "execute_task"],
    },
)
