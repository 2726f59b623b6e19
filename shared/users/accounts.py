"""User accounts: registration for the token's user, profile changes, account deletion.

Deleting an account removes the user, frees its email, and purges everything the user
owns: each capability declares an ``AccountPurge`` for its own data (voice models, samples,
audio files, and so on) and the composition root hands them all to ``delete_account``.
Every deletion is recorded in ``account_deletions`` (ids and counts only, no personal
data) so an operator can show what was erased and when.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.capability import AccountPurge, delete_owned
from shared.model import new_id, utcnow
from shared.store.base import DocumentStore
from shared.store.rate_limits import RATE_LIMITS
from shared.users.model import User, UserCreate, UserUpdate
from shared.users.repository import HeldBytes, UserRepository

logger = logging.getLogger(__name__)

ACCOUNT_DELETIONS = "account_deletions"


@dataclass(frozen=True)
class AccountDeletion:
    """What an account deletion removed."""

    id: str
    user_id: str
    purged: dict[str, int]


def register_user(
    *,
    store: DocumentStore,
    user_id: str,
    request: UserCreate,
    held: Sequence[HeldBytes] = (),
) -> User:
    """Register the profile of ``user_id``; return it.

    Its storage used starts from what ``held`` reads: what the token stored before.

    Raises UserAlreadyExistsError or EmailAlreadyRegisteredError.
    """
    user = User(
        id=user_id,
        email=request.email,
        first_name=request.first_name,
        last_name=request.last_name,
    )
    return UserRepository(store).add(user, held=held)


def get_user(*, store: DocumentStore, user_id: str) -> User:
    """Return the user; raise UserNotFoundError."""
    return UserRepository(store).require(user_id)


def update_user(*, store: DocumentStore, user_id: str, request: UserUpdate) -> User:
    """Apply the profile changes and return the user; raise UserNotFoundError."""
    changes = {**request.changes(), "updated_at": utcnow()}
    return UserRepository(store).update(user_id, changes)


def delete_account(
    *, store: DocumentStore, user_id: str, purges: Mapping[str, AccountPurge]
) -> AccountDeletion:
    """Delete everything the user owns or appears in, profile included; return what went.

    Works for any authenticated subject, registered or not: data a token created before
    (or without) registering is erased all the same.
    """
    deletion = AccountDeletion(new_id(), user_id, {})
    store.create(
        ACCOUNT_DELETIONS,
        deletion.id,
        {"user_id": user_id, "requested_at": utcnow(), "status": "running"},
    )
    for name, purge in purges.items():
        deletion.purged[name] = purge(user_id)
    store.update(
        ACCOUNT_DELETIONS,
        deletion.id,
        {"status": "completed", "completed_at": utcnow(), "purged": deletion.purged},
    )
    logger.info("Account deleted", extra={"fields": {"userId": user_id, **deletion.purged}})
    return deletion


def purge_user(store: DocumentStore, user_id: str) -> int:
    """Delete the user's profile, email claim and rate-limit counters; return 1 or 0."""
    removed = UserRepository(store).remove(user_id)
    delete_owned(store, RATE_LIMITS, user_id)
    return 0 if removed is None else 1


def add_storage_used(*, store: DocumentStore, user_id: str, delta_bytes: int) -> int:
    """Add ``delta_bytes`` to the user's storage used; return the new total."""
    return UserRepository(store).add_storage_used(user_id, delta_bytes)
