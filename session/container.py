"""The session service's own small composition root: settings -> ports -> backend.

It builds what the service needs from ``Settings``, lazily and once: the document store
(SQLite embedded, Firestore in production), the TTS provider registry, the bearer-token
verifier, the speech-to-text registry, and from those the ``SessionServices`` and the
backend registry with the ``native`` provider. Tests pass ready-made ports instead.
When the platform's composition root (``shared/bootstrap.py``) settles, it can hand its
``store``, ``providers`` and ``verifier`` to this container unchanged (the keyword
arguments), so one process shares them.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from functools import cached_property

from session.voices import CloneVoiceResolver
from shared.auth import TokenVerifier, build_verifier
from shared.config import Settings
from shared.model import new_id
from shared.providers import ProviderRegistry, ProvidersConfig
from shared.sessions.backends import NativeBackendProvider
from shared.sessions.config import SessionDefaults
from shared.sessions.metrics import SessionMetrics
from shared.sessions.pipeline import embedded_s2s
from shared.sessions.registry import BackendRegistry
from shared.sessions.repository import SessionRepository
from shared.sessions.s2s import S2SCatalog, SpeechToSpeechProvider
from shared.sessions.services import SessionServices, agent_catalog_from_settings
from shared.sessions.tts import ConfiguredVoiceResolver
from shared.speech import SpeechRegistry, SpeechSettings
from shared.store import DocumentStore


class SessionContainer:
    """The ports and parts of one session service process."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: DocumentStore | None = None,
        providers: ProviderRegistry | None = None,
        verifier: TokenVerifier | None = None,
        speech: SpeechRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.instance_id = new_id()[:12]
        self._lock = threading.Lock()
        self._given: set[str] = set()
        for name, value in (
            ("store", store),
            ("providers", providers),
            ("verifier", verifier),
            ("speech", speech),
        ):
            if value is not None:
                self.__dict__[name] = value  # takes the place of the cached property
                self._given.add(name)

    @cached_property
    def store(self) -> DocumentStore:
        """Return the document store chosen by ``settings.store``."""
        with self._lock:
            if self.settings.store == "gcp":
                from google.cloud import firestore  # noqa: PLC0415 - built on first use

                from shared.store.firestore import FirestoreDocumentStore  # noqa: PLC0415

                client = firestore.Client(
                    project=self.settings.project, database=self.settings.firestore_database
                )
                return FirestoreDocumentStore(client)
            from shared.store.sqlite import SqliteDocumentStore  # noqa: PLC0415

            return SqliteDocumentStore(self.settings.sqlite_path)

    @cached_property
    def providers(self) -> ProviderRegistry:
        """Return the TTS providers enabled by ``settings.providers``."""
        return ProviderRegistry(ProvidersConfig.from_settings(self.settings))

    @cached_property
    def verifier(self) -> TokenVerifier:
        """Return the bearer-token verifier (the same tokens as the HTTP API)."""
        return build_verifier(self.settings)

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
            voices=CloneVoiceResolver(
                self.store,
                ConfiguredVoiceResolver(
                    settings.sessions_default_tts, settings.sessions_default_voice
                ),
            ),
            repository=SessionRepository(
                self.store, resume_window=timedelta(seconds=settings.sessions_resume_seconds)
            ),
            metrics=SessionMetrics(),
            s2s=S2SCatalog(s2s_factories),  # type: ignore[arg-type]  # factories built above
            playback_lead_seconds=settings.sessions_playback_lead_seconds,
            idle_timeout_seconds=settings.sessions_idle_timeout_seconds,
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
        registry.register(
            NativeBackendProvider(
                self.services, max_concurrent_sessions=self.settings.sessions_max_concurrent
            )
        )
        return registry

    async def aclose(self) -> None:
        """Release what this container built (ports handed in stay open)."""
        if "services" in self.__dict__:
            await self.services.aclose()
        if "speech" in self.__dict__ and "speech" not in self._given:
            self.speech.close()
        if "providers" in self.__dict__ and "providers" not in self._given:
            self.providers.close()
        if "store" in self.__dict__ and "store" not in self._given:
            self.store.close()
