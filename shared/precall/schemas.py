"""The pre-call API's request and response bodies, one model per use.

Requests are strict (unknown fields refused, camelCase or snake_case in); ``accountId`` in a
body or query names the tenant (only an admin may name another than their own).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from shared.model import (
    BodyDatetime,
    DomainModel,
    FreeForm,
    NonNegativeCount,
    QueryDatetime,
    RequestModel,
    UtcDatetime,
)
from shared.precall.model import (
    AccountId,
    CallerVoiceMapping,
    CallLog,
    CallStatus,
    CloneState,
    E164Number,
    RequiredId,
    SampleUrl,
)
from shared.precall.voices import CLONE_VOICE_PREFIX

MAX_PAGE_SIZE = 100
MAX_TRANSCRIPT_CHARS = 200_000
# No call through this service started before it: an earlier start is a client's bad clock.
EARLIEST_CALL_START = datetime(2000, 1, 1, tzinfo=UTC)

VoiceName = Annotated[str, Field(min_length=1, max_length=255)]
Description = Annotated[str, Field(max_length=2000)]


class AccountScope(RequestModel):
    """``?accountId=`` or ``{"accountId": ...}``: whose data; absent means the caller's own."""

    account_id: AccountId | None = None


class SampleStored(DomainModel):
    """Answer of ``PUT /precall/samples/{name}``: where the sample is, and what it is."""

    voice_sample_url: str
    format: str
    duration_seconds: float
    size_bytes: NonNegativeCount
    quality_score: float


class MappingCreate(RequestModel):
    """Body of ``POST /precall/mappings``: a caller number and the sample to clone."""

    caller_id: E164Number
    voice_sample_url: SampleUrl | None = None
    sample_id: RequiredId | None = None
    voice_name: VoiceName
    description: Description | None = None
    account_id: AccountId | None = None

    @model_validator(mode="after")
    def _one_sample_source(self) -> Self:
        if (self.voice_sample_url is None) == (self.sample_id is None):
            raise ValueError("give exactly one of voiceSampleUrl and sampleId")
        return self


class MappingUpdate(RequestModel):
    """Body of ``PUT /precall/mappings/{id}``: the fields to change."""

    caller_id: E164Number | None = None
    voice_sample_url: SampleUrl | None = None
    sample_id: RequiredId | None = None
    voice_name: VoiceName | None = None
    description: Description | None = None
    account_id: AccountId | None = None

    @model_validator(mode="after")
    def _at_most_one_sample_source(self) -> Self:
        if self.voice_sample_url is not None and self.sample_id is not None:
            raise ValueError("give at most one of voiceSampleUrl and sampleId")
        given = self.model_fields_set
        if {"voice_sample_url", "sample_id"} & given and self.sample_source is None:
            raise ValueError("a new sample needs voiceSampleUrl or sampleId, not null")
        for name, alias in (("caller_id", "callerId"), ("voice_name", "voiceName")):
            if name in given and getattr(self, name) is None:
                raise ValueError(f"{alias} cannot be null")
        return self

    @property
    def sample_source(self) -> str | None:
        """Return the new sample's URL or id, or None when none is given."""
        return self.voice_sample_url or self.sample_id

    def changes(self) -> dict[str, Any]:
        """Return the fields given (snake_case), without the account scope."""
        return self.model_dump(exclude_unset=True, exclude={"account_id"})


class MappingListQuery(RequestModel):
    """Query of ``GET /precall/mappings``: the account, a page size and the next cursor."""

    account_id: AccountId | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20
    cursor: Annotated[str, Field(max_length=2000)] | None = None


class MappingPage(DomainModel):
    """One page of an account's live mappings, newest first."""

    mappings: list[CallerVoiceMapping]
    next_cursor: str | None = None


class MappingDeleted(DomainModel):
    """Answer of ``DELETE /precall/mappings/{id}``."""

    id: str
    deleted_at: UtcDatetime


class CallWebhook(RequestModel):
    """Body of ``POST /precall/calls``: the telephony system's new-call notification."""

    caller_id: E164Number
    greeting_call_id: RequiredId
    threecx_call_id: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    call_started_at: BodyDatetime | None = None
    metadata: FreeForm = Field(default_factory=dict)
    account_id: AccountId | None = None

    @model_validator(mode="after")
    def _plausible_start(self) -> Self:
        if self.call_started_at is not None and self.call_started_at < EARLIEST_CALL_START:
            raise ValueError(f"callStartedAt must not be before {EARLIEST_CALL_START.date()}")
        return self


class CallPublic(DomainModel):
    """A call as the API shows it: its call log entry, its clone's state and voice."""

    id: str
    call_id: str
    greeting_call_id: str
    threecx_call_id: str | None
    caller_id: str
    account_id: str | None
    status: CallStatus
    clone_state: CloneState
    cloned_voice_id: str | None
    # What synthesis and sessions accept as ``voice`` once the clone is ready.
    voice: str | None
    clone_error: str | None
    clone_ready_at: datetime | None
    agent_call_id: str | None
    transferred_at: datetime | None
    call_started_at: datetime
    call_ended_at: datetime | None
    duration_seconds: int | None
    transcript: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_entity(cls, call: CallLog) -> CallPublic:
        """Return the public view of ``call``."""
        voice = (
            f"{CLONE_VOICE_PREFIX}{call.cloned_voice_id}"
            if call.clone_state is CloneState.READY and call.cloned_voice_id
            else None
        )
        return cls.model_validate(
            {**call.model_dump(), "greeting_call_id": call.call_id, "voice": voice}
        )


class CallAccepted(DomainModel):
    """Answer of ``POST /precall/calls`` (202): the call, and whether it was a repeat."""

    call: CallPublic
    duplicate: bool


class TransferRequest(RequestModel):
    """Body of ``POST /precall/calls/{id}/transfer``."""

    agent_call_id: RequiredId
    account_id: AccountId | None = None


FINAL_STATUSES = [CallStatus.COMPLETED.value, CallStatus.FAILED.value]


class EndRequest(RequestModel):
    """Body of ``POST /precall/calls/{id}/end``: ``completed`` or ``failed``, and the transcript."""

    # Documented as the two final statuses it takes (a client generated from the document
    # offers no other); refused by name otherwise.
    status: Annotated[CallStatus, WithJsonSchema({"type": "string", "enum": FINAL_STATUSES})]
    transcript: Annotated[str, Field(max_length=MAX_TRANSCRIPT_CHARS)] | None = None
    account_id: AccountId | None = None

    @field_validator("status")
    @classmethod
    def _final_status(cls, status: CallStatus) -> CallStatus:
        if status.value not in FINAL_STATUSES:
            raise ValueError(f"must be one of {', '.join(FINAL_STATUSES)}")
        return status


class AnalyticsQuery(RequestModel):
    """Query of ``GET /precall/analytics``: an account and a half-open time range."""

    account_id: AccountId | None = None
    from_: QueryDatetime | None = Field(default=None, alias="from")
    to: QueryDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.from_ is not None and self.to is not None and self.from_ >= self.to:
            raise ValueError("from must be before to")
        return self


class Timing(DomainModel):
    """Mean and 95th percentile of durations in milliseconds (null without data)."""

    count: NonNegativeCount
    mean_ms: float | None
    p95_ms: float | None


class PrecallAnalytics(DomainModel):
    """Answer of ``GET /precall/analytics``."""

    account_id: str
    from_: Annotated[datetime, Field(alias="from")]
    to: datetime
    clone_attempts: NonNegativeCount
    clone_successes: NonNegativeCount
    clone_success_rate: float | None
    clone_time: Timing
    ready_events: NonNegativeCount
    cache_hits: NonNegativeCount
    cache_reuse_ratio: float | None
    calls_by_status: dict[str, int]
    call_start_to_ready: Timing
