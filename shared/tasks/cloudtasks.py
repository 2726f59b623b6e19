"""The production task queue: Cloud Tasks HTTP tasks pushed to the ``tasks`` function.

Each task POSTs its JSON envelope to ``handler_url`` with an OIDC token for the tasks
service account (audience ``audience``, the tasks function's URL), so the handler can
prove the request came from our queue. A task with a de-duplication key is named after it,
so Cloud Tasks itself also refuses a repeat; our own claim in the store comes first
because the emulator ignores names. Retry pacing (min/max backoff, max attempts,
concurrency) is the queue's own configuration, set by Terraform from the same
``QueuePolicy``; the handler also dead-letters at ``max_attempts`` because the emulator
ignores that configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from shared.errors import ServiceUnavailableError
from shared.store.base import DocumentStore
from shared.tasks.base import (
    DEFAULT_DEDUP_WINDOW,
    QueuePolicy,
    TaskEnvelope,
    TaskQueue,
    dedup_task_name,
)
from shared.tasks.errors import TaskAlreadyExistsError

logger = logging.getLogger(__name__)

# Cloud Tasks accepts HTTP dispatch deadlines between 15 seconds and 30 minutes.
MIN_DISPATCH_DEADLINE = 15.0
MAX_DISPATCH_DEADLINE = 1800.0
CREATE_TIMEOUT_SECONDS = 10.0


class CloudTasksQueue(TaskQueue):
    """Task queue on Cloud Tasks (or ``gcloud-tasks-emulator``)."""

    def __init__(
        self,
        *,
        client: Any,
        project: str,
        location: str,
        handler_url: str,
        store: DocumentStore,
        policies: Mapping[str, QueuePolicy],
        service_account_email: str | None,
        audience: str | None = None,
        extra_headers: Callable[[], Mapping[str, str]] | None = None,
        dedup_window: timedelta = DEFAULT_DEDUP_WINDOW,
    ) -> None:
        """``client`` is a ``tasks_v2.CloudTasksClient``.

        ``service_account_email`` signs each task's OIDC token; None sends none (the
        emulator, which drops tokens anyway). ``extra_headers`` is called per task and its
        headers are added, e.g. a dev-signed ``Authorization`` header for the emulator.
        """
        super().__init__(store=store, policies=policies, dedup_window=dedup_window)
        self._client = client
        self._project = project
        self._location = location
        self.handler_url = handler_url
        self._service_account = service_account_email
        self._audience = audience or handler_url
        self._extra_headers = extra_headers

    def queue_path(self, queue: str) -> str:
        """Return the full Cloud Tasks name of ``queue``."""
        return f"projects/{self._project}/locations/{self._location}/queues/{queue}"

    def build_task(self, envelope: TaskEnvelope, delay_seconds: float) -> tasks_v2.Task:
        """Return the Cloud Tasks task that delivers ``envelope``."""
        policy = self.policy(envelope.queue)
        headers = {"Content-Type": "application/json"}
        if self._extra_headers is not None:
            headers.update(self._extra_headers())
        request = tasks_v2.HttpRequest(
            url=self.handler_url,
            http_method=tasks_v2.HttpMethod.POST,
            headers=headers,
            body=envelope.to_json(),
        )
        if self._service_account:
            request.oidc_token = tasks_v2.OidcToken(
                service_account_email=self._service_account, audience=self._audience
            )
        deadline = min(max(policy.dispatch_deadline, MIN_DISPATCH_DEADLINE), MAX_DISPATCH_DEADLINE)
        task = tasks_v2.Task(http_request=request, dispatch_deadline=timedelta(seconds=deadline))
        if delay_seconds > 0:
            task.schedule_time = datetime.now(UTC) + timedelta(seconds=delay_seconds)
        if envelope.dedup_key is not None:
            task.name = (
                f"{self.queue_path(envelope.queue)}/tasks/{dedup_task_name(envelope.dedup_key)}"
            )
        return task

    def _submit(self, envelope: TaskEnvelope, delay_seconds: float) -> None:
        task = self.build_task(envelope, delay_seconds)
        try:
            self._client.create_task(
                parent=self.queue_path(envelope.queue), task=task, timeout=CREATE_TIMEOUT_SECONDS
            )
        except gexc.AlreadyExists as exc:
            raise TaskAlreadyExistsError() from exc
        except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
            logger.warning("Cannot create a Cloud Task on %s: %s", envelope.queue, exc)
            raise ServiceUnavailableError("Cannot queue the task right now") from exc


def emulator_client(host: str) -> Any:
    """Return a ``CloudTasksClient`` talking plain gRPC to the emulator at ``host``."""
    channel = grpc.insecure_channel(host)
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
