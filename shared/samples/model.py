"""Voice samples (seed 002): recordings users upload to train and clone voices from.

A sample records its audio facts (format, duration, sample rate, channels, language), a
0..10 quality score with the measurements behind it, the speaker's pitch and speaking
rate, and a processing status: uploaded, then processing, then ready or failed (with the
reason); a failed sample may be processed again. A sample uploaded through a signed URL
starts one step earlier, awaiting its upload, and learns its audio facts when processed.
Transition methods return a new sample and raise ``InvalidStateTransitionError`` for any
other move. Its speaker embedding is stored apart (``voice_embeddings/{sampleId}``, the
seed's vector collection), named by ``voice_embedding_id``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import Field

from shared.model import (
    DomainModel,
    LanguageTag,
    NonNegativeCount,
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
from shared.voice_models.model import TTSProvider

DEFAULT_SAMPLE_LANGUAGE = "en-US"
MAX_SAMPLE_QUALITY = 10.0
MAX_PAGE_SIZE = 100
MAX_SIMILAR = 50
MAX_SAMPLE_CHANNELS = 64
EMBEDDING_MODEL = "resemblyzer-0.1.4"

SampleQuality = Annotated[float, Field(ge=0.0, le=MAX_SAMPLE_QUALITY, allow_inf_nan=False)]
"""Analysed quality of a recording on the seed's 0..10 scale."""

SampleName = Annotated[str, Field(min_length=1, max_length=255)]


class SampleFormat(StrEnum):
    """Audio container formats accepted for uploaded samples."""

    WAV = "wav"
    MP3 = "mp3"
    FLAC = "flac"
    OGG = "ogg"


CONTENT_TYPES: dict[SampleFormat, str] = {
    SampleFormat.WAV: "audio/wav",
    SampleFormat.MP3: "audio/mpeg",
    SampleFormat.FLAC: "audio/flac",
    SampleFormat.OGG: "audio/ogg",
}
"""The content type a sample of each format is stored with."""

UPLOAD_CONTENT_TYPES = frozenset(
    {
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "audio/vnd.wave",
        "audio/mpeg",
        "audio/mp3",
        "audio/flac",
        "audio/x-flac",
        "audio/ogg",
        "application/ogg",
    }
)
"""Content types a signed upload may declare (the format is still told from the bytes)."""


class SampleStatus(StrEnum):
    """Where a sample is in processing."""

    AWAITING_UPLOAD = "awaiting_upload"
    UPLOADED = "uploaded"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


SAMPLE_TRANSITIONS: TransitionTable[SampleStatus] = {
    SampleStatus.AWAITING_UPLOAD: frozenset({SampleStatus.UPLOADED}),
    SampleStatus.UPLOADED: frozenset({SampleStatus.PROCESSING}),
    SampleStatus.PROCESSING: frozenset({SampleStatus.READY, SampleStatus.FAILED}),
    SampleStatus.FAILED: frozenset({SampleStatus.PROCESSING}),
}
"""Legal sample moves; READY is final."""


class SampleQualityReport(DomainModel):
    """The measurements behind a sample's quality score (``shared.audio.quality``)."""

    snr_db: float
    clipping_ratio: float
    silence_ratio: float
    bandwidth_hz: float
    components: dict[str, float]
    problems: list[str] = Field(default_factory=list)
    usable: bool


class SampleProsody(DomainModel):
    """The speaker's measured pitch and speaking rate (``shared.audio.prosody``)."""

    f0_median_hz: float | None = None
    f0_p10_hz: float | None = None
    f0_p90_hz: float | None = None
    voiced_seconds: float = 0.0
    syllables: NonNegativeCount = 0
    speaking_seconds: float = 0.0
    syllables_per_second: float = 0.0


class VoiceSample(DomainModel):
    """An uploaded voice recording and what analysis learned about it.

    ``format``, ``duration`` and ``sample_rate`` are None only while a signed upload is
    awaited (or until processing reads a file the upload did not describe).
    """

    id: Annotated[str, Field(min_length=1)] = Field(default_factory=new_id)
    user_id: Annotated[str, Field(min_length=1)]
    name: SampleName
    file_path: Annotated[str, Field(min_length=1)]
    format: SampleFormat | None = None
    duration: PositiveSeconds | None = None
    sample_rate: SampleRate | None = None
    channels: Annotated[int, Field(ge=1, le=MAX_SAMPLE_CHANNELS)] | None = None
    codec: str | None = None
    size_bytes: NonNegativeCount = 0
    content_type: str | None = None
    language: LanguageTag = DEFAULT_SAMPLE_LANGUAGE
    is_public: bool = False
    quality_score: SampleQuality | None = None
    quality: SampleQualityReport | None = None
    prosody: SampleProsody | None = None
    status: SampleStatus = SampleStatus.UPLOADED
    failure_reason: str | None = None
    voice_embedding_id: str | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)
    processed_at: UtcDatetime | None = None

    def to_document(self) -> dict[str, Any]:
        """Return the stored fields, enums as their plain string values."""
        document = super().to_document()
        document["status"] = self.status.value
        document["format"] = self.format.value if self.format else None
        return document

    def _move(self, target: SampleStatus) -> None:
        check_transition("voice sample", SAMPLE_TRANSITIONS, self.status, target)

    def mark_uploaded(self, *, size_bytes: int, content_type: str) -> Self:
        """Return the sample UPLOADED once its signed upload arrived.

        Raises:
            InvalidStateTransitionError: the sample is not AWAITING_UPLOAD.
        """
        self._move(SampleStatus.UPLOADED)
        return with_changes(
            self,
            status=SampleStatus.UPLOADED,
            size_bytes=size_bytes,
            content_type=content_type,
            updated_at=utcnow(),
        )

    def start_processing(self) -> Self:
        """Return the sample PROCESSING.

        Raises:
            InvalidStateTransitionError: the sample is not UPLOADED or FAILED.
        """
        self._move(SampleStatus.PROCESSING)
        return with_changes(
            self, status=SampleStatus.PROCESSING, failure_reason=None, updated_at=utcnow()
        )

    def mark_ready(
        self,
        *,
        quality_score: float,
        voice_embedding_id: str | None,
        **analysis: Any,
    ) -> Self:
        """Return the sample READY with its analysed quality, facts and embedding reference.

        ``analysis`` holds the facts processing measured (format, duration, sample_rate,
        channels, codec, quality, prosody).

        Raises:
            InvalidStateTransitionError: the sample is not PROCESSING.
            pydantic.ValidationError: ``quality_score`` is outside 0..10, or a fact is invalid.
        """
        self._move(SampleStatus.READY)
        now = utcnow()
        return with_changes(
            self,
            **analysis,
            status=SampleStatus.READY,
            quality_score=quality_score,
            voice_embedding_id=voice_embedding_id,
            updated_at=now,
            processed_at=now,
        )

    def mark_failed(self, reason: str | None = None) -> Self:
        """Return the sample FAILED, saying why.

        Raises:
            InvalidStateTransitionError: the sample is not PROCESSING.
        """
        self._move(SampleStatus.FAILED)
        now = utcnow()
        return with_changes(
            self,
            status=SampleStatus.FAILED,
            failure_reason=reason,
            updated_at=now,
            processed_at=now,
        )


class VoiceSamplePublic(DomainModel):
    """A voice sample as API clients see it."""

    id: str
    user_id: str
    name: str
    file_path: str
    format: SampleFormat | None = None
    duration: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    size_bytes: int = 0
    language: str
    is_public: bool
    quality_score: float | None = None
    quality: SampleQualityReport | None = None
    prosody: SampleProsody | None = None
    status: SampleStatus
    failure_reason: str | None = None
    voice_embedding_id: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    processed_at: UtcDatetime | None = None

    @classmethod
    def from_entity(cls, sample: VoiceSample) -> Self:
        """Return the public view of ``sample``."""
        return cls.model_validate(sample.model_dump())


class VoiceSampleCreate(RequestModel):
    """Metadata a client sends with an upload; the audio facts come from analysing the file."""

    name: SampleName | None = None
    language: LanguageTag = DEFAULT_SAMPLE_LANGUAGE
    is_public: bool = False


class VoiceSampleUploadForm(VoiceSampleCreate):
    """The ``multipart/form-data`` form of ``POST /samples``: the audio and its metadata."""

    # Only the OpenAPI document reads this model: the handler takes the file from the
    # form itself and validates the other fields as ``VoiceSampleCreate``.
    file: Annotated[
        bytes, Field(description="The audio: wav, mp3, flac or ogg, read from the bytes")
    ]


class UploadUrlRequest(VoiceSampleCreate):
    """Body of ``POST /samples/upload-url``: what will be uploaded, and its metadata."""

    content_type: Annotated[str, Field(min_length=1, max_length=100)]
    size_bytes: Annotated[int, Field(ge=1)]


class SignedUploadPublic(DomainModel):
    """Where and how to upload: ``PUT`` the file to ``url`` with exactly ``headers``."""

    url: str
    method: str
    headers: dict[str, str]
    max_bytes: int
    expires_at: UtcDatetime


class UploadUrlResponse(DomainModel):
    """Answer of ``POST /samples/upload-url``: the sample awaiting its upload, and the URL."""

    sample: VoiceSamplePublic
    upload: SignedUploadPublic


class VoiceSampleUpdate(RequestModel):
    """Body of ``PATCH /samples/{id}``: name, language, public flag (at least one)."""

    name: SampleName | None = None
    language: LanguageTag | None = None
    is_public: bool | None = None

    def changes(self) -> dict[str, Any]:
        """Return the fields the client set, by snake_case name."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


Scope = Literal["own", "public"]


class SampleListQuery(RequestModel):
    """Query of ``GET /samples``: the caller's own samples, or everyone's public ones."""

    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20
    cursor: Annotated[str, Field(max_length=2000)] | None = None
    scope: Scope = "own"
    status: SampleStatus | None = None


class VoiceSamplePage(DomainModel):
    """One page of samples, newest first."""

    samples: list[VoiceSamplePublic]
    next_cursor: str | None = None


class SimilarQuery(RequestModel):
    """Query of ``GET /samples/{id}/similar``."""

    limit: Annotated[int, Field(ge=1, le=MAX_SIMILAR)] = 10
    scope: Scope = "own"


class SimilarSample(DomainModel):
    """A sample near the query sample: cosine distance (0 = same direction) and similarity."""

    sample: VoiceSamplePublic
    distance: float
    similarity: float


class SimilarSamples(DomainModel):
    """Answer of ``GET /samples/{id}/similar``, nearest first (the query sample left out)."""

    sample_id: str
    scope: Scope
    similar: list[SimilarSample]


class SampleDeleted(DomainModel):
    """Answer of ``DELETE /samples/{id}``: what was removed and the storage freed."""

    id: str
    deleted_object: bool
    deleted_embedding: bool
    freed_bytes: int


class VoiceEmbedding(DomainModel):
    """One sample's speaker embedding as stored for vector search (the seed's collection)."""

    sample_id: str
    user_id: str
    is_public: bool
    language: str
    duration: float | None = None
    quality_score: float | None = None
    embedding_model: str = EMBEDDING_MODEL
    dimension: int
    created_at: UtcDatetime = Field(default_factory=utcnow)


SampleId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00/]+$")]


class TrainRequest(RequestModel):
    """Body of ``POST /voice-models/train``."""

    sample_ids: Annotated[list[SampleId], Field(min_length=1, max_length=100)]
    provider: TTSProvider = TTSProvider.ESPEAK
    name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
