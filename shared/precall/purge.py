"""Erasing a deleted account's pre-call data, callers' recordings and provider voices included.

The account is the deleted user's id (the account of every token without an ``accountId``
claim). Its callers' recordings (``precall/{account}/`` in the samples bucket, uploaded with
``PUT /precall/samples/{name}``) are deleted first; the rest of that bucket belongs to the
samples capability, whose own purge deletes ``samples/{user}/``. Then its mappings and their
number claims, the recordings' locks, cached clones, calls, clone logs, ready, failed and
transfer events and clone leases are deleted; every provider voice cloned for it that is
not yet given back is first recorded as a release, then the releases are tried at once (a
provider outage leaves them to the expiry job, which retries until they go; a release
holds only the provider and voice id, nothing of the account).

New recordings are refused from before the first deletion of the folder until after its
second, once the documents are gone, or a later one when uploads were refused meanwhile
(``shared.precall.deletion_marks``): so the audio of an upload refused after writing it
goes with a deletion of the folder made while uploads are still refused (each such upload
deletes its own too, at once). Two purges of one account at once refuse until both end.
"""

from __future__ import annotations

import logging

from shared.model import utcnow
from shared.precall.deletion_marks import uploads_refused
from shared.precall.deps import PrecallDeps
from shared.precall.expiry import release_voices
from shared.precall.recordings import recordings_prefix
from shared.precall.repository import (
    ACCOUNT_COLLECTIONS,
    CALLS,
    CLONE_CACHE,
    CLONE_LEASES,
    MAPPINGS,
    VOICE_RELEASES,
    cache_from,
    release_document,
    release_id,
)
from shared.store.base import Query

logger = logging.getLogger(__name__)


def purge_account(deps: PrecallDeps, account_id: str) -> int:
    """Delete everything of ``account_id``; return how many mappings and calls went."""
    bucket, folder = deps.settings.samples_bucket, recordings_prefix(account_id)
    recordings = 0

    def look() -> None:
        nonlocal recordings
        recordings += deps.blobs.delete_prefix(bucket, folder)

    with uploads_refused(deps, account_id, look):
        look()
        removed = _delete_documents(deps, account_id)
        # Audio written since the first look by uploads that the mark then refused, or
        # that died before they could tell.
        look()
    logger.info(
        "Purged the pre-call recordings of a deleted account",
        extra={"fields": {"objects": recordings}},
    )
    try:
        release_voices(deps)
    except Exception:  # the releases stay recorded; the expiry job retries them
        logger.exception("Releasing a deleted account's provider voices failed; will retry")
    return removed


def _delete_documents(deps: PrecallDeps, account_id: str) -> int:
    """Record the account's provider voices as releases, then delete every document of the
    account; return how many mappings and calls went."""
    store = deps.store
    now = utcnow()
    with store.batch() as batch:
        for document in store.stream(
            _owned(CLONE_CACHE, account_id).where("deleted_at", "==", None)
        ):
            entry = cache_from(document)
            voice = entry.speaking_voice_id
            batch.set(
                VOICE_RELEASES,
                release_id(entry.provider, voice),
                release_document(entry.provider, voice, "account deleted", now),
            )
            if len(batch.writes) >= 400:
                batch.commit()
        for document in store.stream(_owned(CLONE_LEASES, account_id)):
            pending = document.data.get("pending_voice")
            if isinstance(pending, dict) and pending.get("voice_id"):
                provider, voice = str(pending.get("provider")), str(pending["voice_id"])
                batch.set(
                    VOICE_RELEASES,
                    release_id(provider, voice),
                    release_document(provider, voice, "account deleted", now),
                )
    removed = 0
    for collection in ACCOUNT_COLLECTIONS:
        count = store.delete_matching(_owned(collection, account_id))
        if collection in (MAPPINGS, CALLS):
            removed += count
    return removed


def _owned(collection: str, account_id: str) -> Query:
    return Query(collection).where("account_id", "==", account_id)
