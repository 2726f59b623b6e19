"""The ``voice_model_activation`` function: activate, deactivate, and read the active model.

Each activation change is one store transaction over the user's activation pointer, so a
user has at most one active model however many requests race (seed 001). Activating the
active model is 409 ``VOICE_MODEL_ALREADY_ACTIVE``; a deleted or failed model is 409
``VOICE_MODEL_DELETED`` / ``VOICE_MODEL_FAILED``.
"""

from __future__ import annotations

import flask
import functions_framework

from functions._voice_model_requests import caller_of, deps_of
from shared.http import Api, RequestContext
from shared.voice_models import activation
from shared.voice_models.model import ActiveVoiceModel, UserScope, VoiceModelPublic

api = Api("voice_model_activation")


@api.route(
    "/voice-models/<model_id>/activate",
    methods=["POST"],
    body=UserScope,
    response=VoiceModelPublic,
    responses={409: "Already active, deleted or failed"},
)
def activate_voice_model(ctx: RequestContext, model_id: str) -> VoiceModelPublic:
    """Make this the user's only active voice model."""
    scope = ctx.body(UserScope)
    model = activation.activate_voice_model(
        deps_of(ctx), caller_of(ctx), model_id, user_id=scope.user_id
    )
    return VoiceModelPublic.from_entity(model)


@api.route(
    "/voice-models/<model_id>/deactivate",
    methods=["POST"],
    body=UserScope,
    response=VoiceModelPublic,
    responses={409: "Not the active model"},
)
def deactivate_voice_model(ctx: RequestContext, model_id: str) -> VoiceModelPublic:
    """Deactivate the user's active voice model (none is active afterwards)."""
    scope = ctx.body(UserScope)
    model = activation.deactivate_voice_model(
        deps_of(ctx), caller_of(ctx), model_id, user_id=scope.user_id
    )
    return VoiceModelPublic.from_entity(model)


@api.route("/voice-models/user/<user_id>/active", methods=["GET"], response=ActiveVoiceModel)
def get_active_voice_model(ctx: RequestContext, user_id: str) -> ActiveVoiceModel:
    """Return the user's active voice model (``model`` is null when none is active)."""
    caller = caller_of(ctx)
    model = activation.get_active_voice_model(deps_of(ctx), caller, user_id)
    return ActiveVoiceModel(
        user_id=caller.acting_for(user_id),
        model=VoiceModelPublic.from_entity(model) if model else None,
    )


@functions_framework.http
def voice_model_activation(request: flask.Request) -> flask.Response:
    """Cloud Function entry point."""
    return api.handle(request)
