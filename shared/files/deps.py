"""What the audio-file use cases use: the store, object storage and settings."""

from __future__ import annotations

from typing import NamedTuple

from shared.blobs.base import ObjectStorage
from shared.config import Settings
from shared.store.base import DocumentStore


class AudioDeps(NamedTuple):
    """What the audio-file services use."""

    store: DocumentStore
    blobs: ObjectStorage
    settings: Settings

    @property
    def bucket(self) -> str:
        """Return the audio bucket."""
        return self.settings.audio_bucket
