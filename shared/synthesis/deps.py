"""What synthesis uses: store, object storage, providers, settings and, lazily, the queue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.blobs.base import ObjectStorage
from shared.config import Settings
from shared.errors import ConfigurationError
from shared.files.cache import SingleFlight
from shared.files.deps import AudioDeps
from shared.providers.registry import ProviderRegistry
from shared.store.base import DocumentStore
from shared.voice_models.deps import VoiceModelDeps

if TYPE_CHECKING:
    from shared.capability import Ports
    from shared.synthesis.render import Phonemizer  # the renderer loads with a speech
    from shared.tasks.base import TaskQueue


@dataclass
class SynthesisDeps:
    """The adapters and settings synthesis uses."""

    store: DocumentStore
    blobs: ObjectStorage
    providers: ProviderRegistry
    settings: Settings
    # Returns the task queue; called only when a long job needs it (no queue on cold start).
    queue: Callable[[], TaskQueue] | None = None
    phonemizer: Phonemizer | None = None

    @classmethod
    def from_ports(cls, ports: Ports) -> SynthesisDeps:
        """Return the dependencies built from the platform's ports."""
        from shared.synthesis.phonemes import espeak_phonemizer  # noqa: PLC0415

        return cls(
            store=ports.store,
            blobs=ports.blobs,
            providers=ports.providers,
            settings=ports.settings,
            queue=ports.task_queue,
            phonemizer=espeak_phonemizer(ports.providers),
        )

    @property
    def audio(self) -> AudioDeps:
        """Return the audio-file dependencies."""
        return AudioDeps(self.store, self.blobs, self.settings)

    @property
    def models(self) -> VoiceModelDeps:
        """Return the voice-model dependencies (voice resolution, usage)."""
        return VoiceModelDeps(self.store, self.blobs, self.settings)

    @property
    def flight(self) -> SingleFlight:
        """Return the cache's single-flight over the store."""
        return SingleFlight(
            self.store,
            wait_seconds=self.settings.synthesis_cache_wait_seconds,
            lease_seconds=self.settings.synthesis_cache_lease_seconds,
        )

    def task_queue(self) -> TaskQueue:
        """Return the task queue long jobs use; raise ConfigurationError without one."""
        if self.queue is None:
            raise ConfigurationError("Long synthesis jobs need a task queue")
        return self.queue()
