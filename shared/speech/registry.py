"""The speech-to-text providers a process may use, each built once on first use.

``SpeechSettings`` copies what this package needs from the one ``Settings`` class; the
registry builds ``whisper`` (embedded) and ``google`` (Cloud Speech-to-Text) lazily, so a
process that never recognises with Google never imports its client. Every session of the
process shares the providers (and so Whisper's model and worker pool).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import InvalidRequestError
from shared.speech.base import SpeechToText

KNOWN_STT_PROVIDERS = ("whisper", "google")


class SpeechSettings(BaseModel):
    """Speech-to-text settings (from ``Settings.sessions_*``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: tuple[str, ...] = ("whisper",)
    whisper_workers: int = Field(default=2, ge=1, le=32)
    whisper_cpu_threads: int = Field(default=1, ge=1, le=32)
    google_endpoint: str | None = None
    google_insecure: bool = False
    google_model: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> SpeechSettings:
        """Return the speech settings held by a ``Settings`` object."""
        enabled = [
            name.strip().lower()
            for name in str(settings.sessions_stt_providers).split(",")
            if name.strip()
        ]
        return cls(
            enabled=tuple(enabled),
            whisper_workers=settings.sessions_stt_workers,
            whisper_cpu_threads=settings.sessions_stt_cpu_threads,
            google_endpoint=settings.sessions_google_stt_endpoint,
            google_insecure=settings.sessions_google_stt_insecure,
            google_model=settings.sessions_google_stt_model,
        )


Factory = Callable[[SpeechSettings], SpeechToText]


def _whisper(settings: SpeechSettings) -> SpeechToText:
    from shared.speech.whisper import WhisperSpeechToText  # noqa: PLC0415 - built on first use

    return WhisperSpeechToText(
        workers=settings.whisper_workers, cpu_threads=settings.whisper_cpu_threads
    )


def _google(settings: SpeechSettings) -> SpeechToText:
    from shared.speech.google import GoogleSpeechToText  # noqa: PLC0415 - built on first use

    return GoogleSpeechToText(
        endpoint=settings.google_endpoint,
        insecure=settings.google_insecure,
        model=settings.google_model,
    )


FACTORIES: dict[str, Factory] = {"whisper": _whisper, "google": _google}


class SpeechRegistry:
    """The enabled speech-to-text providers by name, each built on first use."""

    def __init__(self, settings: SpeechSettings, *, factories: dict[str, Factory] | None = None):
        self._settings = settings
        self._factories = FACTORIES if factories is None else factories
        self._enabled = [name for name in settings.enabled if name in self._factories]
        self._built: dict[str, SpeechToText] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, providers: Iterable[SpeechToText]) -> SpeechRegistry:
        """Return a registry holding ready-made providers (tests, benchmarks)."""
        providers = list(providers)
        registry = cls(SpeechSettings(enabled=()), factories={})
        registry._enabled = [provider.name for provider in providers]
        registry._built = {provider.name: provider for provider in providers}
        return registry

    @property
    def names(self) -> list[str]:
        """Return the enabled provider names."""
        return list(self._enabled)

    def __contains__(self, name: object) -> bool:
        return name in self._enabled

    def get(self, name: str) -> SpeechToText:
        """Return provider ``name``, building it on first use.

        Raises:
            InvalidRequestError: ``name`` is not enabled.
        """
        if name not in self._enabled:
            raise InvalidRequestError(
                f"Speech-to-text provider {name!r} is not enabled; enabled: {self._enabled}"
            )
        with self._lock:
            provider = self._built.get(name)
            if provider is None:
                provider = self._factories[name](self._settings)
                self._built[name] = provider
            return provider

    def built(self) -> list[SpeechToText]:
        """Return the providers built so far."""
        with self._lock:
            return list(self._built.values())

    def close(self) -> None:
        """Close every provider built so far."""
        with self._lock:
            built, self._built = list(self._built.values()), {}
        for provider in built:
            provider.close()
