"""Caller mappings: which voice sample a caller's number is cloned from.

Every use case works inside one account. A new or changed sample is checked before anything
is written (allowed location, readable, audio, long enough, holds speech; a ``sampleId``
must be a ready sample of the user setting it or of the account's own user, whose id is
then kept as ``sampleOwnerId``), so a mapping never points at a sample that cannot be
cloned at the time it is saved; the embedded cloner is then warmed for the sample's
language (``shared.precall.warmup``). Changing a mapping's number or sample, or deleting
it, expires the clones cached from it in the same transaction (the expiry job then gives
the provider's voice back); a clone being made from it at that moment is given back
instead of cached (``shared.precall.cloning`` checks the mapping when saving it). A
mapping naming a recording of the account's folder holds the recording's lock in the
transaction that saves it, so a deletion of the recording at the same moment is either
refused for the mapping or makes the mapping's save fail; uploading and deleting
recordings is ``shared.precall.recordings``.
"""

from __future__ import annotations

from shared.model import with_changes
from shared.precall.deps import Caller, PrecallDeps
from shared.precall.errors import CallerIdTakenError, CallerMappingNotFoundError
from shared.precall.model import CallerVoiceMapping
from shared.precall.recordings import hold_recording
from shared.precall.repository import (
    MAPPING_CLAIMS,
    MAPPINGS,
    cache_from,
    caller_key,
    claim_document,
    live_cache_of,
    live_mappings,
    mapping_from,
    tx_expire_cache,
)
from shared.precall.samples import (
    CheckedSample,
    SampleAudio,
    check_allowed,
    check_read,
    sample_owners,
)
from shared.precall.schemas import (
    MappingCreate,
    MappingDeleted,
    MappingPage,
    MappingUpdate,
)
from shared.precall.warmup import queue_warm_up
from shared.store.base import Transaction


def check_sample_source(
    deps: PrecallDeps, caller: Caller, account_id: str, url: str | None, sample_id: str | None
) -> tuple[CheckedSample, SampleAudio]:
    """Return the checked sample a mapping would clone from, and the sample as read.

    Raises SampleLocationNotAllowedError, SampleUnreachableError, SampleNotAudioError,
    SampleUnusableError, SampleNotFoundError (not a sample of the caller's or the
    account's own user) or SampleNotReadyError.
    """
    if url is not None:
        check_allowed(deps.settings, account_id, url)
    sample = deps.samples.read(url, sample_id, owners=sample_owners(caller.user_id, account_id))
    return check_read(sample, deps.settings), sample


def _owner_of(sample: SampleAudio) -> str | None:
    return sample.stored.owner_id if sample.stored is not None else None


def create_mapping(deps: PrecallDeps, caller: Caller, request: MappingCreate) -> CallerVoiceMapping:
    """Store a mapping of a number to a sample; return it.

    Raises AccessDeniedError, the sample errors (see ``check_sample_source``) or
    CallerIdTakenError (the number has a live mapping in the account).
    """
    account_id = caller.account_for(request.account_id)
    _, sample = check_sample_source(
        deps, caller, account_id, request.voice_sample_url, request.sample_id
    )
    now = deps.clock()
    mapping = CallerVoiceMapping(
        caller_id=request.caller_id,
        voice_sample_url=request.voice_sample_url,
        sample_id=request.sample_id,
        sample_owner_id=_owner_of(sample),
        voice_name=request.voice_name,
        description=request.description,
        account_id=account_id,
        created_by=caller.user_id,
        created_at=now,
        updated_at=now,
    )

    def create(tx: Transaction) -> None:
        recording = hold_recording(tx, deps, account_id, mapping.voice_sample_url, now)
        _claim(tx, mapping)
        tx.create(MAPPINGS, mapping.id, mapping.to_document())
        if recording is not None:
            recording.write(tx)

    deps.store.run_transaction(create)
    queue_warm_up(deps, sample.language)
    return mapping


def _claim(tx: Transaction, mapping: CallerVoiceMapping) -> None:
    key = caller_key(str(mapping.account_id), mapping.caller_id)
    claim = tx.get(MAPPING_CLAIMS, key)
    if claim is not None and claim.data.get("mapping_id") != mapping.id:
        holder = tx.get(MAPPINGS, str(claim.data.get("mapping_id")))
        if holder is not None and holder.data.get("deleted_at") is None:
            raise CallerIdTakenError(
                f"{mapping.caller_id} already maps to {holder.id} in this account"
            )
    tx.set(MAPPING_CLAIMS, key, claim_document(mapping))


def get_mapping(
    deps: PrecallDeps, caller: Caller, mapping_id: str, account: str | None
) -> CallerVoiceMapping:
    """Return a live mapping of the account; raise CallerMappingNotFoundError."""
    account_id = caller.account_for(account)
    document = deps.store.get(MAPPINGS, mapping_id)
    mapping = mapping_from(document) if document else None
    if mapping is None or mapping.is_deleted or mapping.account_id != account_id:
        raise CallerMappingNotFoundError()
    return mapping


def list_mappings(
    deps: PrecallDeps, caller: Caller, account: str | None, limit: int, cursor: str | None
) -> MappingPage:
    """Return one page of the account's live mappings, newest first.

    Raises AccessDeniedError or InvalidRequestError (a cursor not from this list).
    """
    account_id = caller.account_for(account)
    page = deps.store.query(live_mappings(account_id).take(limit).after(cursor))
    return MappingPage(
        mappings=[mapping_from(document) for document in page.documents],
        next_cursor=page.next_cursor,
    )


def update_mapping(
    deps: PrecallDeps, caller: Caller, mapping_id: str, request: MappingUpdate
) -> CallerVoiceMapping:
    """Apply the changes; return the mapping.

    Raises CallerMappingNotFoundError, CallerIdTakenError, or the sample errors.
    """
    account_id = caller.account_for(request.account_id)
    changes = request.changes()
    sample = None
    if "voice_sample_url" in changes or "sample_id" in changes:
        _, sample = check_sample_source(
            deps, caller, account_id, request.voice_sample_url, request.sample_id
        )
        changes.setdefault("voice_sample_url", None)
        changes.setdefault("sample_id", None)
        changes["sample_owner_id"] = _owner_of(sample)
    now = deps.clock()

    def update(tx: Transaction) -> CallerVoiceMapping:
        current = _tx_live(tx, account_id, mapping_id)
        updated = with_changes(current, **changes, updated_at=now)
        moved = updated.caller_id != current.caller_id
        resampled = updated.sample_source != current.sample_source
        recording = None
        if resampled:
            recording = hold_recording(tx, deps, account_id, updated.voice_sample_url, now)
        stale = []
        if moved or resampled:
            stale = [cache_from(d) for d in tx.query(live_cache_of(account_id, current.caller_id))]
        if moved:
            _claim(tx, updated)
            tx.delete(MAPPING_CLAIMS, caller_key(account_id, current.caller_id))
        tx.set(MAPPINGS, mapping_id, updated.to_document())
        tx_expire_cache(tx, stale, now)
        if recording is not None:
            recording.write(tx)
        return updated

    updated = deps.store.run_transaction(update)
    if sample is not None:
        queue_warm_up(deps, sample.language)
    return updated


def delete_mapping(
    deps: PrecallDeps, caller: Caller, mapping_id: str, account: str | None
) -> MappingDeleted:
    """Soft-delete the mapping, free its number and expire its clones.

    Raises CallerMappingNotFoundError.
    """
    account_id = caller.account_for(account)
    now = deps.clock()

    def delete(tx: Transaction) -> MappingDeleted:
        current = _tx_live(tx, account_id, mapping_id)
        key = caller_key(account_id, current.caller_id)
        claim = tx.get(MAPPING_CLAIMS, key)
        stale = [cache_from(d) for d in tx.query(live_cache_of(account_id, current.caller_id))]
        tx.update(MAPPINGS, mapping_id, {"deleted_at": now, "updated_at": now})
        if claim is not None and claim.data.get("mapping_id") == mapping_id:
            tx.delete(MAPPING_CLAIMS, key)
        tx_expire_cache(tx, stale, now)
        return MappingDeleted(id=mapping_id, deleted_at=now)

    return deps.store.run_transaction(delete)


def _tx_live(tx: Transaction, account_id: str, mapping_id: str) -> CallerVoiceMapping:
    document = tx.get(MAPPINGS, mapping_id)
    mapping = mapping_from(document) if document else None
    if mapping is None or mapping.is_deleted or mapping.account_id != account_id:
        raise CallerMappingNotFoundError()
    return mapping
