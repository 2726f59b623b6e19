"""User accounts: registration, profile, storage used, and deletion of everything a user owns."""

from __future__ import annotations

from shared.capability import Capability, Ports
from shared.store.base import DocumentStore


def _store(ports: Ports) -> DocumentStore:
    return ports.store


def _purge(store: DocumentStore, user_id: str) -> int:
    from shared.users.accounts import purge_user  # noqa: PLC0415 - off cold starts

    return purge_user(store, user_id)


CAPABILITY: Capability[DocumentStore] = Capability(
    name="users", build=_store, purges={"users": _purge}
)
