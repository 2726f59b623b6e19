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

from shared.voice_models.deps import Caller, VoiceModelDeps

if TYPE_CHECKING:
    from shared.audio.speaker_encoder import SpeakerEncoder
    from shared.blobs.base import ObjectStorage
    from shared.capability import Ports
    from shared.config import Settings
    from shared.providers.registry import ProviderRegistry
    from shared.store.base import DocumentStore
    from shared.tasks.base import TaskQueue

__all__ = ["Caller", "SampleDeps"]


@dataclass
class SampleDeps:
    """The adapters and settings of the sample and training services, each read from ``ports``."""

    ports: Ports

    @classmethod
    def from_ports(cls, ports: Ports) -> SampleDeps:
        """Return the dependencies built from the platform's ports."""
        return cls(ports)

    @property
    def store(self) -> DocumentStore:
        """Return the document store."""
        return self.ports.store

    @property
    def blobs(self) -> ObjectStorage:
        """Return the object storage (built on first use)."""
        return self.ports.blobs

    @property
    def settings(self) -> Settings:
        """Return the settings."""
        return self.ports.settings

    @property
    def providers(self) -> ProviderRegistry:
        """Return the text-to-speech providers (built on first use)."""
        return self.ports.providers

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

    def task_queue(self) -> TaskQueue:
        """Return the task queue (built on first use)."""
        return self.ports.task_queue()
