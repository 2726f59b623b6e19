"""Users of the platform (seed 002): the account entity and its request and response shapes.

Authentication is by token, so a user holds no password. Email addresses are checked with a
deliberately simple pattern (one ``@``, a dotted domain, sane lengths) and stored lower-cased
so that uniqueness checks compare like with like. Accounts are soft-deleted.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, model_validator

from shared.model import DomainModel, NonNegativeCount, RequestModel, UtcDatetime, new_id, utcnow

_MAX_EMAIL_LENGTH = 254
_MAX_LOCAL_PART_LENGTH = 64
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")


def normalize_email(email: str) -> str:
    """Return ``email`` trimmed and lower-cased.

    Raises:
        ValueError: ``email`` is not a plausible address (``name@example.com``).
    """
    normalised = email.strip().lower()
    local, at, domain = normalised.rpartition("@")
    if (
        not at
        or len(normalised) > _MAX_EMAIL_LENGTH
        or len(local) > _MAX_LOCAL_PART_LENGTH
        or not _LOCAL_PART.match(local)
        or not _DOMAIN.match(domain)
    ):
        raise ValueError(f"not a valid email address: {email!r}")
    return normalised


EmailAddress = Annotated[str, AfterValidator(normalize_email)]
"""An email address, validated and lower-cased on input."""


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None


PersonName = Annotated[str | None, Field(max_length=100), AfterValidator(_blank_to_none)]
"""An optional first or last name; blank means none."""


class User(DomainModel):
    """A platform account as stored; ``deleted_at`` set means soft-deleted."""

    id: Annotated[str, Field(min_length=1)] = Field(default_factory=new_id)
    email: EmailAddress
    first_name: PersonName = None
    last_name: PersonName = None
    storage_used_bytes: NonNegativeCount = 0
    is_active: bool = True
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)
    deleted_at: UtcDatetime | None = None

    @property
    def is_deleted(self) -> bool:
        """Return whether the account has been soft-deleted."""
        return self.deleted_at is not None


class UserPublic(DomainModel):
    """A user as API clients see it."""

    id: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    storage_used_bytes: int = 0
    is_active: bool = True
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def from_entity(cls, user: User) -> Self:
        """Return the public view of ``user``."""
        return cls.model_validate(user.model_dump(exclude={"deleted_at"}))


class UserCreate(RequestModel):
    """Body of user registration."""

    email: EmailAddress
    first_name: PersonName = None
    last_name: PersonName = None


class UserUpdate(RequestModel):
    """Body of a profile update: ``firstName`` and/or ``lastName``; null clears a name."""

    first_name: PersonName = None
    last_name: PersonName = None

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give firstName or lastName")
        return self

    def changes(self) -> dict[str, Any]:
        """Return the fields the client set, by snake_case name."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}
