"""The two scheduled jobs: expire cached clones (and give provider voices back), and purge.

``expire_clones`` soft-deletes every cache entry past its TTL (or expired because its
mapping changed or went) and, in the same transaction, records a release of its provider
voice; ``release_voices`` then deletes each released voice at its provider (ElevenLabs
limits an account's custom voices: a leaked clone holds a paid slot) and drops the release
once the provider confirms, so a provider outage only delays it to the next run. Leases
whose cloner died after making a voice are released too. ``purge_deleted`` deletes
soft-deleted mappings and cache entries older than ``VOICE_PRECALL_RETENTION_DAYS``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.errors import PlatformError
from shared.precall.cloners import CloneFailedError
from shared.precall.deps import PrecallDeps
from shared.precall.repository import (
    CLONE_CACHE,
    CLONE_LEASES,
    MAPPINGS,
    VOICE_RELEASES,
    cache_from,
    release_document,
    release_id,
)
from shared.store.base import Query, Transaction

logger = logging.getLogger(__name__)

EXPIRE_TASK = "precall.expire_clones"
PURGE_TASK = "precall.purge_deleted"
BATCH = 200


@dataclass(frozen=True)
class ExpiryReport:
    """What one expiry run did."""

    expired: int
    released: int
    release_failures: int


def expire_clones(deps: PrecallDeps, now: datetime | None = None) -> ExpiryReport:
    """Expire cache entries past their TTL, release abandoned leases' voices, and release."""
    moment = now or deps.clock()
    expired = 0
    query = (
        Query(CLONE_CACHE)
        .where("deleted_at", "==", None)
        .where("ttl_expires_at", "<=", moment)
        .take(BATCH)
    )
    while documents := deps.store.query(query).documents:
        for document in documents:
            expired += _expire_one(deps, document.id, moment)
        if len(documents) < BATCH:
            break
    _release_abandoned_leases(deps, moment)
    released, failures = release_voices(deps)
    return ExpiryReport(expired, released, failures)


def _expire_one(deps: PrecallDeps, entry_id: str, now: datetime) -> int:
    def expire(tx: Transaction) -> int:
        return _expire(tx, entry_id, now)

    return deps.store.run_transaction(expire)


def _expire(tx: Transaction, entry_id: str, now: datetime) -> int:
    document = tx.get(CLONE_CACHE, entry_id)
    if document is None:
        return 0
    entry = cache_from(document)
    if entry.deleted_at is not None or not entry.is_expired(now):
        return 0
    tx.update(CLONE_CACHE, entry_id, {"deleted_at": now})
    tx.set(
        VOICE_RELEASES,
        release_id(entry.provider, entry.speaking_voice_id),
        release_document(entry.provider, entry.speaking_voice_id, "expired", now),
    )
    return 1


def _release_abandoned_leases(deps: PrecallDeps, now: datetime) -> None:
    # A lease lapsed a full lease ago: its holder is gone; a voice it named was never saved.
    cutoff = now - timedelta(seconds=deps.settings.precall_clone_lease_seconds)
    query = Query(CLONE_LEASES).where("lease_expires_at", "<", cutoff).take(BATCH)
    for document in deps.store.query(query).documents:

        def drop(tx: Transaction, lease_id: str = document.id) -> None:
            lease = tx.get(CLONE_LEASES, lease_id)
            if lease is None or lease.data.get("lease_expires_at", now) >= cutoff:
                return
            pending = lease.data.get("pending_voice")
            if isinstance(pending, dict) and pending.get("voice_id"):
                provider, voice = str(pending.get("provider")), str(pending["voice_id"])
                tx.set(
                    VOICE_RELEASES,
                    release_id(provider, voice),
                    release_document(provider, voice, "abandoned lease", now),
                )
            tx.delete(CLONE_LEASES, lease_id)

        deps.store.run_transaction(drop)


def release_voices(deps: PrecallDeps) -> tuple[int, int]:
    """Delete every released voice at its provider; return (deleted, still pending)."""
    released = failures = 0
    for document in list(deps.store.stream(Query(VOICE_RELEASES))):
        provider = str(document.data.get("provider"))
        voice_id = str(document.data.get("voice_id"))
        try:
            deps.cloner_for(provider).delete(voice_id)
        except (CloneFailedError, PlatformError) as exc:
            failures += 1
            reason = exc.reason if isinstance(exc, CloneFailedError) else exc.message
            logger.warning("Could not delete %s voice %s yet: %s", provider, voice_id, reason)
            attempts = int(document.data.get("attempts", 0)) + 1
            deps.store.update(VOICE_RELEASES, document.id, {"attempts": attempts, "error": reason})
            continue
        deps.store.delete(VOICE_RELEASES, document.id)
        released += 1
    return released, failures


def purge_deleted(deps: PrecallDeps, now: datetime | None = None) -> int:
    """Delete soft-deleted mappings and cache entries past the retention; return how many."""
    moment = now or deps.clock()
    cutoff = moment - timedelta(days=deps.settings.precall_retention_days)
    removed = 0
    for collection in (MAPPINGS, CLONE_CACHE):
        removed += deps.store.delete_matching(Query(collection).where("deleted_at", "<", cutoff))
    return removed
