"""Per-user voice models (seed 001): the entity, its own request and response shapes, rules.

A voice model is a trained voice a user synthesizes with. It is soft-deleted (``deleted_at``),
at most one per user is active, and its quality is a 0..1 score, either given directly or
computed from four components with ``quality_score_from_components``. The cleanup and
auto-activation thresholds below are the seed's business rules; the services apply them
across a user's models. The API's pages, comparisons, backups, shares and cleanup reports
are in ``shared.voice_models.schemas``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from shared.model import (
    DEFAULT_SAMPLE_RATE,
    DomainModel,
    FreeForm,
    NonNegativeCount,
    RequestModel,
    SampleRate,
    StoredFreeForm,
    UnitScore,
    UtcDatetime,
    new_id,
    utcnow,
)

SIMILARITY_WEIGHT = 0.4
NATURALNESS_WEIGHT = 0.3
CLARITY_WEIGHT = 0.2
CONSISTENCY_WEIGHT = 0.1

AUTO_ACTIVATE_QUALITY_THRESHOLD = 0.8
"""A new model scoring above this is activated on creation."""

CLEANUP_MIN_AGE = timedelta(days=182)
CLEANUP_QUALITY_THRESHOLD = 0.5
CLEANUP_UNUSED_FOR = timedelta(days=30)

MAX_LIST_OFFSET = 100_000
"""How far into a user's models a page may start, by ``offset`` or by ``cursor`` alike."""

_QUALITY_AGREEMENT_TOLERANCE = 0.01
_SCORE_DECIMALS = 6

NonEmptyId = Annotated[str, Field(min_length=1, max_length=255)]
ModelName = Annotated[str, Field(max_length=255)]
"""A model's display name as a request gives it (as long as a training's name may be)."""
NonNegativeAmount = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class TTSProvider(StrEnum):
    """Engines a voice model can be trained for and synthesized with."""

    XTTS_V2 = "xtts-v2"
    GOOGLE_CLOUD_TTS = "google-cloud-tts"
    OPENAI_TTS = "openai-tts"
    ESPEAK = "espeak"
    ELEVENLABS = "elevenlabs"


class VoiceModelStatus(StrEnum):
    """Where a voice model is in its training lifecycle."""

    PENDING = "pending"
    TRAINING = "training"
    COMPLETED = "completed"
    FAILED = "failed"


def quality_score_from_components(
    similarity: float, naturalness: float, clarity: float, consistency: float
) -> float:
    """Return the weighted 0..1 quality score (0.4 similarity, 0.3 naturalness, 0.2 clarity,
    0.1 consistency).

    Raises:
        ValueError: a component is outside 0..1 (or NaN).
    """
    components = {
        "similarity": similarity,
        "naturalness": naturalness,
        "clarity": clarity,
        "consistency": consistency,
    }
    for name, value in components.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    score = (
        SIMILARITY_WEIGHT * similarity
        + NATURALNESS_WEIGHT * naturalness
        + CLARITY_WEIGHT * clarity
        + CONSISTENCY_WEIGHT * consistency
    )
    # Rounding hides float noise (all 1.0 components would give 0.9999999999999999).
    return round(score, _SCORE_DECIMALS)


class QualityComponents(RequestModel):
    """The four measured aspects of a voice model's quality, each 0..1."""

    similarity: UnitScore
    naturalness: UnitScore
    clarity: UnitScore
    consistency: UnitScore

    @property
    def score(self) -> float:
        """Return the weighted quality score of these components."""
        return quality_score_from_components(
            self.similarity, self.naturalness, self.clarity, self.consistency
        )


class _VoiceModelFields(DomainModel):
    id: NonEmptyId = Field(default_factory=new_id)
    user_id: NonEmptyId
    name: str | None = None
    voice_sample_id: str | None = None
    provider: TTSProvider
    model_path: Annotated[str, Field(min_length=1)]
    sample_rate: SampleRate = DEFAULT_SAMPLE_RATE
    quality_score: UnitScore = 0.0
    similarity: UnitScore | None = None
    naturalness: UnitScore | None = None
    clarity: UnitScore | None = None
    consistency: UnitScore | None = None
    is_active: bool = False
    status: VoiceModelStatus = VoiceModelStatus.PENDING
    metadata: StoredFreeForm = Field(default_factory=dict)
    size_bytes: NonNegativeCount = 0
    version: Annotated[int, Field(ge=1)] = 1
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)
    deleted_at: UtcDatetime | None = None

    def to_document(self) -> dict[str, Any]:
        """Return the stored fields, enums as their plain string values."""
        document = super().to_document()
        document["provider"] = self.provider.value
        document["status"] = self.status.value
        return document


class VoiceModel(_VoiceModelFields):
    """A user's trained voice model as stored; ``deleted_at`` set means soft-deleted."""

    @property
    def is_deleted(self) -> bool:
        """Return whether the model has been soft-deleted."""
        return self.deleted_at is not None

    def qualifies_for_auto_activation(self) -> bool:
        """Return whether the model's quality alone earns activation on creation (> 0.8)."""
        return self.quality_score > AUTO_ACTIVATE_QUALITY_THRESHOLD

    def is_eligible_for_cleanup(self, *, last_used_at: datetime | None, now: datetime) -> bool:
        """Return whether the model meets every cleanup criterion of seed 001.

        Older than six months, inactive, quality below 0.5 and unused for 30 days (a model
        never used counts as unused).
        """
        unused = last_used_at is None or now - last_used_at > CLEANUP_UNUSED_FOR
        return (
            not self.is_active
            and now - self.created_at > CLEANUP_MIN_AGE
            and self.quality_score < CLEANUP_QUALITY_THRESHOLD
            and unused
        )


class VoiceModelPublic(_VoiceModelFields):
    """A voice model as API clients see it."""

    @classmethod
    def from_entity(cls, model: VoiceModel) -> Self:
        """Return the public view of ``model``."""
        return cls.model_validate(model.model_dump())


class VoiceModelCreate(RequestModel):
    """Body of ``POST /voice-models``; the caller's token decides the owner if userId is absent.

    Give ``qualityScore``, ``qualityComponents`` or both; when both are given they must agree.
    """

    user_id: NonEmptyId | None = None
    name: ModelName | None = None
    voice_sample_id: Annotated[str, Field(max_length=255)] | None = None
    provider: TTSProvider
    model_path: Annotated[str, Field(min_length=1)]
    sample_rate: SampleRate = DEFAULT_SAMPLE_RATE
    quality_score: UnitScore | None = None
    quality_components: QualityComponents | None = None
    # Models are created when training completes (the seed's training integration).
    status: VoiceModelStatus = VoiceModelStatus.COMPLETED
    metadata: FreeForm = Field(default_factory=dict)

    @model_validator(mode="after")
    def _quality_is_given(self) -> Self:
        if self.quality_score is None and self.quality_components is None:
            raise ValueError("give qualityScore or qualityComponents")
        if (
            self.quality_score is not None
            and self.quality_components is not None
            and abs(self.quality_score - self.quality_components.score)
            > _QUALITY_AGREEMENT_TOLERANCE
        ):
            raise ValueError("qualityScore does not match qualityComponents")
        return self

    def resolved_quality_score(self) -> float:
        """Return the given score, or the one computed from the components."""
        if self.quality_score is not None:
            return self.quality_score
        assert self.quality_components is not None  # guaranteed by _quality_is_given
        return self.quality_components.score


class VoiceModelUpdate(RequestModel):
    """Body of ``PUT /voice-models/{id}``: every field optional, at least one required.

    ``userId`` is accepted (and must be the caller's unless an admin calls) but is not a
    change by itself.
    """

    user_id: NonEmptyId | None = None
    name: ModelName | None = None
    model_path: Annotated[str, Field(min_length=1)] | None = None
    sample_rate: SampleRate | None = None
    quality_score: UnitScore | None = None
    status: VoiceModelStatus | None = None
    metadata: FreeForm | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.changes():
            raise ValueError("give at least one field to change")
        nulls = sorted(
            name for name, value in self.changes().items() if value is None and name != "name"
        )
        if nulls:
            raise ValueError(f"these fields cannot be null: {', '.join(nulls)}")
        return self

    def changes(self) -> dict[str, Any]:
        """Return the fields the client set, by snake_case name, excluding ``user_id``."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set - {"user_id"})}


class VoiceModelUsageStats(DomainModel):
    """Usage of one model: calls, cost, latency in milliseconds, a 0..5 rating, and the
    characters synthesized (``characters``, billed by the provider: cache hits are not)
    and asked for (``requestedCharacters``)."""

    model_id: NonEmptyId
    usage_count: NonNegativeCount = 0
    characters: NonNegativeCount = 0
    requested_characters: NonNegativeCount = 0
    total_cost: NonNegativeAmount = 0.0
    average_latency: NonNegativeAmount = 0.0
    last_used: UtcDatetime | None = None
    quality_rating: Annotated[float, Field(ge=0.0, le=5.0, allow_inf_nan=False)] = 0.0


class ModelShare(DomainModel):
    """A grant letting another user synthesize with an owner's model."""

    model_id: NonEmptyId
    owner_id: NonEmptyId
    target_user_id: NonEmptyId
    permission: Literal["use"] = "use"
    created_at: UtcDatetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _not_shared_with_owner(self) -> Self:
        if self.owner_id == self.target_user_id:
            raise ValueError("a model cannot be shared with its owner")
        return self


class UserScope(RequestModel):
    """``?userId=`` or ``{"userId": ...}``: whose models; absent means the caller's own."""

    user_id: NonEmptyId | None = None


class ActiveVoiceModel(DomainModel):
    """Answer of ``GET /voice-models/user/{userId}/active``; ``model`` is null when none is."""

    user_id: NonEmptyId
    model: VoiceModelPublic | None = None


class VoiceModelUsageEvent(RequestModel):
    """One synthesis with a model: its cost, latency in ms, an optional 0..5 rating, the
    characters the provider billed and those asked for (None: as many as billed)."""

    cost: NonNegativeAmount = 0.0
    characters: NonNegativeCount = 0
    requested_characters: NonNegativeCount | None = None
    latency_ms: NonNegativeAmount = 0.0
    quality_rating: Annotated[float, Field(ge=0.0, le=5.0, allow_inf_nan=False)] | None = None


class AccessLogEntry(DomainModel):
    """Who read or changed which models, when: the platform's audit trail."""

    id: NonEmptyId = Field(default_factory=new_id)
    actor_id: NonEmptyId
    owner_id: str | None = None
    action: str
    model_ids: list[str] = Field(default_factory=list)
    request_id: str | None = None
    at: UtcDatetime = Field(default_factory=utcnow)


def cleanup_eligible_at(model: VoiceModel, last_used_at: datetime | None) -> datetime:
    """Return from when ``model`` meets the age and unused criteria, if nothing changes.

    The quality and activity criteria do not depend on time; check them separately.
    """
    aged = model.created_at + CLEANUP_MIN_AGE
    if last_used_at is None:
        return aged
    return max(aged, last_used_at + CLEANUP_UNUSED_FOR)


class VoiceModelDeleted(DomainModel):
    """Answer of ``DELETE /voice-models/{id}``: the soft delete and who took over."""

    id: NonEmptyId
    deleted_at: UtcDatetime
    was_active: bool
    active_model_id: str | None = None
    moved_files: list[str] = Field(default_factory=list)
