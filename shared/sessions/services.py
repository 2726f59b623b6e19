"""What a backend needs to run sessions: its ports and shared parts, in one place.

``SessionServices`` carries the speech-to-text and TTS registries, the agents, the voice
resolver, the custom processor and speech-to-speech catalogs, the session repository, the
metrics and the knobs from settings. The service's composition root builds one and hands
it to the backend; tests build one with embedded parts.

``AgentCatalog`` holds the agents sessions may choose by name: built-in ones configured
from settings (``local``, ``webhook``, ``openai``), plus any an application registers as an
``AgentIntegration`` (an agent instance or the seed's callback). Agents are shared by every
session of the process; a client can only choose among them, never point the service at a
URL of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.errors import InvalidRequestError
from shared.providers import ProviderRegistry
from shared.sessions.agents import AgentIntegration, LocalRuleAgent
from shared.sessions.custom import ProcessorCatalog
from shared.sessions.metrics import SessionMetrics
from shared.sessions.repository import SessionRepository
from shared.sessions.tts import VoiceResolver
from shared.speech import SpeechRegistry

if TYPE_CHECKING:
    from shared.sessions.s2s import S2SCatalog


class AgentCatalog:
    """Agents by name; each built once, on first use."""

    def __init__(self) -> None:
        self._factories: dict[str, Callable[[], AgentIntegration]] = {
            "local": lambda: AgentIntegration(agent=LocalRuleAgent())
        }
        self._built: dict[str, AgentIntegration] = {}

    def register(self, name: str, factory: Callable[[], AgentIntegration]) -> None:
        """Offer the agent ``factory`` builds to sessions as ``name`` (replacing any before)."""
        self._factories[name] = factory
        self._built.pop(name, None)

    @property
    def names(self) -> list[str]:
        """Return the agents sessions may choose."""
        return sorted(self._factories)

    def get(self, name: str) -> AgentIntegration:
        """Return the agent integration ``name``.

        Raises:
            InvalidRequestError: no agent has that name.
        """
        if name not in self._factories:
            raise InvalidRequestError(f"Unknown agent {name!r}; available: {', '.join(self.names)}")
        if name not in self._built:
            self._built[name] = self._factories[name]()
        return self._built[name]

    async def aclose(self) -> None:
        """Close every agent built so far."""
        built, self._built = list(self._built.values()), {}
        for integration in built:
            if integration.agent is not None:
                await integration.agent.aclose()


def agent_catalog_from_settings(settings: Any) -> AgentCatalog:
    """Return the catalog of the agents ``settings.sessions_agents`` enables."""
    catalog = AgentCatalog()
    enabled = {name.strip() for name in str(settings.sessions_agents).split(",") if name.strip()}
    timeout = settings.sessions_agent_timeout_seconds
    if "webhook" in enabled and settings.sessions_agent_webhook_url:
        from shared.sessions.agent_http import WebhookAgent  # noqa: PLC0415 - on first use

        secret = settings.sessions_agent_webhook_secret
        url = settings.sessions_agent_webhook_url
        catalog.register(
            "webhook",
            lambda: AgentIntegration(
                agent=WebhookAgent(
                    url,
                    secret=secret.get_secret_value() if secret else None,
                    timeout=timeout,
                )
            ),
        )
    if "openai" in enabled:
        from shared.sessions.agent_http import OpenAIChatAgent  # noqa: PLC0415

        key = settings.sessions_openai_chat_api_key
        catalog.register(
            "openai",
            lambda: AgentIntegration(
                agent=OpenAIChatAgent(
                    base_url=settings.sessions_openai_chat_base_url,
                    model=settings.sessions_openai_chat_model,
                    api_key=key.get_secret_value() if key else None,
                    timeout=timeout,
                )
            ),
        )
    return catalog


@dataclass
class SessionServices:
    """Everything a backend's sessions share."""

    speech: SpeechRegistry
    tts: ProviderRegistry
    agents: AgentCatalog
    voices: VoiceResolver
    repository: SessionRepository
    metrics: SessionMetrics
    s2s: S2SCatalog
    processors: ProcessorCatalog = field(default_factory=ProcessorCatalog)
    tts_executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="tts")
    )
    playback_lead_seconds: float = 0.25
    idle_timeout_seconds: float = 300.0
    max_audio_ahead_seconds: float = 30.0
    instance_id: str = "local"

    async def aclose(self) -> None:
        """Release the agents, the S2S providers and the synthesis threads.

        The speech and TTS registries belong to whoever built them, and are closed there.
        """
        await self.agents.aclose()
        await self.s2s.aclose()
        self.tts_executor.shutdown(wait=False, cancel_futures=True)
