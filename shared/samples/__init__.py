"""Voice samples: uploaded recordings, their analysis and speaker embeddings."""

from __future__ import annotations

from shared.capability import Capability, Ports, delete_owned
from shared.store.base import DocumentStore


def _store(ports: Ports) -> DocumentStore:
    return ports.store


def _purge(store: DocumentStore, user_id: str) -> int:
    return delete_owned(store, "voice_samples", user_id)


CAPABILITY: Capability[DocumentStore] = Capability(
    name="samples", build=_store, purges={"voice_samples": _purge}
)
