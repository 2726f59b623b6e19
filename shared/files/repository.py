"""Audio files and their counters in the document store (``audio_files/{fileId}``).

A file record belongs to one user; several records may name the same stored object (a
synthesis cache hit gives the requesting user a record of their own pointing at the
object the first synthesis stored), so an object is deleted only when no record names it.
Downloads are counted with an ``Increment`` so concurrent downloads never lose one. A
record and its owner's storage used change in one transaction.
"""

from __future__ import annotations

from datetime import datetime

from shared.files.model import AudioFile
from shared.store.base import DocumentStore, Increment, Query, Transaction
from shared.users.storage import USERS, storage_used_change

AUDIO_FILES = "audio_files"


def bytes_held_in(tx: Transaction, user_id: str) -> int:
    """Return the bytes of every audio file record of ``user_id``, read in ``tx``."""
    records = tx.query(Query(AUDIO_FILES).where("user_id", "==", user_id))
    return sum(int(document.data.get("file_size", 0)) for document in records)


def file_from(data: dict[str, object], file_id: str) -> AudioFile:
    """Return the entity stored as ``data``."""
    return AudioFile.model_validate({**data, "id": file_id})


class AudioFileRepository:
    """Reads and writes of audio file records."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def add_in(self, tx: Transaction, audio_file: AudioFile) -> None:
        """Add a new record, and its size to its owner's storage used, in ``tx``.

        Reads the owner first (a transaction's reads come before its writes). Tokens may
        belong to users who never registered a profile: their records are stored with
        nothing to count on, and registration counts them (``bytes_held_in``).
        """
        document = audio_file.to_document()
        document["format"] = audio_file.format.value
        owner = tx.get(USERS, audio_file.user_id)
        tx.create(AUDIO_FILES, audio_file.id, document)
        if owner is not None:
            tx.update(USERS, owner.id, storage_used_change(owner, audio_file.file_size))

    def get(self, file_id: str) -> AudioFile | None:
        """Return the record or None."""
        document = self._store.get(AUDIO_FILES, file_id)
        return file_from(document.data, document.id) if document else None

    def count_download(self, file_id: str, now: datetime) -> None:
        """Add one download and set the last access time, atomically."""
        self._store.update(
            AUDIO_FILES, file_id, {"download_count": Increment(1), "last_accessed_at": now}
        )

    def set_public(self, file_id: str, is_public: bool) -> None:
        """Set whether anyone may download the file."""
        self._store.update(AUDIO_FILES, file_id, {"is_public": is_public})

    def touch(self, file_id: str, now: datetime) -> None:
        """Set the last access time."""
        self._store.update(AUDIO_FILES, file_id, {"last_accessed_at": now})

    def expired(self, now: datetime, *, limit: int) -> list[AudioFile]:
        """Return up to ``limit`` records whose expiry has passed at ``now``."""
        query = Query(AUDIO_FILES).where("expires_at", "<=", now).take(limit)
        return [file_from(d.data, d.id) for d in self._store.query(query).documents]

    def newest_of(
        self, user_id: str, *, limit: int, cursor: str | None = None
    ) -> tuple[list[AudioFile], str | None]:
        """Return one page of the user's records, newest first, and the next cursor."""
        query = (
            Query(AUDIO_FILES)
            .where("user_id", "==", user_id)
            .order("created_at", descending=True)
            .take(limit)
            .after(cursor)
        )
        page = self._store.query(query)
        return [file_from(d.data, d.id) for d in page.documents], page.next_cursor

    def path_in_use(self, file_path: str) -> bool:
        """Return whether any record names the stored object ``file_path``."""
        return self._store.count(Query(AUDIO_FILES).where("file_path", "==", file_path)) > 0

    def delete(self, file_id: str) -> AudioFile | None:
        """Delete the record and free its size from its owner's storage used, atomically.

        Returns the deleted record, or None when it was already gone (then nothing is
        freed, so a retried or concurrent delete never frees the space twice).
        """

        def delete(tx: Transaction) -> AudioFile | None:
            document = tx.get(AUDIO_FILES, file_id)
            if document is None:
                return None
            audio_file = file_from(document.data, file_id)
            owner = tx.get(USERS, audio_file.user_id)
            tx.delete(AUDIO_FILES, file_id)
            if owner is not None:
                tx.update(USERS, owner.id, storage_used_change(owner, -audio_file.file_size))
            return audio_file

        return self._store.run_transaction(delete)
