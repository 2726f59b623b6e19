"""Export, backup and restore of voice models (seed 001).

An export is one model with its metadata, usage, the owner's analytics and signed URLs to
its files. A backup is one JSON document, ``backups/{userId}/backup_<timestamp>.json`` in
the models bucket, holding every live model of the user with its usage and grants. A
restore reads such a document from the caller's own backup prefix only, brings back each
model absent or soft-deleted (or every one with ``overwriteExisting``) exactly as saved,
moves its files back from ``deleted/``, resets its usage counters and grants, and settles
activation in the same transaction as the model writes (``activateRestored`` activates
the model that was active in the backup, else the best restored one).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from shared.blobs.base import check_object_name
from shared.errors import (
    AccessDeniedError,
    BackupNotFoundError,
    InvalidBackupPathError,
    InvalidRequestError,
    NotFoundError,
    echoed,
)
from shared.model import utcnow
from shared.store.base import Transaction
from shared.store.rate_limits import rate_limited
from shared.voice_models import artifacts as files
from shared.voice_models.activation import (
    ACTIVATION_ATTEMPTS,
    activation_writes,
    next_best,
    require_owned,
)
from shared.voice_models.crud import readable_model
from shared.voice_models.deps import (
    Caller,
    VoiceModelDeps,
    model_usage_scope,
    owner_usage_scope,
)
from shared.voice_models.insights import model_usage_stats, stats_by_id, user_analytics
from shared.voice_models.model import (
    ModelShare,
    VoiceModel,
    VoiceModelPublic,
    VoiceModelStatus,
    VoiceModelUsageStats,
)
from shared.voice_models.repository import (
    VOICE_MODELS,
    ShareRepository,
    VoiceModelRepository,
)
from shared.voice_models.schemas import (
    BackupResult,
    ExportedFile,
    RestoreRequest,
    RestoreResult,
    VoiceModelExport,
)
from shared.voice_models.usage import replace_usage

BACKUP_FORMAT = 1
MAX_RESTORED_MODELS = 200


def export_voice_model(
    deps: VoiceModelDeps, caller: Caller, model_id: str, *, user_id: str | None = None
) -> VoiceModelExport:
    """Return the export of a model the caller owns (a grant allows use, not download).

    Raises AccessDeniedError or VoiceModelNotFoundError.
    """
    caller.acting_for(user_id)
    model = require_owned(deps, caller, readable_model(deps, caller, model_id))
    expires_in = timedelta(seconds=deps.settings.voice_model_export_url_seconds)
    path_name = files.model_object_name(model.model_path, user_id=model.user_id, bucket=deps.bucket)
    exported = [
        ExportedFile(
            name=info.name,
            size_bytes=info.size,
            signed_url=deps.blobs.signed_url(deps.bucket, info.name, expires_in=expires_in),
        )
        for info in files.model_files(deps.blobs, deps.bucket, model)
    ]
    deps.log_access(caller, "export", [model.id], model.user_id)
    return VoiceModelExport(
        model=VoiceModelPublic.from_entity(model),
        metadata=model.metadata,
        usage_stats=model_usage_stats(deps, model.id),
        analytics=user_analytics(deps, model.user_id),
        signed_url=next((f.signed_url for f in exported if f.name == path_name), None),
        files=exported,
        expires_at=utcnow() + expires_in,
    )


def backup_voice_models(deps: VoiceModelDeps, caller: Caller, user_id: str) -> BackupResult:
    """Write the user's live models, usage and grants to one JSON backup; say where.

    Raises AccessDeniedError or RateLimitedError (backup operations per day).
    """
    owner = caller.acting_for(user_id)
    now = utcnow()
    name = f"{files.user_prefix(files.BACKUPS_PREFIX, owner)}backup_{now:%Y%m%dT%H%M%S%fZ}.json"
    with rate_limited(deps.store, user_id=caller.user_id, rule=deps.rate_limit("backup")):
        models = VoiceModelRepository(deps.store).live_for_user(owner)
        deps.blobs.put(
            deps.bucket,
            name,
            json.dumps(_backup_document(deps, owner, models, now), sort_keys=True).encode(),
            content_type="application/json",
            if_generation_match=0,
        )
    deps.log_access(caller, "backup", [m.id for m in models], owner)
    return BackupResult(
        backup_path=f"gs://{deps.bucket}/{name}", model_count=len(models), created_at=now
    )


def _backup_document(
    deps: VoiceModelDeps, owner: str, models: list[VoiceModel], now: datetime
) -> dict[str, Any]:
    stats = stats_by_id(deps, [m.id for m in models])
    shares: dict[str, list[dict[str, Any]]] = {}
    for share in ShareRepository(deps.store).for_owner(owner):
        shares.setdefault(share.model_id, []).append(share.to_api())
    return {
        "format": BACKUP_FORMAT,
        "userId": owner,
        "createdAt": now.isoformat().replace("+00:00", "Z"),
        "models": [
            {"model": m.to_api(), "usageStats": stats[m.id], "shares": shares.get(m.id, [])}
            for m in models
        ],
    }


def backup_object_name(backup_path: str, *, owner: str, bucket: str) -> str:
    """Return the object name of a backup under ``backups/{owner}/``.

    Raises InvalidBackupPathError (another bucket, ``..``, not a backup) or
    AccessDeniedError (another user's backup).
    """
    name = backup_path
    if backup_path.startswith("gs://"):
        if not backup_path.startswith(f"gs://{bucket}/"):
            raise InvalidBackupPathError(f"backupPath must be in gs://{bucket}/")
        name = backup_path[len(f"gs://{bucket}/") :]
    try:
        check_object_name(name)
    except InvalidRequestError:
        raise InvalidBackupPathError() from None
    parts = name.split("/")
    if len(parts) != 3 or parts[0] != files.BACKUPS_PREFIX or not parts[2].endswith(".json"):
        raise InvalidBackupPathError()
    if parts[1] != owner:
        raise AccessDeniedError("You can only restore your own backups")
    return name


def restore_voice_models(
    deps: VoiceModelDeps, caller: Caller, user_id: str, request: RestoreRequest
) -> RestoreResult:
    """Restore the user's models from one of their backups; say what was restored.

    Raises AccessDeniedError, InvalidBackupPathError, BackupNotFoundError,
    InvalidRequestError (not a backup of this user) or RateLimitedError.
    """
    owner = caller.acting_for(user_id)
    name = backup_object_name(request.backup_path, owner=owner, bucket=deps.bucket)
    with rate_limited(deps.store, user_id=caller.user_id, rule=deps.rate_limit("backup")):
        try:
            raw = deps.blobs.get(deps.bucket, name)
        except NotFoundError:
            raise BackupNotFoundError(f"Backup not found: {echoed(request.backup_path)}") from None
        entries = _parse_backup(raw, owner)
        saved = {model.id: model for model, _, _ in entries}
        result, changed = deps.store.run_transaction(
            partial(_restore_models, owner=owner, saved=saved, request=request, now=utcnow()),
            max_attempts=ACTIVATION_ATTEMPTS,
        )
    shares: list[ModelShare] = []
    for model, stats, model_shares in entries:
        if model.id not in result.restored:
            continue
        replace_usage(deps.store, stats=stats, owner_id=owner, shards=deps.shards)
        files.move_back(deps.blobs, deps.bucket, model)
        shares.extend(model_shares)
    ShareRepository(deps.store).grant(shares)
    deps.invalidate_models(owner, {*result.restored, *changed})
    deps.cache.invalidate(
        [model_usage_scope(i, deps.shards) for i in result.restored]
        + [owner_usage_scope(owner, deps.shards)]
    )
    deps.log_access(caller, "restore", result.restored, owner)
    return result


def _restore_models(
    tx: Transaction,
    *,
    owner: str,
    saved: dict[str, VoiceModel],
    request: RestoreRequest,
    now: datetime,
) -> tuple[RestoreResult, list[str]]:
    """Write ``saved`` in ``tx``; return the result and the ids whose activation changed."""
    flagged = VoiceModelRepository.tx_activation(tx, owner)
    existing = VoiceModelRepository.tx_get_many(tx, list(saved))
    restored, skipped = [], []
    for model_id in saved:
        current = existing.get(model_id)
        taken = current is not None and (current.user_id != owner or not current.is_deleted)
        if taken and not (request.overwrite_existing and current and current.user_id == owner):
            skipped.append(model_id)
        else:
            restored.append(model_id)
    active_id = next((m.id for m in flagged), None)
    if request.activate_restored and restored:
        # A failed model is never made active, whatever the backup says.
        was_active = [
            i
            for i in restored
            if saved[i].is_active and saved[i].status is not VoiceModelStatus.FAILED
        ]
        best = next_best([saved[i] for i in restored], {})
        active_id = was_active[0] if was_active else (best.id if best else active_id)
    for model_id in restored:
        document = saved[model_id].model_copy(update={"is_active": model_id == active_id})
        tx.set(VOICE_MODELS, model_id, document.to_document())
    changed = activation_writes(
        tx, user_id=owner, flagged=flagged, active_id=active_id, now=now, skip=restored
    )
    return RestoreResult(restored=restored, skipped=skipped, active_model_id=active_id), changed


def _parse_backup(
    raw: bytes, owner: str
) -> list[tuple[VoiceModel, VoiceModelUsageStats, list[ModelShare]]]:
    try:
        document = json.loads(raw)
        if document.get("format") != BACKUP_FORMAT or document.get("userId") != owner:
            raise ValueError("not a backup of this user")
        entries = [
            (
                VoiceModel.model_validate(item["model"]),
                VoiceModelUsageStats.model_validate(item["usageStats"]),
                [ModelShare.model_validate(share) for share in item.get("shares", [])],
            )
            for item in document["models"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidRequestError("The file is not a voice model backup of this user") from exc
    if len(entries) > MAX_RESTORED_MODELS:
        raise InvalidRequestError(f"A backup restores at most {MAX_RESTORED_MODELS} models")
    if any(model.user_id != owner for model, _, _ in entries):
        raise InvalidRequestError("The backup holds another user's models")
    return entries
