"""The text-to-speech provider port: one interface for eSpeak and every cloud TTS service.

A ``TTSProvider`` lists its voices as catalog ``VoiceProfile`` values (already normalised:
BCP-47 language, gender, age group, styles and use cases where the provider says so, None
where it does not), synthesizes text or SSML into 16-bit mono PCM with word timings when
the provider gives them, and declares its ``ProviderCapabilities``. Every failure surfaces
as ``ProviderError`` whose ``category`` decides what a caller does: retry later (transient),
retry after ``retry_after`` seconds (rate limited), or stop (permanent, auth).

Adapters are synchronous and thread-safe: the HTTP layer is WSGI, and async callers (the
Cloud Run session service) run them with ``await asyncio.to_thread(provider.synthesize, r)``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.audio.timing import WordTiming
from shared.errors import (
    BadGatewayError,
    InvalidRequestError,
    NotFoundError,
    ServiceUnavailableError,
)
from shared.providers.voices import VoiceProfile

DEFAULT_SAMPLE_RATE = 22_050
MIN_SPEED, MAX_SPEED = 0.25, 4.0
MIN_PITCH, MAX_PITCH = 0.5, 2.0
MIN_VOLUME, MAX_VOLUME = 0.0, 2.0

Control = Literal["speed", "pitch", "volume"]
TimingGranularity = Literal["none", "word", "character"]
PronunciationInput = Literal["ssml", "espeak", "ipa", "alias"]
"""How pronunciation rules reach a provider: ``ssml`` (``<phoneme alphabet="ipa">`` and
``<sub>`` in its SSML; plain text comes with ``SynthesisRequest.pronunciations``),
``espeak`` (``[[...]]`` in eSpeak's mnemonics), ``ipa`` (``[[...]]`` in IPA), or ``alias``
(other words only)."""


class ErrorCategory(StrEnum):
    """What a provider failure means for the caller."""

    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    PERMANENT = "permanent"
    AUTH = "auth"

    @property
    def retryable(self) -> bool:
        """True when trying again later may succeed."""
        return self in (ErrorCategory.TRANSIENT, ErrorCategory.RATE_LIMITED)


class ProviderError(BadGatewayError):
    """A TTS provider failed; ``category`` decides retry, ``provider`` names who failed.

    The message is safe to show: adapters never put credentials or raw bodies in it.
    HTTP mapping (``shared.http.ERROR_STATUS`` via ``ProviderUnavailableError`` /
    ``ProviderRejectedError``): 503 with Retry-After for transient and rate-limited
    failures, 502 for auth and permanent upstream failures.
    """

    code: ClassVar[str] = "PROVIDER_ERROR"
    default_message: ClassVar[str] = "The speech provider failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        provider: str,
        category: ErrorCategory,
        retry_after: int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.provider = provider
        self.category = category
        self.status = status

    @property
    def retryable(self) -> bool:
        """True when the failure is transient or rate limited."""
        return self.category.retryable

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, category={self.category.value!r}"
            f", status={self.status!r}, message={self.message!r})"
        )


class ProviderUnavailableError(ServiceUnavailableError, ProviderError):
    """Transient or rate-limited provider failure (HTTP 503 with Retry-After)."""

    code: ClassVar[str] = "PROVIDER_UNAVAILABLE"
    default_message: ClassVar[str] = "The speech provider is unavailable; try again later"


class ProviderRejectedError(ProviderError):
    """Auth or permanent provider failure (HTTP 502: the upstream refused us)."""

    code: ClassVar[str] = "PROVIDER_REJECTED"
    default_message: ClassVar[str] = "The speech provider refused the request"


class UnsupportedTextError(InvalidRequestError, ProviderError):
    """Text the voice cannot read, such as a script it has no letters for (HTTP 400).

    A permanent provider failure caused by the request, not by the provider: the client
    must change the text or the voice.
    """

    code: ClassVar[str] = "UNSUPPORTED_TEXT"
    default_message: ClassVar[str] = "The voice cannot read this text"

    def __init__(self, message: str | None = None, *, provider: str) -> None:
        super().__init__(message, provider=provider, category=ErrorCategory.PERMANENT)


class UnknownProviderError(NotFoundError):
    """A provider name that is not enabled (HTTP 404)."""

    code: ClassVar[str] = "PROVIDER_NOT_FOUND"
    default_message: ClassVar[str] = "No such voice provider"


def provider_error(
    provider: str,
    category: ErrorCategory,
    message: str,
    *,
    retry_after: int | None = None,
    status: int | None = None,
) -> ProviderError:
    """Return the ``ProviderError`` subclass matching ``category`` (unavailable or rejected)."""
    cls = ProviderUnavailableError if category.retryable else ProviderRejectedError
    return cls(
        message, provider=provider, category=category, retry_after=retry_after, status=status
    )


class AudioSettings(BaseModel):
    """How the audio should sound: the seed's multipliers (1.0 = the voice's own) and rate.

    ``speed`` multiplies the speaking rate, ``pitch`` the voice's pitch, ``volume`` its
    loudness (0 is silence); ``sample_rate`` is the rate of the PCM returned.
    """

    # defer_build: the validator is built on first use, not by each cold start importing this.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    sample_rate: Annotated[int, Field(ge=8_000, le=48_000)] = DEFAULT_SAMPLE_RATE
    speed: Annotated[float, Field(ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)] = 1.0
    pitch: Annotated[float, Field(ge=MIN_PITCH, le=MAX_PITCH, allow_inf_nan=False)] = 1.0
    volume: Annotated[float, Field(ge=MIN_VOLUME, le=MAX_VOLUME, allow_inf_nan=False)] = 1.0

    def changed_controls(self) -> list[Control]:
        """Return the controls that differ from the voice's own (1.0)."""
        changed: list[Control] = []
        if self.speed != 1.0:
            changed.append("speed")
        if self.pitch != 1.0:
            changed.append("pitch")
        if self.volume != 1.0:
            changed.append("volume")
        return changed


class Pronunciation(BaseModel):
    """Say ``text[start:end]`` of a plain-text request as the IPA ``phoneme`` (or, without
    one, as the words ``alias``): a pronunciation rule for an ``ssml`` provider."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    start: Annotated[int, Field(ge=0)]
    end: Annotated[int, Field(ge=1)]
    phoneme: str | None = None
    alias: str | None = None

    @model_validator(mode="after")
    def _says_something(self) -> Pronunciation:
        if self.end <= self.start:
            raise ValueError("a pronunciation's span must not be empty")
        if self.phoneme is None and self.alias is None:
            raise ValueError("a pronunciation needs a phoneme or an alias")
        return self


class SynthesisRequest(BaseModel):
    """One synthesis call: text (or an SSML document) in one provider voice."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    text: Annotated[str, Field(min_length=1)]
    voice_id: Annotated[str, Field(min_length=1, max_length=255)]
    ssml: bool = False
    language: str | None = None
    settings: AudioSettings = Field(default_factory=AudioSettings)
    want_timings: bool = True
    # The text holds phoneme input (``[[...]]`` from a pronunciation lexicon: eSpeak
    # mnemonics for eSpeak, IPA for Piper); read so only then (a user's "[[" is text).
    phonemes: bool = False
    # Pronunciation rules over spans of plain text, for ``ssml`` providers, in order.
    pronunciations: tuple[Pronunciation, ...] = ()

    @model_validator(mode="after")
    def _text_is_not_blank(self) -> SynthesisRequest:
        if not self.text.strip():
            raise ValueError("text must not be blank")
        if self.pronunciations:
            if self.ssml:
                raise ValueError("pronunciations apply to plain text only")
            previous = 0
            for pronunciation in self.pronunciations:
                if pronunciation.start < previous or pronunciation.end > len(self.text):
                    raise ValueError("pronunciations must be in order, apart, inside the text")
                previous = pronunciation.end
        return self


class SynthesisResult(NamedTuple):
    """Audio as 16-bit little-endian mono PCM at ``sample_rate``, with its word timings.

    ``unapplied`` lists settings the provider could not honour (left at the voice's own).
    """

    pcm: bytes
    sample_rate: int
    words: tuple[WordTiming, ...] = ()
    unapplied: tuple[Control, ...] = ()
    provider: str = ""
    voice_id: str = ""

    @property
    def duration_seconds(self) -> float:
        """Return the length of the audio in seconds."""
        return len(self.pcm) / 2 / self.sample_rate


class ProviderCapabilities(NamedTuple):
    """What a provider can do; the synthesis layer plans around these.

    ``languages`` is empty when the languages come from the voices (cloud providers); the
    catalog then reports the languages of the synced voices.
    """

    ssml: bool
    timing: TimingGranularity
    multi_speaker: bool
    streaming: bool
    cloning: bool
    native_formats: tuple[str, ...]
    max_input_chars: int
    native_controls: frozenset[Control] = frozenset()
    sample_rates: tuple[int, ...] = ()
    languages: tuple[str, ...] = ()
    pronunciation: PronunciationInput = "alias"

    def to_api(self) -> dict[str, Any]:
        """Return the camelCase JSON of the capabilities."""
        return {
            "ssml": self.ssml,
            "timing": self.timing,
            "multiSpeaker": self.multi_speaker,
            "streaming": self.streaming,
            "cloning": self.cloning,
            "nativeFormats": list(self.native_formats),
            "maxInputChars": self.max_input_chars,
            "nativeControls": sorted(self.native_controls),
            "sampleRates": list(self.sample_rates),
            "languages": list(self.languages),
            "pronunciation": self.pronunciation,
        }


class TTSProvider(abc.ABC):
    """The port every TTS adapter implements; adapters are thread-safe."""

    name: ClassVar[str]

    @property
    @abc.abstractmethod
    def capabilities(self) -> ProviderCapabilities:
        """Return what this provider can do."""

    @abc.abstractmethod
    def list_voices(self) -> list[VoiceProfile]:
        """Return the provider's complete voice list, normalised for the catalog.

        Either every voice or an error: a list cut short raises, so the catalog never
        deprecates voices that were merely not fetched.

        Raises:
            ProviderError: the provider failed (its category decides retry).
        """

    @abc.abstractmethod
    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        """Return the audio of ``request`` as PCM at ``request.settings.sample_rate``.

        Raises:
            ProviderError: the provider failed, or refused the text or voice (permanent).
        """

    def streams(self, request: SynthesisRequest) -> bool:
        """Return whether ``stream_pcm`` yields this request's audio as it is produced.

        False (the default): callers synthesize sentence by sentence instead.
        """
        del request
        return False

    def stream_pcm(self, request: SynthesisRequest) -> Iterator[bytes]:
        """Yield the audio of ``request`` in pieces as PCM at ``request.settings.sample_rate``,
        as the provider produces it (no word timings); only called when ``streams(request)``.

        Raises:
            ProviderError: the provider failed (its category decides retry).
        """
        raise provider_error(self.name, ErrorCategory.PERMANENT, "streaming is not supported")

    def close(self) -> None:  # noqa: B027 - adapters without resources need not override
        """Release connections."""

    def default_voice(self, language: str) -> str | None:
        """Return the voice id to speak ``language`` with when a request names no voice.

        None (the default) means this provider offers no default for the language.
        """
        del language
        return None

    def check_input(self, request: SynthesisRequest) -> None:
        """Raise a permanent ProviderError when ``request`` cannot be sent to this provider."""
        caps = self.capabilities
        if request.ssml and not caps.ssml:
            raise provider_error(self.name, ErrorCategory.PERMANENT, "SSML is not supported")
        if request.pronunciations and caps.pronunciation != "ssml":
            raise provider_error(
                self.name, ErrorCategory.PERMANENT, "Pronunciations go to SSML providers only"
            )
        if len(request.text) > caps.max_input_chars:
            raise provider_error(
                self.name,
                ErrorCategory.PERMANENT,
                f"Text exceeds {caps.max_input_chars} characters for provider {self.name}",
            )


def unapplied_controls(settings: AudioSettings, native: Sequence[Control]) -> tuple[Control, ...]:
    """Return the changed controls of ``settings`` that are not in ``native``."""
    return tuple(control for control in settings.changed_controls() if control not in native)
