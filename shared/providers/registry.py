"""The providers a process may use: built from ``ProvidersConfig``, lazily, once each.

``ProviderRegistry`` knows which providers are enabled and builds each on first use (a
cold start that never synthesizes with Polly never imports boto3). A provider enabled
without its credentials, or whose files are missing (Piper without its voice), is a
``ConfigurationError`` when first used, naming the variable to set and never its value;
the registry logs it once as a warning, and ``check`` builds every provider up front so
that the log line comes at startup. ``default_voice`` picks the voice of a request that
names none, skipping providers that fail to build; ``is_ready`` answers whether one would
without building Piper (its voice takes 1.5 s to load, which a request that only chooses a
voice must not pay). Tests build a registry from ready-made providers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from shared.errors import ConfigurationError
from shared.providers.base import TTSProvider, UnknownProviderError
from shared.providers.config import ProvidersConfig, secret

logger = logging.getLogger(__name__)

Factory = Callable[[ProvidersConfig], TTSProvider]


def _require(value: str | None, variable: str, provider: str) -> str:
    if not value:
        raise ConfigurationError(f"Voice provider {provider} is enabled but {variable} is not set")
    return value


def _espeak(config: ProvidersConfig) -> TTSProvider:
    from shared.providers.espeak import EspeakProvider  # noqa: PLC0415 - built on first use

    return EspeakProvider(variant_languages=config.espeak_variant_languages)


def _piper(config: ProvidersConfig) -> TTSProvider:
    from shared.providers.espeak import EspeakProvider  # noqa: PLC0415 - built on first use
    from shared.providers.piper import PiperProvider  # noqa: PLC0415 - built on first use
    from shared.providers.piper_voices import (  # noqa: PLC0415 - built on first use
        PiperVoiceFiles,
        packaged_voice,
    )

    files = [PiperVoiceFiles.beside(path) for path in config.piper_voices] or [packaged_voice()]
    # eSpeak reads the scripts a Piper voice cannot; it is part of every install.
    return PiperProvider.from_files(files, fallback=EspeakProvider(variant_languages=[]))


def _piper_ready(config: ProvidersConfig) -> None:
    from shared.providers.piper_voices import (  # noqa: PLC0415 - built on first use
        PiperVoiceFiles,
        check_voice,
        packaged_voice,
    )

    for files in [PiperVoiceFiles.beside(path) for path in config.piper_voices] or [
        packaged_voice()
    ]:
        check_voice(files)


def _espeak_ready(config: ProvidersConfig) -> None:
    # The library and its data, without loading either (nor the provider's module).
    import espeakng_loader  # type: ignore[import-untyped]  # noqa: PLC0415 - first use

    for path in (espeakng_loader.get_library_path(), espeakng_loader.get_data_path()):
        if not Path(path).exists():
            raise ConfigurationError(f"eSpeak NG is incomplete: {path} does not exist")


def _gcp(config: ProvidersConfig) -> TTSProvider:
    from shared.providers.gcp import GoogleTTSProvider  # noqa: PLC0415 - built on first use

    credentials = None
    if config.gcp_endpoint and config.gcp_endpoint.startswith("http://"):
        # A plain-HTTP endpoint is a local fake or emulator: send no Google credentials.
        from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415

        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]  # untyped lib
    return GoogleTTSProvider(
        endpoint=config.gcp_endpoint,
        transport=config.gcp_transport,
        credentials=credentials,
        timeout=config.timeout_seconds,
    )


def _polly(config: ProvidersConfig) -> TTSProvider:
    from shared.providers.polly import PollyProvider  # noqa: PLC0415 - built on first use

    # Without explicit keys boto3 uses its default chain (workload identity, env, files).
    return PollyProvider(
        region=config.polly_region,
        endpoint=config.polly_endpoint,
        access_key_id=secret(config.polly_access_key_id),
        secret_access_key=secret(config.polly_secret_access_key),
        preferred_engine=config.polly_engine,
        timeout=config.timeout_seconds,
    )


def _azure(config: ProvidersConfig) -> TTSProvider:
    from shared.providers.azure import AzureSpeechProvider  # noqa: PLC0415 - built on first use

    key = _require(secret(config.azure_key), "VOICE_AZURE_SPEECH_KEY", "azure")
    if config.azure_endpoint:
        base_url = config.azure_endpoint
    else:
        region = _require(config.azure_region, "VOICE_AZURE_SPEECH_REGION", "azure")
        base_url = AzureSpeechProvider.regional_url(region)
    return AzureSpeechProvider(key=key, base_url=base_url, timeout=config.timeout_seconds)


def _elevenlabs(config: ProvidersConfig) -> TTSProvider:
    from shared.providers.elevenlabs import ElevenLabsProvider  # noqa: PLC0415

    key = _require(secret(config.elevenlabs_api_key), "VOICE_ELEVENLABS_API_KEY", "elevenlabs")
    return ElevenLabsProvider(
        api_key=key,
        base_url=config.elevenlabs_base_url,
        model_id=config.elevenlabs_model,
        timeout=config.timeout_seconds,
    )


def _openai(config: ProvidersConfig) -> TTSProvider:
    from shared.providers.openai_compatible import OpenAICompatibleProvider  # noqa: PLC0415

    # Self-hosted compatible servers often need no key; api.openai.com always does.
    key = secret(config.openai_api_key)
    if "api.openai.com" in config.openai_base_url:
        key = _require(key, "VOICE_OPENAI_API_KEY", "openai")
    return OpenAICompatibleProvider(
        api_key=key,
        base_url=config.openai_base_url,
        model=config.openai_model,
        voices=config.openai_voices,
        language=config.openai_language,
        timeout=config.timeout_seconds,
    )


FACTORIES: dict[str, Factory] = {
    "espeak": _espeak,
    "piper": _piper,
    "gcp": _gcp,
    "polly": _polly,
    "azure": _azure,
    "elevenlabs": _elevenlabs,
    "openai": _openai,
}


Readiness = Callable[[ProvidersConfig], None]
"""Raises the ``ConfigurationError`` a provider's build would, where that shows cheaply."""

READINESS: dict[str, Readiness] = {"piper": _piper_ready, "espeak": _espeak_ready}
"""Providers whose build costs more than a look at their files (Piper loads its voice: 1.5 s;
eSpeak NG's provider module and library) and can say cheaply whether it will fail: a
missing file or package. The others are built to know."""


class ProviderRegistry:
    """The enabled providers by name, each built on first use."""

    def __init__(
        self,
        config: ProvidersConfig,
        *,
        factories: dict[str, Factory] | None = None,
        readiness: dict[str, Readiness] | None = None,
    ) -> None:
        self._config = config
        self._enabled = list(config.enabled)
        self._factories = FACTORIES if factories is None else factories
        if readiness is None:
            readiness = READINESS if factories is None else {}
        self._readiness = readiness
        self._built: dict[str, TTSProvider] = {}
        self._failed: set[str] = set()  # providers whose last build failed
        self._checked: set[str] = set()  # providers whose readiness check passed
        self._lock = threading.Lock()
        # One lock per provider, so a slow build (a neural voice loading) holds up only the
        # callers of that provider.
        self._build_locks: dict[str, threading.Lock] = {}
        self._reported: set[tuple[str, str]] = set()

    @classmethod
    def of(cls, providers: Iterable[TTSProvider]) -> ProviderRegistry:
        """Return a registry holding ready-made providers (tests, benchmarks)."""
        providers = list(providers)
        registry = cls(ProvidersConfig(enabled=[]), factories={})
        registry._enabled = [provider.name for provider in providers]
        registry._built = {provider.name: provider for provider in providers}
        return registry

    @property
    def names(self) -> list[str]:
        """Return the enabled provider names, in configuration order."""
        return list(self._enabled)

    def __contains__(self, name: object) -> bool:
        return name in self._enabled

    def get(self, name: str) -> TTSProvider:
        """Return the provider ``name``, building it on first use.

        Raises:
            UnknownProviderError: ``name`` is not enabled.
            ConfigurationError: it is enabled but its settings are incomplete, or its
                files are missing or corrupt (logged once as a warning).
        """
        if name not in self._enabled:
            raise UnknownProviderError(f"Voice provider {name!r} is not enabled")
        with self._lock:
            provider = self._built.get(name)
            if provider is not None:
                return provider
            build_lock = self._build_locks.setdefault(name, threading.Lock())
        with build_lock:
            with self._lock:
                provider = self._built.get(name)
            if provider is not None:
                return provider
            try:
                provider = self._factories[name](self._config)
            except ConfigurationError as exc:
                with self._lock:
                    self._failed.add(name)
                self._report(name, exc)
                raise
            with self._lock:
                self._built[name] = provider
                self._failed.discard(name)
            return provider

    def _report(self, name: str, error: ConfigurationError) -> None:
        with self._lock:
            if (name, error.message) in self._reported:
                return
            self._reported.add((name, error.message))
        order = self._config.default_voice_providers
        later = order[order.index(name) + 1 :] if name in order else []
        others = [other for other in later if other in self._enabled]
        instead = f"; requests that name no voice use {', '.join(others)}" if others else ""
        logger.warning(
            "Voice provider %s is unavailable: %s. Its voices cannot speak%s",
            name,
            error.message,
            instead,
        )

    def check(self) -> dict[str, str]:
        """Build every enabled provider now; return the problems by provider name.

        Meant for startup, so that a missing voice file is logged before the first request;
        an empty answer means every provider is ready.
        """
        problems: dict[str, str] = {}
        for name in self._enabled:
            try:
                self.get(name)
            except ConfigurationError as exc:
                problems[name] = exc.message
        return problems

    def is_ready(self, name: str) -> bool:
        """Return whether the enabled provider ``name`` builds (a failure is logged once).

        A provider with a readiness check (``READINESS``) is not built to answer: choosing
        a default voice must not load Piper's voice (1.5 s) on a request that never speaks.
        The check finds a missing file or package (a passed check is not repeated: a
        file gone later fails the load); a corrupt voice shows when it loads,
        and from then on the provider is not ready (asked again by building it: a failed
        load is remembered, so that costs nothing until the files change).
        """
        if name not in self._enabled:
            return False
        with self._lock:
            if name in self._built:
                return True
            failed = name in self._failed
            if name in self._checked and not failed:
                return True
        check = self._readiness.get(name)
        if check is None or failed:
            return self.builds(name)
        try:
            check(self._config)
        except ConfigurationError as exc:
            self._report(name, exc)
            return False
        with self._lock:
            self._checked.add(name)
        return True

    def builds(self, name: str) -> bool:
        """Return whether the enabled provider ``name`` is built, building it if need be.

        A failure is logged once (``get``) and remembered until its files change.
        """
        try:
            self.get(name)
        except (UnknownProviderError, ConfigurationError):
            return False
        return True

    def default_order(self) -> list[str]:
        """Return the enabled providers in the order a request naming no voice tries them.

        The providers of ``default_voice_providers`` first, those enabled that are ready
        (``is_ready``: one that cannot load, Piper without its voice, is passed over), then
        the other enabled providers in configuration order.
        """
        preferred = self._config.default_voice_providers
        first = [name for name in preferred if name in self._enabled and self.is_ready(name)]
        return first + [name for name in self._enabled if name not in preferred]

    def prefers_default(self, name: str) -> bool:
        """Return whether ``name`` is one of the providers whose voices are defaults."""
        return name in self._config.default_voice_providers

    def default_voice(self, language: str, *, fallback: str | None = None) -> str | None:
        """Return the catalog voice id (``provider:voice_id``) for a request in ``language``
        that names no voice.

        The providers of ``default_voice_providers`` are asked in order; one that is not
        enabled or fails to build is skipped, one with no voice for the language passed
        over. ``fallback``, a catalog voice id of the caller's own choice (the eSpeak voice
        an OpenAI voice name maps to), is returned when the walk reaches its provider, and
        when no provider answers. Without a fallback and an answer, None.
        """
        fallback_provider = fallback.partition(":")[0] if fallback else None
        for name in self._config.default_voice_providers:
            if name == fallback_provider:
                return fallback
            if name not in self._enabled:
                continue
            try:
                provider = self.get(name)
            except ConfigurationError:
                continue
            voice_id = provider.default_voice(language)
            if voice_id:
                return f"{name}:{voice_id}"
        return fallback

    def close(self) -> None:
        """Close every provider built so far."""
        with self._lock:
            built, self._built = list(self._built.values()), {}
        for provider in built:
            provider.close()
