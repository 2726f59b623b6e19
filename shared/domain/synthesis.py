"""Text-to-speech jobs and their results (seed 002): synthesis jobs, timestamps, audio files.

A ``SynthesisJob`` turns text into audio with a voice model or a catalog voice; it moves
from pending to processing to completed or failed, and its transition methods return a new
job. Word and syllable timestamps locate the text in the audio. An ``AudioFile`` is the
stored result, identified by a ``sha256:<hex>`` checksum, with an optional expiry and
download statistics.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from shared.model import (
    DEFAULT_SAMPLE_RATE,
    DomainModel,
    NonNegativeCount,
    SampleRate,
    Seconds,
    TransitionTable,
    UnitScore,
    UtcDatetime,
    check_transition,
    new_id,
    utcnow,
    with_changes,
)

_CHECKSUM = re.compile(r"^sha256:[0-9a-f]{64}$")

RequiredId = Annotated[str, Field(min_length=1)]


class OutputFormat(StrEnum):
    """Audio formats synthesis can produce."""

    WAV = "wav"
    MP3 = "mp3"
    FLAC = "flac"
    OGG_OPUS = "ogg_opus"
    PCM = "pcm"


CONTENT_TYPES: dict[OutputFormat, str] = {
    OutputFormat.WAV: "audio/wav",
    OutputFormat.MP3: "audio/mpeg",
    OutputFormat.FLAC: "audio/flac",
    OutputFormat.OGG_OPUS: "audio/ogg",
    OutputFormat.PCM: "audio/L16",
}
"""The HTTP Content-Type of each output format (PCM is 16-bit little-endian mono)."""


class SynthesisStatus(StrEnum):
    """Where a synthesis job is."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


SYNTHESIS_TRANSITIONS: TransitionTable[SynthesisStatus] = {
    SynthesisStatus.PENDING: frozenset({SynthesisStatus.PROCESSING, SynthesisStatus.FAILED}),
    SynthesisStatus.PROCESSING: frozenset({SynthesisStatus.COMPLETED, SynthesisStatus.FAILED}),
}
"""Legal job moves; COMPLETED and FAILED are final."""


class TimestampGranularity(StrEnum):
    """Which timestamps a client asks for."""

    WORD = "word"
    SYLLABLE = "syllable"
    BOTH = "both"


class SynthesisJob(DomainModel):
    """A request to synthesize ``text_content``; needs a voice model or a catalog voice."""

    id: RequiredId = Field(default_factory=new_id)
    user_id: RequiredId
    voice_model_id: str | None = None
    voice_id: str | None = None
    text_content: Annotated[str, Field(min_length=1)]
    text_hash: RequiredId
    config: dict[str, Any] = Field(default_factory=dict)
    output_format: OutputFormat = OutputFormat.WAV
    sample_rate: SampleRate = DEFAULT_SAMPLE_RATE
    status: SynthesisStatus = SynthesisStatus.PENDING
    progress: UnitScore = 0.0
    estimated_duration: NonNegativeCount | None = None
    cache_hit: bool = False
    error_message: str | None = None
    audio_file_id: str | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)
    completed_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _has_a_voice(self) -> Self:
        if not self.voice_model_id and not self.voice_id:
            raise ValueError("a synthesis job needs voiceModelId or voiceId")
        return self

    def _move(self, target: SynthesisStatus) -> None:
        check_transition("synthesis job", SYNTHESIS_TRANSITIONS, self.status, target)

    def start(self) -> Self:
        """Return the job PROCESSING.

        Raises:
            InvalidStateTransitionError: the job is not PENDING.
        """
        self._move(SynthesisStatus.PROCESSING)
        return with_changes(self, status=SynthesisStatus.PROCESSING)

    def complete(self, *, audio_file_id: str, now: datetime, cache_hit: bool = False) -> Self:
        """Return the job COMPLETED at ``now`` with its audio file and full progress.

        Raises:
            InvalidStateTransitionError: the job is not PROCESSING.
        """
        self._move(SynthesisStatus.COMPLETED)
        return with_changes(
            self,
            status=SynthesisStatus.COMPLETED,
            audio_file_id=audio_file_id,
            progress=1.0,
            cache_hit=cache_hit,
            completed_at=now,
        )

    def fail(self, message: str, now: datetime) -> Self:
        """Return the job FAILED at ``now`` with ``message``.

        Raises:
            InvalidStateTransitionError: the job is already COMPLETED or FAILED.
        """
        self._move(SynthesisStatus.FAILED)
        return with_changes(
            self, status=SynthesisStatus.FAILED, error_message=message, completed_at=now
        )


class WordTimestamp(DomainModel):
    """Where a word sits in the audio, in seconds from the start."""

    model_config = ConfigDict(frozen=True)

    text: Annotated[str, Field(min_length=1)]
    start: Seconds
    end: Seconds

    @model_validator(mode="after")
    def _starts_before_end(self) -> Self:
        if self.start > self.end:
            raise ValueError("start must not be after end")
        return self


class SyllableTimestamp(WordTimestamp):
    """Where a syllable sits in the audio, and which word (0-based) it belongs to."""

    word_index: NonNegativeCount


def checksum_of(data: bytes) -> str:
    """Return the ``sha256:<hex>`` checksum of ``data``, as ``AudioFile.checksum`` stores it."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _normalize_checksum(value: str) -> str:
    normalised = value.strip().lower()
    if not _CHECKSUM.match(normalised):
        raise ValueError("checksum must be 'sha256:' followed by 64 hex digits")
    return normalised


Checksum = Annotated[str, AfterValidator(_normalize_checksum)]


class AudioFile(DomainModel):
    """A stored synthesis result; owner-only unless ``is_public``."""

    id: RequiredId = Field(default_factory=new_id)
    user_id: RequiredId
    synthesis_job_id: RequiredId
    file_path: RequiredId
    filename: Annotated[str, Field(min_length=1, max_length=255)]
    format: OutputFormat
    file_size: NonNegativeCount
    duration: Seconds
    sample_rate: SampleRate
    checksum: Checksum | None = None
    is_public: bool = False
    download_count: NonNegativeCount = 0
    created_at: UtcDatetime = Field(default_factory=utcnow)
    expires_at: UtcDatetime | None = None
    last_accessed_at: UtcDatetime | None = None

    @property
    def content_type(self) -> str:
        """Return the HTTP Content-Type to serve the file with."""
        return CONTENT_TYPES[self.format]

    def is_expired(self, now: datetime) -> bool:
        """Return whether the file's expiry has passed at ``now`` (never, without one)."""
        return self.expires_at is not None and now >= self.expires_at

    def downloaded(self, now: datetime) -> Self:
        """Return the file with one more download, last accessed at ``now``."""
        return with_changes(self, download_count=self.download_count + 1, last_accessed_at=now)
