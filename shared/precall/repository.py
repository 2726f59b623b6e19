"""The seed's seven tables as collections, and the documents that keep them consistent.

Collections carry the seed's table names (``caller_voice_mapping``, ``voice_clone_cache``,
``call_log``, ``voice_clone_log``, ``clone_ready_events``, ``clone_failed_events``,
``clone_transfer_events``) with snake_case fields; every document has ``account_id``.

- A live mapping claims its number: ``caller_voice_mapping_claims/{sha256(account, number)}``
  is written in the transaction that creates the mapping (or moves it to a new number) and
  deleted in the one that soft-deletes it, so two live mappings of one account never share
  a number however many requests race, and a deleted mapping's number is free again.
- A call is ``call_log/{sha256(account, greeting call id)}``: the seed's unique ``call_id``
  per account, so a repeated webhook finds the call it already logged.
- A call's ready or failed event has the call's document id (a clone settles once).
- ``voice_clone_leases/{sha256(account, number)}`` is held by the task cloning a caller's
  voice, so concurrent calls from one caller make one clone; it names the provider voice
  between its creation and the cache entry's commit, so a crash there leaks nothing.
- ``voice_clone_releases/{provider}-{sha256(voice)}``: provider voices to delete (expired,
  replaced, orphaned or of a deleted account), removed once the provider confirms.
- ``caller_voice_recording_locks/{sha256(account, URL)}``: the lock of a recording of the
  account's folder, written by every transaction that saves a mapping naming it and by
  the deletion of the recording, which marks it while the object goes; so the store
  orders the two (``shared.precall.recordings``). Storing new audio under the name reads
  it too, and writes the audio's version there once the audio is known to stay, or counts
  itself there when the deletion refuses it (``shared.precall.deletion_marks``).
- ``caller_voice_recording_purges/{sha256(account)}``: the account's purges under way (one
  entry each) and the uploads they refused; new audio in its folder is refused meanwhile.
  It has no ``account_id``, so the purge's deletion of the account's documents leaves it
  until the purge's last look at the folder.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from shared.precall.model import (
    CallerVoiceMapping,
    CallLog,
    CloneFailedEvent,
    CloneReadyEvent,
    VoiceCloneCache,
)
from shared.store.base import Document, DocumentStore, Query, Transaction

MAPPINGS = "caller_voice_mapping"
MAPPING_CLAIMS = "caller_voice_mapping_claims"
CLONE_CACHE = "voice_clone_cache"
CALLS = "call_log"
CLONE_LOG = "voice_clone_log"
READY_EVENTS = "clone_ready_events"
FAILED_EVENTS = "clone_failed_events"
TRANSFER_EVENTS = "clone_transfer_events"
CLONE_LEASES = "voice_clone_leases"
VOICE_RELEASES = "voice_clone_releases"
RECORDING_LOCKS = "caller_voice_recording_locks"
RECORDING_PURGES = "caller_voice_recording_purges"

ACCOUNT_COLLECTIONS = (
    MAPPINGS,
    MAPPING_CLAIMS,
    CLONE_CACHE,
    CALLS,
    CLONE_LOG,
    READY_EVENTS,
    FAILED_EVENTS,
    TRANSFER_EVENTS,
    CLONE_LEASES,
    RECORDING_LOCKS,
)
"""Every collection whose documents belong to one account (``account_id``)."""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def caller_key(account_id: str, caller_id: str) -> str:
    """Return the id of the claim and the lease of ``caller_id`` in ``account_id``."""
    return _digest("caller", account_id, caller_id)


def call_key(account_id: str, call_id: str) -> str:
    """Return the document id of the call logged for greeting call ``call_id``."""
    return _digest("call", account_id, call_id)[:40]


def recording_key(account_id: str, url: str) -> str:
    """Return the id of the lock of the recording at ``url`` in ``account_id``."""
    return _digest("recording", account_id, url)


def purge_key(account_id: str) -> str:
    """Return the id of the mark of ``account_id``'s purge under way."""
    return _digest("purge", account_id)


def release_id(provider: str, voice_id: str) -> str:
    """Return the id of the release of a provider voice."""
    return f"{provider}-{_digest(voice_id)[:40]}"


def mapping_from(document: Document) -> CallerVoiceMapping:
    """Return the mapping stored in ``document``."""
    return CallerVoiceMapping.model_validate({**document.data, "id": document.id})


def cache_from(document: Document) -> VoiceCloneCache:
    """Return the cache entry stored in ``document``."""
    return VoiceCloneCache.model_validate({**document.data, "id": document.id})


def call_from(document: Document) -> CallLog:
    """Return the call stored in ``document``."""
    return CallLog.model_validate({**document.data, "id": document.id})


def live_mappings(account_id: str) -> Query:
    """Return the query of an account's live mappings, newest first."""
    return (
        Query(MAPPINGS)
        .where("account_id", "==", account_id)
        .where("deleted_at", "==", None)
        .order("created_at", descending=True)
    )


def live_cache_of(account_id: str, caller_id: str) -> Query:
    """Return the query of a caller's cache entries not soft-deleted (some may be past TTL)."""
    return (
        Query(CLONE_CACHE)
        .where("account_id", "==", account_id)
        .where("caller_id", "==", caller_id)
        .where("deleted_at", "==", None)
    )


def cloned_from(account_id: str, mapping_id: str) -> Query:
    """Return the query of the cache entries not soft-deleted cloned for ``mapping_id``."""
    return (
        Query(CLONE_CACHE)
        .where("account_id", "==", account_id)
        .where("mapping_id", "==", mapping_id)
        .where("deleted_at", "==", None)
    )


def usable_entry(entries: list[VoiceCloneCache], now: datetime) -> VoiceCloneCache | None:
    """Return the newest entry usable at ``now``, or None."""
    usable = [entry for entry in entries if not entry.is_expired(now)]
    return max(usable, key=lambda e: (e.clone_created_at, e.id)) if usable else None


def live_mapping_for(
    store: DocumentStore, account_id: str, caller_id: str
) -> CallerVoiceMapping | None:
    """Return the account's live mapping of ``caller_id``, or None."""
    claim = store.get(MAPPING_CLAIMS, caller_key(account_id, caller_id))
    mapping_id = claim.data.get("mapping_id") if claim else None
    document = store.get(MAPPINGS, str(mapping_id)) if mapping_id else None
    if document is None:
        return None
    mapping = mapping_from(document)
    return None if mapping.is_deleted or mapping.account_id != account_id else mapping


def tx_live_mapping_for(
    tx: Transaction, account_id: str, caller_id: str
) -> CallerVoiceMapping | None:
    """Return the account's live mapping of ``caller_id`` read in ``tx`` (claim locked)."""
    claim = tx.get(MAPPING_CLAIMS, caller_key(account_id, caller_id))
    mapping_id = claim.data.get("mapping_id") if claim else None
    document = tx.get(MAPPINGS, str(mapping_id)) if mapping_id else None
    if document is None:
        return None
    mapping = mapping_from(document)
    return None if mapping.is_deleted or mapping.account_id != account_id else mapping


def claim_document(mapping: CallerVoiceMapping) -> dict[str, Any]:
    """Return the claim of ``mapping``'s number."""
    return {
        "account_id": mapping.account_id,
        "caller_id": mapping.caller_id,
        "mapping_id": mapping.id,
    }


def release_document(provider: str, voice_id: str, reason: str, now: datetime) -> dict[str, Any]:
    """Return a release of a provider voice (no account: it outlives account deletion)."""
    return {
        "provider": provider,
        "voice_id": voice_id,
        "reason": reason,
        "created_at": now,
        "attempts": 0,
    }


def tx_expire_cache(tx: Transaction, entries: list[VoiceCloneCache], now: datetime) -> None:
    """Expire ``entries`` now (the mapping they were cloned from changed or went)."""
    for entry in entries:
        if not entry.is_expired(now):
            tx.update(
                CLONE_CACHE, entry.id, {"ttl_expires_at": entry.expired_now(now).ttl_expires_at}
            )


def ready_event_of(store: DocumentStore, key: str) -> CloneReadyEvent | None:
    """Return the ready event of the call ``key``, or None."""
    document = store.get(READY_EVENTS, key)
    return CloneReadyEvent.model_validate(document.data) if document else None


def failed_event_of(store: DocumentStore, key: str) -> CloneFailedEvent | None:
    """Return the failed event of the call ``key``, or None."""
    document = store.get(FAILED_EVENTS, key)
    return CloneFailedEvent.model_validate(document.data) if document else None
