"""The audio cache: a content key names one stored audio object, rendered once.

An entry is ``synthesis_cache/{key}`` (the key is the caller's: synthesis hashes everything
that changes the audio): ``pending`` while one request renders it (its ``owner`` and
``lease_until``), ``ready`` once it names the stored object (``CachedAudio``: what a file
record needs to describe it). ``SingleFlight.claim`` returns the ready entry, or a lease to
the one caller whose ``create`` won; every other caller polls until the entry is ready,
takes the lease over once it has expired, or gives up after ``wait_seconds`` and renders
without the cache. The lease is short and its holder renews it while it renders
(``renew``), so the entry of a holder that died is taken over within one lease, and no
waiter holds its thread long. The store is the only shared state, so
this holds across instances. Deleting an object forgets every entry naming it first
(``forget_path``), so a hit never names an object about to disappear.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, NamedTuple

from shared.errors import DocumentAlreadyExistsError
from shared.model import new_id, utcnow
from shared.store.base import DocumentStore, Query, Transaction, WriteBatch

SYNTHESIS_CACHE = "synthesis_cache"
_POLL_START, _POLL_MAX = 0.01, 0.1


class CachedAudio(NamedTuple):
    """A ready entry: the stored object and what a file record needs to describe it."""

    file_path: str
    format: str
    file_size: int
    duration: float
    sample_rate: int
    checksum: str
    timestamps_path: str | None
    unapplied: tuple[str, ...] = ()
    # Whose object it is: the user whose request rendered it (deleted with their account).
    user_id: str | None = None

    def to_document(self) -> dict[str, Any]:
        """Return the entry's stored fields."""
        data = self._asdict()
        data["unapplied"] = list(self.unapplied)
        return data

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> CachedAudio:
        """Return the entry stored as ``data``."""
        return cls(
            file_path=str(data["file_path"]),
            format=str(data["format"]),
            file_size=int(data["file_size"]),
            duration=float(data["duration"]),
            sample_rate=int(data["sample_rate"]),
            checksum=str(data["checksum"]),
            timestamps_path=data.get("timestamps_path"),
            unapplied=tuple(data.get("unapplied") or ()),
            user_id=data.get("user_id"),
        )


class Lease(NamedTuple):
    """The right to synthesize one key and publish it; ``cached`` False means uncached."""

    key: str
    owner: str
    cached: bool = True


class SingleFlight:
    """Claims, publishes and abandons cache entries in the document store."""

    def __init__(self, store: DocumentStore, *, wait_seconds: float, lease_seconds: float) -> None:
        self._store = store
        self._wait = wait_seconds
        self._lease = timedelta(seconds=lease_seconds)

    def lookup(self, key: str) -> CachedAudio | None:
        """Return the ready entry of ``key``, or None."""
        document = self._store.get(SYNTHESIS_CACHE, key)
        if document is None or document.data.get("status") != "ready":
            return None
        return CachedAudio.from_document(document.data)

    def claim(self, key: str) -> CachedAudio | Lease:
        """Return the ready entry, or a lease to synthesize (uncached after a long wait)."""
        deadline = time.monotonic() + self._wait
        pause = _POLL_START
        while True:
            document = self._store.get(SYNTHESIS_CACHE, key)
            if document is None:
                lease = self._create(key)
                if lease is not None:
                    return lease
                continue
            if document.data.get("status") == "ready":
                return CachedAudio.from_document(document.data)
            lease_until = document.data.get("lease_until")
            if lease_until is None or lease_until <= utcnow():
                taken = self._take_over(key, str(document.data.get("owner")))
                if taken is not None:
                    return taken
                continue
            if time.monotonic() >= deadline:
                return Lease(key, new_id(), cached=False)
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)

    def _pending(self, owner: str) -> dict[str, Any]:
        now = utcnow()
        return {
            "status": "pending",
            "owner": owner,
            "created_at": now,
            "lease_until": now + self._lease,
        }

    def _create(self, key: str) -> Lease | None:
        owner = new_id()
        try:
            self._store.create(SYNTHESIS_CACHE, key, self._pending(owner))
        except DocumentAlreadyExistsError:
            return None
        return Lease(key, owner)

    def _take_over(self, key: str, stale_owner: str) -> Lease | None:
        owner = new_id()

        def take(tx: Transaction) -> bool:
            document = tx.get(SYNTHESIS_CACHE, key)
            if document is None or document.data.get("status") == "ready":
                return False
            if str(document.data.get("owner")) != stale_owner:
                return False
            tx.set(SYNTHESIS_CACHE, key, self._pending(owner))
            return True

        return Lease(key, owner) if self._store.run_transaction(take) else None

    @property
    def renew_every(self) -> float:
        """Return how often a lease holder renews its lease, in seconds."""
        return self._lease.total_seconds() / 3

    def renew(self, lease: Lease) -> bool:
        """Extend ``lease`` while its holder renders; False once it is no longer held."""
        if not lease.cached:
            return False

        def extend(tx: Transaction) -> bool:
            document = tx.get(SYNTHESIS_CACHE, lease.key)
            if document is None or document.data.get("owner") != lease.owner:
                return False
            if document.data.get("status") == "ready":
                return False
            tx.update(SYNTHESIS_CACHE, lease.key, {"lease_until": utcnow() + self._lease})
            return True

        return bool(self._store.run_transaction(extend))

    def publish(self, lease: Lease, cached: CachedAudio) -> None:
        """Mark the entry ready with the stored audio (no-op for an uncached lease)."""
        with self._store.batch() as writes:
            self.publish_in(writes, lease, cached)

    def publish_in(
        self, writes: WriteBatch | Transaction, lease: Lease, cached: CachedAudio
    ) -> None:
        """Queue in ``writes`` what ``publish`` writes (ready once ``writes`` commit)."""
        if lease.cached:
            writes.set(SYNTHESIS_CACHE, lease.key, self._ready(cached, lease.owner))

    def store_ready_in(
        self, writes: WriteBatch | Transaction, key: str, cached: CachedAudio
    ) -> None:
        """Queue in ``writes`` the entry of ``key`` ready without a lease (long jobs, which
        do not single-flight)."""
        writes.set(SYNTHESIS_CACHE, key, self._ready(cached, None))

    @staticmethod
    def _ready(cached: CachedAudio, owner: str | None) -> dict[str, Any]:
        return {**cached.to_document(), "status": "ready", "owner": owner, "created_at": utcnow()}

    def abandon(self, lease: Lease) -> None:
        """Drop the pending entry after a failure so a waiting caller may try."""
        if not lease.cached:
            return

        def drop(tx: Transaction) -> None:
            document = tx.get(SYNTHESIS_CACHE, lease.key)
            if (
                document is not None
                and document.data.get("owner") == lease.owner
                and document.data.get("status") != "ready"
            ):
                tx.delete(SYNTHESIS_CACHE, lease.key)

        self._store.run_transaction(drop)

    def forget(self, key: str, file_path: str) -> None:
        """Delete the entry of ``key`` if it still names ``file_path`` (object gone)."""
        document = self._store.get(SYNTHESIS_CACHE, key)
        if document is not None and document.data.get("file_path") == file_path:
            self._store.delete(SYNTHESIS_CACHE, key)

    def forget_user(self, user_id: str) -> int:
        """Delete every entry naming an object of ``user_id`` (account deletion)."""
        return self._store.delete_matching(Query(SYNTHESIS_CACHE).where("user_id", "==", user_id))

    def forget_path(self, file_path: str) -> int:
        """Delete every entry naming ``file_path``; return how many went."""
        query = Query(SYNTHESIS_CACHE).where("file_path", "==", file_path)
        removed = 0
        for document in list(self._store.stream(query)):
            self._store.delete(SYNTHESIS_CACHE, document.id)
            removed += 1
        return removed
