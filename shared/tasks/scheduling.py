"""Scheduled jobs: cron expressions that enqueue a task, run by Cloud Scheduler or locally.

A ``ScheduledJob`` names a five-field cron expression (UTC) and the task it enqueues, so a
job inherits its queue's retries and dead-lettering. In production each job is a Cloud
Scheduler job POSTing, with an OIDC token, to the tasks function's
``/scheduler/jobs/{name}/fire``; ``scheduled_jobs_manifest`` describes them for Terraform
(``python -m shared.bootstrap scheduled-jobs`` prints it as JSON). Locally
``LocalScheduler`` fires the same expressions inside the gateway. Every firing enqueues
with the de-duplication key ``schedule:{name}:{scheduled time}``, so two gateways (or a
Cloud Scheduler retry) never start one firing twice. Firings missed while nothing was
running are skipped, not caught up, as Cloud Scheduler does.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pydantic

from shared.errors import echoed
from shared.lazy import lazy_module
from shared.tasks.base import TaskQueue
from shared.tasks.errors import ScheduledJobNotFoundError, TaskAlreadyExistsError

if TYPE_CHECKING:
    import croniter
else:
    # croniter runs `file` on the interpreter when imported (platform.architecture()): only
    # processes that schedule or fire jobs pay for it.
    croniter = lazy_module("croniter")

logger = logging.getLogger(__name__)

# Cloud Scheduler job ids: letters, digits, hyphens and underscores, up to 500 characters.
_JOB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
TIME_ZONE = "Etc/UTC"


class JobRun(pydantic.BaseModel):
    """The payload of a scheduled job that takes none (its ``payload`` left empty)."""

    model_config = pydantic.ConfigDict(extra="forbid", defer_build=True)


@dataclass(frozen=True)
class ScheduledJob:
    """A cron schedule (UTC, five fields) and the task each firing enqueues."""

    name: str
    cron: str
    description: str
    queue: str
    task_type: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _JOB_NAME.match(self.name):
            raise ValueError(f"Invalid scheduled job name: {self.name!r}")
        if len(self.cron.split()) != 5 or not croniter.croniter.is_valid(self.cron):
            raise ValueError(f"Invalid five-field cron expression for {self.name}: {self.cron!r}")

    def next_after(self, moment: datetime) -> datetime:
        """Return the first firing strictly after ``moment``, in UTC."""
        start = moment.astimezone(UTC)
        fired: datetime = croniter.croniter(self.cron, start).get_next(datetime)
        return fired.astimezone(UTC)

    def dedup_key(self, scheduled_for: datetime) -> str:
        """Return the key that makes one firing enqueue at most once."""
        moment = scheduled_for.astimezone(UTC).replace(microsecond=0)
        return f"schedule:{self.name}:{moment.isoformat().replace('+00:00', 'Z')}"


class JobRegistry:
    """The scheduled jobs by name."""

    def __init__(self, jobs: Iterable[ScheduledJob] = ()) -> None:
        self._jobs: dict[str, ScheduledJob] = {}
        for job in jobs:
            self.register(job)

    def register(self, job: ScheduledJob) -> None:
        """Add ``job``; raise ValueError when its name is taken."""
        if job.name in self._jobs:
            raise ValueError(f"Scheduled job already registered: {job.name}")
        self._jobs[job.name] = job

    def get(self, name: str) -> ScheduledJob:
        """Return the job named ``name``; raise ScheduledJobNotFoundError."""
        try:
            return self._jobs[name]
        except KeyError:
            raise ScheduledJobNotFoundError(f"No scheduled job named {echoed(name)}") from None

    def jobs(self) -> list[ScheduledJob]:
        """Return every job, by name."""
        return [self._jobs[name] for name in sorted(self._jobs)]


def fire_job(queue: TaskQueue, job: ScheduledJob, scheduled_for: datetime | None) -> str | None:
    """Enqueue one firing of ``job``; return the task id, or None when already enqueued.

    ``scheduled_for`` None is a manual run: it is never de-duplicated.
    """
    dedup_key = job.dedup_key(scheduled_for) if scheduled_for is not None else None
    try:
        task_id = queue.enqueue(job.queue, job.task_type, dict(job.payload), dedup_key=dedup_key)
    except TaskAlreadyExistsError:
        logger.info("Scheduled job %s for %s was already enqueued", job.name, scheduled_for)
        return None
    logger.info("Scheduled job %s enqueued as task %s", job.name, task_id)
    return task_id


class LocalScheduler:
    """Fires the jobs on their cron expressions from a thread (the local gateway's)."""

    def __init__(
        self,
        jobs: JobRegistry,
        queue: TaskQueue,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_sleep: float = 60.0,
    ) -> None:
        self._jobs = jobs
        self._queue = queue
        self._clock = clock
        self._max_sleep = max_sleep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next: dict[str, datetime] = {}

    def start(self) -> None:
        """Start the scheduler thread; a no-op when running or with no jobs."""
        if self._thread is not None or not self._jobs.jobs():
            return
        self._stop.clear()
        now = self._clock()
        self._next = {job.name: job.next_after(now) for job in self._jobs.jobs()}
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread, waiting up to ``timeout`` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def tick(self) -> list[str]:
        """Fire every job that is due now; return the names fired (used by the thread)."""
        now = self._clock()
        fired = []
        for name, due in sorted(self._next.items()):
            if due > now:
                continue
            job = self._jobs.get(name)
            try:
                fire_job(self._queue, job, due)
                fired.append(name)
            except Exception:
                logger.exception("Scheduled job %s could not be enqueued", name)
            self._next[name] = job.next_after(max(due, now))
        return fired

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            soonest = min(self._next.values())
            wait = (soonest - self._clock()).total_seconds()
            self._stop.wait(min(max(wait, 0.01), self._max_sleep))


def scheduled_jobs_manifest(
    jobs: JobRegistry, *, base_url: str, service_account_email: str
) -> list[dict[str, Any]]:
    """Return the Cloud Scheduler jobs (REST field names) that fire ``jobs`` in production.

    ``base_url`` is the tasks function's URL, also the OIDC audience the function checks.
    """
    base = base_url.rstrip("/")
    return [
        {
            "name": job.name,
            "description": job.description,
            "schedule": job.cron,
            "timeZone": TIME_ZONE,
            "httpTarget": {
                "uri": f"{base}/scheduler/jobs/{job.name}/fire",
                "httpMethod": "POST",
                "oidcToken": {"serviceAccountEmail": service_account_email, "audience": base},
            },
        }
        for job in jobs.jobs()
    ]
