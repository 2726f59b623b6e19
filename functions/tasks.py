"""The ``tasks`` function: Cloud Tasks and Cloud Scheduler push here; admins inspect and retry.

``POST /tasks/run`` runs one task with ``execute_task`` (the in-process worker runs the
same code): 200 when it succeeded, was a duplicate or was dead-lettered (so Cloud Tasks
forgets it), 503 with ``Retry-After`` to have it retried. It dead-letters at the queue's
``max_attempts`` itself, because the emulator ignores the queue's retry configuration.
``POST /scheduler/jobs/{name}/fire`` is Cloud Scheduler's target. Both are ``public`` to
the ``Api`` because their callers are Google services presenting Google OIDC tokens, which
the user-token verifier cannot check; ``runtime.push_verifier`` checks them first thing.
The rest are admin routes: dead letters (list, read, retry) and scheduled jobs (list, run).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import flask
import functions_framework
import pydantic

from shared import errors
from shared.http import Api, Reply, RequestContext, page_body
from shared.store.base import is_valid_doc_id
from shared.tasks.base import TaskEnvelope
from shared.tasks.execution import (
    DeadLetter,
    execute_task,
    get_dead_letter,
    list_dead_letters,
    record_dead_letter,
    retry_dead_letter,
)
from shared.tasks.scheduling import fire_job

api = Api("tasks")

MAX_ENVELOPE_BYTES = 1024 * 1024
MAX_RETRY_COUNT = 1_000_000
# A Cloud Tasks task id, as the envelope's own ``task_id`` is one.
_TASK_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


class DeadLetterListQuery(pydantic.BaseModel):
    """Query string of ``GET /tasks/dead-letters``."""

    # defer_build: the validator is built on first use, not by each cold start importing this.
    model_config = pydantic.ConfigDict(extra="forbid", defer_build=True)

    limit: int = pydantic.Field(default=50, ge=1, le=200)
    cursor: str | None = pydantic.Field(default=None, max_length=2000)
    queue: str | None = pydantic.Field(default=None, max_length=100)


PUSHED = {401: "No Google OIDC token", 403: "A token, but not the tasks service account's"}


@api.route(
    "/tasks/run",
    methods=["POST"],
    access="public",
    responses={**PUSHED, 503: "The task failed: Cloud Tasks retries it after Retry-After"},
)
def run_task(ctx: RequestContext) -> Reply:
    """Run one task pushed by Cloud Tasks."""
    runtime = ctx.container.tasks
    ctx.principal_or_none = runtime.push_verifier.verify(ctx.request.headers.get("Authorization"))
    attempt = _attempt(ctx.request)
    raw = ctx.request.get_data(cache=True)
    try:
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise ValueError("envelope too large")
        envelope = TaskEnvelope.model_validate_json(raw)
    except (pydantic.ValidationError, ValueError):
        # Retrying cannot repair the body: keep what arrived for an admin, and acknowledge.
        _dead_letter_unreadable(ctx, raw, attempt)
        return Reply({"outcome": "dead_lettered"})
    outcome = execute_task(
        registry=runtime.registry,
        store=ctx.container.store,
        envelope=envelope,
        attempt=attempt,
        policy=runtime.policy_for(envelope.queue),
        lease_seconds=ctx.container.settings.tasks_lease_seconds,
    )
    if outcome.acknowledged:
        return Reply({"outcome": outcome.kind})
    retry_after = max(1, math.ceil(outcome.retry_in or 1))
    return Reply(
        {"outcome": outcome.kind, "error": outcome.error},
        status=503,
        headers={"Retry-After": str(retry_after)},
    )


@api.route("/tasks/dead-letters", methods=["GET"], access="admin", query=DeadLetterListQuery)
def list_dead(ctx: RequestContext) -> dict[str, object]:
    """List dead-lettered tasks, newest first."""
    query = ctx.query(DeadLetterListQuery)
    letters, cursor = list_dead_letters(
        ctx.container.store, limit=query.limit, cursor=query.cursor, queue=query.queue
    )
    return page_body("deadLetters", letters, cursor)


@api.route("/tasks/dead-letters/<task_id>", methods=["GET"], access="admin")
def get_dead(ctx: RequestContext, task_id: str) -> DeadLetter:
    """Return one dead-lettered task."""
    return get_dead_letter(ctx.container.store, task_id)


@api.route(
    "/tasks/dead-letters/<task_id>/retry",
    methods=["POST"],
    access="admin",
    status=202,
    responses={400: "The dead letter names a queue this deployment does not have"},
)
def retry_dead(ctx: RequestContext, task_id: str) -> Reply:
    """Enqueue a dead-lettered task again; answers the new task's id."""
    runtime = ctx.container.tasks
    new_id = retry_dead_letter(ctx.container.store, runtime.queue, task_id)
    return Reply({"taskId": new_id, "retriedFrom": task_id}, status=202)


@api.route("/scheduler/jobs", methods=["GET"], access="admin")
def list_jobs(ctx: RequestContext) -> dict[str, object]:
    """List the scheduled jobs with their next firing (UTC)."""
    runtime = ctx.container.tasks
    now = datetime.now(UTC)
    jobs = [
        {
            "name": job.name,
            "cron": job.cron,
            "timeZone": "Etc/UTC",
            "description": job.description,
            "queue": job.queue,
            "taskType": job.task_type,
            "nextRunAt": job.next_after(now),
        }
        for job in runtime.jobs.jobs()
    ]
    return {"jobs": jobs}


@api.route("/scheduler/jobs/<name>/run", methods=["POST"], access="admin", status=202)
def run_job_now(ctx: RequestContext, name: str) -> Reply:
    """Run a scheduled job now (an admin's manual run, never de-duplicated)."""
    runtime = ctx.container.tasks
    task_id = fire_job(runtime.queue, runtime.jobs.get(name), None)
    return Reply({"job": name, "taskId": task_id}, status=202)


@api.route(
    "/scheduler/jobs/<name>/fire", methods=["POST"], access="public", status=202, responses=PUSHED
)
def fire_scheduled_job(ctx: RequestContext, name: str) -> Reply:
    """Cloud Scheduler's firing of a job; one enqueue per scheduled time."""
    runtime = ctx.container.tasks
    ctx.principal_or_none = runtime.push_verifier.verify(ctx.request.headers.get("Authorization"))
    job = runtime.jobs.get(name)
    scheduled_for = _schedule_time(ctx.request)
    task_id = fire_job(runtime.queue, job, scheduled_for)
    return Reply({"job": name, "taskId": task_id, "duplicate": task_id is None}, status=202)


def _attempt(request: flask.Request) -> int:
    # Cloud Tasks counts retries from 0; the emulator sends the same header.
    raw = request.headers.get("X-CloudTasks-TaskRetryCount", "0")
    try:
        retries = int(raw)
    except ValueError:
        raise errors.InvalidRequestError("Bad X-CloudTasks-TaskRetryCount header") from None
    # Far past any queue's max_attempts, and within the 64 bits Firestore stores.
    return min(max(retries, 0), MAX_RETRY_COUNT) + 1


def _schedule_time(request: flask.Request) -> datetime:
    # Cloud Scheduler sends the firing's scheduled time; a retry of it carries the same one.
    # One that is no time in UTC's range (a year-1 time east of UTC) fires as this minute.
    raw = request.headers.get("X-CloudScheduler-ScheduleTime", "")
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return datetime.now(UTC).replace(second=0, microsecond=0)


def _dead_letter_unreadable(ctx: RequestContext, raw: bytes, attempt: int) -> None:
    headers = ctx.request.headers
    task_name = headers.get("X-CloudTasks-TaskName", "")
    if not (_TASK_NAME.match(task_name) and is_valid_doc_id(task_name)):
        # Not a Cloud Tasks task id, so not one to key the letter by: that would refuse it.
        task_name = f"unreadable-{ctx.request_id}"
    queue = headers.get("X-CloudTasks-QueueName", "").rsplit("/", 1)[-1] or "unknown"
    text = raw[:4096].decode("utf-8", errors="replace")
    record_dead_letter(
        ctx.container.store,
        DeadLetter(
            task_id=task_name,
            queue=queue,
            task_type="unknown",
            payload={"rawBody": text},
            attempts=attempt,
            reason="malformed_envelope",
            last_error="The task body is not a valid task envelope",
            dead_at=datetime.now(UTC),
        ),
    )


@functions_framework.http
def tasks(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
