"""Backend providers and the registry that holds them (the seed's ``BackendRegistry``).

A ``BackendProvider`` names itself (unique in the registry), declares its capabilities and
the JSON Schema of the session configs it runs, checks a config against them before any
session starts, and creates ``VoiceBackend`` instances. Providers subclass
``shared.sessions.backends.BackendProvider``; the ``native`` one (our own asyncio
pipeline) is there too. Other providers register the same
way: a ``pipecat`` provider running sessions as pipecat-ai pipelines, or a LiveKit one
(which needs a LiveKit server to connect to; none is built in).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from shared.errors import NotFoundError
from shared.sessions.backends import BackendProvider


class UnknownBackendError(NotFoundError):
    """No backend provider of that name is registered."""

    code: ClassVar[str] = "BACKEND_NOT_FOUND"
    default_message: ClassVar[str] = "No such voice backend"


class BackendRegistry:
    """Backend providers by unique name; thread-safe."""

    def __init__(self) -> None:
        self._providers: dict[str, BackendProvider] = {}
        self._lock = threading.Lock()

    def register(self, provider: BackendProvider) -> None:
        """Add ``provider``.

        Raises:
            ValueError: the name is empty or already registered.
        """
        if not provider.name:
            raise ValueError("a backend provider needs a name")
        with self._lock:
            if provider.name in self._providers:
                raise ValueError(f"backend provider {provider.name!r} is already registered")
            self._providers[provider.name] = provider

    def get(self, name: str) -> BackendProvider:
        """Return provider ``name``.

        Raises:
            UnknownBackendError: none is registered under that name.
        """
        with self._lock:
            provider = self._providers.get(name)
        if provider is None:
            raise UnknownBackendError(f"No voice backend provider {name!r}")
        return provider

    @property
    def names(self) -> list[str]:
        """Return the registered provider names."""
        with self._lock:
            return sorted(self._providers)

    def describe(self) -> list[dict[str, Any]]:
        """Return each provider's name, metadata, capabilities and config schema."""
        with self._lock:
            providers = list(self._providers.values())
        return [
            {
                "name": provider.name,
                "metadata": provider.metadata,
                "capabilities": provider.capabilities().to_api(),
                "configSchema": provider.config_schema(),
            }
            for provider in providers
        ]
