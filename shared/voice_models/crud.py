"""Voice model CRUD (seed 001): create, read, list, update and soft delete.

Creation, deletion and marking a model failed change activation, so they run in one
transaction with the activation pointer (see ``voice_model_activation``): the first model
(failed ones before it do not count) and any model scoring above 0.8 are activated on
creation, never a failed one; deleting the active model, or setting it ``failed``,
activates the next best. Reads go through the shared cache (metadata 1 h) and every read
or change is written to the access log. A model is readable by its owner, admins and
users it is shared with; anyone else gets ``VOICE_MODEL_NOT_FOUND`` ("not found or access
denied").
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared.errors import InvalidRequestError, VoiceModelNotFoundError, echoed
from shared.model import utcnow
from shared.store.base import Transaction
from shared.store.rate_limits import rate_limited
from shared.voice_models import artifacts as files
from shared.voice_models.activation import (
    ACTIVATION_ATTEMPTS,
    activation_writes,
    hand_over_activation,
    owned_in_tx,
    soft_delete,
    usage_counts,
)
from shared.voice_models.deps import (
    Caller,
    VoiceModelDeps,
    list_key,
    model_key,
    model_scope,
    user_models_scope,
)
from shared.voice_models.model import (
    MAX_LIST_OFFSET,
    VoiceModel,
    VoiceModelCreate,
    VoiceModelDeleted,
    VoiceModelPublic,
    VoiceModelStatus,
    VoiceModelUpdate,
)
from shared.voice_models.repository import (
    VOICE_MODELS,
    ShareRepository,
    VoiceModelRepository,
    model_changes,
)

if TYPE_CHECKING:
    from shared.voice_models.schemas import VoiceModelListQuery

METADATA_TABLE = "cache_voice_models"


def create_voice_model(
    deps: VoiceModelDeps, caller: Caller, request: VoiceModelCreate
) -> VoiceModel:
    """Create a model for the caller (or, for admins, ``userId``); return it.

    Raises AccessDeniedError, InvalidModelPathError or RateLimitedError.
    """
    owner = caller.acting_for(request.user_id)
    files.model_object_name(request.model_path, user_id=owner, bucket=deps.bucket)
    components = request.quality_components
    model = VoiceModel(
        user_id=owner,
        name=request.name,
        voice_sample_id=request.voice_sample_id,
        provider=request.provider,
        model_path=request.model_path,
        sample_rate=request.sample_rate,
        quality_score=request.resolved_quality_score(),
        similarity=components.similarity if components else None,
        naturalness=components.naturalness if components else None,
        clarity=components.clarity if components else None,
        consistency=components.consistency if components else None,
        status=request.status,
        metadata=request.metadata,
        size_bytes=files.size_of(deps.blobs, deps.bucket, request.model_path, owner),
    )

    def add(tx: Transaction) -> tuple[VoiceModel, list[str]]:
        flagged = VoiceModelRepository.tx_activation(tx, owner)
        # "First" means the first that may be used: failed models before it do not count.
        live = VoiceModelRepository.tx_live_for_user(tx, owner)
        first = all(m.status == VoiceModelStatus.FAILED for m in live)
        activate = model.status != VoiceModelStatus.FAILED and (
            first or model.qualifies_for_auto_activation()
        )
        created = model.model_copy(update={"is_active": activate})
        changed: list[str] = []
        if activate:
            changed = activation_writes(
                tx,
                user_id=owner,
                flagged=flagged,
                active_id=model.id,
                now=model.created_at,
                skip=[model.id],
            )
        tx.create(VOICE_MODELS, model.id, created.to_document())
        return created, changed

    with rate_limited(deps.store, user_id=caller.user_id, rule=deps.rate_limit("create")):
        created, changed = deps.store.run_transaction(add, max_attempts=ACTIVATION_ATTEMPTS)
    deps.invalidate_models(owner, {created.id, *changed})
    deps.log_access(caller, "create", [created.id], owner)
    return created


def cached_model(deps: VoiceModelDeps, model_id: str) -> VoiceModel | None:
    """Return the model (deleted or not) through the metadata cache, or None."""

    def load() -> dict[str, Any] | None:
        model = VoiceModelRepository(deps.store).get(model_id)
        return model.to_api() if model else None

    value, _ = deps.cache.get_or_compute(
        model_key(model_id),
        scopes=[model_scope(model_id)],
        ttl=timedelta(seconds=deps.settings.voice_model_metadata_cache_seconds),
        table=METADATA_TABLE,
        compute=load,
    )
    return VoiceModel.model_validate(value) if value else None


def readable_model(deps: VoiceModelDeps, caller: Caller, model_id: str) -> VoiceModel:
    """Return the live model if the caller owns it, is an admin or was granted it.

    Raises VoiceModelNotFoundError otherwise (not found or access denied).
    """
    model = cached_model(deps, model_id)
    if model is not None and not model.is_deleted:
        if caller.is_admin or model.user_id == caller.user_id:
            return model
        if ShareRepository(deps.store).get(model_id, caller.user_id) is not None:
            return model
    raise VoiceModelNotFoundError(f"Voice model not found or access denied: {echoed(model_id)}")


def get_voice_model(
    deps: VoiceModelDeps, caller: Caller, model_id: str, *, user_id: str | None = None
) -> VoiceModel:
    """Return a model the caller may read (``userId``, if given, must be the caller).

    Raises AccessDeniedError or VoiceModelNotFoundError.
    """
    caller.acting_for(user_id)
    model = readable_model(deps, caller, model_id)
    deps.log_access(caller, "read", [model.id], model.user_id)
    return model


def list_voice_models(
    deps: VoiceModelDeps, caller: Caller, user_id: str, query: VoiceModelListQuery
) -> dict[str, Any]:
    """Return one page of the user's live models, newest first, as the API body.

    A page starts at most ``MAX_LIST_OFFSET`` models in, whether by offset or by cursor.
    The page's models are cached as their serialized JSON (``modelsJson``), the form the
    response needs, so a cache hit neither decodes nor re-encodes 100 models.
    Raises AccessDeniedError or InvalidRequestError (a bad cursor).
    """
    owner = caller.acting_for(user_id)
    offset = decode_offset(query.cursor) if query.cursor else query.offset
    filters = {**query.filters(), "limit": query.limit, "offset": offset}

    def load() -> dict[str, Any]:
        models = [
            m for m in VoiceModelRepository(deps.store).live_for_user(owner) if _matches(m, query)
        ]
        page = models[offset : offset + query.limit]
        public = [VoiceModelPublic.from_entity(m).to_api() for m in page]
        return {
            "modelsJson": json.dumps(public, separators=(",", ":")),
            "ids": [m.id for m in page],
            "total": len(models),
        }

    value, _ = deps.cache.get_or_compute(
        list_key(owner, filters),
        scopes=[user_models_scope(owner)],
        ttl=timedelta(seconds=deps.settings.voice_model_metadata_cache_seconds),
        table=METADATA_TABLE,
        compute=load,
    )
    total = int(value["total"])
    following = offset + query.limit
    # Past the cap a cursor would be refused: paging ends there, as it does by offset.
    more = following < total and following <= MAX_LIST_OFFSET
    deps.log_access(caller, "list", list(value["ids"]), owner)
    return {
        "modelsJson": value["modelsJson"],
        "total": total,
        "limit": query.limit,
        "offset": offset,
        "nextCursor": encode_offset(following) if more else None,
    }


def update_voice_model(
    deps: VoiceModelDeps, caller: Caller, model_id: str, request: VoiceModelUpdate
) -> VoiceModel:
    """Apply the changes to a model the caller owns; return it.

    Setting the active model ``failed`` deactivates it and activates the next best.

    Raises AccessDeniedError, VoiceModelNotFoundError, InvalidModelPathError or
    RateLimitedError.
    """
    owner = caller.acting_for(request.user_id) if request.user_id is not None else None
    changes = request.changes()
    repository = VoiceModelRepository(deps.store)
    current = owned_in_tx(deps, caller, repository.get(model_id), owner)
    if "model_path" in changes:
        files.model_object_name(changes["model_path"], user_id=current.user_id, bucket=deps.bucket)
        changes["size_bytes"] = files.size_of(
            deps.blobs, deps.bucket, changes["model_path"], current.user_id
        )
    now = utcnow()
    failing = changes.get("status") == VoiceModelStatus.FAILED
    counts = usage_counts(deps, repository.live_for_user(current.user_id)) if failing else {}

    def change(tx: Transaction) -> tuple[VoiceModel, list[str]]:
        model = owned_in_tx(deps, caller, VoiceModelRepository.tx_get(tx, model_id), owner)
        if model.is_deleted:
            raise VoiceModelNotFoundError(
                f"Voice model not found or access denied: {echoed(model_id)}"
            )
        fields = {**changes, "updated_at": now, "version": model.version + 1}
        changed: list[str] = []
        if failing:
            # A failed model is never active (as on creation): the next best takes over.
            changed = hand_over_activation(tx, model, counts, now)
            fields["is_active"] = False
        document = model_changes(model, **fields)
        tx.update(VOICE_MODELS, model_id, {name: document[name] for name in fields})
        return VoiceModel.model_validate(document), changed

    with rate_limited(deps.store, user_id=caller.user_id, rule=deps.rate_limit("update")):
        updated, changed = deps.store.run_transaction(change, max_attempts=ACTIVATION_ATTEMPTS)
    deps.invalidate_models(updated.user_id, {updated.id, *changed})
    deps.log_access(caller, "update", [updated.id], updated.user_id)
    return updated


def delete_voice_model(
    deps: VoiceModelDeps, caller: Caller, model_id: str, *, user_id: str | None = None
) -> VoiceModelDeleted:
    """Soft-delete a model, move its files to ``deleted/``, and activate the next best.

    Raises AccessDeniedError or VoiceModelNotFoundError (also for a deleted model).
    """
    owner = caller.acting_for(user_id) if user_id is not None else None
    repository = VoiceModelRepository(deps.store)
    known = owned_in_tx(deps, caller, repository.get(model_id), owner)
    counts = usage_counts(deps, repository.live_for_user(known.user_id))
    result = soft_delete(deps, caller, model_id, owner=owner, usage=counts)
    deleted = repository.get(model_id)
    if deleted is not None:
        result.moved_files = files.move_to_deleted(deps.blobs, deps.bucket, deleted)
    deps.log_access(caller, "delete", [model_id], known.user_id)
    return result


def encode_offset(offset: int) -> str:
    """Return the opaque ``nextCursor`` for a list continuing at ``offset``."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_offset(cursor: str) -> int:
    """Return the offset a cursor stands for; raise InvalidRequestError for a bad one."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        label, _, number = text.partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequestError("Invalid cursor") from None
    if label != "offset" or not 0 <= offset <= MAX_LIST_OFFSET:
        raise InvalidRequestError("Invalid cursor")
    return offset


def _matches(model: VoiceModel, query: VoiceModelListQuery) -> bool:
    return (
        (query.provider is None or model.provider == query.provider)
        and (query.is_active is None or model.is_active == query.is_active)
        and (query.min_quality_score is None or model.quality_score >= query.min_quality_score)
        and (query.status is None or model.status == query.status)
    )
