"""Real-time voice sessions: backends, pipelines and the sessions they run."""

from __future__ import annotations

from shared.capability import Capability, Ports, delete_owned
from shared.store.base import DocumentStore


def _store(ports: Ports) -> DocumentStore:
    return ports.store


def _purge(store: DocumentStore, user_id: str) -> int:
    return delete_owned(store, "voice_sessions", user_id)


CAPABILITY: Capability[DocumentStore] = Capability(
    name="sessions", build=_store, purges={"voice_sessions": _purge}
)
