"""The echo capability's background work: a task that stores its payload, and a daily job."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from shared.config import Settings
from shared.tasks.base import TaskContext, TaskRegistry
from shared.tasks.scheduling import ScheduledJob
from tests.support.echo_capability import EchoDeps

ECHO_TASK = "echo.store"


class Echo(BaseModel):
    """Payload of ``echo.store``."""

    user_id: str
    text: str


def register_tasks(registry: TaskRegistry, deps: Callable[[], EchoDeps]) -> None:
    """Register ``echo.store``, which writes its payload to ``echoes``."""

    def run(payload: Echo, ctx: TaskContext) -> None:
        deps().store.set("echoes", ctx.task_id, payload.model_dump())

    registry.register(ECHO_TASK, Echo, run)


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """Return the echo capability's daily job."""
    return [
        ScheduledJob(
            name="echo-daily",
            cron="15 4 * * *",
            description="Echo once a day",
            queue=settings.default_queue,
            task_type=ECHO_TASK,
        )
    ]
