"""What a synthesis request is made of: the API models, the dependencies, a prepared request.

``AudioOptions`` are the audio and timestamp options every synthesis route shares;
``SynthesizeRequest`` and ``SynthesisResponse`` are ``POST /synthesize``'s body and
answer (also a job's status). ``SynthesisDeps`` bundles the adapters; ``Prepared`` is a
validated request with its voice, provider, settings and cache key, which dialogues give
their own renderer and billing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from shared.audio.encode import output_rate
from shared.blobs.base import ObjectStorage
from shared.config import Settings
from shared.domain.synthesis import OutputFormat, SynthesisStatus, TimestampGranularity
from shared.errors import ConfigurationError, InvalidRequestError, TextTooLongError
from shared.model import DEFAULT_SAMPLE_RATE, DomainModel, RequestModel
from shared.providers.base import (
    MAX_PITCH,
    MAX_SPEED,
    MAX_VOLUME,
    MIN_PITCH,
    MIN_SPEED,
    MIN_VOLUME,
    AudioSettings,
    TTSProvider,
)
from shared.providers.registry import ProviderRegistry
from shared.services.audio_files import AudioDeps
from shared.services.synthesis_cache import SingleFlight
from shared.services.synthesis_render import Phonemizer, Rendered, render_text
from shared.services.synthesis_voices import ResolvedVoice
from shared.services.voice_model_context import VoiceModelDeps
from shared.store.base import DocumentStore

if TYPE_CHECKING:
    from shared.bootstrap import Container
    from shared.tasks.base import TaskQueue

Speed = Annotated[float, Field(ge=MIN_SPEED, le=MAX_SPEED, allow_inf_nan=False)]
Pitch = Annotated[float, Field(ge=MIN_PITCH, le=MAX_PITCH, allow_inf_nan=False)]
Volume = Annotated[float, Field(ge=MIN_VOLUME, le=MAX_VOLUME, allow_inf_nan=False)]
Rate = Annotated[int, Field(ge=8_000, le=48_000)]


class AudioOptions(RequestModel):
    """How the result should sound and be delivered (shared by every synthesis route)."""

    output_format: OutputFormat = OutputFormat.WAV
    sample_rate: Rate | None = None
    speed: Speed = 1.0
    pitch: Pitch = 1.0
    volume: Volume = 1.0
    include_timestamps: bool = True
    timestamp_granularity: TimestampGranularity = TimestampGranularity.BOTH


class SynthesizeRequest(AudioOptions):
    """Body of ``POST /synthesize``: ``text`` or ``ssml``, and a voice (default: active model)."""

    text: str | None = None
    ssml: str | None = None
    voice: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class SynthesisResponse(DomainModel):
    """The answer of a synthesis: the job, and its file once there is one."""

    job_id: str
    status: SynthesisStatus
    voice: str
    provider: str
    format: OutputFormat
    audio_file_id: str | None = None
    download_url: str | None = None
    duration: float | None = None
    sample_rate: int | None = None
    size: int | None = None
    checksum: str | None = None
    cache_hit: bool = False
    expires_at: datetime | None = None
    timestamps: dict[str, Any] | None = None
    unapplied: list[str] = Field(default_factory=list)
    progress: float = 0.0
    estimated_duration: int | None = None
    error: str | None = None
    mode: str | None = None
    fallback_reason: str | None = None


@dataclass
class SynthesisDeps:
    """The adapters and settings synthesis uses."""

    store: DocumentStore
    blobs: ObjectStorage
    providers: ProviderRegistry
    settings: Settings
    # Returns the task queue; called only when a long job needs it (no queue on cold start).
    queue: Callable[[], TaskQueue] | None = None
    phonemizer: Phonemizer | None = None

    @classmethod
    def from_container(cls, container: Container) -> SynthesisDeps:
        """Return the dependencies built from the process's container."""
        from shared.services.synthesis_phonemes import espeak_phonemizer  # noqa: PLC0415

        return cls(
            store=container.store,
            blobs=container.blobs,
            providers=container.providers,
            settings=container.settings,
            queue=lambda: container.tasks.queue,
            phonemizer=espeak_phonemizer(container.providers),
        )

    @property
    def audio(self) -> AudioDeps:
        """Return the audio-file dependencies."""
        return AudioDeps(self.store, self.blobs, self.settings)

    @property
    def models(self) -> VoiceModelDeps:
        """Return the voice-model dependencies (voice resolution, usage)."""
        return VoiceModelDeps(self.store, self.blobs, self.settings)

    @property
    def flight(self) -> SingleFlight:
        """Return the cache's single-flight over the store."""
        return SingleFlight(
            self.store,
            wait_seconds=self.settings.synthesis_cache_wait_seconds,
            lease_seconds=self.settings.synthesis_cache_lease_seconds,
        )

    def task_queue(self) -> TaskQueue:
        """Return the task queue long jobs use; raise ConfigurationError without one."""
        if self.queue is None:
            raise ConfigurationError("Long synthesis jobs need a task queue")
        return self.queue()


@dataclass(frozen=True)
class Prepared:
    """A validated request: what to say, with which voice and provider, and how."""

    text: str
    spoken: str
    ssml: bool
    voice: ResolvedVoice
    provider: TTSProvider
    settings: AudioSettings
    options: AudioOptions
    key: str
    # Dialogues render their own way, bill several voices, and say which mode they used.
    renderer: Callable[[], Rendered] | None = None
    usage: tuple[tuple[ResolvedVoice, int], ...] = ()
    extra: tuple[tuple[str, str | None], ...] = ()

    @property
    def length(self) -> int:
        """Return the number of characters that count against the limits."""
        return len(self.spoken)

    def render(self, chunk_chars: int) -> Rendered:
        """Return the rendered audio of this request."""
        if self.renderer is not None:
            return self.renderer()
        return render_text(
            self.provider,
            self.voice,
            self.text,
            self.settings,
            ssml=self.ssml,
            chunk_chars=chunk_chars,
        )

    def billed(self) -> tuple[tuple[ResolvedVoice, int], ...]:
        """Return each voice used with the characters it spoke."""
        return self.usage or ((self.voice, self.length),)


def check_text(text: str, settings: Settings) -> None:
    """Raise InvalidRequestError for empty text, TextTooLongError beyond the limit."""
    if not text.strip():
        raise InvalidRequestError("Text must not be empty")
    limit = settings.synthesis_max_chars
    if len(text) > limit:
        raise TextTooLongError(f"Text is {len(text)} characters; the limit is {limit} characters")


def audio_settings(options: AudioOptions) -> AudioSettings:
    """Return the provider settings for ``options`` (a rate the format can be written at).

    Raises InvalidRequestError for a sample rate the format does not support.
    """
    requested = options.sample_rate
    try:
        rate = output_rate(options.output_format, requested or DEFAULT_SAMPLE_RATE, requested)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    return AudioSettings(
        sample_rate=rate, speed=options.speed, pitch=options.pitch, volume=options.volume
    )
