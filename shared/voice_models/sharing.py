"""Sharing voice models (seed 001, for teams): grant ``use``, revoke, list what was shared.

A grant lets the target user read the model and synthesize with it, never change it. Only
the owner (or an admin) grants and revokes, but a grantee may give up their own grant; a
model is never shared with its owner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import InvalidRequestError, VoiceModelNotFoundError, echoed
from shared.voice_models.activation import owned_in_tx
from shared.voice_models.crud import readable_model
from shared.voice_models.deps import ME, Caller, VoiceModelDeps
from shared.voice_models.model import ModelShare, VoiceModel, VoiceModelPublic
from shared.voice_models.repository import ShareRepository, VoiceModelRepository

if TYPE_CHECKING:
    from shared.voice_models.schemas import ModelShareCreate, SharedVoiceModels, ShareResult

# Granting and listing shares answer with the API's shapes (``schemas``), imported where
# they run: synthesis reads shares through ``model_for_synthesis`` without them.


def _owned_live(
    deps: VoiceModelDeps, caller: Caller, model_id: str, owner: str | None
) -> VoiceModel:
    model = owned_in_tx(deps, caller, VoiceModelRepository(deps.store).get(model_id), owner)
    if model.is_deleted:
        raise VoiceModelNotFoundError(f"Voice model not found or access denied: {echoed(model_id)}")
    return model


def share_voice_model(
    deps: VoiceModelDeps, caller: Caller, model_id: str, request: ModelShareCreate
) -> ShareResult:
    """Grant ``use`` of the model to each target user; return every grant on the model.

    Raises AccessDeniedError, VoiceModelNotFoundError or InvalidRequestError (sharing
    with the owner).
    """
    owner = caller.acting_for(request.owner_id) if request.owner_id is not None else None
    model = _owned_live(deps, caller, model_id, owner)
    # ``me`` names the caller here as everywhere, never a user of that name.
    targets = list(dict.fromkeys(caller.user_id if t == ME else t for t in request.target_user_ids))
    if model.user_id in targets:
        raise InvalidRequestError("A voice model cannot be shared with its owner")
    shares = [
        ModelShare(
            model_id=model_id,
            owner_id=model.user_id,
            target_user_id=target,
            permission=request.permissions,
        )
        for target in targets
    ]
    repository = ShareRepository(deps.store)
    repository.grant(shares)
    deps.log_access(caller, f"share:{','.join(targets)}", [model.id], model.user_id)
    from shared.voice_models.schemas import ShareResult  # noqa: PLC0415 - see the imports

    return ShareResult(model_id=model_id, shares=repository.for_model(model_id))


def revoke_share(deps: VoiceModelDeps, caller: Caller, model_id: str, target_user_id: str) -> None:
    """Remove the grant of the model to ``target_user_id`` (``me``: the caller).

    The owner (or an admin) removes any grant, no error if there was none; a grantee
    removes their own. Raises AccessDeniedError (a grantee naming another user),
    VoiceModelNotFoundError or InvalidRequestError (naming the owner).
    """
    target = caller.user_id if target_user_id == ME else target_user_id
    repository = ShareRepository(deps.store)
    if target == caller.user_id and repository.get(model_id, target) is not None:
        # Their own grant: a grantee may give it up while the model is theirs to see.
        model = readable_model(deps, caller, model_id)
    else:
        model = _owned_live(deps, caller, model_id, None)
    if target == model.user_id:
        raise InvalidRequestError("A voice model is never shared with its owner")
    repository.revoke(model_id, target)
    deps.log_access(caller, f"revoke:{target}", [model.id], model.user_id)


def shared_with(deps: VoiceModelDeps, caller: Caller, user_id: str) -> SharedVoiceModels:
    """Return the live models shared with the user. Raises AccessDeniedError."""
    from shared.voice_models.schemas import (  # noqa: PLC0415 - see the imports
        SharedVoiceModel,
        SharedVoiceModels,
    )

    target = caller.acting_for(user_id)
    shares = ShareRepository(deps.store).for_target(target)
    models = VoiceModelRepository(deps.store).get_many([s.model_id for s in shares])
    entries = [
        SharedVoiceModel(
            model=VoiceModelPublic.from_entity(models[share.model_id]),
            owner_id=share.owner_id,
            permission=share.permission,
            shared_at=share.created_at,
        )
        for share in shares
        if share.model_id in models and not models[share.model_id].is_deleted
    ]
    deps.log_access(caller, "list_shared", [e.model.id for e in entries], None)
    return SharedVoiceModels(models=entries)


def model_for_synthesis(deps: VoiceModelDeps, user_id: str, model_id: str) -> VoiceModel:
    """Return the model ``user_id`` may synthesize with: their own or one shared with them.

    Raises VoiceModelNotFoundError.
    """
    return readable_model(deps, Caller(user_id), model_id)
