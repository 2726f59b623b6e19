"""The ``precall`` function: every ``/precall`` route of seed 003 (pre-call voice cloning).

Voice samples uploaded into the account's folder of our storage and deleted from it,
caller mappings (create, get, list, update, soft delete), the telephony webhook that logs
a call and queues its clone (202 at once), polling a call, its transfer to the agent and its
end, and the account's analytics. Every route works inside the caller's account (the
token's ``accountId`` claim, else its user id); ``accountId`` may name another only for an
admin (403 ``ACCESS_DENIED``).
"""

from __future__ import annotations

import flask
import functions_framework
from werkzeug.exceptions import RequestEntityTooLarge

from shared.errors import PayloadTooLargeError
from shared.http import Api, Reply, RequestContext
from shared.precall import CAPABILITY as PRECALL
from shared.precall import analytics, calls, mappings, recordings
from shared.precall.deps import Caller, PrecallDeps
from shared.precall.model import CallerVoiceMapping
from shared.precall.schemas import (
    AccountScope,
    AnalyticsQuery,
    CallAccepted,
    CallPublic,
    CallWebhook,
    EndRequest,
    MappingCreate,
    MappingDeleted,
    MappingListQuery,
    MappingPage,
    MappingUpdate,
    PrecallAnalytics,
    SampleStored,
    TransferRequest,
)

api = Api("precall")


def deps_of(ctx: RequestContext) -> PrecallDeps:
    """Return the pre-call use cases' dependencies for this request."""
    return ctx.container.deps(PRECALL)


def caller_of(ctx: RequestContext) -> Caller:
    """Return the authenticated caller and its account."""
    return Caller.from_principal(ctx.principal)


@api.route(
    "/precall/samples/<name>",
    methods=["PUT"],
    query=AccountScope,
    response=SampleStored,
    responses={
        409: "The sample or its account is being deleted; upload again once that is done",
        413: "The sample is larger than the limit",
    },
)
def upload_precall_sample(ctx: RequestContext, name: str) -> SampleStored:
    """Store a voice sample (the raw audio body) under the account's folder of our storage."""
    scope = ctx.query(AccountScope)
    deps = deps_of(ctx)
    limit = deps.settings.precall_sample_max_bytes
    length = ctx.request.content_length
    if length is not None and length > limit:
        raise PayloadTooLargeError(f"A voice sample is at most {limit} bytes")
    ctx.request.max_content_length = limit
    try:
        data = ctx.request.get_data(cache=False)
    except RequestEntityTooLarge as exc:
        raise PayloadTooLargeError(f"A voice sample is at most {limit} bytes") from exc
    return recordings.store_sample(deps, caller_of(ctx), name, data, scope.account_id)


@api.route(
    "/precall/samples/<name>",
    methods=["DELETE"],
    query=AccountScope,
    status=204,
    responses={409: "Live caller mappings use the sample; the error names them"},
)
def delete_precall_sample(ctx: RequestContext, name: str) -> Reply:
    """Delete a voice sample of the account's folder, unless a live caller mapping uses it."""
    scope = ctx.query(AccountScope)
    recordings.delete_sample(deps_of(ctx), caller_of(ctx), name, scope.account_id)
    return Reply(status=204)


@api.route(
    "/precall/mappings",
    methods=["POST"],
    body=MappingCreate,
    response=CallerVoiceMapping,
    status=201,
    responses={409: "The caller number is already mapped, or the sampleId is not ready"},
)
def create_caller_mapping(ctx: RequestContext) -> Reply:
    """Map a caller number (E.164) to the voice sample its clones are made from."""
    mapping = mappings.create_mapping(deps_of(ctx), caller_of(ctx), ctx.body(MappingCreate))
    return Reply(mapping, status=201)


@api.route("/precall/mappings", methods=["GET"], query=MappingListQuery, response=MappingPage)
def list_caller_mappings(ctx: RequestContext) -> MappingPage:
    """List the account's live caller mappings, newest first (``nextCursor`` pages on)."""
    query = ctx.query(MappingListQuery)
    return mappings.list_mappings(
        deps_of(ctx), caller_of(ctx), query.account_id, query.limit, query.cursor
    )


@api.route(
    "/precall/mappings/<mapping_id>",
    methods=["GET"],
    query=AccountScope,
    response=CallerVoiceMapping,
)
def get_caller_mapping(ctx: RequestContext, mapping_id: str) -> CallerVoiceMapping:
    """Return one live caller mapping of the account."""
    scope = ctx.query(AccountScope)
    return mappings.get_mapping(deps_of(ctx), caller_of(ctx), mapping_id, scope.account_id)


@api.route(
    "/precall/mappings/<mapping_id>",
    methods=["PUT"],
    body=MappingUpdate,
    response=CallerVoiceMapping,
    responses={409: "The caller number is already mapped, or the sampleId is not ready"},
)
def update_caller_mapping(ctx: RequestContext, mapping_id: str) -> CallerVoiceMapping:
    """Change a mapping's number, sample, name or description (its clones expire)."""
    request = ctx.body(MappingUpdate)
    return mappings.update_mapping(deps_of(ctx), caller_of(ctx), mapping_id, request)


@api.route(
    "/precall/mappings/<mapping_id>",
    methods=["DELETE"],
    body=AccountScope,
    response=MappingDeleted,
)
def delete_caller_mapping(ctx: RequestContext, mapping_id: str) -> MappingDeleted:
    """Soft-delete a mapping: its number is free again, its clones expire."""
    scope = ctx.body(AccountScope)
    return mappings.delete_mapping(deps_of(ctx), caller_of(ctx), mapping_id, scope.account_id)


@api.route(
    "/precall/calls",
    methods=["POST"],
    body=CallWebhook,
    response=CallAccepted,
    status=202,
    responses={409: "The greeting call id is already logged for another caller"},
)
def receive_precall_call(ctx: RequestContext) -> Reply:
    """Telephony webhook: log the call and clone the caller's voice in the background."""
    call, duplicate = calls.receive_call(deps_of(ctx), caller_of(ctx), ctx.body(CallWebhook))
    accepted = CallAccepted(call=CallPublic.from_entity(call), duplicate=duplicate)
    return Reply(accepted, status=202, headers={"Location": f"/precall/calls/{call.id}"})


@api.route("/precall/calls/<call_id>", methods=["GET"], query=AccountScope, response=CallPublic)
def get_precall_call(ctx: RequestContext, call_id: str) -> CallPublic:
    """Return a call (by id or greeting call id), its clone's state and voice."""
    scope = ctx.query(AccountScope)
    call = calls.get_call(deps_of(ctx), caller_of(ctx), call_id, scope.account_id)
    return CallPublic.from_entity(call)


@api.route(
    "/precall/calls/<call_id>/transfer",
    methods=["POST"],
    body=TransferRequest,
    response=CallPublic,
    responses={409: "The call has ended, or its clone is not ready"},
)
def transfer_precall_call(ctx: RequestContext, call_id: str) -> CallPublic:
    """Record the hand-off from the greeting to the agent call speaking with the clone."""
    request = ctx.body(TransferRequest)
    call = calls.transfer_call(deps_of(ctx), caller_of(ctx), call_id, request)
    return CallPublic.from_entity(call)


@api.route(
    "/precall/calls/<call_id>/end",
    methods=["POST"],
    body=EndRequest,
    response=CallPublic,
    responses={409: "The call has already ended"},
)
def end_precall_call(ctx: RequestContext, call_id: str) -> CallPublic:
    """Close the call as completed or failed, with its transcript and duration."""
    request = ctx.body(EndRequest)
    call = calls.end_call(deps_of(ctx), caller_of(ctx), call_id, request)
    return CallPublic.from_entity(call)


@api.route("/precall/analytics", methods=["GET"], query=AnalyticsQuery, response=PrecallAnalytics)
def get_precall_analytics(ctx: RequestContext) -> PrecallAnalytics:
    """Clone success rate and times, cache reuse, calls by status, wait for the clone."""
    query = ctx.query(AnalyticsQuery)
    return analytics.get_analytics(deps_of(ctx), caller_of(ctx), query)


@functions_framework.http
def precall(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
