"""Completing a trained model when its ``metadata.json`` lands in the models bucket.

``complete_training`` is what the ``training-completed`` function does with an
object-finalized event: only ``models/{userId}/{modelId}/metadata.json`` matters, every
other object is ignored. A completed training sets the model ``completed`` with the
voice the trainer made (``voiceId``, ``language``, and for a voice match ``pitch`` and
``speed``, in its metadata), the seed's four quality components and its quality score
(0.4 similarity + 0.3 naturalness + 0.2 clarity + 0.1 consistency), its files' size, and
applies seed 001's activation rules in the same transaction: the user's first usable model
(no other completed one), or one scoring above 0.8, becomes the active model. A failed
training sets ``failed`` with the trainer's reason. An unreadable ``metadata.json`` fails
the model too, with that said, and is acknowledged: retrying cannot fix the file.

Idempotent: a model already completed or failed, deleted, or unknown is left alone, so
the same event twice changes nothing. Errors reaching the store or the storage propagate:
the event is delivered again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from shared.blobs.base import ObjectStorage
from shared.errors import NotFoundError
from shared.model import utcnow
from shared.samples.matched_voice import VOICE_MATCH_TRAINER
from shared.samples.training.artifacts import (
    TrainingArtifactError,
    TrainingMetadata,
    model_folder,
    parse_metadata_name,
    read_metadata,
)
from shared.store.base import Transaction
from shared.voice_models.activation import activation_writes, hand_over_activation, usage_counts
from shared.voice_models.deps import VoiceModelDeps
from shared.voice_models.model import (
    AUTO_ACTIVATE_QUALITY_THRESHOLD,
    VoiceModel,
    VoiceModelStatus,
    quality_score_from_components,
)
from shared.voice_models.repository import VOICE_MODELS, VoiceModelRepository

logger = logging.getLogger(__name__)

UNREADABLE = "The trainer's metadata.json could not be read"
# Metrics copied into the model's metadata (the full set stays in the files).
_SUMMARY_METRICS = (
    "similarityCosine",
    "consistencyCosine",
    "matchCosine",
    "targetF0Hz",
    "achievedF0Hz",
    "targetSyllablesPerSecond",
    "achievedSyllablesPerSecond",
    "voicesCompared",
    "samples",
    "sampleSeconds",
    "naturalnessMeasured",
)


def complete_training(deps: VoiceModelDeps, blobs: ObjectStorage, *, name: str) -> str:
    """Apply the training result in ``name`` of the models bucket; return what was done.

    Raises what a retry may cure (store or storage unavailable).
    """
    parsed = parse_metadata_name(name)
    if parsed is None:
        return "ignored: not a metadata.json"
    user_id, model_id = parsed
    try:
        data = blobs.get(deps.bucket, name)
    except NotFoundError:
        return "ignored: the object is gone"
    try:
        metadata = read_metadata(data)
    except TrainingArtifactError as exc:
        logger.error("Unreadable training result %s: %s", name, exc)
        return _settle(deps, user_id, model_id, _failure(UNREADABLE), 0)
    size = sum(info.size for info in _files(blobs, deps.bucket, user_id, model_id))
    return _settle(deps, user_id, model_id, metadata, size)


def _failure(reason: str) -> TrainingMetadata:
    return TrainingMetadata(status="failed", reason=reason)


def _files(blobs: ObjectStorage, bucket: str, user_id: str, model_id: str) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    while True:
        page = blobs.list(bucket, model_folder(user_id, model_id), cursor=cursor)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def _settle(
    deps: VoiceModelDeps, user_id: str, model_id: str, metadata: TrainingMetadata, size: int
) -> str:
    now = utcnow()
    # The next best's ranking, for a failure of the active model (read before: the counts
    # are shards of their own).
    usage = {}
    if metadata.status == "failed":
        usage = usage_counts(deps, VoiceModelRepository(deps.store).live_for_user(user_id))

    def settle(tx: Transaction) -> tuple[str, list[str]]:
        model = VoiceModelRepository.tx_get(tx, model_id)
        if model is None or model.user_id != user_id:
            return "ignored: no such model", []
        if model.is_deleted:
            return "ignored: the model was deleted", []
        if model.status in (VoiceModelStatus.COMPLETED, VoiceModelStatus.FAILED):
            return f"ignored: the model is already {model.status.value}", []
        if metadata.status == "failed":
            # A failed model is never active: one activated by hand while it trained hands
            # activation to the next best, as setting it failed does.
            handed = hand_over_activation(tx, model, usage, now)
            fields = {**_failed_fields(model, metadata, now), "is_active": False}
            tx.update(VOICE_MODELS, model_id, fields)
            return "failed", [model_id, *handed]
        flagged = VoiceModelRepository.tx_activation(tx, user_id)
        live = VoiceModelRepository.tx_live_for_user(tx, user_id)
        fields = _completed_fields(model, metadata, size, now)
        first = not any(m.id != model_id and m.status is VoiceModelStatus.COMPLETED for m in live)
        activate = first or fields["quality_score"] > AUTO_ACTIVATE_QUALITY_THRESHOLD
        changed = [model_id]
        if activate:
            fields["is_active"] = True
            changed += activation_writes(
                tx,
                user_id=user_id,
                flagged=flagged,
                active_id=model_id,
                now=now,
                skip=[model_id],
            )
        tx.update(VOICE_MODELS, model_id, fields)
        return ("completed and activated" if activate else "completed"), changed

    outcome, changed = deps.store.run_transaction(settle, max_attempts=10)
    if changed:
        deps.invalidate_models(user_id, changed)
    logger.info("Training of voice model %s: %s", model_id, outcome)
    return outcome


def _failed_fields(model: VoiceModel, metadata: TrainingMetadata, now: datetime) -> dict[str, Any]:
    reason = metadata.reason or "Training failed"
    return {
        "status": VoiceModelStatus.FAILED.value,
        "metadata": {**model.metadata, "trainingError": reason[:500], "trainedAt": now.isoformat()},
        "updated_at": now,
        "version": model.version + 1,
    }


def _completed_fields(
    model: VoiceModel, metadata: TrainingMetadata, size: int, now: datetime
) -> dict[str, Any]:
    voice, components = metadata.voice, metadata.quality_components
    assert voice is not None  # read_metadata checked both
    assert components is not None
    trainer = metadata.trainer or str(model.metadata.get("trainer") or "")
    described: dict[str, Any] = {"voiceId": voice.voice_id, "language": voice.language}
    if trainer == VOICE_MATCH_TRAINER:
        described.update({"pitch": voice.pitch, "speed": voice.speed})
    summary = {
        key: metadata.metrics[key]
        for key in _SUMMARY_METRICS
        if isinstance(metadata.metrics.get(key), int | float | bool)
    }
    return {
        "status": VoiceModelStatus.COMPLETED.value,
        "quality_score": quality_score_from_components(
            components.similarity,
            components.naturalness,
            components.clarity,
            components.consistency,
        ),
        "similarity": components.similarity,
        "naturalness": components.naturalness,
        "clarity": components.clarity,
        "consistency": components.consistency,
        "sample_rate": metadata.sample_rate or model.sample_rate,
        "size_bytes": size,
        "metadata": {
            **model.metadata,
            **described,
            "trainer": trainer,
            "metrics": summary,
            "trainedAt": now.isoformat(),
        },
        "updated_at": now,
        "version": model.version + 1,
    }
