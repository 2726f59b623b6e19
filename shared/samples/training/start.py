"""``POST /voice-models/train``: a pending voice model and the task that trains it.

The request names the samples (the caller's own, all ``ready``), the provider and a
name. The provider decides the trainer: ``espeak`` is the embedded voice match
(``shared.samples.training.voice_match``), ``elevenlabs`` is ElevenLabs' instant cloning
(needs the provider configured). Training counts against the voice-model creation rate
limit (seed 001: 5 an hour). The model starts ``pending`` and inactive, with its samples
in ``metadata.training``; the ``samples.train`` task trains it, and its ``metadata.json``
landing in storage completes it (``shared.samples.training.completion``).
"""

from __future__ import annotations

from shared.errors import (
    ConfigurationError,
    InvalidRequestError,
    ProviderNotConfiguredError,
    echoed,
)
from shared.model import utcnow
from shared.providers.base import UnknownProviderError
from shared.samples.deps import Caller, SampleDeps
from shared.samples.errors import (
    SampleNotFoundError,
    SampleNotReadyError,
    TrainerNotAvailableError,
)
from shared.samples.model import SampleStatus, TrainRequest, VoiceSample
from shared.samples.repository import SampleRepository
from shared.samples.training.artifacts import MODEL_FILE, model_folder
from shared.store.rate_limits import rate_limited
from shared.tasks.errors import TaskAlreadyExistsError
from shared.voice_models.model import TTSProvider, VoiceModel, VoiceModelStatus
from shared.voice_models.repository import VOICE_MODELS

TRAIN_TASK = "samples.train"
TRAINERS: dict[TTSProvider, tuple[str, str]] = {
    TTSProvider.ESPEAK: ("voice-match", "espeak"),
    TTSProvider.ELEVENLABS: ("elevenlabs-instant", "elevenlabs"),
}
"""Each trainable model provider: its trainer and the TTS provider it needs."""


def start_training(deps: SampleDeps, caller: Caller, request: TrainRequest) -> VoiceModel:
    """Create the pending model and enqueue its training; return the model.

    Raises TrainerNotAvailableError or ProviderNotConfiguredError (provider),
    InvalidRequestError (too many samples), SampleNotFoundError, SampleNotReadyError,
    RateLimitedError, and the queue's errors (the model is removed again then).
    """
    trainer = _trainer_for(deps, request.provider)
    sample_ids = list(dict.fromkeys(request.sample_ids))
    limit = deps.settings.training_max_samples
    if len(sample_ids) > limit:
        raise InvalidRequestError(f"Train from at most {limit} samples")
    samples = _ready_samples(deps, caller, sample_ids)
    language = _language_of(samples)
    models = deps.models
    model = VoiceModel(
        user_id=caller.user_id,
        name=request.name,
        voice_sample_id=sample_ids[0],
        provider=request.provider,
        model_path="placeholder",
        status=VoiceModelStatus.PENDING,
        metadata={
            "trainer": trainer,
            "training": {
                "sampleIds": sample_ids,
                "language": language,
                "requestedAt": utcnow().isoformat(),
            },
        },
    )
    model = model.model_copy(
        update={"model_path": model_folder(caller.user_id, model.id) + MODEL_FILE}
    )
    with rate_limited(deps.store, user_id=caller.user_id, rule=models.rate_limit("create")):
        deps.store.create(VOICE_MODELS, model.id, model.to_document())
        models.invalidate_models(caller.user_id, [model.id])
        try:
            deps.task_queue().enqueue(
                deps.settings.default_queue,
                TRAIN_TASK,
                {"modelId": model.id},
                dedup_key=f"{TRAIN_TASK}:{model.id}",
            )
        except TaskAlreadyExistsError:
            pass  # a new id was just made: cannot happen, but is harmless
        except BaseException:
            deps.store.delete(VOICE_MODELS, model.id)
            models.invalidate_models(caller.user_id, [model.id])
            raise
    models.log_access(caller, "train", [model.id], caller.user_id)
    return model


def _trainer_for(deps: SampleDeps, provider: TTSProvider) -> str:
    known = TRAINERS.get(provider)
    if known is None:
        names = ", ".join(sorted(p.value for p in TRAINERS))
        raise TrainerNotAvailableError(
            f"No trainer for provider {provider.value} here; train with one of: {names}"
        )
    trainer, tts_provider = known
    try:
        deps.providers.get(tts_provider)
    except (UnknownProviderError, ConfigurationError) as exc:
        raise ProviderNotConfiguredError(
            f"Training with {provider.value} needs the {tts_provider} provider, "
            "which is not configured in this deployment"
        ) from exc
    return trainer


def _ready_samples(deps: SampleDeps, caller: Caller, sample_ids: list[str]) -> list[VoiceSample]:
    found = SampleRepository(deps.store).get_many(sample_ids)
    samples = []
    for sample_id in sample_ids:
        sample = found.get(sample_id)
        # Only one's own voice: training on someone else's public sample would clone them.
        if sample is None or sample.user_id != caller.user_id:
            raise SampleNotFoundError(
                f"Voice sample not found or access denied: {echoed(sample_id)}"
            )
        if sample.status is not SampleStatus.READY:
            raise SampleNotReadyError(
                f"Voice sample {sample_id} is {sample.status.value}; train from ready samples"
            )
        samples.append(sample)
    return samples


def _language_of(samples: list[VoiceSample]) -> str:
    languages = [s.language for s in samples]
    return max(sorted(set(languages)), key=languages.count)
