"""The ``samples.train`` task: run the model's trainer and write its artifacts.

The model goes ``pending`` -> ``training``; the trainer (``build_trainer``) gets the
samples the request named, their embeddings and prosody, and returns the voice; its files
land under ``models/{userId}/{modelId}/`` and ``metadata.json`` last (created only if
absent, so one training completes once). This task never completes the model itself: the
storage event of ``metadata.json`` does (``training-completed``), exactly as for an
external trainer writing the same layout.

Idempotent: a model already settled, deleted, or whose ``metadata.json`` exists is left
alone. A permanent failure (``TrainingFailedError``: samples gone, a provider refusing)
writes ``metadata.json`` with ``status: failed`` and the reason; other errors propagate so
the queue retries, and the last attempt writes the failure instead.
"""

from __future__ import annotations

import logging

from shared.blobs.base import ObjectAlreadyExistsError
from shared.errors import ConfigurationError, NotFoundError, PlatformError
from shared.model import utcnow
from shared.providers.base import UnknownProviderError
from shared.providers.elevenlabs import ElevenLabsProvider
from shared.providers.espeak import EspeakProvider
from shared.samples.deps import SampleDeps
from shared.samples.model import SampleStatus, VoiceSample
from shared.samples.repository import SampleRepository
from shared.samples.training.artifacts import (
    METADATA_FILE,
    TrainingMetadata,
    model_folder,
    write_metadata,
)
from shared.samples.training.elevenlabs import ElevenLabsCloningTrainer
from shared.samples.training.trainer import (
    Trainer,
    TrainingFailedError,
    TrainingInput,
    TrainingSample,
)
from shared.samples.training.voice_match import VoiceMatchTrainer
from shared.store.base import Transaction
from shared.voice_models.model import TTSProvider, VoiceModel, VoiceModelStatus
from shared.voice_models.repository import VOICE_MODELS, VoiceModelRepository

logger = logging.getLogger(__name__)

SETTLED = (VoiceModelStatus.COMPLETED, VoiceModelStatus.FAILED)


def run_training(deps: SampleDeps, model_id: str, *, last_attempt: bool = False) -> str:
    """Train the model and write its artifacts; return what happened (for the logs).

    Raises what a retry may cure (on ``last_attempt`` the failure is written instead).
    """
    model = VoiceModelRepository(deps.store).get(model_id)
    if model is None or model.is_deleted or model.status in SETTLED:
        return "nothing to do: the model is gone or settled"
    folder = model_folder(model.user_id, model.id)
    if deps.blobs.exists(deps.models_bucket, folder + METADATA_FILE):
        return "nothing to do: the trainer already wrote metadata.json"
    model = _mark_training(deps, model_id) or model
    try:
        job = training_input(deps, model)
        outcome = build_trainer(deps, model).train(job)
    except TrainingFailedError as exc:
        _write_failure(deps, model, exc.reason)
        return f"failed: {exc.reason}"
    except Exception as exc:
        if not last_attempt:
            raise
        logger.exception("Training of voice model %s failed on its last attempt", model_id)
        reason = exc.message if isinstance(exc, PlatformError) else "an internal error"
        _write_failure(deps, model, f"Training failed: {reason}")
        return "failed on the last attempt"
    for name, (data, content_type) in outcome.files.items():
        deps.blobs.put(deps.models_bucket, folder + name, data, content_type=content_type)
    metadata = TrainingMetadata(
        status="completed",
        provider=outcome.provider,
        trainer=outcome.trainer,
        voice=outcome.voice,
        quality_components=outcome.components,
        metrics=outcome.metrics,
        files=sorted(outcome.files),
        sample_rate=outcome.sample_rate,
    )
    _write_metadata(deps, model, metadata)
    return f"trained: {outcome.voice.voice_id}"


def training_input(deps: SampleDeps, model: VoiceModel) -> TrainingInput:
    """Return the job of ``model``: its samples (still ready) and their embeddings.

    Raises TrainingFailedError when a sample was deleted or is no longer usable.
    """
    training = model.metadata.get("training")
    sample_ids = training.get("sampleIds") if isinstance(training, dict) else None
    if not isinstance(sample_ids, list) or not sample_ids:
        raise TrainingFailedError("The model names no samples to train from")
    repository = SampleRepository(deps.store)
    samples = repository.get_many([str(s) for s in sample_ids])
    embeddings = repository.embeddings(list(samples))
    items = []
    for sample_id in sample_ids:
        sample = samples.get(str(sample_id))
        embedding = embeddings.get(str(sample_id))
        if sample is None or sample.user_id != model.user_id:
            raise TrainingFailedError(f"Sample {sample_id} was deleted before training")
        if sample.status is not SampleStatus.READY or embedding is None:
            raise TrainingFailedError(f"Sample {sample_id} is not ready to train from")
        items.append(TrainingSample(sample, embedding))
    language = training.get("language") if isinstance(training, dict) else None
    folder = model_folder(model.user_id, model.id)

    def read_audio(sample: VoiceSample) -> bytes:
        try:
            return deps.blobs.get(deps.bucket, sample.file_path)
        except NotFoundError as exc:
            raise TrainingFailedError(f"The audio of sample {sample.id} is gone") from exc

    def recall(name: str) -> bytes | None:
        try:
            return deps.blobs.get(deps.models_bucket, folder + name)
        except NotFoundError:
            return None

    def remember(name: str, data: bytes) -> None:
        deps.blobs.put(deps.models_bucket, folder + name, data, content_type="application/json")

    return TrainingInput(
        model=model,
        samples=items,
        language=str(language or items[0].sample.language),
        read_audio=read_audio,
        recall=recall,
        remember=remember,
    )


def build_trainer(deps: SampleDeps, model: VoiceModel) -> Trainer:
    """Return the trainer of the model's provider.

    Raises TrainingFailedError when the provider has no trainer or is not configured.
    """
    name = {TTSProvider.ESPEAK: "espeak", TTSProvider.ELEVENLABS: "elevenlabs"}.get(model.provider)
    if name is None:
        raise TrainingFailedError(f"No trainer for provider {model.provider.value}")
    try:
        provider = deps.providers.get(name)
    except (UnknownProviderError, ConfigurationError) as exc:
        raise TrainingFailedError(f"The {name} provider is not configured here") from exc
    if isinstance(provider, EspeakProvider):
        return VoiceMatchTrainer(
            provider, deps.encoder(), blobs=deps.blobs, bucket=deps.models_bucket
        )
    if isinstance(provider, ElevenLabsProvider):
        return ElevenLabsCloningTrainer(provider, deps.encoder())
    raise TrainingFailedError(f"The {name} provider cannot train voices")


def _mark_training(deps: SampleDeps, model_id: str) -> VoiceModel | None:
    now = utcnow()

    def mark(tx: Transaction) -> VoiceModel | None:
        model = VoiceModelRepository.tx_get(tx, model_id)
        if model is None or model.status is not VoiceModelStatus.PENDING:
            return model
        fields = {
            "status": VoiceModelStatus.TRAINING.value,
            "updated_at": now,
            "version": model.version + 1,
        }
        tx.update(VOICE_MODELS, model_id, fields)
        return model.model_copy(
            update={
                "status": VoiceModelStatus.TRAINING,
                "updated_at": now,
                "version": model.version + 1,
            }
        )

    model = deps.store.run_transaction(mark)
    if model is not None:
        deps.models.invalidate_models(model.user_id, [model.id])
    return model


def _write_failure(deps: SampleDeps, model: VoiceModel, reason: str) -> None:
    logger.info("Training of voice model %s failed: %s", model.id, reason)
    _write_metadata(deps, model, TrainingMetadata(status="failed", reason=reason[:2000]))


def _write_metadata(deps: SampleDeps, model: VoiceModel, metadata: TrainingMetadata) -> None:
    name = model_folder(model.user_id, model.id) + METADATA_FILE
    try:
        deps.blobs.put(
            deps.models_bucket,
            name,
            write_metadata(metadata),
            content_type="application/json",
            if_generation_match=0,
        )
    except ObjectAlreadyExistsError:
        logger.info("metadata.json of voice model %s was already written", model.id)
