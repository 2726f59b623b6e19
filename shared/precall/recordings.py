"""Callers' recordings: audio stored in the account's folder, and deleting it again.

``PUT /precall/samples/{name}`` checks a recording (audio, long enough, holds speech) and
stores it as ``precall/{account}/{name}`` in the samples bucket; mappings name it by its
``gs://`` URL, several mappings possibly the same one. New audio under a name expires the
clones cached from it, so the next call clones the new voice. ``DELETE`` deletes it,
unless a live mapping uses it (409 naming a few: a mapping must not point at audio that is
gone, and the user decides whether to delete or re-point it); a missing one is 404. What
is still cached from it expires. The account's deletion deletes the whole folder
(``shared.precall.purge``).

A deletion and a mapping saved at the same moment are ordered by the recording's lock
(``caller_voice_recording_locks``), a document both transactions read first and write:

- the deletion's transaction finds no live mapping naming the recording and marks the
  lock; only then is the object deleted, and the mark removed after;
- a mapping's transaction (``hold_recording``) refuses while the lock is marked, and when
  the object is gone (its sample was read before the transaction; it may have gone since).

Whichever commits second sees the first: a mapping saved first makes the deletion 409; a
deletion marked first makes the mapping 400 ``SAMPLE_UNREACHABLE``.

New audio under the name is refused (409 ``PRECALL_SAMPLE_BEING_DELETED``) while the
recording is marked or its account is being purged (``shared.precall.deletion_marks``):
before it is written, and again in the transaction after, which reads the lock and the
purge's mark, checks the object is still there and only then writes the audio's version.
A deletion marked or done while the audio was written, or a purge under way, refuses it
there, so an upload never answers stored for audio that a deletion under way may take.
The audio of a refused upload goes with the deletion or purge that refused it, which
looks again before it ends; refused by a purge, the upload also deletes it at once (the
generation it wrote, no other: new audio stored under the name since the purge ended
stays).

What the marks cannot order is the object store itself: a deletion stalled between its
mark and the object's deletion for longer than the mark lasts; and a mapping saved naming
new audio just as a purge ends, in the moment before a refused upload deletes that same
generation.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.errors import InvalidRequestError, PreconditionFailedError, echoed
from shared.model import new_id
from shared.precall.deletion_marks import (
    Deletion,
    Mark,
    count_refusal,
    deletion_under_way,
    mark_recording,
    recording_marked,
    refused_until_looked,
)
from shared.precall.deps import Caller, PrecallDeps
from shared.precall.errors import (
    PrecallSampleBeingDeletedError,
    PrecallSampleInUseError,
    PrecallSampleNotFoundError,
    SampleUnreachableError,
)
from shared.precall.repository import (
    MAPPINGS,
    RECORDING_LOCKS,
    RECORDING_PURGES,
    cache_from,
    cloned_from,
    live_cache_of,
    mapping_from,
    purge_key,
    recording_key,
    tx_expire_cache,
)
from shared.precall.samples import check_sample, parse_location
from shared.precall.schemas import SampleStored
from shared.store import Query
from shared.store.base import Transaction

NAMED_MAPPINGS = 5
"""How many of the mappings using a recording a refused deletion names."""

_SAMPLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def recordings_prefix(account_id: str) -> str:
    """Return the folder of ``account_id``'s recordings in the samples bucket."""
    return f"precall/{account_id}/"


def recording_path(account_id: str, name: str) -> str:
    """Return the object name of the recording ``name``; raise InvalidRequestError."""
    if not _SAMPLE_NAME.match(name) or "/" in account_id:
        raise InvalidRequestError("A sample name is 1-100 letters, digits, '.', '-' or '_'")
    return recordings_prefix(account_id) + name


def _recording_key(deps: PrecallDeps, account_id: str, url: str | None) -> str | None:
    """Return the lock id of the recording at ``url``, or None when ``url`` is no recording
    of the account's folder (its audio is not ours to delete or replace)."""
    prefix = f"gs://{deps.settings.samples_bucket}/{recordings_prefix(account_id)}"
    if url is None or not url.startswith(prefix):
        return None
    return recording_key(account_id, url)


def store_sample(
    deps: PrecallDeps, caller: Caller, name: str, data: bytes, account: str | None
) -> SampleStored:
    """Check ``data`` and store it as ``precall/{account}/{name}`` in the samples bucket.

    Raises AccessDeniedError, InvalidRequestError (a bad name), SampleNotAudioError,
    SampleUnusableError or PrecallSampleBeingDeletedError (the recording or its account is
    being deleted).
    """
    account_id = caller.account_for(account)
    path = recording_path(account_id, name)
    checked = check_sample(data, deps.settings)
    bucket = deps.settings.samples_bucket
    url = f"gs://{bucket}/{path}"
    key, purge = recording_key(account_id, url), purge_key(account_id)
    deletion = deletion_under_way(
        deps.store.get(RECORDING_LOCKS, key), deps.store.get(RECORDING_PURGES, purge), deps.clock()
    )
    if deletion is None:  # else refused before the audio is written for nothing
        stored = deps.blobs.put(bucket, path, data, content_type=checked.content_type)
        deletion = _keep_new_audio(deps, account_id, url, stored.generation)
    if deletion is not None:
        raise PrecallSampleBeingDeletedError(deletion.value)
    expire_clones_of_sample(deps, account_id, url)
    return SampleStored(
        voice_sample_url=url,
        format=checked.format,
        duration_seconds=round(checked.duration_seconds, 3),
        size_bytes=checked.size_bytes,
        quality_score=checked.quality_score,
    )


def delete_sample(deps: PrecallDeps, caller: Caller, name: str, account: str | None) -> None:
    """Delete the recording ``name`` of the account and expire the clones cached from it.

    Raises AccessDeniedError, InvalidRequestError (a bad name), PrecallSampleNotFoundError
    or PrecallSampleInUseError (live mappings name it; the error names a few).
    """
    account_id = caller.account_for(account)
    path = recording_path(account_id, name)
    bucket = deps.settings.samples_bucket
    url = f"gs://{bucket}/{path}"
    missing = PrecallSampleNotFoundError(f"No voice sample {echoed(name)} in your account")
    if not deps.blobs.exists(bucket, path):
        raise missing
    key = recording_key(account_id, url)
    users = (
        Query(MAPPINGS)
        .where("account_id", "==", account_id)
        .where("voice_sample_url", "==", url)
        .where("deleted_at", "==", None)
        .take(NAMED_MAPPINGS + 1)
    )

    def mark(tx: Transaction) -> Mark:
        # Read before the query: a mapping saved now writes the lock, so the store runs
        # this transaction wholly before that one (whose save then fails) or after it
        # (and the query finds the mapping).
        lock = tx.get(RECORDING_LOCKS, key)
        using = [document.id for document in tx.query(users)]
        if using:
            raise _in_use(using)
        fields = {"account_id": account_id, "voice_sample_url": url}
        return mark_recording(tx, lock, key, deps.clock(), fields)

    # Deleted again before the mark goes, when an upload it refused may have written since.
    with refused_until_looked(
        deps, deps.store.run_transaction(mark), lambda: deps.blobs.delete(bucket, path)
    ):
        deleted = deps.blobs.delete(bucket, path)
    if not deleted:  # another deletion took it first
        raise missing
    expire_clones_of_sample(deps, account_id, url)


def _in_use(mapping_ids: list[str]) -> PrecallSampleInUseError:
    named = sorted(mapping_ids)[:NAMED_MAPPINGS]
    more = " and more" if len(mapping_ids) > NAMED_MAPPINGS else ""
    return PrecallSampleInUseError(
        f"Caller mappings {', '.join(named)}{more} use this voice sample; delete them or "
        "point them at another sample first",
        details=[{"mappingId": mapping_id} for mapping_id in named],
    )


def _keep_new_audio(
    deps: PrecallDeps, account_id: str, url: str, generation: int
) -> Deletion | None:
    """Write the new version of the audio just stored at ``url`` as ``generation`` (see
    ``audio_version``), unless a deletion under way may take that audio, or took it; return
    that deletion.

    Refused, the upload counts itself on the deletion's mark, so that the deletion looks
    again before it ends. Refused for its account's purge, it also deletes its audio at
    once, that generation only (new audio stored since the purge ended is not its own).
    """
    key, purge = recording_key(account_id, url), purge_key(account_id)
    location = parse_location(url)
    fields = {"account_id": account_id, "voice_sample_url": url, "audio_version": new_id()}

    def keep(tx: Transaction) -> Deletion | None:
        lock, purge_mark = tx.get(RECORDING_LOCKS, key), tx.get(RECORDING_PURGES, purge)
        deletion = deletion_under_way(lock, purge_mark, deps.clock())
        if deletion is not None:
            count_refusal(tx, deletion, lock, purge_mark)
        elif not deps.blobs.exists(location.bucket, location.name):
            deletion = Deletion.DONE
        else:
            tx.set(RECORDING_LOCKS, key, fields, merge=True)
        return deletion

    deletion = deps.store.run_transaction(keep)
    if deletion is Deletion.ACCOUNT:
        with suppress(PreconditionFailedError):
            deps.blobs.delete(location.bucket, location.name, if_generation_match=generation)
    return deletion


def audio_version(
    deps: PrecallDeps, account_id: str, url: str | None, tx: Transaction | None = None
) -> str | None:
    """Return the version of the audio at ``url`` (in ``tx``, when given), or None.

    Uploading new audio under a recording's name writes a new version after the object,
    so a clone that read the version before the audio, and finds it unchanged when it
    saves the voice, was made from the audio it read. None: no version was written (the
    audio as first uploaded before versions were kept), or ``url`` is no recording of the
    account's folder (whose audio is not ours to replace).
    """
    key = _recording_key(deps, account_id, url)
    if key is None:
        return None
    lock = tx.get(RECORDING_LOCKS, key) if tx is not None else deps.store.get(RECORDING_LOCKS, key)
    version = lock.data.get("audio_version") if lock is not None else None
    return str(version) if version is not None else None


@dataclass(frozen=True)
class RecordingHold:
    """A mapping's use of a recording, checked in its transaction; ``write`` records it."""

    key: str
    document: dict[str, Any]

    def write(self, tx: Transaction) -> None:
        """Write the lock, after the transaction's reads (so a deletion cannot pass it)."""
        tx.set(RECORDING_LOCKS, self.key, self.document, merge=True)


def hold_recording(
    tx: Transaction, deps: PrecallDeps, account_id: str, url: str | None, now: datetime
) -> RecordingHold | None:
    """Read the lock of the recording at ``url`` in the transaction saving a mapping of it.

    Returns the hold to ``write`` once the transaction's other reads are done, or None when
    ``url`` is no recording of the account's folder. Raises SampleUnreachableError: the
    recording is being deleted, or is gone.
    """
    key = _recording_key(deps, account_id, url)
    if key is None or url is None:
        return None
    if recording_marked(tx.get(RECORDING_LOCKS, key), now):
        raise SampleUnreachableError(f"The voice sample at {url} is being deleted")
    location = parse_location(url)
    if not deps.blobs.exists(location.bucket, location.name):
        raise SampleUnreachableError(f"No object at {url}")
    return RecordingHold(
        key, {"account_id": account_id, "voice_sample_url": url, "last_mapped_at": now}
    )


def expire_clones_of_sample(deps: PrecallDeps, account_id: str, url: str) -> None:
    """Expire the clones cached from the sample at ``url``: new audio, or none, a new voice.

    Those of the callers of the live mappings naming it, and any still cached for a deleted
    mapping that named it (before the clone task checked its mapping when saving a clone,
    a clone being made as its mapping went was saved after).
    """
    query = (
        Query(MAPPINGS).where("account_id", "==", account_id).where("voice_sample_url", "==", url)
    )
    now = deps.clock()
    for document in deps.store.stream(query):
        mapping = mapping_from(document)
        stale_clones = (
            cloned_from(account_id, mapping.id)
            if mapping.is_deleted
            else live_cache_of(account_id, mapping.caller_id)
        )

        def expire(tx: Transaction, stale_clones: Query = stale_clones) -> None:
            tx_expire_cache(tx, [cache_from(d) for d in tx.query(stale_clones)], now)

        deps.store.run_transaction(expire)
