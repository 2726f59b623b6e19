"""The provider voice catalog (seed 000): voice profiles, sync jobs and dialogue turns.

Every provider's voices are synced daily into one catalog of ``VoiceProfile`` values, keyed
``provider:voice_id``; voices a provider drops are marked deprecated, never deleted. A
``VoiceSyncJob`` records one sync run and follows a small state machine with at most three
retries; its transition methods return a new instance and leave the original untouched.
Multi-role dialogue is a list of ``DialogueTurn`` synthesized natively or segment by segment.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from shared.errors import InvalidStateTransitionError
from shared.model import (
    DomainModel,
    LanguageTag,
    NonNegativeCount,
    RequestModel,
    TransitionTable,
    UtcDatetime,
    check_transition,
    new_id,
    utcnow,
    with_changes,
)

MAX_SYNC_RETRIES = 3


class Gender(StrEnum):
    """The gender a voice presents as."""

    MALE = "male"
    FEMALE = "female"
    NEUTRAL = "neutral"


class AgeGroup(StrEnum):
    """The age a voice sounds."""

    CHILD = "child"
    YOUNG = "young"
    ADULT = "adult"
    SENIOR = "senior"


class SynthesisMode(StrEnum):
    """How a multi-role dialogue is synthesized: by the provider in one call, or per turn."""

    NATIVE = "native"
    SEGMENTED = "segmented"


def voice_profile_id(provider: str, voice_id: str) -> str:
    """Return the catalog id of a provider's voice, ``provider:voice_id``."""
    return f"{provider}:{voice_id}"


def _labels(values: tuple[str, ...], *, lower: bool) -> tuple[str, ...]:
    cleaned: list[str] = []
    for value in values:
        label = value.strip().lower() if lower else value.strip()
        if not label:
            raise ValueError("labels cannot be blank")
        if label not in cleaned:
            cleaned.append(label)
    return tuple(cleaned)


def _vocabulary(values: tuple[str, ...]) -> tuple[str, ...]:
    return _labels(values, lower=True)


def _free_labels(values: tuple[str, ...]) -> tuple[str, ...]:
    return _labels(values, lower=False)


VocabularyLabels = Annotated[tuple[str, ...], AfterValidator(_vocabulary)]
"""Labels filtered on (styles, use cases): trimmed, lower-cased, de-duplicated."""

FreeLabels = Annotated[tuple[str, ...], AfterValidator(_free_labels)]
"""Free-form labels (tags): trimmed and de-duplicated, case kept."""

ProviderName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=50)]


class VoiceProfile(DomainModel):
    """One provider voice in the catalog; immutable, change it by building a new one.

    ``id`` defaults to ``provider:voice_id`` and, when given, must equal it.
    """

    model_config = ConfigDict(frozen=True)

    id: Annotated[str, Field(max_length=255)] = ""
    provider: ProviderName
    voice_id: Annotated[str, Field(min_length=1, max_length=128)]
    display_name: Annotated[str, Field(min_length=1, max_length=255)]
    language: LanguageTag
    gender: Gender | None = None
    age_group: AgeGroup | None = None
    styles: VocabularyLabels = ()
    use_cases: VocabularyLabels = ()
    description: str = ""
    sample_audio_url: str | None = None
    is_deprecated: bool = False
    tags: FreeLabels = ()
    metadata: dict[str, Any] = Field(default_factory=dict)
    synced_at: UtcDatetime | None = None
    supports_multi_speaker: bool = False

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("id"):
            provider = data.get("provider")
            voice_id = data.get("voice_id", data.get("voiceId"))
            if isinstance(provider, str) and isinstance(voice_id, str):
                return {**data, "id": voice_profile_id(provider, voice_id)}
        return data

    @model_validator(mode="after")
    def _id_matches_provider_and_voice(self) -> Self:
        expected = voice_profile_id(self.provider, self.voice_id)
        if self.id != expected:
            raise ValueError(f"id must be 'provider:voice_id' ({expected!r}), got {self.id!r}")
        return self

    def deprecated(self) -> Self:
        """Return this voice marked deprecated (the provider no longer offers it)."""
        return with_changes(self, is_deprecated=True)


class VoiceSyncStatus(StrEnum):
    """Where a catalog sync run is."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


VOICE_SYNC_TRANSITIONS: TransitionTable[VoiceSyncStatus] = {
    VoiceSyncStatus.PENDING: frozenset({VoiceSyncStatus.RUNNING}),
    VoiceSyncStatus.RUNNING: frozenset({VoiceSyncStatus.COMPLETED, VoiceSyncStatus.FAILED}),
    VoiceSyncStatus.FAILED: frozenset({VoiceSyncStatus.PENDING}),
}
"""Legal sync job moves; FAILED -> PENDING also needs ``retry_count < MAX_SYNC_RETRIES``."""


class VoiceSyncJob(DomainModel):
    """One run syncing the catalog with a provider (``provider`` None means every provider).

    Transition methods return a new job and raise ``InvalidStateTransitionError`` on an
    illegal move.
    """

    id: Annotated[str, Field(min_length=1)] = Field(default_factory=new_id)
    provider: ProviderName | None = None
    status: VoiceSyncStatus = VoiceSyncStatus.PENDING
    voices_added: NonNegativeCount = 0
    voices_updated: NonNegativeCount = 0
    voices_deprecated: NonNegativeCount = 0
    error_message: str | None = None
    retry_count: Annotated[int, Field(ge=0, le=MAX_SYNC_RETRIES)] = 0
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)

    @property
    def can_retry(self) -> bool:
        """Return whether the job has failed and still has a retry left."""
        return self.status is VoiceSyncStatus.FAILED and self.retry_count < MAX_SYNC_RETRIES

    def _move(self, target: VoiceSyncStatus) -> None:
        check_transition("voice sync job", VOICE_SYNC_TRANSITIONS, self.status, target)

    def start(self, now: datetime) -> Self:
        """Return the job RUNNING since ``now``, with any earlier error cleared.

        Raises:
            InvalidStateTransitionError: the job is not PENDING.
        """
        self._move(VoiceSyncStatus.RUNNING)
        return with_changes(
            self,
            status=VoiceSyncStatus.RUNNING,
            started_at=now,
            completed_at=None,
            error_message=None,
        )

    def complete(self, *, added: int, updated: int, deprecated: int, now: datetime) -> Self:
        """Return the job COMPLETED at ``now`` with its voice counts.

        Raises:
            InvalidStateTransitionError: the job is not RUNNING.
            pydantic.ValidationError: a count is negative.
        """
        self._move(VoiceSyncStatus.COMPLETED)
        return with_changes(
            self,
            status=VoiceSyncStatus.COMPLETED,
            voices_added=added,
            voices_updated=updated,
            voices_deprecated=deprecated,
            completed_at=now,
        )

    def fail(self, message: str, now: datetime) -> Self:
        """Return the job FAILED at ``now`` with ``message``.

        Raises:
            InvalidStateTransitionError: the job is not RUNNING.
        """
        self._move(VoiceSyncStatus.FAILED)
        return with_changes(
            self, status=VoiceSyncStatus.FAILED, error_message=message, completed_at=now
        )

    def retry(self) -> Self:
        """Return the job PENDING again with ``retry_count`` one higher.

        Raises:
            InvalidStateTransitionError: the job is not FAILED, or has used all three retries.
        """
        self._move(VoiceSyncStatus.PENDING)
        if self.retry_count >= MAX_SYNC_RETRIES:
            raise InvalidStateTransitionError(
                f"voice sync job has used all {MAX_SYNC_RETRIES} retries"
            )
        return with_changes(
            self,
            status=VoiceSyncStatus.PENDING,
            retry_count=self.retry_count + 1,
            started_at=None,
            completed_at=None,
        )


class DialogueTurn(RequestModel):
    """One line of a multi-role dialogue: who speaks it, in which voice, and what they say."""

    model_config = ConfigDict(frozen=True)

    speaker: Annotated[str, Field(min_length=1, max_length=100)]
    voice: Annotated[str, Field(min_length=1, max_length=255)]
    text: Annotated[str, Field(min_length=1)]
