"""Users in the document store, and the email claims that keep emails unique.

A user is ``users/{userId}``. Each email is claimed by ``user_emails/{sha256(email)}``,
created in the same transaction as the user (or an email change), so two accounts can
never hold one address, however many requests race.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from shared.errors import EmailAlreadyRegisteredError, UserAlreadyExistsError, UserNotFoundError
from shared.store.base import DocumentStore, Transaction
from shared.users.model import User
from shared.users.storage import USERS, storage_used_change

EMAIL_CLAIMS = "user_emails"


HeldBytes = Callable[[Transaction, str], int]
"""Returns, read in the transaction, the bytes of one kind a user already holds."""


def email_claim_id(email: str) -> str:
    """Return the id of the document that claims ``email`` (already normalised)."""
    return hashlib.sha256(email.encode()).hexdigest()


class UserRepository:
    """Reads and writes users; every multi-document change is one transaction."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def get(self, user_id: str) -> User | None:
        """Return the user or None."""
        document = self._store.get(USERS, user_id)
        return User.model_validate(document.data) if document else None

    def require(self, user_id: str) -> User:
        """Return the user; raise UserNotFoundError."""
        user = self.get(user_id)
        if user is None:
            raise UserNotFoundError(f"User not registered: {user_id}")
        return user

    def add(self, user: User, *, held: Sequence[HeldBytes] = ()) -> User:
        """Store a new user and claim its email atomically; return the user as stored.

        ``held`` reads what the user already stores (files made with a token before
        registering): the storage used starts from their total, so freeing them later
        never takes the counter below what is still held.

        Raises UserAlreadyExistsError or EmailAlreadyRegisteredError.
        """

        def register(tx: Transaction) -> User:
            if tx.get(USERS, user.id) is not None:
                raise UserAlreadyExistsError()
            claim = tx.get(EMAIL_CLAIMS, email_claim_id(user.email))
            if claim is not None and claim.data.get("user_id") != user.id:
                raise EmailAlreadyRegisteredError()
            used = user.storage_used_bytes + sum(read(tx, user.id) for read in held)
            stored = user.model_copy(update={"storage_used_bytes": used})
            tx.set(EMAIL_CLAIMS, email_claim_id(user.email), {"user_id": user.id})
            tx.create(USERS, user.id, stored.to_document())
            return stored

        return self._store.run_transaction(register)

    def update(self, user_id: str, changes: dict[str, Any]) -> User:
        """Apply ``changes`` (snake_case fields other than email) and return the user.

        Raises UserNotFoundError.
        """

        def change(tx: Transaction) -> User:
            document = tx.get(USERS, user_id)
            if document is None:
                raise UserNotFoundError(f"User not registered: {user_id}")
            current = User.model_validate(document.data)
            # Profiles change names only (UserUpdate); the email, and its claim, stay.
            updated = User.model_validate({**current.model_dump(), **changes})
            tx.set(USERS, user_id, updated.to_document())
            return updated

        return self._store.run_transaction(change)

    def remove(self, user_id: str) -> User | None:
        """Delete the user and release its email; return what was deleted (None: nothing)."""

        def remove(tx: Transaction) -> User | None:
            document = tx.get(USERS, user_id)
            if document is None:
                return None
            user = User.model_validate(document.data)
            tx.delete(EMAIL_CLAIMS, email_claim_id(user.email))
            tx.delete(USERS, user_id)
            return user

        return self._store.run_transaction(remove)

    def add_storage_used(self, user_id: str, delta_bytes: int) -> int:
        """Add ``delta_bytes`` (negative to free) to the storage used; return the new total.

        Never goes below zero. Raises UserNotFoundError.
        """

        def adjust(tx: Transaction) -> int:
            document = tx.get(USERS, user_id)
            if document is None:
                raise UserNotFoundError(f"User not registered: {user_id}")
            change = storage_used_change(document, delta_bytes)
            tx.update(USERS, user_id, change)
            return change["storage_used_bytes"]

        return self._store.run_transaction(adjust)
