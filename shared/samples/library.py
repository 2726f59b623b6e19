"""A user's samples: list, read, change, delete, find similar voices, purge an account.

Users see their own samples and everyone's public ones (admins see all); another user's
private sample is "not found", so ids cannot be probed. Only the owner (or an admin)
changes or deletes a sample: a public sample of someone else is 403 for that.

``similar_samples`` ranks samples by the cosine distance of their speaker embeddings to the
query sample's, among the caller's own samples or everyone's public ones: Firestore's
``find_nearest`` over a vector index in production, an exact numpy search over the
embedded store locally. Deleting a sample removes its object, its embedding and its bytes
from the owner's storage used; the records go in one transaction, the object first so a
retried delete always finishes the job.
"""

from __future__ import annotations

import logging

from shared.capability import delete_owned
from shared.errors import AccessDeniedError, InvalidRequestError, echoed
from shared.samples.deps import Caller, SampleDeps
from shared.samples.errors import SampleNotFoundError, SampleNotReadyError
from shared.samples.model import (
    SampleDeleted,
    SampleListQuery,
    SampleStatus,
    SimilarQuery,
    SimilarSample,
    SimilarSamples,
    VoiceSample,
    VoiceSamplePage,
    VoiceSamplePublic,
    VoiceSampleUpdate,
)
from shared.samples.repository import (
    VOICE_EMBEDDINGS,
    VOICE_SAMPLES,
    SampleRepository,
    scope_filters,
)
from shared.samples.uploads import user_prefix
from shared.store.base import Filter

logger = logging.getLogger(__name__)


def may_read(caller: Caller, sample: VoiceSample) -> bool:
    """Return whether the caller may see ``sample``: owner, admin, or a public sample."""
    return caller.is_admin or sample.user_id == caller.user_id or sample.is_public


def readable_sample(deps: SampleDeps, caller: Caller, sample_id: str) -> VoiceSample:
    """Return the sample if the caller may see it.

    Raises SampleNotFoundError otherwise (not found or access denied).
    """
    sample = SampleRepository(deps.store).get(sample_id)
    if sample is None or not may_read(caller, sample):
        raise SampleNotFoundError(f"Voice sample not found or access denied: {echoed(sample_id)}")
    return sample


def owned_sample(deps: SampleDeps, caller: Caller, sample_id: str) -> VoiceSample:
    """Return the sample if the caller may change it (owner or admin).

    Raises SampleNotFoundError, or AccessDeniedError for someone else's public sample.
    """
    sample = readable_sample(deps, caller, sample_id)
    if not caller.is_admin and sample.user_id != caller.user_id:
        raise AccessDeniedError("Only its owner may change a voice sample")
    return sample


def list_samples(deps: SampleDeps, caller: Caller, query: SampleListQuery) -> VoiceSamplePage:
    """Return one page of the caller's samples (or public ones), newest first.

    Raises InvalidRequestError for a cursor this listing did not give.
    """
    samples, cursor = SampleRepository(deps.store).page(
        scope_filters(query.scope, caller.user_id),
        status=query.status,
        limit=query.limit,
        cursor=query.cursor,
    )
    return VoiceSamplePage(
        samples=[VoiceSamplePublic.from_entity(s) for s in samples], next_cursor=cursor
    )


def update_sample(
    deps: SampleDeps, caller: Caller, sample_id: str, request: VoiceSampleUpdate
) -> VoiceSample:
    """Change a sample's name, language or public flag; return it.

    The embedding's copy of the public flag and language changes with it, so similarity
    searches over public samples see the change at once.
    Raises InvalidRequestError (nothing to change), SampleNotFoundError or AccessDeniedError.
    """
    changes = request.changes()
    if not changes:
        raise InvalidRequestError("Give name, language or isPublic to change")
    if any(value is None for value in changes.values()):
        raise InvalidRequestError("name, language and isPublic cannot be null")
    owned_sample(deps, caller, sample_id)
    changed = SampleRepository(deps.store).change(sample_id, changes)
    if changed is None:
        raise SampleNotFoundError(f"Voice sample not found or access denied: {echoed(sample_id)}")
    return changed


def delete_sample(deps: SampleDeps, caller: Caller, sample_id: str) -> SampleDeleted:
    """Delete the sample's object, then its record and embedding with its storage used.

    Raises SampleNotFoundError or AccessDeniedError.
    """
    sample = owned_sample(deps, caller, sample_id)
    deleted_object = deps.blobs.delete(deps.bucket, sample.file_path)
    removed = SampleRepository(deps.store).delete(sample_id)
    if removed is None:
        raise SampleNotFoundError(f"Voice sample not found or access denied: {echoed(sample_id)}")
    if sample.status is SampleStatus.AWAITING_UPLOAD:
        # Its signed URL still takes the file: one that landed while the record was still
        # there goes now (one landing later names no sample: its event deletes it).
        deleted_object = deps.blobs.delete(deps.bucket, sample.file_path) or deleted_object
    gone, had_embedding = removed
    return SampleDeleted(
        id=sample_id,
        deleted_object=deleted_object,
        deleted_embedding=had_embedding,
        freed_bytes=gone.size_bytes,
    )


def similar_samples(
    deps: SampleDeps, caller: Caller, sample_id: str, query: SimilarQuery
) -> SimilarSamples:
    """Return the samples whose voices are nearest the sample's, nearest first.

    Raises SampleNotFoundError or SampleNotReadyError (not processed, so no embedding).
    """
    sample = readable_sample(deps, caller, sample_id)
    repository = SampleRepository(deps.store)
    vector = repository.embedding(sample.id) if sample.status is SampleStatus.READY else None
    if vector is None:
        raise SampleNotReadyError(
            f"Voice sample {sample_id} is {sample.status.value}; only ready samples have a voice"
        )
    filters: list[Filter] = scope_filters(query.scope, caller.user_id)
    # One more than asked: the sample itself is its own nearest neighbour.
    neighbours = repository.nearest(list(vector), filters=filters, limit=query.limit + 1)
    ranked = [n for n in neighbours if n.document.id != sample.id][: query.limit]
    found = repository.get_many([n.document.id for n in ranked])
    similar = [
        SimilarSample(
            sample=VoiceSamplePublic.from_entity(found[n.document.id]),
            distance=round(n.distance, 6),
            similarity=round(1.0 - n.distance, 6),
        )
        for n in ranked
        if n.document.id in found and may_read(caller, found[n.document.id])
    ]
    return SimilarSamples(sample_id=sample.id, scope=query.scope, similar=similar)


def purge_samples(deps: SampleDeps, user_id: str) -> int:
    """Delete every sample object, embedding and record of ``user_id``; return the records.

    For a deleted account: the storage used goes with the user record.
    """
    objects = deps.blobs.delete_prefix(deps.bucket, user_prefix(user_id))
    embeddings = delete_owned(deps.store, VOICE_EMBEDDINGS, user_id)
    records = delete_owned(deps.store, VOICE_SAMPLES, user_id)
    # A signed upload that landed while its record was still there (see delete_sample).
    objects += deps.blobs.delete_prefix(deps.bucket, user_prefix(user_id))
    logger.info(
        "Purged the samples of a deleted account",
        extra={"fields": {"objects": objects, "embeddings": embeddings, "records": records}},
    )
    return records
