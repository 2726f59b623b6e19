"""The ``voices`` function: the provider voice catalog, its providers, and sync runs.

Users list and read voices and providers. Admins start a sync (``POST /voices/sync``,
202 with the jobs created) and follow its jobs. The daily sync is the scheduled job
``sync-voices`` (Cloud Scheduler -> the tasks function), which queues the same tasks.
"""

from __future__ import annotations

from typing import Annotated, Any

import flask
import functions_framework
from pydantic import Field

from shared.domain._base import RequestModel
from shared.domain.voices import VoiceProfile, VoiceSyncJob
from shared.http import Api, Reply, RequestContext, page_body
from shared.providers.registry import provider_registry
from shared.repositories.voice_sync_jobs import VoiceSyncJobRepository
from shared.services import catalog
from shared.services.voice_sync import start_sync
from shared.tasks.runtime import task_runtime

api = Api("voices")


class SyncRequest(RequestModel):
    """Body of ``POST /voices/sync``: one provider, or every enabled one when absent."""

    provider: Annotated[str, Field(min_length=1, max_length=50)] | None = None


class SyncJobListQuery(RequestModel):
    """Query string of ``GET /voices/sync/jobs``."""

    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(max_length=2000)] | None = None


@api.route("/voices", methods=["GET"])
def list_voices(ctx: RequestContext) -> dict[str, Any]:
    """List catalog voices, filtered, by id; deprecated ones only with includeDeprecated."""
    voices, cursor = catalog.list_voices(
        store=ctx.container.store, query=ctx.query(catalog.VoiceListQuery)
    )
    return page_body("voices", voices, cursor)


@api.route("/voices/providers", methods=["GET"])
def list_providers(ctx: RequestContext) -> dict[str, Any]:
    """List the enabled providers: capabilities, voice count, last sync and job status."""
    summaries = catalog.provider_summaries(
        store=ctx.container.store, providers=provider_registry(ctx.container)
    )
    return {"providers": summaries}


@api.route("/voices/sync", methods=["POST"], access="admin")
def start_voice_sync(ctx: RequestContext) -> Reply:
    """Start a sync of every enabled provider, or of the one named; answers the jobs."""
    request = ctx.body(SyncRequest)
    jobs = start_sync(
        store=ctx.container.store,
        providers=provider_registry(ctx.container),
        queue=task_runtime(ctx.container).queue,
        queue_name=ctx.container.settings.sync_queue,
        provider=request.provider.lower() if request.provider else None,
    )
    return Reply({"jobs": jobs}, status=202)


@api.route("/voices/sync/jobs", methods=["GET"], access="admin")
def list_sync_jobs(ctx: RequestContext) -> dict[str, Any]:
    """List sync jobs, newest first."""
    query = ctx.query(SyncJobListQuery)
    jobs, cursor = VoiceSyncJobRepository(ctx.container.store).list_recent(
        limit=query.limit, cursor=query.cursor
    )
    return page_body("jobs", jobs, cursor)


@api.route("/voices/sync/jobs/<job_id>", methods=["GET"], access="admin")
def get_sync_job(ctx: RequestContext, job_id: str) -> VoiceSyncJob:
    """Return one sync job."""
    return VoiceSyncJobRepository(ctx.container.store).require(job_id)


@api.route("/voices/<voice_id>", methods=["GET"])
def get_voice(ctx: RequestContext, voice_id: str) -> VoiceProfile:
    """Return one voice by its ``provider:voice_id`` (deprecated ones too)."""
    return catalog.get_voice(store=ctx.container.store, voice_id=voice_id)


@functions_framework.http
def voices(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
