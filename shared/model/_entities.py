"""Stored entities: their base model, ids and times, measures, and state machines.

Entities serialize with camelCase field names (the API convention) and snake_case in
Python. Times are timezone-aware UTC, however they were given. The constrained number
types declare each rule once (an 8 Hz sample rate, a quality of 1.2, a negative duration
or NaN are refused everywhere alike). Each entity's state machine is a table of legal
moves enforced by ``check_transition``, whose transition methods return a new, fully
validated instance (``with_changes``) so a refused transition never leaves an entity
half-changed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.errors import InvalidStateTransitionError

# Ids and times ---------------------------------------------------------------------------------


def utcnow() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def new_id() -> str:
    """Return a new opaque identifier (a UUID4 in hex)."""
    return uuid.uuid4().hex


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A datetime normalised to UTC; naive input is taken as UTC."""

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError(f"not an ISO 8601 date-time such as 2026-01-31T12:00:00Z: {value[:40]!r}")
    return value


QueryDatetime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_as_utc)]
"""A datetime of a query string: ISO 8601 only (pydantic would take "0.5" as a Unix time)."""


def _iso_in_body(value: Any) -> Any:
    # Request bodies are validated strictly, and once a model validator has seen the body
    # (RequestModel's do) strict pydantic takes no string for a datetime: parse it here.
    if not isinstance(value, str):
        return value
    try:
        return _as_utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):  # OverflowError: in UTC, before year 1 or after 9999
        raise ValueError(
            f"not an ISO 8601 date-time such as 2026-01-31T12:00:00Z: {value[:40]!r}"
        ) from None


BodyDatetime = Annotated[datetime, BeforeValidator(_iso_in_body), AfterValidator(_as_utc)]
"""A datetime of a JSON request body: an ISO 8601 string, naive taken as UTC."""


# Entities ------------------------------------------------------------------------------------


class DomainModel(BaseModel):
    """Base of stored entities: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        validate_assignment=True,
        ser_json_timedelta="float",
        defer_build=True,
    )

    def to_document(self) -> dict[str, Any]:
        """Return the fields as stored in the document store (snake_case, native types)."""
        return self.model_dump(mode="python", by_alias=False)

    def to_api(self) -> dict[str, Any]:
        """Return the JSON-ready camelCase representation sent to API clients."""
        return self.model_dump(mode="json", by_alias=True)


# Measures ------------------------------------------------------------------------------------

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
DEFAULT_SAMPLE_RATE = 22_050

SampleRate = Annotated[int, Field(ge=MIN_SAMPLE_RATE, le=MAX_SAMPLE_RATE)]
"""Audio sample rate in Hz, from telephone (8 kHz) to studio (192 kHz)."""

UnitScore = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
"""A score or fraction on the 0..1 scale (quality, progress, similarity)."""

Seconds = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
"""A non-negative, finite duration or offset in seconds."""

PositiveSeconds = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
"""A strictly positive, finite duration in seconds."""

NonNegativeCount = Annotated[int, Field(ge=0)]
"""A count or size that cannot go below zero (bytes, downloads, voices)."""

RequiredId = Annotated[str, Field(min_length=1)]
"""An identifier that must not be empty."""


# State machines ------------------------------------------------------------------------------

StatusT = TypeVar("StatusT", bound=StrEnum)
ModelT = TypeVar("ModelT", bound=BaseModel)

TransitionTable = Mapping[StatusT, frozenset[StatusT]]
"""A status mapped to the statuses it may move to; absent statuses are terminal."""


def is_transition_allowed(
    table: TransitionTable[StatusT], current: StatusT, target: StatusT
) -> bool:
    """Return whether ``table`` allows moving from ``current`` to ``target``."""
    return target in table.get(current, frozenset())


def check_transition(
    entity: str,
    table: TransitionTable[StatusT],
    current: StatusT,
    target: StatusT,
) -> None:
    """Return None if ``table`` allows ``current`` -> ``target``.

    Raises:
        InvalidStateTransitionError: the move is not in the table.
    """
    if not is_transition_allowed(table, current, target):
        raise InvalidStateTransitionError(
            f"{entity} cannot move from {current.value!r} to {target.value!r}"
        )


def with_changes(model: ModelT, **changes: Any) -> ModelT:
    """Return a copy of ``model`` with ``changes`` applied and every rule re-validated.

    Unlike ``model_copy(update=...)``, this runs the model's validators, so a change that
    breaks a rule raises ``pydantic.ValidationError`` instead of producing an invalid entity.
    """
    return type(model).model_validate({**model.model_dump(), **changes})
