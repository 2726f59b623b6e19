"""The ``voice_models`` function: every ``/voice-models`` route of seed 001 but activation.

CRUD with soft delete, the paged list, compare, select-best, analytics and usage
statistics, export, backup and restore, sharing, expiring models and the admin cleanup
(also run daily as the task ``voice_models.cleanup``). Activation lives in the
``voice_model_activation`` function. Where the seed passes ``userId`` it must be the
token's user unless the caller is an admin (403 ``ACCESS_DENIED``); ``me`` always names the
caller, and ``GET /voice-models`` lists the caller's own models.
"""

from __future__ import annotations

import json
from typing import Annotated

import flask
import functions_framework
from pydantic import Field

from functions._voice_model_requests import caller_of, deps_of
from shared.http import Api, Reply, RequestContext, json_text_response
from shared.model import RequestModel
from shared.voice_models import backups, insights, sharing
from shared.voice_models import crud as service
from shared.voice_models.access_log import entries_for_model
from shared.voice_models.activation import require_owned
from shared.voice_models.cleanup import cleanup_expired_models, expiring_voice_models
from shared.voice_models.deps import ME
from shared.voice_models.model import (
    UserScope,
    VoiceModelCreate,
    VoiceModelDeleted,
    VoiceModelPublic,
    VoiceModelUpdate,
    VoiceModelUsageStats,
)
from shared.voice_models.schemas import (
    MAX_PAGE_SIZE,
    AccessLogPage,
    BackupResult,
    BestVoiceModel,
    CleanupReport,
    CleanupRequest,
    ExpiringVoiceModels,
    ModelShareCreate,
    RestoreRequest,
    RestoreResult,
    SelectBestRequest,
    SharedVoiceModels,
    ShareResult,
    VoiceModelAnalytics,
    VoiceModelCompareRequest,
    VoiceModelComparison,
    VoiceModelExport,
    VoiceModelListQuery,
    VoiceModelPage,
)

api = Api("voice_models")


class AccessLogQuery(RequestModel):
    """Query of ``GET /voice-models/{id}/access-log``."""

    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 50
    cursor: Annotated[str, Field(max_length=2000)] | None = None


@api.route(
    "/voice-models", methods=["POST"], body=VoiceModelCreate, response=VoiceModelPublic, status=201
)
def create_voice_model(ctx: RequestContext) -> Reply:
    """Create a voice model (the first, or one scoring above 0.8, becomes active)."""
    model = service.create_voice_model(deps_of(ctx), caller_of(ctx), ctx.body(VoiceModelCreate))
    return Reply(VoiceModelPublic.from_entity(model), status=201)


@api.route("/voice-models", methods=["GET"], query=VoiceModelListQuery, response=VoiceModelPage)
def list_own_voice_models(ctx: RequestContext) -> flask.Response:
    """List your voice models, filtered, newest first (limit/offset or nextCursor)."""
    response: flask.Response = list_voice_models(ctx, ME)
    return response


@api.route(
    "/voice-models/user/<user_id>",
    methods=["GET"],
    query=VoiceModelListQuery,
    response=VoiceModelPage,
)
def list_voice_models(ctx: RequestContext, user_id: str) -> flask.Response:
    """List a user's voice models (``me``: yours), filtered, newest first."""
    query = ctx.query(VoiceModelListQuery)
    page = service.list_voice_models(deps_of(ctx), caller_of(ctx), user_id, query)
    # The models arrive serialized (the cached form): splice them in rather than re-encode.
    rest = json.dumps({k: v for k, v in page.items() if k != "modelsJson"}, separators=(",", ":"))
    return json_text_response(f'{{"models":{page["modelsJson"]},{rest[1:]}')


@api.route("/voice-models/<model_id>", methods=["GET"], query=UserScope, response=VoiceModelPublic)
def get_voice_model(ctx: RequestContext, model_id: str) -> VoiceModelPublic:
    """Return one voice model the caller owns or was granted."""
    scope = ctx.query(UserScope)
    model = service.get_voice_model(deps_of(ctx), caller_of(ctx), model_id, user_id=scope.user_id)
    return VoiceModelPublic.from_entity(model)


@api.route(
    "/voice-models/<model_id>", methods=["PUT"], body=VoiceModelUpdate, response=VoiceModelPublic
)
def update_voice_model(ctx: RequestContext, model_id: str) -> VoiceModelPublic:
    """Change a voice model's metadata and settings."""
    request = ctx.body(VoiceModelUpdate)
    model = service.update_voice_model(deps_of(ctx), caller_of(ctx), model_id, request)
    return VoiceModelPublic.from_entity(model)


@api.route(
    "/voice-models/<model_id>", methods=["DELETE"], body=UserScope, response=VoiceModelDeleted
)
def delete_voice_model(ctx: RequestContext, model_id: str) -> VoiceModelDeleted:
    """Soft-delete a voice model; the next best becomes active if it was."""
    scope = ctx.body(UserScope)
    return service.delete_voice_model(deps_of(ctx), caller_of(ctx), model_id, user_id=scope.user_id)


@api.route(
    "/voice-models/compare",
    methods=["POST"],
    body=VoiceModelCompareRequest,
    response=VoiceModelComparison,
)
def compare_voice_models(ctx: RequestContext) -> VoiceModelComparison:
    """Compare models side by side with their usage statistics."""
    request = ctx.body(VoiceModelCompareRequest)
    return insights.compare_voice_models(
        deps_of(ctx), caller_of(ctx), request.model_ids, user_id=request.user_id
    )


@api.route(
    "/voice-models/select-best", methods=["POST"], body=SelectBestRequest, response=BestVoiceModel
)
def select_best_voice_model(ctx: RequestContext) -> BestVoiceModel:
    """Pick the user's best model meeting the criteria (404 says why none does)."""
    request = ctx.body(SelectBestRequest)
    return insights.select_best_voice_model(
        deps_of(ctx), caller_of(ctx), request.criteria, user_id=request.user_id
    )


@api.route("/voice-models/user/<user_id>/analytics", methods=["GET"], response=VoiceModelAnalytics)
def get_voice_model_analytics(ctx: RequestContext, user_id: str) -> VoiceModelAnalytics:
    """Usage and performance analytics of a user's voice models."""
    return insights.get_analytics(deps_of(ctx), caller_of(ctx), user_id)


@api.route("/voice-models/<model_id>/usage-stats", methods=["GET"], response=VoiceModelUsageStats)
def get_voice_model_usage_stats(ctx: RequestContext, model_id: str) -> VoiceModelUsageStats:
    """Usage statistics of one voice model."""
    return insights.get_usage_stats(deps_of(ctx), caller_of(ctx), model_id)


@api.route(
    "/voice-models/<model_id>/export", methods=["GET"], query=UserScope, response=VoiceModelExport
)
def export_voice_model(ctx: RequestContext, model_id: str) -> VoiceModelExport:
    """Export a model with metadata, usage, analytics and signed URLs to its files."""
    scope = ctx.query(UserScope)
    return backups.export_voice_model(deps_of(ctx), caller_of(ctx), model_id, user_id=scope.user_id)


@api.route(
    "/voice-models/user/<user_id>/backup", methods=["POST"], response=BackupResult, status=201
)
def backup_voice_models(ctx: RequestContext, user_id: str) -> Reply:
    """Back up every voice model of the user to one JSON document."""
    return Reply(backups.backup_voice_models(deps_of(ctx), caller_of(ctx), user_id), status=201)


@api.route(
    "/voice-models/user/<user_id>/restore",
    methods=["POST"],
    body=RestoreRequest,
    response=RestoreResult,
)
def restore_voice_models(ctx: RequestContext, user_id: str) -> RestoreResult:
    """Restore voice models from one of the user's backups."""
    request = ctx.body(RestoreRequest)
    return backups.restore_voice_models(deps_of(ctx), caller_of(ctx), user_id, request)


@api.route(
    "/voice-models/<model_id>/share", methods=["POST"], body=ModelShareCreate, response=ShareResult
)
def share_voice_model(ctx: RequestContext, model_id: str) -> ShareResult:
    """Let other users use a voice model."""
    request = ctx.body(ModelShareCreate)
    return sharing.share_voice_model(deps_of(ctx), caller_of(ctx), model_id, request)


@api.route(
    "/voice-models/<model_id>/share/<user_id>",
    methods=["DELETE"],
    status=204,
    responses={400: "The user named is the model's owner, who holds no grant"},
)
def revoke_voice_model_share(ctx: RequestContext, model_id: str, user_id: str) -> Reply:
    """Revoke a user's use of a voice model (a grantee may give up their own: ``me``)."""
    sharing.revoke_share(deps_of(ctx), caller_of(ctx), model_id, user_id)
    return Reply(status=204)


@api.route("/voice-models/user/<user_id>/shared", methods=["GET"], response=SharedVoiceModels)
def list_shared_voice_models(ctx: RequestContext, user_id: str) -> SharedVoiceModels:
    """List the voice models other users shared with this user."""
    return sharing.shared_with(deps_of(ctx), caller_of(ctx), user_id)


@api.route("/voice-models/expiring", methods=["GET"], query=UserScope, response=ExpiringVoiceModels)
def list_expiring_voice_models(ctx: RequestContext) -> ExpiringVoiceModels:
    """List models that will meet the cleanup criteria within 30 days."""
    scope = ctx.query(UserScope)
    return expiring_voice_models(deps_of(ctx), caller_of(ctx), user_id=scope.user_id)


@api.route(
    "/voice-models/cleanup",
    methods=["POST"],
    access="admin",
    body=CleanupRequest,
    response=CleanupReport,
)
def cleanup_voice_models(ctx: RequestContext) -> CleanupReport:
    """Remove expired voice models now (``dryRun`` lists them instead)."""
    request = ctx.body(CleanupRequest)
    return cleanup_expired_models(deps_of(ctx), dry_run=request.dry_run, caller=caller_of(ctx))


@api.route(
    "/voice-models/<model_id>/access-log",
    methods=["GET"],
    query=AccessLogQuery,
    response=AccessLogPage,
)
def get_voice_model_access_log(ctx: RequestContext, model_id: str) -> AccessLogPage:
    """Who read or changed this voice model, newest first (owner or admin)."""
    query = ctx.query(AccessLogQuery)
    deps, caller = deps_of(ctx), caller_of(ctx)
    require_owned(deps, caller, service.readable_model(deps, caller, model_id))
    entries, cursor = entries_for_model(
        ctx.container.store, model_id, limit=query.limit, cursor=query.cursor
    )
    return AccessLogPage(entries=entries, next_cursor=cursor)


@functions_framework.http
def voice_models(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
