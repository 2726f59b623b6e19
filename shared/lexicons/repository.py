"""Lexicons in the document store: the latest version of each, and every version kept.

``lexicons/{id}`` holds the latest version (what lists and reads show);
``lexicon_versions/{id}_{version}`` keeps every version, so a synthesis request that pins
``id@2`` gets exactly the rules it named after later changes. A change writes the new
version to both in one transaction, so a reader never sees a version that is not kept.
"""

from __future__ import annotations

from typing import Any

from shared.lexicons.model import Lexicon
from shared.store.base import DocumentStore, Query, Transaction

LEXICONS = "lexicons"
LEXICON_VERSIONS = "lexicon_versions"


def version_id(lexicon_id: str, version: int) -> str:
    """Return the document id of one version."""
    return f"{lexicon_id}_{version}"


def _document(lexicon: Lexicon) -> dict[str, Any]:
    data = lexicon.to_document()
    data["rules"] = [rule.to_document() for rule in lexicon.rules]
    return data


class LexiconRepository:
    """Lexicons and their versions."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def add(self, lexicon: Lexicon) -> None:
        """Store a new lexicon (its first version)."""
        with self._store.batch() as batch:
            batch.create(LEXICONS, lexicon.id, _document(lexicon))
            batch.create(
                LEXICON_VERSIONS, version_id(lexicon.id, lexicon.version), _document(lexicon)
            )

    def latest(self, lexicon_id: str) -> Lexicon | None:
        """Return the latest version, or None."""
        document = self._store.get(LEXICONS, lexicon_id)
        return Lexicon.model_validate(document.data) if document else None

    def version(self, lexicon_id: str, version: int) -> Lexicon | None:
        """Return one version, or None."""
        document = self._store.get(LEXICON_VERSIONS, version_id(lexicon_id, version))
        return Lexicon.model_validate(document.data) if document else None

    @staticmethod
    def tx_latest(tx: Transaction, lexicon_id: str) -> Lexicon | None:
        """Return the latest version read in ``tx``, or None."""
        document = tx.get(LEXICONS, lexicon_id)
        return Lexicon.model_validate(document.data) if document else None

    @staticmethod
    def tx_save_version(tx: Transaction, lexicon: Lexicon) -> None:
        """Write ``lexicon`` as its id's latest version and keep that version."""
        tx.set(LEXICONS, lexicon.id, _document(lexicon))
        tx.create(LEXICON_VERSIONS, version_id(lexicon.id, lexicon.version), _document(lexicon))

    def page(
        self, user_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[Lexicon], str | None]:
        """Return one page of the user's lexicons, newest change first."""
        query = (
            Query(LEXICONS)
            .where("user_id", "==", user_id)
            .order("updated_at", descending=True)
            .take(limit)
            .after(cursor)
        )
        page = self._store.query(query)
        return [Lexicon.model_validate(d.data) for d in page.documents], page.next_cursor

    def remove(self, lexicon_id: str) -> None:
        """Delete the lexicon and every version of it."""
        self._store.delete_matching(Query(LEXICON_VERSIONS).where("id", "==", lexicon_id))
        self._store.delete(LEXICONS, lexicon_id)

    def purge_user(self, user_id: str) -> int:
        """Delete every lexicon and version of ``user_id``; return how many lexicons went."""
        self._store.delete_matching(Query(LEXICON_VERSIONS).where("user_id", "==", user_id))
        return self._store.delete_matching(Query(LEXICONS).where("user_id", "==", user_id))
