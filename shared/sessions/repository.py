"""Where active sessions live between connections: one document per session.

Only ACTIVE sessions are stored (the seed: active sessions persist, completed ones are
ephemeral): completing a session deletes its document. A document holds the session's
config and conversation, so any instance can rebuild the pipeline when the client comes
back. ``claim`` hands a stored session to a new connection in a transaction; the
connection that owned it before finds out at its next ``save``, which only writes while
the stored ``connection_id`` is still its own. A session whose client has been gone longer
than the resume window can no longer be claimed, and its document is deleted then; each
document carries ``expires_at`` (last activity + resume window) so that Firestore's TTL
also deletes the sessions of an instance that died without saying goodbye.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.errors import NotFoundError
from shared.sessions.model import PersistenceStatus, VoiceSession
from shared.store import DocumentStore, Transaction

COLLECTION = "voice_sessions"
EXPIRES_AT = "expires_at"


class SessionNotFoundError(NotFoundError):
    """No resumable session with that id for this user (never existed, ended, or expired)."""

    code = "SESSION_NOT_FOUND"
    default_message = "No resumable session with that id"


class SessionTakenOverError(NotFoundError):
    """Another connection has claimed the session."""

    code = "SESSION_TAKEN_OVER"
    default_message = "The session was resumed by another connection"


def _from_document(data: dict[str, object]) -> VoiceSession:
    return VoiceSession.model_validate({k: v for k, v in data.items() if k != EXPIRES_AT})


def _to_document(session: VoiceSession, resume_window: timedelta) -> dict[str, Any]:
    # JSON types throughout (enums as strings), but the times stay datetimes so the store
    # can order, filter and expire on them: Firestore's TTL policy on expires_at deletes a
    # session whose instance died before it could (infra/firestore.tf).
    document = session.model_dump(mode="json", by_alias=False)
    document["created_at"] = session.created_at
    document["last_activity"] = session.last_activity
    document[EXPIRES_AT] = session.last_activity + resume_window
    return document


class SessionRepository:
    """Active sessions in the document store (SQLite embedded, Firestore in production)."""

    def __init__(self, store: DocumentStore, *, resume_window: timedelta) -> None:
        self._store = store
        self._resume_window = resume_window

    def get(self, session_id: str) -> VoiceSession | None:
        """Return the stored session, or None."""
        document = self._store.get(COLLECTION, session_id)
        return _from_document(document.data) if document else None

    def create(self, session: VoiceSession) -> None:
        """Store a new active session.

        Raises:
            DocumentAlreadyExistsError: the id is taken.
        """
        self._store.create(COLLECTION, session.id, _to_document(session, self._resume_window))

    def save(self, session: VoiceSession) -> None:
        """Store ``session`` if its connection still owns it; delete it once completed.

        Raises:
            SessionTakenOverError: another connection claimed the session (or it is gone).
        """

        def write(transaction: Transaction) -> bool:
            document = transaction.get(COLLECTION, session.id)
            if document is None or document.data.get("connection_id") != session.connection_id:
                return False
            if session.persistence_status is PersistenceStatus.COMPLETED:
                transaction.delete(COLLECTION, session.id)
            else:
                transaction.set(COLLECTION, session.id, _to_document(session, self._resume_window))
            return True

        if not self._store.run_transaction(write):
            raise SessionTakenOverError()

    def claim(
        self,
        session_id: str,
        *,
        user_id: str,
        connection_id: str,
        now: datetime,
        config: dict[str, Any] | None = None,
        backend_id: str | None = None,
    ) -> VoiceSession:
        """Return the stored session, now owned by ``connection_id`` (and ``config`` and
        ``backend_id``, the backend that runs it now, if given).

        The config is stored with the claim, in the same transaction: once the claim is
        made the old connection can no longer save, so a config kept only in memory until
        the next save would be lost to a resume that comes first.

        Raises:
            SessionNotFoundError: no such active session of ``user_id`` within the resume
                window (an expired one is deleted).
        """

        def take(transaction: Transaction) -> VoiceSession | None:
            document = transaction.get(COLLECTION, session_id)
            if document is None:
                return None
            session = _from_document(document.data)
            if session.user_id != user_id:
                return None  # the same answer as for a missing id: ids are not confirmed
            if now - session.last_activity > self._resume_window:
                transaction.delete(COLLECTION, session_id)
                return None
            changes: dict[str, Any] = {"connection_id": connection_id}
            if config is not None:
                changes["config"] = config
            if backend_id is not None:
                changes["backend_id"] = backend_id
            claimed = session.model_copy(update=changes)
            claimed = claimed.touched(now)
            transaction.set(COLLECTION, session_id, _to_document(claimed, self._resume_window))
            return claimed

        claimed = self._store.run_transaction(take)
        if claimed is None:
            raise SessionNotFoundError()
        return claimed

    def delete(self, session_id: str) -> None:
        """Forget the session (completed sessions are ephemeral)."""
        self._store.delete(COLLECTION, session_id)
