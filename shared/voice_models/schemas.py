"""The request and response shapes of the voice-model API beyond the entity's own.

Pages, comparisons, selection, export, backups, shares, cleanup and the access log: only
the ``voice-models`` function and the use cases behind those routes need them, so other
functions (activation, synthesis, samples) load the entity in ``model`` without them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from shared.model import DomainModel, NonNegativeCount, RequestModel, UnitScore, UtcDatetime
from shared.voice_models.model import (
    MAX_LIST_OFFSET,
    AccessLogEntry,
    ModelShare,
    NonEmptyId,
    NonNegativeAmount,
    TTSProvider,
    VoiceModelPublic,
    VoiceModelStatus,
    VoiceModelUsageStats,
)

MAX_PAGE_SIZE = 100
MAX_COMPARED_MODELS = 20


class VoiceModelAnalytics(DomainModel):
    """A user's voice models summarised for the analytics endpoint."""

    total_models: NonNegativeCount = 0
    active_models: NonNegativeCount = 0
    models_by_provider: dict[TTSProvider, NonNegativeCount] = Field(default_factory=dict)
    average_quality_score: UnitScore = 0.0
    total_usage_count: NonNegativeCount = 0
    total_cost: NonNegativeAmount = 0.0
    storage_used_mb: NonNegativeAmount = 0.0
    last_used: UtcDatetime | None = None

    @model_validator(mode="after")
    def _counts_agree(self) -> Self:
        if self.active_models > self.total_models:
            raise ValueError("activeModels cannot exceed totalModels")
        if sum(self.models_by_provider.values()) > self.total_models:
            raise ValueError("modelsByProvider counts exceed totalModels")
        return self


class ModelShareCreate(RequestModel):
    """Body of ``POST /voice-models/{id}/share``."""

    owner_id: NonEmptyId | None = None
    target_user_ids: Annotated[list[NonEmptyId], Field(min_length=1, max_length=100)]
    permissions: Literal["use"] = "use"


class VoiceModelListQuery(RequestModel):
    """Query of ``GET /voice-models/user/{userId}``: filters, and offset or cursor paging.

    ``cursor`` (the previous page's ``nextCursor``) may replace ``offset``.
    """

    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20
    offset: Annotated[int, Field(ge=0, le=MAX_LIST_OFFSET)] = 0
    cursor: Annotated[str, Field(max_length=64)] | None = None
    provider: TTSProvider | None = None
    is_active: bool | None = None
    min_quality_score: UnitScore | None = None
    status: VoiceModelStatus | None = None

    def filters(self) -> dict[str, Any]:
        """Return the filters given (not the paging), JSON-ready, by camelCase name."""
        return self.model_dump(
            mode="json", by_alias=True, exclude={"limit", "offset", "cursor"}, exclude_none=True
        )


class VoiceModelPage(DomainModel):
    """One page of a user's models; ``total`` counts every match, ``nextCursor`` the rest."""

    models: list[VoiceModelPublic]
    total: NonNegativeCount
    limit: NonNegativeCount
    offset: NonNegativeCount
    next_cursor: str | None = None


class VoiceModelCompareRequest(RequestModel):
    """Body of ``POST /voice-models/compare``."""

    model_ids: Annotated[list[NonEmptyId], Field(min_length=1, max_length=MAX_COMPARED_MODELS)]
    user_id: NonEmptyId | None = None


class ComparedVoiceModel(DomainModel):
    """One model of a comparison, beside its usage."""

    model: VoiceModelPublic
    usage_stats: VoiceModelUsageStats


class VoiceModelComparison(DomainModel):
    """Models side by side; ids the caller may not read are listed under ``notFound``."""

    models: list[ComparedVoiceModel]
    not_found: list[str] = Field(default_factory=list)


class SelectionCriteria(RequestModel):
    """What ``select-best`` requires: a minimum score, a preferred provider, a latency cap (ms).

    A model never used has no measured latency and is not excluded by ``maxLatency``.
    """

    min_quality_score: UnitScore | None = None
    preferred_provider: TTSProvider | None = None
    max_latency: NonNegativeAmount | None = None


class SelectBestRequest(RequestModel):
    """Body of ``POST /voice-models/select-best``."""

    user_id: NonEmptyId | None = None
    criteria: SelectionCriteria = Field(default_factory=SelectionCriteria)


class BestVoiceModel(DomainModel):
    """The chosen model, its usage, and whether it has the preferred provider."""

    model: VoiceModelPublic
    usage_stats: VoiceModelUsageStats
    matched_preferred_provider: bool
    qualifying_models: NonNegativeCount


class ExportedFile(DomainModel):
    """One object of a model's files, with a signed URL to download it."""

    name: str
    size_bytes: NonNegativeCount
    signed_url: str


class VoiceModelExport(DomainModel):
    """Answer of ``GET /voice-models/{id}/export``."""

    model: VoiceModelPublic
    metadata: dict[str, Any]
    usage_stats: VoiceModelUsageStats
    analytics: VoiceModelAnalytics
    signed_url: str | None = None
    files: list[ExportedFile] = Field(default_factory=list)
    expires_at: UtcDatetime


class BackupResult(DomainModel):
    """Answer of ``POST /voice-models/user/{userId}/backup``."""

    backup_path: str
    model_count: NonNegativeCount
    created_at: UtcDatetime


class RestoreRequest(RequestModel):
    """Body of ``POST /voice-models/user/{userId}/restore``."""

    backup_path: Annotated[str, Field(min_length=1, max_length=1100)]
    overwrite_existing: bool = False
    activate_restored: bool = False


class RestoreResult(DomainModel):
    """What a restore brought back, what it left alone, and which model is active after."""

    restored: list[str]
    skipped: list[str]
    active_model_id: str | None = None


class ShareResult(DomainModel):
    """Answer of ``POST /voice-models/{id}/share``: every grant now on the model."""

    model_id: NonEmptyId
    shares: list[ModelShare]


class SharedVoiceModel(DomainModel):
    """A model another user shared with the caller."""

    model: VoiceModelPublic
    owner_id: NonEmptyId
    permission: Literal["use"] = "use"
    shared_at: UtcDatetime


class SharedVoiceModels(DomainModel):
    """Answer of ``GET /voice-models/user/{userId}/shared``."""

    models: list[SharedVoiceModel]


class CleanupRequest(RequestModel):
    """Body of ``POST /voice-models/cleanup``; ``dryRun`` lists without removing."""

    dry_run: bool = False


class CleanupCandidate(DomainModel):
    """A model that meets (or will meet) every cleanup criterion, and from when."""

    model_id: NonEmptyId
    user_id: NonEmptyId
    quality_score: UnitScore
    created_at: UtcDatetime
    last_used: UtcDatetime | None = None
    eligible_at: UtcDatetime


class CleanupReport(DomainModel):
    """What a cleanup removed, or with ``dryRun`` what it would remove."""

    dry_run: bool
    removed: list[CleanupCandidate] = Field(default_factory=list)
    would_remove: list[CleanupCandidate] = Field(default_factory=list)


class ExpiringVoiceModels(DomainModel):
    """Answer of ``GET /voice-models/expiring``: models eligible for cleanup within 30 days."""

    models: list[CleanupCandidate]


class AccessLogPage(DomainModel):
    """Answer of ``GET /voice-models/{id}/access-log``, newest first."""

    entries: list[AccessLogEntry]
    next_cursor: str | None = None
