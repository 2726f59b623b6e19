"""Base classes and helpers for every domain model.

Models serialize with camelCase field names (the API convention, as seed 001) and accept
either camelCase or snake_case on input. Request models forbid unknown fields, so a typo in
a client's body or query is a 400 rather than silently ignored.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


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


class DomainModel(BaseModel):
    """Base of stored entities: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        validate_assignment=True,
        ser_json_timedelta="float",
    )

    def to_document(self) -> dict[str, Any]:
        """Return the fields as stored in the document store (snake_case, native types)."""
        return self.model_dump(mode="python", by_alias=False)

    def to_api(self) -> dict[str, Any]:
        """Return the JSON-ready camelCase representation sent to API clients."""
        return self.model_dump(mode="json", by_alias=True)


class RequestModel(BaseModel):
    """Base of request bodies and query strings: camelCase in, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=True,
    )
