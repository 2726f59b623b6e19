"""What the two voice-model functions take from a request: the dependencies and the caller.

``voice-models`` and ``voice-model-activation`` are deployed apart so that activation, on
every app start, loads none of the CRUD, backup and insight routes; both read a request
the same way through these.
"""

from __future__ import annotations

from shared.http import RequestContext
from shared.voice_models import CAPABILITY as VOICE_MODELS
from shared.voice_models.deps import Caller, VoiceModelDeps


def deps_of(ctx: RequestContext) -> VoiceModelDeps:
    """Return the voice-model services' dependencies for this request."""
    return ctx.container.deps(VOICE_MODELS)


def caller_of(ctx: RequestContext) -> Caller:
    """Return the authenticated caller of this request."""
    return Caller(ctx.user_id, ctx.principal.is_admin, ctx.request_id)
