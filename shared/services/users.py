"""User accounts: registration for the token's user, profile changes, account deletion.

Deleting an account removes the user, frees its email, and purges everything the user
owns: each feature registers an ``AccountPurge`` for its own data (voice models, samples,
and so on). Every deletion is recorded in ``account_deletions`` (ids and counts only, no
personal data) so an operator can show what was erased and when.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from shared.domain.users import User, UserCreate, UserUpdate
from shared.model import new_id, utcnow
from shared.repositories.users import UserRepository
from shared.services.audio_files import purge_audio_files
from shared.services.voice_model_cleanup import purge_voice_models
from shared.store import Query
from shared.store.base import DocumentStore

logger = logging.getLogger(__name__)

ACCOUNT_DELETIONS = "account_deletions"

AccountPurge = Callable[[DocumentStore, str], int]
"""Deletes one kind of data a user owns; returns how many records it removed."""


def purge_owned_documents(collection: str, owner_field: str = "user_id") -> AccountPurge:
    """Return a purge that deletes every document of ``collection`` owned by the user."""

    def purge(store: DocumentStore, user_id: str) -> int:
        return store.delete_matching(Query(collection).where(owner_field, "==", user_id))

    purge.__name__ = f"purge_{collection}"
    return purge


# The seed: deleting an account deletes the user's voice models and samples. Later
# features append their own purges (audio files, clones) here.
ACCOUNT_PURGES: dict[str, AccountPurge] = {
    "voice_models": purge_voice_models,
    "voice_samples": purge_owned_documents("voice_samples"),
    "audio_files": purge_audio_files,
}


@dataclass(frozen=True)
class AccountDeletion:
    """What an account deletion removed."""

    id: str
    user_id: str
    purged: dict[str, int]


def register_user(*, store: DocumentStore, user_id: str, request: UserCreate) -> User:
    """Register the profile of ``user_id``; return it.

    Raises UserAlreadyExistsError or EmailAlreadyRegisteredError.
    """
    user = User(
        id=user_id,
        email=request.email,
        first_name=request.first_name,
        last_name=request.last_name,
    )
    UserRepository(store).add(user)
    return user


def get_user(*, store: DocumentStore, user_id: str) -> User:
    """Return the user; raise UserNotFoundError."""
    return UserRepository(store).require(user_id)


def update_user(*, store: DocumentStore, user_id: str, request: UserUpdate) -> User:
    """Apply the profile changes and return the user; raise UserNotFoundError."""
    changes = {**request.changes(), "updated_at": utcnow()}
    return UserRepository(store).update(user_id, changes)


def delete_account(*, store: DocumentStore, user_id: str) -> AccountDeletion:
    """Delete the user and everything they own; return what was removed.

    Raises UserNotFoundError when the user is not registered.
    """
    UserRepository(store).remove(user_id)
    deletion = AccountDeletion(new_id(), user_id, {})
    store.create(
        ACCOUNT_DELETIONS,
        deletion.id,
        {"user_id": user_id, "requested_at": utcnow(), "status": "running"},
    )
    for name, purge in ACCOUNT_PURGES.items():
        deletion.purged[name] = purge(store, user_id)
    store.update(
        ACCOUNT_DELETIONS,
        deletion.id,
        {"status": "completed", "completed_at": utcnow(), "purged": deletion.purged},
    )
    logger.info("Account deleted", extra={"fields": {"userId": user_id, **deletion.purged}})
    return deletion


def add_storage_used(*, store: DocumentStore, user_id: str, delta_bytes: int) -> int:
    """Add ``delta_bytes`` to the user's storage used; return the new total."""
    return UserRepository(store).add_storage_used(user_id, delta_bytes)
