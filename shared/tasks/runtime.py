"""Wiring of the task queue for one process: policies, registry, adapter, push auth, jobs.

``build_task_runtime`` builds it from the settings: the in-process queue on the store
(``tasks=embedded``) or Cloud Tasks (``tasks=gcp``, or its emulator when
``tasks_emulator_host`` is set); the handlers and scheduled jobs it is given (the
composition root collects them from every capability: this module knows none); the push
verifier for the tasks function; and, for the gateway, the local scheduler.
``start``/``stop`` run the in-process worker and the local scheduler (the gateway calls
them; Cloud Functions never do).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from shared.auth import TokenVerifier, build_dev_verifier
from shared.config import Settings
from shared.errors import ConfigurationError
from shared.store.base import DocumentStore
from shared.tasks.base import QueuePolicy, TaskQueue, TaskRegistry
from shared.tasks.inprocess import InProcessTaskQueue
from shared.tasks.push_auth import AdminTokenPushVerifier, GoogleOidcPushVerifier, PushVerifier
from shared.tasks.scheduling import JobRegistry, LocalScheduler, ScheduledJob

RUN_PATH = "/tasks/run"

DEFAULT_POLICY = QueuePolicy(
    max_attempts=5, min_backoff=1, max_backoff=300, max_concurrent=10, dispatch_deadline=600
)
SYNTHESIS_POLICY = QueuePolicy(
    max_attempts=3, min_backoff=5, max_backoff=120, max_concurrent=4, dispatch_deadline=1800
)
# Provider sync: the seed allows up to 3 retries, spaced out for provider outages.
SYNC_POLICY = QueuePolicy(
    max_attempts=4, min_backoff=60, max_backoff=3600, max_concurrent=2, dispatch_deadline=1800
)


@dataclass(frozen=True)
class TaskSettings:
    """The task-queue settings (see the ``tasks_*`` fields of ``Settings``)."""

    location: str
    base_url: str
    service_account: str | None
    emulator_host: str | None
    dedup_window: timedelta
    poll_interval: float
    run_scheduler: bool

    @property
    def handler_url(self) -> str:
        """Return the URL Cloud Tasks pushes tasks to."""
        return self.base_url.rstrip("/") + RUN_PATH


def task_settings(settings: Settings) -> TaskSettings:
    """Return the task-queue settings from ``settings``, with their defaults."""
    return TaskSettings(
        location=settings.tasks_location or settings.region,
        base_url=settings.tasks_base_url or settings.public_base_url,
        service_account=settings.tasks_service_account,
        emulator_host=settings.tasks_emulator_host,
        dedup_window=timedelta(seconds=settings.tasks_dedup_window_seconds),
        poll_interval=settings.tasks_poll_seconds,
        run_scheduler=settings.scheduler_enabled,
    )


def queue_policies(settings: Settings) -> dict[str, QueuePolicy]:
    """Return the policy of every queue the platform uses, by queue name."""
    return {
        settings.default_queue: DEFAULT_POLICY,
        settings.synthesis_queue: SYNTHESIS_POLICY,
        settings.sync_queue: SYNC_POLICY,
    }


@dataclass
class TaskRuntime:
    """Everything about tasks one process needs."""

    registry: TaskRegistry
    queue: TaskQueue
    push_verifier: PushVerifier
    jobs: JobRegistry
    scheduler: LocalScheduler | None = None

    def policy_for(self, queue: str) -> QueuePolicy:
        """Return the policy of ``queue``, or the default policy for an unknown name."""
        return self.queue.policies.get(queue, DEFAULT_POLICY)

    def start(self) -> None:
        """Start the in-process worker and the local scheduler (gateway only)."""
        self.queue.start()
        if self.scheduler is not None:
            self.scheduler.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the scheduler, then the worker: ``timeout`` seconds in all, then return
        whether every running task finished."""
        deadline = time.monotonic() + timeout
        if self.scheduler is not None:
            self.scheduler.stop(timeout=timeout)
        return self.queue.stop(max(deadline - time.monotonic(), 0.0))


def build_task_runtime(
    settings: Settings,
    *,
    store: DocumentStore,
    verifier: Callable[[], TokenVerifier],
    register_handlers: Callable[[TaskRegistry], None],
    jobs: Iterable[ScheduledJob],
) -> TaskRuntime:
    """Return the runtime ``settings`` ask for, with the given handlers and scheduled jobs.

    ``register_handlers`` registers every task handler of the process; ``verifier``
    returns the user-token verifier (the dev push verifier accepts its admin tokens).
    """
    options = task_settings(settings)
    registry = TaskRegistry()
    register_handlers(registry)
    queue = build_task_queue(settings, store, registry, options)
    job_registry = JobRegistry(jobs)
    scheduler = LocalScheduler(job_registry, queue) if options.run_scheduler else None
    push_verifier = build_push_verifier(settings, verifier, options)
    return TaskRuntime(registry, queue, push_verifier, job_registry, scheduler)


def build_task_queue(
    settings: Settings, store: DocumentStore, registry: TaskRegistry, options: TaskSettings
) -> TaskQueue:
    """Return the in-process queue or the Cloud Tasks adapter, per ``settings.tasks``."""
    policies = queue_policies(settings)
    if settings.tasks == "embedded":
        return InProcessTaskQueue(
            store=store,
            policies=policies,
            registry=registry,
            poll_interval=options.poll_interval,
            dedup_window=options.dedup_window,
            lease_seconds=settings.tasks_lease_seconds,
        )
    # Only the gcp adapter needs the Cloud Tasks client library: keep it off cold starts.
    from shared.tasks.cloudtasks import CloudTasksQueue, emulator_client  # noqa: PLC0415

    if options.emulator_host:
        # The emulator drops OIDC tokens: send a dev-signed admin token the handler accepts.
        return CloudTasksQueue(
            client=emulator_client(options.emulator_host),
            project=settings.project,
            location=options.location,
            handler_url=options.handler_url,
            store=store,
            policies=policies,
            service_account_email=None,
            extra_headers=dev_push_headers(settings),
            dedup_window=options.dedup_window,
        )
    from google.cloud import tasks_v2  # noqa: PLC0415 - see above

    return CloudTasksQueue(
        client=tasks_v2.CloudTasksClient(),
        project=settings.project,
        location=options.location,
        handler_url=options.handler_url,
        store=store,
        policies=policies,
        service_account_email=options.service_account,
        audience=options.base_url.rstrip("/"),
        dedup_window=options.dedup_window,
    )


def dev_push_headers(settings: Settings) -> Callable[[], dict[str, str]]:
    """Return a header factory signing a short-lived dev admin token per task."""
    verifier = build_dev_verifier(settings)

    def headers() -> dict[str, str]:
        token = verifier.mint("task-queue", admin=True, ttl_seconds=3600)
        return {"Authorization": f"Bearer {token}"}

    return headers


def build_push_verifier(
    settings: Settings, verifier: Callable[[], TokenVerifier], options: TaskSettings
) -> PushVerifier:
    """Return the verifier of Cloud Tasks / Cloud Scheduler pushes for the auth mode."""
    if settings.auth_mode == "dev":
        return AdminTokenPushVerifier(verifier())
    if not options.service_account:
        raise ConfigurationError("VOICE_TASKS_SERVICE_ACCOUNT must be set outside the dev mode")
    return GoogleOidcPushVerifier(
        audience=options.base_url.rstrip("/"), allowed_emails=[options.service_account]
    )
