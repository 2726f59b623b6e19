"""Pre-call voice cloning (seed 003): who calls with which voice, and what happened.

A caller's E.164 number maps to a voice sample; the clone made from it is cached with a TTL
and a reuse count so repeat callers skip cloning. Calls, clone attempts and the greeting
workflow's ready, failed and transfer events are kept as logs. Phone numbers are normalised
(spaces, dashes, dots and brackets removed) and must then be ``+`` and 8..15 digits.

Beyond the seed's columns every record carries ``account_id`` (the tenant that owns it:
reads, analytics and account deletion select by it); a cache entry also says which TTS
provider speaks the clone and with which provider voice (an ElevenLabs clone is its own
voice id; the embedded cloner's is an eSpeak voice); a call also keeps its clone's state
(pending, ready, failed) so the agent side can poll it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from shared.model import (
    DomainModel,
    NonNegativeCount,
    StoredFreeForm,
    TransitionTable,
    UtcDatetime,
    check_transition,
    new_id,
    utcnow,
    with_changes,
)

DEFAULT_CLONE_CACHE_TTL = timedelta(hours=24)

_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
# What a written number may hold between its digits: spaces (the breaking and non-breaking
# ones JavaScript's \s and Python's agree on), tabs, line breaks, brackets, dots, hyphens.
# Spelt out, not \s, so that the documented pattern means the same to every reader.
_SEPARATOR = r"[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000().-]"
_PHONE_SEPARATORS = re.compile(_SEPARATOR)
E164_PATTERN = rf"^{_SEPARATOR}*\+{_SEPARATOR}*[1-9](?:{_SEPARATOR}*[0-9]){{7,14}}{_SEPARATOR}*$"
"""The numbers ``normalize_e164`` accepts, as a JSON Schema (ECMA-262) pattern."""


def normalize_e164(number: str) -> str:
    """Return ``number`` in E.164 form, e.g. ``+1 (415) 555-0100`` -> ``+14155550100``.

    Raises:
        ValueError: what remains is not ``+`` followed by 8..15 digits, the first non-zero.
    """
    compact = _PHONE_SEPARATORS.sub("", number)
    if not _E164.fullmatch(compact):
        raise ValueError(f"not an E.164 phone number: {number!r}")
    return compact


E164Number = Annotated[
    str,
    AfterValidator(normalize_e164),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": E164_PATTERN,
            "description": "A phone number in E.164 form, + and 8 to 15 digits, the first not "
            "0; spaces, brackets, dots and hyphens between them are dropped "
            "(+1 (415) 555-0100 is +14155550100)",
            "examples": ["+14155550100"],
        }
    ),
]
"""A phone number in E.164 form (``+14155550100``)."""


class PrecallRecord(DomainModel):
    """Base of the pre-call entities: stored with enums as their plain string values."""

    def to_document(self) -> dict[str, Any]:
        """Return the stored fields (snake_case), enums as plain strings."""
        return {
            name: value.value if isinstance(value, StrEnum) else value
            for name, value in super().to_document().items()
        }


RequiredId = Annotated[str, Field(min_length=1, max_length=255)]
AccountId = Annotated[str, Field(min_length=1, max_length=255)]
SampleUrl = Annotated[str, Field(min_length=1, max_length=2048)]


class CallerVoiceMapping(PrecallRecord):
    """Which voice sample to clone when a caller rings; one live mapping per number."""

    id: RequiredId = Field(default_factory=new_id)
    caller_id: E164Number
    # Where the voice comes from: a sample URL (our storage or S3), or a sample of the
    # samples capability; exactly one. A sample belongs to a user: its owner, checked when
    # the mapping was set (the user who set it, or the account's own user), is the only
    # one whose sample the clone reads.
    voice_sample_url: SampleUrl | None = None
    sample_id: RequiredId | None = None
    sample_owner_id: RequiredId | None = None
    voice_name: Annotated[str, Field(min_length=1, max_length=255)]
    description: Annotated[str, Field(max_length=2000)] | None = None
    account_id: Annotated[str, Field(max_length=255)] | None = None
    created_by: str | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)
    deleted_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _one_sample_source(self) -> Self:
        if (self.voice_sample_url is None) == (self.sample_id is None):
            raise ValueError("give exactly one of voiceSampleUrl and sampleId")
        return self

    @property
    def sample_owner(self) -> str:
        """Return whose sample ``sample_id`` must be (mappings from before: the account's)."""
        return self.sample_owner_id or str(self.account_id)

    @property
    def sample_source(self) -> str:
        """Return where the sample is: its URL, or ``sample:{sampleId}``."""
        return self.voice_sample_url or f"sample:{self.sample_id}"

    @property
    def is_deleted(self) -> bool:
        """Return whether the mapping was soft-deleted."""
        return self.deleted_at is not None

    def clones_like(self, other: CallerVoiceMapping) -> bool:
        """Return whether a clone made for ``other`` is one of this mapping's clones.

        It is when both are the same mapping with the same number and sample: a change of
        either is what expires the clones cached for the number.
        """
        return (self.id, self.caller_id, self.sample_source) == (
            other.id,
            other.caller_id,
            other.sample_source,
        )


class VoiceCloneCache(PrecallRecord):
    """A cloned voice kept for reuse until ``ttl_expires_at``."""

    id: RequiredId = Field(default_factory=new_id)
    caller_id: E164Number
    cloned_voice_id: RequiredId
    clone_created_at: UtcDatetime
    ttl_expires_at: UtcDatetime
    reuse_count: Annotated[int, Field(ge=1)] = 1
    last_used_at: UtcDatetime | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)
    deleted_at: UtcDatetime | None = None
    account_id: AccountId | None = None
    mapping_id: str | None = None
    # Who speaks the clone: the TTS provider and its voice id (None: ``cloned_voice_id``),
    # and the language and prosody multipliers the cloner chose.
    provider: str = "elevenlabs"
    provider_voice_id: str | None = None
    language: str | None = None
    pitch: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    speed: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0

    @property
    def speaking_voice_id(self) -> str:
        """Return the provider voice that speaks this clone."""
        return self.provider_voice_id or self.cloned_voice_id

    @model_validator(mode="after")
    def _expires_after_creation(self) -> Self:
        if self.ttl_expires_at <= self.clone_created_at:
            raise ValueError("ttlExpiresAt must be after cloneCreatedAt")
        return self

    @classmethod
    def for_new_clone(
        cls,
        *,
        caller_id: str,
        cloned_voice_id: str,
        now: datetime,
        ttl: timedelta = DEFAULT_CLONE_CACHE_TTL,
        **fields: Any,
    ) -> Self:
        """Return a cache entry for a clone made at ``now``, expiring ``ttl`` later."""
        return cls(
            caller_id=caller_id,
            cloned_voice_id=cloned_voice_id,
            clone_created_at=now,
            ttl_expires_at=now + ttl,
            last_used_at=now,
            created_at=now,
            **fields,
        )

    def expired_now(self, now: datetime) -> Self:
        """Return the entry expiring at ``now`` (its mapping changed), never before creation."""
        moment = max(now, self.clone_created_at + timedelta(milliseconds=1))
        return with_changes(self, ttl_expires_at=min(moment, self.ttl_expires_at))

    def is_expired(self, now: datetime) -> bool:
        """Return whether the entry is unusable at ``now``: past its TTL, or deleted."""
        return self.deleted_at is not None or now >= self.ttl_expires_at

    def reused(self, now: datetime) -> Self:
        """Return the entry with one more reuse, last used at ``now``."""
        return with_changes(self, reuse_count=self.reuse_count + 1, last_used_at=now)


class CallStatus(StrEnum):
    """Where a call is."""

    INITIATED = "initiated"
    COMPLETED = "completed"
    FAILED = "failed"


CALL_TRANSITIONS: TransitionTable[CallStatus] = {
    CallStatus.INITIATED: frozenset({CallStatus.COMPLETED, CallStatus.FAILED}),
}
"""Legal call moves; COMPLETED and FAILED are final."""


class CloneState(StrEnum):
    """Where a call's clone is: being made (or fetched from the cache), usable, or failed."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


CLONE_TRANSITIONS: TransitionTable[CloneState] = {
    CloneState.PENDING: frozenset({CloneState.READY, CloneState.FAILED}),
}
"""A call's clone is settled once: READY and FAILED are final."""


class CallLog(PrecallRecord):
    """One call made through the voice agent."""

    id: RequiredId = Field(default_factory=new_id)
    call_id: RequiredId
    threecx_call_id: str | None = None
    caller_id: E164Number
    cloned_voice_id: str | None = None
    call_started_at: UtcDatetime
    call_ended_at: UtcDatetime | None = None
    duration_seconds: NonNegativeCount | None = None
    transcript: str | None = None
    status: CallStatus = CallStatus.INITIATED
    metadata: StoredFreeForm = Field(default_factory=dict)
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)
    account_id: AccountId | None = None
    mapping_id: str | None = None
    clone_state: CloneState = CloneState.PENDING
    clone_error: str | None = None
    clone_ready_at: UtcDatetime | None = None
    agent_call_id: str | None = None
    transferred_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.call_ended_at is not None and self.call_ended_at < self.call_started_at:
            raise ValueError("callEndedAt must not be before callStartedAt")
        return self

    def _ended(self, status: CallStatus, ended_at: datetime, transcript: str | None) -> Self:
        check_transition("call", CALL_TRANSITIONS, self.status, status)
        seconds = int((ended_at - self.call_started_at).total_seconds())
        return with_changes(
            self,
            status=status,
            call_ended_at=ended_at,
            duration_seconds=max(0, seconds),
            transcript=transcript if transcript is not None else self.transcript,
            updated_at=ended_at,
        )

    def clone_ready(self, *, cloned_voice_id: str, at: datetime) -> Self:
        """Return the call with its clone READY, speaking ``cloned_voice_id``.

        Raises:
            InvalidStateTransitionError: the clone is already settled.
        """
        check_transition("clone", CLONE_TRANSITIONS, self.clone_state, CloneState.READY)
        return with_changes(
            self,
            clone_state=CloneState.READY,
            cloned_voice_id=cloned_voice_id,
            clone_ready_at=at,
            updated_at=at,
        )

    def clone_failed(self, *, reason: str, at: datetime) -> Self:
        """Return the call with its clone FAILED for ``reason``.

        Raises:
            InvalidStateTransitionError: the clone is already settled.
        """
        check_transition("clone", CLONE_TRANSITIONS, self.clone_state, CloneState.FAILED)
        return with_changes(self, clone_state=CloneState.FAILED, clone_error=reason, updated_at=at)

    def transferred(self, *, agent_call_id: str, at: datetime) -> Self:
        """Return the call handed to the agent call ``agent_call_id`` at ``at``."""
        return with_changes(self, agent_call_id=agent_call_id, transferred_at=at, updated_at=at)

    def complete(self, *, ended_at: datetime, transcript: str | None = None) -> Self:
        """Return the call COMPLETED at ``ended_at``, with its duration in whole seconds.

        Raises:
            InvalidStateTransitionError: the call is not INITIATED.
            pydantic.ValidationError: ``ended_at`` is before the call started.
        """
        return self._ended(CallStatus.COMPLETED, ended_at, transcript)

    def fail(self, *, ended_at: datetime, transcript: str | None = None) -> Self:
        """Return the call FAILED at ``ended_at``.

        Raises:
            InvalidStateTransitionError: the call is not INITIATED.
            pydantic.ValidationError: ``ended_at`` is before the call started.
        """
        return self._ended(CallStatus.FAILED, ended_at, transcript)


class CloneStatus(StrEnum):
    """Outcome of one clone attempt."""

    SUCCESS = "success"
    FAILED = "failed"


class VoiceCloneLog(PrecallRecord):
    """Audit record of one clone attempt; a success names the voice it made."""

    id: RequiredId = Field(default_factory=new_id)
    caller_id: E164Number
    cloned_voice_id: str | None = None
    clone_created_at: UtcDatetime | None = None
    api_response_time_ms: NonNegativeCount
    sample_file_size_bytes: NonNegativeCount
    status: CloneStatus
    error_message: str | None = None
    created_at: UtcDatetime = Field(default_factory=utcnow)
    account_id: AccountId | None = None
    greeting_call_id: str | None = None
    provider: str | None = None

    @model_validator(mode="after")
    def _success_names_a_voice(self) -> Self:
        if self.status is CloneStatus.SUCCESS and not self.cloned_voice_id:
            raise ValueError("a successful clone needs clonedVoiceId")
        return self


class CloneReadyEvent(PrecallRecord):
    """A clone finished while the caller was hearing the greeting."""

    id: RequiredId = Field(default_factory=new_id)
    caller_id: E164Number
    greeting_call_id: RequiredId
    cloned_voice_id: RequiredId
    clone_duration_ms: NonNegativeCount
    ready_at: UtcDatetime
    created_at: UtcDatetime = Field(default_factory=utcnow)
    account_id: AccountId | None = None
    # True when the clone came from the cache rather than a new clone.
    cache_hit: bool = False


class CloneFailedEvent(PrecallRecord):
    """A clone failed during the greeting."""

    id: RequiredId = Field(default_factory=new_id)
    caller_id: E164Number
    greeting_call_id: RequiredId
    error_message: Annotated[str, Field(min_length=1)]
    failed_at: UtcDatetime
    created_at: UtcDatetime = Field(default_factory=utcnow)
    account_id: AccountId | None = None


class CloneTransferEvent(PrecallRecord):
    """The greeting call handed the caller to the agent speaking in the cloned voice."""

    id: RequiredId = Field(default_factory=new_id)
    greeting_call_id: RequiredId
    agent_call_id: RequiredId
    cloned_voice_id: RequiredId
    transferred_at: UtcDatetime
    created_at: UtcDatetime = Field(default_factory=utcnow)
    account_id: AccountId | None = None
