"""What the sample and training use cases need: adapters, settings, the caller.

``SampleDeps`` is built from the platform's ports (``from_ports``): the store, object
storage, providers (the voice-match trainer speaks with eSpeak), settings and, lazily, the
task queue. The speaker encoder loads on first use, from the weights file the settings
name or the installed resemblyzer package. ``Caller`` is the verified token's user (the
voice models' own, since training acts on voice models too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.blobs.base import ObjectStorage
from shared.config import Settings
from shared.errors import ConfigurationError
from shared.providers.registry import ProviderRegistry
from shared.store.base import DocumentStore
from shared.voice_models.deps import Caller, VoiceModelDeps

if TYPE_CHECKING:
    from shared.audio.speaker_encoder import SpeakerEncoder
    from shared.capability import Ports
    from shared.tasks.base import TaskQueue

__all__ = ["Caller", "SampleDeps"]


@dataclass
class SampleDeps:
    """The adapters and settings of the sample and training services."""

    store: DocumentStore
    blobs: ObjectStorage
    settings: Settings
    providers: ProviderRegistry
    # Returns the task queue; called only when work is enqueued (not on every cold start).
    queue: Callable[[], TaskQueue] | None = None

    @classmethod
    def from_ports(cls, ports: Ports) -> SampleDeps:
        """Return the dependencies built from the platform's ports."""
        return cls(ports.store, ports.blobs, ports.settings, ports.providers, ports.task_queue)

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
        return VoiceModelDeps(self.store, self.blobs, self.settings)

    def encoder(self) -> SpeakerEncoder:
        """Return the speaker encoder, loading its weights on first use.

        Raises SpeakerEncoderUnavailableError when the weights are missing or damaged.
        """
        from shared.audio.speaker_encoder import default_encoder  # noqa: PLC0415 - numpy

        return default_encoder(self.settings.speaker_encoder_weights)

    def task_queue(self) -> TaskQueue:
        """Return the task queue; raise ConfigurationError without one."""
        if self.queue is None:
            raise ConfigurationError("Sample processing needs a task queue")
        return self.queue()
