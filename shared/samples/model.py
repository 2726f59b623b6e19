"""Voice samples (seed 002): recordings users upload to train and clone voices from.

A sample records its audio facts (format, duration, sample rate, language), a 0..10 quality
score from analysis, and a processing status: uploaded, then processing, then ready or
failed; a failed sample may be processed again. Transition methods return a new sample and
raise ``InvalidStateTransitionError`` for any other move.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field

from shared.model import (
    DomainModel,
    LanguageTag,
    PositiveSeconds,
    RequestModel,
    SampleRate,
    TransitionTable,
    UtcDatetime,
    check_transition,
    new_id,
    utcnow,
    with_changes,
)

DEFAULT_SAMPLE_LANGUAGE = "en-US"
MAX_SAMPLE_QUALITY = 10.0

SampleQuality = Annotated[float, Field(ge=0.0, le=MAX_SAMPLE_QUALITY, allow_inf_nan=False)]
"""Analysed quality of a recording on the seed's 0..10 scale."""


class SampleFormat(StrEnum):
    """Audio container formats accepted for uploaded samples."""

    WAV = "wav"
    MP3 = "mp3"
    FLAC = "flac"
    OGG = "ogg"


class SampleStatus(StrEnum):
    """Where a sample is in processing."""

    UPLOADED = "uploaded"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


SAMPLE_TRANSITIONS: TransitionTable[SampleStatus] = {
    SampleStatus.UPLOADED: frozenset({SampleStatus.PROCESSING}),
    SampleStatus.PROCESSING: frozenset({SampleStatus.READY, SampleStatus.FAILED}),
    SampleStatus.FAILED: frozenset({SampleStatus.PROCESSING}),
}
"""Legal sample moves; READY is final."""


class VoiceSample(DomainModel):
    """An uploaded voice recording and what analysis learned about it."""

    id: Annotated[str, Field(min_length=1)] = Field(default_factory=new_id)
    user_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1, max_length=255)]
    file_path: Annotated[str, Field(min_length=1)]
    format: SampleFormat
    duration: PositiveSeconds
    sample_rate: SampleRate
    language: LanguageTag = DEFAULT_SAMPLE_LANGUAGE
    quality_score: SampleQuality | None = None
    status: SampleStatus = SampleStatus.UPLOADED
    voice_embedding_id: str | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)

    def _move(self, target: SampleStatus) -> None:
        check_transition("voice sample", SAMPLE_TRANSITIONS, self.status, target)

    def start_processing(self) -> Self:
        """Return the sample PROCESSING.

        Raises:
            InvalidStateTransitionError: the sample is not UPLOADED or FAILED.
        """
        self._move(SampleStatus.PROCESSING)
        return with_changes(self, status=SampleStatus.PROCESSING)

    def mark_ready(self, *, quality_score: float, voice_embedding_id: str | None) -> Self:
        """Return the sample READY with its analysed quality and embedding reference.

        Raises:
            InvalidStateTransitionError: the sample is not PROCESSING.
            pydantic.ValidationError: ``quality_score`` is outside 0..10.
        """
        self._move(SampleStatus.READY)
        return with_changes(
            self,
            status=SampleStatus.READY,
            quality_score=quality_score,
            voice_embedding_id=voice_embedding_id,
        )

    def mark_failed(self) -> Self:
        """Return the sample FAILED.

        Raises:
            InvalidStateTransitionError: the sample is not PROCESSING.
        """
        self._move(SampleStatus.FAILED)
        return with_changes(self, status=SampleStatus.FAILED)


class VoiceSampleCreate(RequestModel):
    """Metadata a client sends with an upload; the audio facts come from analysing the file."""

    name: Annotated[str, Field(min_length=1, max_length=255)]
    language: LanguageTag = DEFAULT_SAMPLE_LANGUAGE
    format: SampleFormat | None = None
