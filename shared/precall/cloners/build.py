"""Choosing the cloner the settings name (a module of its own, so the package, which the
cloners import for their types, does not import the cloners back)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.blobs.base import ObjectStorage
    from shared.config import Settings
    from shared.precall.cloners import VoiceCloner
    from shared.providers.registry import ProviderRegistry


def build_cloner(
    settings: Settings, providers: ProviderRegistry, blobs: ObjectStorage
) -> VoiceCloner:
    """Return the cloner ``settings.precall_cloner`` names.

    Raises ConfigurationError: ElevenLabs is chosen without an API key, or the voice match
    lacks eSpeak NG or the speaker encoder's weights.
    """
    if settings.precall_cloner == "elevenlabs":
        from shared.precall.cloners.elevenlabs import ElevenLabsCloner  # noqa: PLC0415

        return ElevenLabsCloner.from_settings(settings, providers)
    from shared.precall.cloners.voice_match import VoiceMatchCloner  # noqa: PLC0415

    return VoiceMatchCloner.from_settings(settings, providers, blobs)
