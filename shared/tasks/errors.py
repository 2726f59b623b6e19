"""The task queue's errors: what a handler raises to retry or give up, and the API's refusals.

Apart from the port (``shared.tasks.base``) so that code that only catches or raises them,
such as a function queuing a job's tasks, does not create the port's classes and models.
"""

from __future__ import annotations

from shared.errors import ConflictError, InvalidRequestError, NotFoundError


class TaskAlreadyExistsError(ConflictError):
    code = "TASK_ALREADY_EXISTS"
    default_message = "A task with this de-duplication key was already enqueued"


class UnknownQueueError(InvalidRequestError):
    code = "UNKNOWN_QUEUE"
    default_message = "No such task queue"


class DeadLetterNotFoundError(NotFoundError):
    code = "DEAD_LETTER_NOT_FOUND"
    default_message = "Dead-lettered task not found"


class ScheduledJobNotFoundError(NotFoundError):
    code = "SCHEDULED_JOB_NOT_FOUND"
    default_message = "Scheduled job not found"


class RetryTask(Exception):
    """Raised by a handler for a transient failure: run the task again later.

    ``delay`` (seconds) overrides the queue's backoff where the backend allows it (the
    in-process worker does; Cloud Tasks applies the queue's own backoff).
    """

    def __init__(self, reason: str, *, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class GiveUpTask(Exception):
    """Raised by a handler for a permanent failure: dead-letter the task, never retry it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
