"""What the sessions capability gets from the platform's composition root.

``SessionDeps`` holds the ports the session service shares with the rest of the platform
(settings, the document store, the TTS providers) and the voice resolver that speaks with
the user's active voice model. The voice-model dependencies behind it are built on the
first session that needs them, so the capability stays cheap to declare and to start.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.config import Settings
from shared.providers import ProviderRegistry
from shared.sessions.voices import VoiceModelResolver
from shared.store import DocumentStore

if TYPE_CHECKING:
    from shared.capability import Ports
    from shared.voice_models.deps import VoiceModelDeps


@dataclass(frozen=True)
class SessionDeps:
    """The platform's ports as the session service uses them."""

    settings: Settings
    store: DocumentStore
    providers: ProviderRegistry
    voices: VoiceModelResolver

    @classmethod
    def from_ports(cls, ports: Ports) -> SessionDeps:
        """Return the dependencies built from the platform's ports."""
        lock = threading.Lock()
        built: list[VoiceModelDeps] = []

        def voice_models() -> VoiceModelDeps:
            from shared.voice_models.deps import VoiceModelDeps  # noqa: PLC0415 - first use

            with lock:
                if not built:
                    built.append(VoiceModelDeps.from_ports(ports))
                return built[0]

        settings = ports.settings
        return cls(
            settings=settings,
            store=ports.store,
            providers=ports.providers,
            voices=VoiceModelResolver(
                voice_models,
                ports.providers,
                default_provider=settings.sessions_default_tts,
                default_voice=settings.sessions_default_voice,
            ),
        )
