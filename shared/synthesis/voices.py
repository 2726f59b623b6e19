"""Which provider and provider voice a synthesis request speaks with.

A request names a catalog voice (``provider:voice_id``), a voice model the user owns or
was granted, or nothing (the user's active model). A voice model's engine maps to a TTS
provider of the registry (``MODEL_PROVIDERS``); its provider voice is
``metadata.voiceId`` when the model names one, else the provider's default voice
(``DEFAULT_VOICES``), and ``metadata.language`` its language. A provider that is not
enabled in this deployment, or enabled without its credentials, is
``ProviderNotConfiguredError`` (HTTP 422), never a 500. A voice-match model (trained from
samples, ``shared.samples.matched_voice``) also carries the pitch and speed fitted to its
samples, applied on top of each request's own.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.catalog.listing import get_voice
from shared.errors import (
    ConfigurationError,
    ProviderNotConfiguredError,
    VoiceModelNotReadyError,
    VoiceRequiredError,
)
from shared.providers.base import (
    MAX_PITCH,
    MAX_SPEED,
    MIN_PITCH,
    MIN_SPEED,
    AudioSettings,
    TTSProvider,
    UnknownProviderError,
)
from shared.providers.registry import ProviderRegistry
from shared.samples.matched_voice import matched_voice
from shared.voice_models.deps import VoiceModelDeps
from shared.voice_models.model import TTSProvider as ModelEngine
from shared.voice_models.model import VoiceModel, VoiceModelStatus
from shared.voice_models.repository import VoiceModelRepository
from shared.voice_models.sharing import model_for_synthesis

MODEL_PROVIDERS: dict[ModelEngine, str | None] = {
    ModelEngine.ESPEAK: "espeak",
    ModelEngine.GOOGLE_CLOUD_TTS: "gcp",
    ModelEngine.OPENAI_TTS: "openai",
    ModelEngine.ELEVENLABS: "elevenlabs",
    ModelEngine.XTTS_V2: None,  # no XTTS server is part of this platform
}
"""The registry provider that synthesizes each voice-model engine (None: none here)."""

DEFAULT_VOICES: dict[str, str] = {
    "espeak": "en-US",
    "gcp": "en-US-Standard-C",
    "openai": "alloy",
    "elevenlabs": "21m00Tcm4TlvDq8ikWAM",
}
"""The provider voice of a voice model whose metadata names none."""


@dataclass(frozen=True)
class ResolvedVoice:
    """A provider voice to synthesize with, and the model it came from, if any."""

    provider: str
    voice_id: str
    language: str | None = None
    model: VoiceModel | None = None
    # The voice's own prosody: multipliers a voice-match model was fitted with.
    pitch: float = 1.0
    speed: float = 1.0

    @property
    def label(self) -> str:
        """Return what the client named: the model id, or ``provider:voice_id``."""
        return self.model.id if self.model else f"{self.provider}:{self.voice_id}"

    def applied_to(self, settings: AudioSettings) -> AudioSettings:
        """Return ``settings`` with the voice's own pitch and speed multiplied in."""
        if self.pitch == 1.0 and self.speed == 1.0:
            return settings
        return settings.model_copy(
            update={
                "pitch": min(max(settings.pitch * self.pitch, MIN_PITCH), MAX_PITCH),
                "speed": min(max(settings.speed * self.speed, MIN_SPEED), MAX_SPEED),
            }
        )


def resolve_voice(deps: VoiceModelDeps, user_id: str, voice: str | None) -> ResolvedVoice:
    """Return the provider voice for ``voice`` (catalog id, model id, or None: active model).

    Raises VoiceNotFoundError, VoiceModelNotFoundError, VoiceRequiredError (no voice and no
    active model) or VoiceModelNotReadyError (a model still training or failed).
    """
    if voice is None:
        model = VoiceModelRepository(deps.store).active_for_user(user_id)
        if model is None:
            raise VoiceRequiredError("Name a voice, or activate a voice model first")
        return voice_of_model(model)
    if ":" in voice:
        profile = get_voice(store=deps.store, voice_id=voice)
        return ResolvedVoice(profile.provider, profile.voice_id, profile.language)
    return voice_of_model(model_for_synthesis(deps, user_id, voice))


def voice_of_model(model: VoiceModel) -> ResolvedVoice:
    """Return the provider voice a voice model speaks with.

    Raises VoiceModelNotReadyError (not completed) or ProviderNotConfiguredError (an
    engine no provider here runs).
    """
    if model.status is not VoiceModelStatus.COMPLETED:
        raise VoiceModelNotReadyError(f"Voice model {model.id} is {model.status.value}")
    provider = MODEL_PROVIDERS.get(model.provider)
    if provider is None:
        raise ProviderNotConfiguredError(
            f"Voice model {model.id} needs provider {model.provider.value}, "
            "which is not configured in this deployment"
        )
    matched = matched_voice(model.metadata)
    if matched is not None:
        return ResolvedVoice(
            provider=provider,
            voice_id=matched.voice_id,
            language=matched.language,
            model=model,
            pitch=matched.pitch,
            speed=matched.speed,
        )
    voice_id = model.metadata.get("voiceId") or model.metadata.get("voice_id")
    language = model.metadata.get("language")
    return ResolvedVoice(
        provider=provider,
        voice_id=str(voice_id) if voice_id else DEFAULT_VOICES.get(provider, "default"),
        language=str(language) if language else None,
        model=model,
    )


def provider_for(registry: ProviderRegistry, voice: ResolvedVoice) -> TTSProvider:
    """Return the enabled provider of ``voice``; raise ProviderNotConfiguredError."""
    try:
        return registry.get(voice.provider)
    except (UnknownProviderError, ConfigurationError) as exc:
        raise ProviderNotConfiguredError(
            f"Voice {voice.label} needs provider {voice.provider}, "
            "which is not configured in this deployment"
        ) from exc
