"""What the sample and training use cases need: adapters, settings, the caller.

``SampleDeps`` reads the platform's ports (``from_ports``) on first use: the store, object
storage, providers (the voice-match trainer speaks with eSpeak), settings and the task
queue, so a request that lists samples builds neither object storage nor the providers.
The speaker encoder loads on first use, from the weights file the settings name or the
installed resemblyzer package. ``Caller`` is the verified token's user (the
voice models' own, since training acts on voice models too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.capability import PortsDeps
from shared.voice_models.deps import Caller, VoiceModelDeps

if TYPE_CHECKING:
    from shared.audio.speaker_encoder import SpeakerEncoder

__all__ = ["Caller", "SampleDeps"]


@dataclass
class SampleDeps(PortsDeps):
    """The adapters and settings of the sample and training services, each read from ``ports``."""

    @property
    def bucket(self) -> str:
        """Return the bucket holding the samples' audio (``samples/{userId}/{sampleId}``)."""
        return self.settings.samples_bucket

    @property
    def models_bucket(self) -> str:
        """Return the bucket training writes to (``models/{userId}/{modelId}/``)."""
        return self.settings.models_bucket

    @property
    def models(self) -> VoiceModelDeps:
        """Return the voice-model dependencies (training creates and completes models)."""
        return VoiceModelDeps(self.ports)

    def encoder(self) -> SpeakerEncoder:
        """Return the speaker encoder, loading its weights on first use.

        Raises SpeakerEncoderUnavailableError when the weights are missing or damaged.
        """
        from shared.audio.speaker_encoder import default_encoder  # noqa: PLC0415 - numpy

        return default_encoder(self.settings.speaker_encoder_weights)
