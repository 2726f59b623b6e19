"""Ports holding ready-made adapters, for tests that build a capability's dependencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shared.blobs.base import ObjectStorage
from shared.config import Settings
from shared.errors import ConfigurationError
from shared.providers.registry import ProviderRegistry
from shared.store.base import DocumentStore
from shared.tasks.base import TaskQueue


@dataclass(frozen=True)
class FixedPorts:
    """``shared.capability.Ports`` over given adapters; no queue unless ``queue`` is given."""

    store: DocumentStore
    blobs: ObjectStorage
    settings: Settings
    providers: ProviderRegistry = field(default_factory=lambda: ProviderRegistry.of([]))
    queue: Callable[[], TaskQueue] | None = None

    def task_queue(self) -> TaskQueue:
        """Return the queue; raise ConfigurationError when the test gave none."""
        if self.queue is None:
            raise ConfigurationError("This test's ports have no task queue")
        return self.queue()
