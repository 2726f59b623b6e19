"""Sessions speak with pre-call clones: ``voice: "clone:{clonedVoiceId}"``.

``CloneVoiceResolver`` answers a clone voice through the pre-call clone cache (refusing an
expired or unknown clone with the pre-call errors) and hands every other request to the
resolver it wraps. A session knows its user, not a token's account claim, so a session
reaches the clones of the account that is its user id.
"""

from __future__ import annotations

import asyncio

from shared.precall.voices import clone_voice, is_clone_voice
from shared.sessions.tts import VoiceChoice, VoiceResolver
from shared.store import DocumentStore


class CloneVoiceResolver:
    """Resolves ``clone:{id}`` through the clone cache, anything else through ``fallback``."""

    def __init__(self, store: DocumentStore, fallback: VoiceResolver) -> None:
        self._store = store
        self._fallback = fallback

    async def resolve(self, user_id: str, requested: str | None) -> VoiceChoice:
        """Return the provider voice of the session; raise CloneNotFoundError/CloneExpiredError."""
        if requested and is_clone_voice(requested):
            clone = await asyncio.to_thread(clone_voice, self._store, user_id, requested)
            return VoiceChoice(clone.provider, clone.voice_id)
        return await self._fallback.resolve(user_id, requested)
