"""Voice models, their activation pointers and their shares in the document store.

A model is ``voice_models/{modelId}`` (snake_case fields, ``deleted_at`` null while it
lives). ``voice_model_active/{userId}`` names the user's active model: every transaction
that changes activation reads and writes it, which serialises them on Firestore too (a
query that finds *no* active model locks nothing, but this document always gets locked).
Those transactions also query the user's models flagged active and clear every flag but
one, so the invariant "at most one active model per user" holds even if a flag was ever
left behind. A share is ``voice_model_shares/{sha256(modelId, targetUserId)}``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from shared.store.base import Document, DocumentStore, Query, Transaction
from shared.voice_models.model import ModelShare, VoiceModel

VOICE_MODELS = "voice_models"
ACTIVE_POINTERS = "voice_model_active"
SHARES = "voice_model_shares"


def model_from(document: Document) -> VoiceModel:
    """Return the entity stored in ``document``."""
    return VoiceModel.model_validate({**document.data, "id": document.id})


def _live_for_user(user_id: str) -> Query:
    return Query(VOICE_MODELS).where("user_id", "==", user_id).where("deleted_at", "==", None)


def _active_for_user(user_id: str) -> Query:
    return Query(VOICE_MODELS).where("user_id", "==", user_id).where("is_active", "==", True)


class VoiceModelRepository:
    """Reads of voice models outside transactions, and the helpers transactions use."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def get(self, model_id: str) -> VoiceModel | None:
        """Return the model (deleted or not) or None."""
        document = self._store.get(VOICE_MODELS, model_id)
        return model_from(document) if document else None

    def get_many(self, model_ids: list[str]) -> dict[str, VoiceModel]:
        """Return the existing models among ``model_ids``, by id."""
        found = self._store.get_many(VOICE_MODELS, model_ids)
        return {model_id: model_from(document) for model_id, document in found.items()}

    def live_for_user(self, user_id: str) -> list[VoiceModel]:
        """Return the user's models that are not deleted, newest first."""
        models = [model_from(d) for d in self._store.stream(_live_for_user(user_id))]
        return sorted(models, key=lambda m: (m.created_at, m.id), reverse=True)

    def active_for_user(self, user_id: str) -> VoiceModel | None:
        """Return the user's active model, or None."""
        pointer = self._store.get(ACTIVE_POINTERS, user_id)
        model_id = pointer.data.get("model_id") if pointer else None
        if not isinstance(model_id, str):
            return None
        model = self.get(model_id)
        if model is None or model.is_deleted or not model.is_active:
            return None
        return model

    def cleanup_candidates(self, quality_below: float) -> list[VoiceModel]:
        """Return every live, inactive model scoring below ``quality_below``."""
        query = (
            Query(VOICE_MODELS)
            .where("deleted_at", "==", None)
            .where("is_active", "==", False)
            .where("quality_score", "<", quality_below)
        )
        return [model_from(document) for document in self._store.stream(query)]

    # -- inside transactions ----------------------------------------------------------

    @staticmethod
    def tx_get(tx: Transaction, model_id: str) -> VoiceModel | None:
        """Return the model read in ``tx``."""
        document = tx.get(VOICE_MODELS, model_id)
        return model_from(document) if document else None

    @staticmethod
    def tx_get_many(tx: Transaction, model_ids: list[str]) -> dict[str, VoiceModel]:
        """Return the existing models among ``model_ids``, read in ``tx``."""
        found = tx.get_many(VOICE_MODELS, model_ids)
        return {model_id: model_from(document) for model_id, document in found.items()}

    @staticmethod
    def tx_activation(tx: Transaction, user_id: str) -> list[VoiceModel]:
        """Read the user's activation pointer (to lock it) and return the flagged models."""
        tx.get(ACTIVE_POINTERS, user_id)
        return [model_from(document) for document in tx.query(_active_for_user(user_id))]

    @staticmethod
    def tx_live_for_user(
        tx: Transaction, user_id: str, *, limit: int | None = None
    ) -> list[VoiceModel]:
        """Return the user's live models, read in ``tx``."""
        query = _live_for_user(user_id)
        if limit is not None:
            query = query.take(limit)
        return [model_from(document) for document in tx.query(query)]

    @staticmethod
    def tx_set_pointer(tx: Transaction, user_id: str, model_id: str | None, now: datetime) -> None:
        """Write the user's activation pointer."""
        tx.set(
            ACTIVE_POINTERS, user_id, {"user_id": user_id, "model_id": model_id, "updated_at": now}
        )


def share_id(model_id: str, target_user_id: str) -> str:
    """Return the id of the share document of ``model_id`` with ``target_user_id``."""
    return hashlib.sha256(f"{model_id}\n{target_user_id}".encode()).hexdigest()


class ShareRepository:
    """Grants letting other users read and synthesize with a model."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def get(self, model_id: str, target_user_id: str) -> ModelShare | None:
        """Return the grant of ``model_id`` to ``target_user_id``, or None."""
        document = self._store.get(SHARES, share_id(model_id, target_user_id))
        return ModelShare.model_validate(document.data) if document else None

    def grant(self, shares: list[ModelShare]) -> None:
        """Store the grants (replacing the same grants)."""
        with self._store.batch() as batch:
            for share in shares:
                batch.set(
                    SHARES, share_id(share.model_id, share.target_user_id), share.to_document()
                )

    def revoke(self, model_id: str, target_user_id: str) -> None:
        """Remove the grant, if any."""
        self._store.delete(SHARES, share_id(model_id, target_user_id))

    def for_model(self, model_id: str) -> list[ModelShare]:
        """Return the grants of a model."""
        return self._shares(Query(SHARES).where("model_id", "==", model_id))

    def for_owner(self, owner_id: str) -> list[ModelShare]:
        """Return every grant an owner made."""
        return self._shares(Query(SHARES).where("owner_id", "==", owner_id))

    def for_target(self, target_user_id: str) -> list[ModelShare]:
        """Return the grants made to a user."""
        return self._shares(Query(SHARES).where("target_user_id", "==", target_user_id))

    def _shares(self, query: Query) -> list[ModelShare]:
        shares = [ModelShare.model_validate(d.data) for d in self._store.stream(query)]
        return sorted(shares, key=lambda s: (s.created_at, s.model_id, s.target_user_id))


def model_changes(model: VoiceModel, **fields: Any) -> dict[str, Any]:
    """Return ``model`` with ``fields`` changed, validated, as a stored document."""
    return VoiceModel.model_validate({**model.model_dump(), **fields}).to_document()
