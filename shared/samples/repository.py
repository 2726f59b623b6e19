"""Voice samples and their speaker embeddings in the document store.

A sample is ``voice_samples/{sampleId}`` (snake_case fields); its embedding is
``voice_embeddings/{sampleId}`` (the seed's vector collection: the 256-float ``embedding``
with the owner, public flag, language, duration and quality beside it, so that vector
search can pre-filter on them; Firestore needs a vector index per filter, see
``infra/firestore.tf``). A sample's bytes count against its owner's ``storage_used_bytes``,
changed in the same transaction as the record that adds or removes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.lazy import lazy_module
from shared.model import utcnow, with_changes
from shared.samples.model import (
    EMBEDDING_MODEL,
    SampleStatus,
    Scope,
    VoiceEmbedding,
    VoiceSample,
)
from shared.store.base import (
    Document,
    DocumentStore,
    Filter,
    Neighbour,
    Query,
    Transaction,
    Vector,
)
from shared.users.storage import USERS, storage_used_change

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    np = lazy_module("numpy")

VOICE_SAMPLES = "voice_samples"
VOICE_EMBEDDINGS = "voice_embeddings"
EMBEDDING_FIELD = "embedding"


def sample_from(document: Document) -> VoiceSample:
    """Return the entity stored in ``document``."""
    return VoiceSample.model_validate({**document.data, "id": document.id})


def scope_filters(scope: Scope, user_id: str) -> list[Filter]:
    """Return the filters of a scope: the user's own samples, or everyone's public ones."""
    if scope == "own":
        return [Filter("user_id", "==", user_id)]
    return [Filter("is_public", "==", True)]


def embedding_document(sample: VoiceSample, vector: npt.NDArray[np.floating]) -> dict[str, Any]:
    """Return the stored embedding of ``sample``: the vector and the fields searches filter on."""
    meta = VoiceEmbedding(
        sample_id=sample.id,
        user_id=sample.user_id,
        is_public=sample.is_public,
        language=sample.language,
        duration=sample.duration,
        quality_score=sample.quality_score,
        embedding_model=EMBEDDING_MODEL,
        dimension=len(vector),
    )
    return {**meta.to_document(), EMBEDDING_FIELD: Vector(float(v) for v in vector)}


def bytes_held_in(tx: Transaction, user_id: str) -> int:
    """Return the bytes of every sample record of ``user_id``, read in ``tx``."""
    records = tx.query(Query(VOICE_SAMPLES).where("user_id", "==", user_id))
    return sum(int(document.data.get("size_bytes", 0)) for document in records)


class SampleRepository:
    """Reads and writes of samples and embeddings."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def get(self, sample_id: str) -> VoiceSample | None:
        """Return the sample or None."""
        document = self._store.get(VOICE_SAMPLES, sample_id)
        return sample_from(document) if document else None

    def get_many(self, sample_ids: Sequence[str]) -> dict[str, VoiceSample]:
        """Return the existing samples among ``sample_ids``, by id."""
        found = self._store.get_many(VOICE_SAMPLES, list(sample_ids))
        return {sample_id: sample_from(document) for sample_id, document in found.items()}

    def page(
        self,
        filters: Sequence[Filter],
        *,
        status: SampleStatus | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[VoiceSample], str | None]:
        """Return one page of matching samples, newest first, and the next page's cursor.

        Raises InvalidRequestError for a cursor this query did not give.
        """
        query = Query(VOICE_SAMPLES, filters=tuple(filters))
        if status is not None:
            query = query.where("status", "==", status.value)
        query = query.order("created_at", descending=True).take(limit).after(cursor)
        page = self._store.query(query)
        return [sample_from(d) for d in page.documents], page.next_cursor

    def for_user(self, user_id: str) -> list[VoiceSample]:
        """Return every sample of ``user_id``."""
        query = Query(VOICE_SAMPLES).where("user_id", "==", user_id)
        return [sample_from(d) for d in self._store.stream(query)]

    def add(self, sample: VoiceSample) -> None:
        """Store a new sample and add its bytes to its owner's storage used, atomically."""

        def add(tx: Transaction) -> None:
            owner = tx.get(USERS, sample.user_id)
            tx.create(VOICE_SAMPLES, sample.id, sample.to_document())
            if owner is not None and sample.size_bytes:
                tx.update(USERS, owner.id, storage_used_change(owner, sample.size_bytes))

        self._store.run_transaction(add)

    def save(self, sample: VoiceSample) -> None:
        """Replace the stored sample."""
        self._store.set(VOICE_SAMPLES, sample.id, sample.to_document())

    def embedding(self, sample_id: str) -> npt.NDArray[np.float64] | None:
        """Return the sample's stored embedding, or None."""
        document = self._store.get(VOICE_EMBEDDINGS, sample_id)
        vector = document.data.get(EMBEDDING_FIELD) if document else None
        if not isinstance(vector, Vector):
            return None
        return np.asarray(vector, dtype=np.float64)

    def embeddings(self, sample_ids: Sequence[str]) -> dict[str, npt.NDArray[np.float64]]:
        """Return the stored embeddings among ``sample_ids``, by sample id."""
        found = self._store.get_many(VOICE_EMBEDDINGS, list(sample_ids))
        vectors = {}
        for sample_id, document in found.items():
            vector = document.data.get(EMBEDDING_FIELD)
            if isinstance(vector, Vector):
                vectors[sample_id] = np.asarray(vector, dtype=np.float64)
        return vectors

    def nearest(
        self, vector: Sequence[float], *, filters: Sequence[Filter], limit: int
    ) -> list[Neighbour]:
        """Return up to ``limit`` embeddings nearest to ``vector`` by cosine distance."""
        return self._store.find_nearest(
            VOICE_EMBEDDINGS, EMBEDDING_FIELD, vector, limit=limit, filters=filters
        )

    def change(self, sample_id: str, changes: dict[str, Any]) -> VoiceSample | None:
        """Apply ``changes`` to the stored sample and its embedding's copies, atomically.

        The sample is read again inside the transaction, so a change never undoes what
        processing wrote meanwhile; the embedding's public flag and language follow.
        Returns the changed sample, or None when it is gone. Raises pydantic's
        ValidationError for a change the sample's rules refuse.
        """

        def change(tx: Transaction) -> VoiceSample | None:
            sample = SampleRepository.tx_get(tx, sample_id)
            if sample is None:
                return None
            embedding = tx.get(VOICE_EMBEDDINGS, sample_id)
            changed = with_changes(sample, **changes, updated_at=utcnow())
            tx.set(VOICE_SAMPLES, sample_id, changed.to_document())
            if embedding is not None:
                tx.update(
                    VOICE_EMBEDDINGS,
                    sample_id,
                    {"is_public": changed.is_public, "language": changed.language},
                )
            return changed

        return self._store.run_transaction(change)

    def delete(self, sample_id: str) -> tuple[VoiceSample, bool] | None:
        """Delete the sample and its embedding, freeing its bytes from the owner's storage.

        All in one transaction; returns the deleted sample and whether it had an embedding,
        or None when it was already gone (then nothing is freed twice).
        """

        def delete(tx: Transaction) -> tuple[VoiceSample, bool] | None:
            document = tx.get(VOICE_SAMPLES, sample_id)
            if document is None:
                return None
            sample = sample_from(document)
            embedding = tx.get(VOICE_EMBEDDINGS, sample_id)
            owner = tx.get(USERS, sample.user_id)
            tx.delete(VOICE_SAMPLES, sample_id)
            tx.delete(VOICE_EMBEDDINGS, sample_id)
            if owner is not None and sample.size_bytes:
                tx.update(USERS, owner.id, storage_used_change(owner, -sample.size_bytes))
            return sample, embedding is not None

        return self._store.run_transaction(delete)

    def awaiting_upload_since(self, cutoff: datetime, *, limit: int) -> list[VoiceSample]:
        """Return the ``limit`` oldest samples still awaiting upload, created before ``cutoff``."""
        query = (
            Query(VOICE_SAMPLES)
            .where("status", "==", SampleStatus.AWAITING_UPLOAD.value)
            .where("created_at", "<", cutoff)
            .order("created_at")
            .take(limit)
        )
        return [sample_from(d) for d in self._store.query(query).documents]

    def delete_if_awaiting_upload(self, sample_id: str, cutoff: datetime) -> VoiceSample | None:
        """Delete the sample if it still awaits its upload and was created before ``cutoff``.

        Read again in the transaction, so an upload that landed meanwhile keeps its sample.
        Returns the deleted sample, or None when it was left (or already gone). Such a
        sample has no embedding and no bytes counted, so nothing else changes.
        """

        def delete(tx: Transaction) -> VoiceSample | None:
            sample = SampleRepository.tx_get(tx, sample_id)
            if (
                sample is None
                or sample.status is not SampleStatus.AWAITING_UPLOAD
                or sample.created_at >= cutoff
            ):
                return None
            tx.delete(VOICE_SAMPLES, sample_id)
            return sample

        return self._store.run_transaction(delete)

    # -- inside transactions ----------------------------------------------------------

    @staticmethod
    def tx_get(tx: Transaction, sample_id: str) -> VoiceSample | None:
        """Return the sample read in ``tx``."""
        document = tx.get(VOICE_SAMPLES, sample_id)
        return sample_from(document) if document else None

    @staticmethod
    def tx_owner(tx: Transaction, user_id: str) -> Document | None:
        """Return the owner's user record read in ``tx`` (None for unregistered users)."""
        return tx.get(USERS, user_id)

    @staticmethod
    def tx_change_storage(tx: Transaction, owner: Document | None, delta_bytes: int) -> None:
        """Queue the change of the owner's storage used (nothing without a record)."""
        if owner is not None and delta_bytes:
            tx.update(USERS, owner.id, storage_used_change(owner, delta_bytes))
