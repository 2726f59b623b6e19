"""The session service's own small composition root: the platform's ports -> backends.

The platform's composition root (``shared.bootstrap.Container``) gives the service its
ports through the ``sessions`` capability: the document store (SQLite embedded, Firestore
in production), the TTS provider registry and the voice resolver that speaks with the
user's active voice model; the container's bearer-token verifier checks the same tokens as
the HTTP API. On top of those this container builds, lazily and once, what only the
session service needs: the speech-to-text registry, the ``SessionServices`` and the
backend registry (``native``, and ``pipecat`` when pipecat-ai is installed). In the local
gateway both share one platform container; ``python -m session`` builds its own.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from shared import sessions, synthesis
from shared.auth import TokenVerifier
from shared.bootstrap import Container
from shared.config import Settings
from shared.model import new_id
from shared.providers import ProviderRegistry
from shared.sessions.backends import LiveSessions, NativeBackendProvider
from shared.sessions.config import SessionDefaults
from shared.sessions.deps import SessionDeps
from shared.sessions.metrics import SessionMetrics
from shared.sessions.pipecat_backend import PipecatBackendProvider, pipecat_installed
from shared.sessions.pipeline import embedded_s2s
from shared.sessions.registry import BackendRegistry
from shared.sessions.repository import SessionRepository
from shared.sessions.s2s import S2SCatalog, SpeechToSpeechProvider
from shared.sessions.services import SessionServices, agent_catalog_from_settings
from shared.sessions.tts import VoiceResolver
from shared.speech import SpeechRegistry, SpeechSettings
from shared.store import DocumentStore

if TYPE_CHECKING:
    from shared.synthesis.deps import SynthesisDeps


class SessionContainer:
    """The ports and parts of one session service process."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        platform: Container | None = None,
        speech: SpeechRegistry | None = None,
        voices: VoiceResolver | None = None,
    ) -> None:
        if platform is None:
            if settings is None:
                raise ValueError("give the settings or the platform container")
            platform = Container(settings)
            self._owns_platform = True
        else:
            self._owns_platform = False
        self.platform = platform
        self.settings = platform.settings
        self.instance_id = new_id()[:12]
        self._given: set[str] = set()
        for name, value in (("speech", speech), ("voices", voices)):
            if value is not None:
                self.__dict__[name] = value  # takes the place of the cached property
                self._given.add(name)

    @cached_property
    def deps(self) -> SessionDeps:
        """Return the sessions capability's dependencies, built by the platform container."""
        return self.platform.deps(sessions.CAPABILITY)

    @cached_property
    def synthesis(self) -> SynthesisDeps:
        """Return the synthesis capability's dependencies (``/v1/synthesize/ws``), built by
        the platform container on first use."""
        return self.platform.deps(synthesis.CAPABILITY)

    @property
    def store(self) -> DocumentStore:
        """Return the document store (the platform's)."""
        return self.deps.store

    @property
    def providers(self) -> ProviderRegistry:
        """Return the TTS providers (the platform's)."""
        return self.deps.providers

    @cached_property
    def verifier(self) -> TokenVerifier:
        """Return the bearer-token verifier (the same tokens as the HTTP API)."""
        return self.platform.verifier

    @cached_property
    def voices(self) -> VoiceResolver:
        """Return the voice resolver: the config's voice, else the user's active model."""
        return self.deps.voices

    @cached_property
    def speech(self) -> SpeechRegistry:
        """Return the speech-to-text providers enabled by ``settings.sessions_stt_providers``."""
        return SpeechRegistry(SpeechSettings.from_settings(self.settings))

    @cached_property
    def defaults(self) -> SessionDefaults:
        """Return what sessions get for the config fields their clients leave out."""
        return SessionDefaults.from_settings(self.settings)

    @cached_property
    def services(self) -> SessionServices:
        """Return the parts every session shares."""
        settings = self.settings
        s2s_factories: dict[str, object] = {}
        enabled = {n.strip() for n in settings.sessions_s2s_providers.split(",") if n.strip()}
        if "embedded" in enabled:
            s2s_factories["embedded"] = lambda: embedded_s2s(lambda: self.services, self.defaults)
        if "openai_realtime" in enabled:
            s2s_factories["openai_realtime"] = self._realtime
        return SessionServices(
            speech=self.speech,
            tts=self.providers,
            agents=agent_catalog_from_settings(settings),
            voices=self.voices,
            repository=SessionRepository(
                self.store, resume_window=timedelta(seconds=settings.sessions_resume_seconds)
            ),
            metrics=SessionMetrics(),
            s2s=S2SCatalog(s2s_factories),  # type: ignore[arg-type]  # factories built above
            playback_lead_seconds=settings.sessions_playback_lead_seconds,
            idle_timeout_seconds=settings.sessions_idle_timeout_seconds,
            max_audio_ahead_seconds=settings.sessions_max_audio_ahead_seconds,
            instance_id=self.instance_id,
        )

    def _realtime(self) -> SpeechToSpeechProvider:
        from shared.sessions.realtime import OpenAIRealtimeS2S  # noqa: PLC0415 - on first use

        key = self.settings.sessions_openai_realtime_api_key
        return OpenAIRealtimeS2S(
            url=self.settings.sessions_openai_realtime_url,
            model=self.settings.sessions_openai_realtime_model,
            voice=self.settings.sessions_openai_realtime_voice,
            api_key=key.get_secret_value() if key else None,
        )

    @cached_property
    def backends(self) -> BackendRegistry:
        """Return the backend providers this service offers."""
        registry = BackendRegistry()
        limits = {
            "max_concurrent_sessions": self.settings.sessions_max_concurrent,
            "max_sessions_per_user": self.settings.sessions_max_per_user,
        }
        # One index of this instance's live sessions for every provider: the limits count
        # the instance's sessions on every backend, and a resume whose config names another
        # backend than the one running the session takes it over.
        live = LiveSessions()
        registry.register(NativeBackendProvider(self.services, live=live, **limits))
        if pipecat_installed():
            registry.register(PipecatBackendProvider(self.services, live=live, **limits))
        return registry

    async def aclose(self) -> None:
        """Release what this container built (ports handed in stay open)."""
        if "services" in self.__dict__:
            await self.services.aclose()
        if "speech" in self.__dict__ and "speech" not in self._given:
            self.speech.close()
        if self._owns_platform:
            self.platform.close()
