"""Pronunciation lexicons: how names, brands and jargon are to be spoken, on every provider."""

from __future__ import annotations

from shared.capability import Capability, Ports
from shared.store.base import DocumentStore


def _store(ports: Ports) -> DocumentStore:
    return ports.store


def _purge(store: DocumentStore, user_id: str) -> int:
    from shared.lexicons.repository import LexiconRepository  # noqa: PLC0415 - off cold starts

    return LexiconRepository(store).purge_user(user_id)


CAPABILITY: Capability[DocumentStore] = Capability(
    name="lexicons", build=_store, purges={"lexicons": _purge}
)
