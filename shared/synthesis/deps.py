"""What synthesis uses: store, object storage, providers, settings and, lazily, the queue.

Each port is taken from the platform's ``Ports`` when first used: showing or listing jobs
reads the store alone, so object storage (a cloud client in production) and the provider
registry are built only by a request that needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from shared.capability import PortsDeps

if TYPE_CHECKING:
    from shared.files.cache import SingleFlight
    from shared.files.deps import AudioDeps
    from shared.synthesis.render import Phonemizer
    from shared.voice_models.deps import VoiceModelDeps


@dataclass
class SynthesisDeps(PortsDeps):
    """The adapters and settings synthesis uses, each built from ``ports`` on first use."""

    @cached_property
    def phonemizer(self) -> Phonemizer | None:
        """Return eSpeak's phonemizer for syllable timestamps, None when eSpeak is off."""
        from shared.synthesis.phonemes import espeak_phonemizer  # noqa: PLC0415 - see the module docstring

        return espeak_phonemizer(self.providers)

    @property
    def audio(self) -> AudioDeps:
        """Return the audio-file dependencies."""
        from shared.files.deps import AudioDeps  # noqa: PLC0415 - see the module docstring

        return AudioDeps(self.store, self.blobs, self.settings)

    @property
    def models(self) -> VoiceModelDeps:
        """Return the voice-model dependencies (voice resolution, usage)."""
        from shared.voice_models.deps import VoiceModelDeps  # noqa: PLC0415 - see the module docstring

        return VoiceModelDeps(self.ports)

    @property
    def flight(self) -> SingleFlight:
        """Return the cache's single-flight over the store."""
        from shared.files.cache import SingleFlight  # noqa: PLC0415 - see the module docstring

        return SingleFlight(
            self.store,
            wait_seconds=self.settings.synthesis_cache_wait_seconds,
            lease_seconds=self.settings.synthesis_cache_lease_seconds,
        )
