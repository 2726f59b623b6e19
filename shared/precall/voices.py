"""Speaking with a clone: ``voice: "clone:{clonedVoiceId}"`` resolved through the cache.

Synthesis (and sessions) call ``clone_voice`` with the caller's account: a clone of another
account is unknown (404 ``CLONE_NOT_FOUND``), and one past its TTL or soft-deleted is
refused with ``CloneExpiredError`` (410 ``CLONE_EXPIRED``), never spoken with a voice the
provider may already have deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from shared.model import utcnow
from shared.precall.errors import CloneExpiredError, CloneNotFoundError
from shared.store.base import DocumentStore, Query

__all__ = ["CLONE_VOICE_PREFIX", "CloneVoice", "clone_voice", "is_clone_voice"]

CLONE_VOICE_PREFIX = "clone:"
"""How a requested voice names a clone: ``clone:{clonedVoiceId}``."""


class CloneVoice(NamedTuple):
    """The provider voice that speaks a clone, its language and prosody, and its expiry."""

    cloned_voice_id: str
    provider: str
    voice_id: str
    language: str | None
    pitch: float
    speed: float
    expires_at: datetime


def is_clone_voice(voice: str) -> bool:
    """Return whether a requested voice names a clone (``clone:{id}``)."""
    return voice.startswith(CLONE_VOICE_PREFIX)


def clone_voice(
    store: DocumentStore, account_id: str, voice: str, now: datetime | None = None
) -> CloneVoice:
    """Return the provider voice of ``clone:{id}`` for ``account_id``.

    Raises CloneNotFoundError or CloneExpiredError.
    """
    # The pre-call entities load with a clone named, not with every synthesis function.
    from shared.precall.repository import CLONE_CACHE, cache_from  # noqa: PLC0415 - see above

    cloned_voice_id = voice.removeprefix(CLONE_VOICE_PREFIX)
    if not cloned_voice_id:
        raise CloneNotFoundError("Name the clone: clone:{clonedVoiceId}")
    query = (
        Query(CLONE_CACHE)
        .where("cloned_voice_id", "==", cloned_voice_id)
        .where("account_id", "==", account_id)
    )
    entries = [cache_from(document) for document in store.query(query.take(10)).documents]
    if not entries:
        raise CloneNotFoundError(f"No cloned voice {cloned_voice_id} in your account")
    moment = now or utcnow()
    live = [entry for entry in entries if not entry.is_expired(moment)]
    if not live:
        latest = max(entry.ttl_expires_at for entry in entries)
        raise CloneExpiredError(
            f"Cloned voice {cloned_voice_id} expired at {latest.isoformat()}; "
            "the caller's next call clones the voice again"
        )
    entry = live[0]
    return CloneVoice(
        cloned_voice_id=entry.cloned_voice_id,
        provider=entry.provider,
        voice_id=entry.speaking_voice_id,
        language=entry.language,
        pitch=entry.pitch,
        speed=entry.speed,
        expires_at=entry.ttl_expires_at,
    )
