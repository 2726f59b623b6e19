"""Activation of voice models: exactly one active model per user, whatever races.

Every change of activation (activate, deactivate, create, delete, restore, cleanup) runs in
one store transaction that reads the user's activation pointer and flagged models
(``VoiceModelRepository.tx_activation``) and then writes the pointer and every flag it
changes, via ``activation_writes``. ``next_best`` picks the model that takes over when the
active one is deleted (``soft_delete``, shared by delete and cleanup): highest quality
score, then most used, then newest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from shared.errors import (
    AccessDeniedError,
    VoiceModelAlreadyActiveError,
    VoiceModelDeletedError,
    VoiceModelFailedError,
    VoiceModelNotActiveError,
    VoiceModelNotFoundError,
    echoed,
)
from shared.model import utcnow
from shared.store.base import Transaction
from shared.voice_models.deps import Caller, VoiceModelDeps
from shared.voice_models.model import VoiceModel, VoiceModelDeleted, VoiceModelStatus
from shared.voice_models.repository import VOICE_MODELS, ShareRepository, VoiceModelRepository
from shared.voice_models.usage import usage_for_models

ACTIVATION_ATTEMPTS = 10


def rank(model: VoiceModel, usage_count: int) -> tuple[float, int, datetime, str]:
    """Return the sort key of ``model`` as a candidate for activation (higher is better)."""
    return (model.quality_score, usage_count, model.created_at, model.id)


def next_best(
    candidates: Iterable[VoiceModel], usage_counts: Mapping[str, int]
) -> VoiceModel | None:
    """Return the best live, non-failed candidate, or None."""
    eligible = [m for m in candidates if not m.is_deleted and m.status != VoiceModelStatus.FAILED]
    if not eligible:
        return None
    return max(eligible, key=lambda m: rank(m, usage_counts.get(m.id, 0)))


def activation_writes(
    tx: Transaction,
    *,
    user_id: str,
    flagged: Iterable[VoiceModel],
    active_id: str | None,
    now: datetime,
    skip: Iterable[str] = (),
) -> list[str]:
    """Write the pointer and clear every flag but ``active_id``'s; return the ids changed.

    The caller writes ``active_id``'s own document when it is in ``skip`` (a model the
    same transaction creates or rewrites), so no document is written twice.
    """
    skipped = set(skip)
    changed = []
    flagged_ids = set()
    for model in flagged:
        flagged_ids.add(model.id)
        if model.id != active_id and model.id not in skipped:
            tx.update(VOICE_MODELS, model.id, {"is_active": False, "updated_at": now})
            changed.append(model.id)
    if active_id is not None and active_id not in flagged_ids and active_id not in skipped:
        tx.update(VOICE_MODELS, active_id, {"is_active": True, "updated_at": now})
        changed.append(active_id)
    VoiceModelRepository.tx_set_pointer(tx, user_id, active_id, now)
    return changed


def hand_over_activation(
    tx: Transaction, model: VoiceModel, usage: dict[str, int], now: datetime
) -> list[str]:
    """Pass activation from ``model``, if active, to the owner's next best; return ids changed.

    Reads before it writes; ``model``'s own document is left to the caller to write.
    """
    flagged = VoiceModelRepository.tx_activation(tx, model.user_id)
    if not (model.is_active or any(m.id == model.id for m in flagged)):
        return []
    live = VoiceModelRepository.tx_live_for_user(tx, model.user_id)
    successor = next_best([m for m in live if m.id != model.id], usage)
    return activation_writes(
        tx,
        user_id=model.user_id,
        flagged=flagged,
        active_id=successor.id if successor else None,
        now=now,
        skip=[model.id],
    )


def require_owned(deps: VoiceModelDeps, caller: Caller, model: VoiceModel | None) -> VoiceModel:
    """Return ``model`` if the caller may change it (owner or admin).

    Raises VoiceModelNotFoundError (missing, or not readable by the caller) or
    AccessDeniedError (shared with the caller, who may use but not change it).
    """
    if model is not None and (caller.is_admin or model.user_id == caller.user_id):
        return model
    if model is not None and ShareRepository(deps.store).get(model.id, caller.user_id):
        raise AccessDeniedError("A shared voice model can be used, not changed")
    raise VoiceModelNotFoundError(
        f"Voice model not found or access denied: {model.id if model else ''}".rstrip(": ")
    )


def owned_in_tx(
    deps: VoiceModelDeps, caller: Caller, model: VoiceModel | None, owner: str | None
) -> VoiceModel:
    """Return ``model`` if the caller may change it and it belongs to ``owner`` (if given).

    Raises like ``require_owned``.
    """
    if model is not None and owner is not None and model.user_id != owner:
        raise VoiceModelNotFoundError(f"Voice model not found or access denied: {model.id}")
    return require_owned(deps, caller, model)


def activate_voice_model(
    deps: VoiceModelDeps, caller: Caller, model_id: str, *, user_id: str | None = None
) -> VoiceModel:
    """Make ``model_id`` the owner's only active model; return it.

    Raises VoiceModelNotFoundError, AccessDeniedError, VoiceModelAlreadyActiveError,
    VoiceModelDeletedError or VoiceModelFailedError.
    """
    owner = caller.acting_for(user_id) if user_id is not None else None
    now = utcnow()

    def activate(tx: Transaction) -> tuple[VoiceModel, list[str]]:
        model = owned_in_tx(deps, caller, VoiceModelRepository.tx_get(tx, model_id), owner)
        if model.is_deleted:
            raise VoiceModelDeletedError(f"Voice model is deleted: {model_id}")
        if model.status == VoiceModelStatus.FAILED:
            raise VoiceModelFailedError(f"Voice model training failed: {model_id}")
        flagged = VoiceModelRepository.tx_activation(tx, model.user_id)
        if [m.id for m in flagged] == [model_id]:
            raise VoiceModelAlreadyActiveError(f"Voice model is already active: {model_id}")
        changed = activation_writes(
            tx, user_id=model.user_id, flagged=flagged, active_id=model_id, now=now
        )
        return model.model_copy(update={"is_active": True, "updated_at": now}), changed

    model, changed = deps.store.run_transaction(activate, max_attempts=ACTIVATION_ATTEMPTS)
    _after_change(deps, caller, model, changed, "activate")
    return model


def deactivate_voice_model(
    deps: VoiceModelDeps, caller: Caller, model_id: str, *, user_id: str | None = None
) -> VoiceModel:
    """Deactivate the owner's active model (the user then has none); return it.

    Raises VoiceModelNotFoundError, AccessDeniedError or VoiceModelNotActiveError.
    """
    owner = caller.acting_for(user_id) if user_id is not None else None
    now = utcnow()

    def deactivate(tx: Transaction) -> tuple[VoiceModel, list[str]]:
        model = owned_in_tx(deps, caller, VoiceModelRepository.tx_get(tx, model_id), owner)
        if model.is_deleted:
            raise VoiceModelNotFoundError(
                f"Voice model not found or access denied: {echoed(model_id)}"
            )
        flagged = VoiceModelRepository.tx_activation(tx, model.user_id)
        if not any(m.id == model_id for m in flagged):
            raise VoiceModelNotActiveError(f"Voice model is not active: {model_id}")
        changed = activation_writes(
            tx, user_id=model.user_id, flagged=flagged, active_id=None, now=now
        )
        return model.model_copy(update={"is_active": False, "updated_at": now}), changed

    model, changed = deps.store.run_transaction(deactivate, max_attempts=ACTIVATION_ATTEMPTS)
    _after_change(deps, caller, model, changed, "deactivate")
    return model


def get_active_voice_model(deps: VoiceModelDeps, caller: Caller, user_id: str) -> VoiceModel | None:
    """Return the user's active model or None (what synthesis uses).

    Raises AccessDeniedError when a non-admin asks about another user.
    """
    owner = caller.acting_for(user_id)
    model = VoiceModelRepository(deps.store).active_for_user(owner)
    if model is not None:
        deps.log_access(caller, "read_active", [model.id], owner)
    return model


def usage_counts(deps: VoiceModelDeps, models: Iterable[VoiceModel]) -> dict[str, int]:
    """Return each model's use count (the second ranking criterion), by id."""
    stats = usage_for_models(deps.store, [m.id for m in models], shards=deps.shards)
    return {model_id: s.usage_count for model_id, s in stats.items()}


def _after_change(
    deps: VoiceModelDeps, caller: Caller, model: VoiceModel, changed: list[str], action: str
) -> None:
    deps.invalidate_models(model.user_id, {model.id, *changed})
    deps.log_access(caller, action, [model.id], model.user_id)


def soft_delete(
    deps: VoiceModelDeps,
    caller: Caller,
    model_id: str,
    *,
    owner: str | None,
    usage: dict[str, int],
    unless_active: bool = False,
) -> VoiceModelDeleted:
    """Mark the model deleted in one transaction with the activation changes it causes.

    ``unless_active`` (cleanup) refuses, with VoiceModelNotFoundError, a model that became
    active meanwhile. Invalidates the cache; does not move files.
    """
    now = utcnow()

    def remove(tx: Transaction) -> tuple[VoiceModelDeleted, str, list[str]]:
        model = owned_in_tx(deps, caller, VoiceModelRepository.tx_get(tx, model_id), owner)
        if model.is_deleted:
            raise VoiceModelNotFoundError(
                f"Voice model not found or access denied: {echoed(model_id)}"
            )
        flagged = VoiceModelRepository.tx_activation(tx, model.user_id)
        was_active = model.is_active or any(m.id == model_id for m in flagged)
        if was_active and unless_active:
            raise VoiceModelNotFoundError(f"Voice model became active: {model_id}")
        successor = None
        if was_active:
            live = VoiceModelRepository.tx_live_for_user(tx, model.user_id)
            successor = next_best([m for m in live if m.id != model_id], usage)
        fields = {
            "deleted_at": now,
            "is_active": False,
            "updated_at": now,
            "version": model.version + 1,
        }
        tx.update(VOICE_MODELS, model_id, fields)
        changed: list[str] = []
        if was_active:
            changed = activation_writes(
                tx,
                user_id=model.user_id,
                flagged=flagged,
                active_id=successor.id if successor else None,
                now=now,
                skip=[model_id],
            )
        result = VoiceModelDeleted(
            id=model_id,
            deleted_at=now,
            was_active=was_active,
            active_model_id=successor.id if successor else None,
        )
        return result, model.user_id, changed

    result, user, changed = deps.store.run_transaction(remove, max_attempts=ACTIVATION_ATTEMPTS)
    deps.invalidate_models(user, {model_id, *changed})
    return result
