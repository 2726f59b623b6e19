"""The provider voice catalog's sync jobs (seed 000).

Every provider's voices (``shared.providers.voices.VoiceProfile``) are synced daily into
one catalog keyed ``provider:voice_id``; voices a provider drops are marked deprecated,
never deleted. A ``VoiceSyncJob`` records one sync run and follows a small state machine
with at most three retries; its transition methods return a new instance and leave the
original untouched.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field

from shared.errors import InvalidStateTransitionError
from shared.model import (
    DomainModel,
    NonNegativeCount,
    TransitionTable,
    UtcDatetime,
    check_transition,
    new_id,
    utcnow,
    with_changes,
)
from shared.providers.voices import ProviderName

MAX_SYNC_RETRIES = 3


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
