"""The ``sync_voices`` function: admins sync the voice catalog and follow its jobs.

``POST /voices/sync`` creates one job per enabled provider (or the one named) and queues a
task each, answering 202 with the jobs; the task worker runs them (the tasks function in
production). The daily sync is the scheduled job ``sync-voices``: Cloud Scheduler fires it
through the tasks function, which queues the same tasks.
"""

from __future__ import annotations

from typing import Annotated, Any

import flask
import functions_framework
from pydantic import Field

from shared.catalog.model import VoiceSyncJob
from shared.catalog.sync_repository import VoiceSyncJobRepository
from shared.http import Api, Reply, RequestContext, page_body
from shared.model import RequestModel

api = Api("sync-voices")


class SyncRequest(RequestModel):
    """Body of ``POST /voices/sync``: one provider, or every enabled one when absent."""

    provider: Annotated[str, Field(min_length=1, max_length=50)] | None = None


class SyncJobListQuery(RequestModel):
    """Query string of ``GET /voices/sync/jobs``."""

    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(max_length=2000)] | None = None


@api.route("/voices/sync", methods=["POST"], access="admin", body=SyncRequest, status=202)
def start_voice_sync(ctx: RequestContext) -> Reply:
    """Start a sync of every enabled provider, or of the one named; answers the jobs."""
    # The providers and the task queue load with a sync started, not to list the jobs.
    from shared.catalog.sync import start_sync  # noqa: PLC0415 - see above

    request = ctx.body(SyncRequest)
    jobs = start_sync(
        store=ctx.container.store,
        providers=ctx.container.providers,
        queue=ctx.container.tasks.queue,
        queue_name=ctx.container.settings.sync_queue,
        provider=request.provider.lower() if request.provider else None,
    )
    return Reply({"jobs": jobs}, status=202)


@api.route("/voices/sync/jobs", methods=["GET"], access="admin", query=SyncJobListQuery)
def list_sync_jobs(ctx: RequestContext) -> dict[str, Any]:
    """List sync jobs, newest first."""
    query = ctx.query(SyncJobListQuery)
    jobs, cursor = VoiceSyncJobRepository(ctx.container.store).list_recent(
        limit=query.limit, cursor=query.cursor
    )
    return page_body("jobs", jobs, cursor)


@api.route("/voices/sync/jobs/<job_id>", methods=["GET"], access="admin", response=VoiceSyncJob)
def get_sync_job(ctx: RequestContext, job_id: str) -> VoiceSyncJob:
    """Return one sync job."""
    return VoiceSyncJobRepository(ctx.container.store).require(job_id)


@functions_framework.http
def sync_voices(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
