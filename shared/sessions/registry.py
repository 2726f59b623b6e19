"""Backend providers and the registry that holds them (the seed's ``BackendRegistry``).

A ``BackendProvider`` names itself (unique in the registry), declares its capabilities and
the JSON Schema of the session configs it runs, checks a config against them before any
session starts, and creates ``VoiceBackend`` instances. The ``native`` provider (our own
asyncio pipeline) is in ``shared.sessions.backends``. Other providers register the same
way: a ``pipecat`` provider running sessions as pipecat-ai pipelines, or a LiveKit one
(which needs a LiveKit server to connect to; none is built in).
"""

from __future__ import annotations

import abc
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from shared.errors import InvalidRequestError, NotFoundError
from shared.sessions.config import SessionConfig
from shared.sessions.model import ProviderCapabilities

if TYPE_CHECKING:
    from shared.sessions.backends import VoiceBackend


class UnknownBackendError(NotFoundError):
    """No backend provider of that name is registered."""

    code: ClassVar[str] = "BACKEND_NOT_FOUND"
    default_message: ClassVar[str] = "No such voice backend"


class BackendProvider(abc.ABC):
    """Makes voice backends of one kind."""

    name: ClassVar[str]
    metadata: ClassVar[dict[str, Any]] = {}

    @abc.abstractmethod
    def capabilities(self) -> ProviderCapabilities:
        """Return what this provider's backends can do."""

    def config_schema(self) -> dict[str, Any]:
        """Return the JSON Schema of the session configs this provider accepts."""
        return SessionConfig.model_json_schema(by_alias=True)

    def validate_config(self, config: SessionConfig) -> None:
        """Return None if this provider can run ``config``.

        Raises:
            InvalidRequestError: with one ``details`` entry per problem.
        """
        capabilities = self.capabilities()
        problems: list[dict[str, str]] = []
        if not capabilities.supports(config.pipeline):
            problems.append(
                {"field": "pipeline.type", "message": f"backend {self.name} cannot run s2s"}
            )
        if config.pipeline.latency_target < capabilities.min_latency:
            problems.append(
                {
                    "field": "pipeline.latencyTarget",
                    "message": f"below this backend's minimum of {capabilities.min_latency}",
                }
            )
        if (
            capabilities.supported_codecs
            and config.audio.encoding not in capabilities.supported_codecs
        ):
            problems.append({"field": "audio.encoding", "message": "codec not supported"})
        if problems:
            raise InvalidRequestError("Invalid session config", details=problems)

    @abc.abstractmethod
    async def create_backend(self, backend_id: str) -> VoiceBackend:
        """Return a new, not yet started backend."""


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
