"""Sessions speak with pre-call clones: ``clone:{id}`` resolves through the clone cache."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from session.voices import CloneVoiceResolver
from shared.model import utcnow
from shared.precall.errors import CloneExpiredError, CloneNotFoundError
from shared.precall.model import VoiceCloneCache
from shared.precall.repository import CLONE_CACHE
from shared.sessions.config import SessionDefaults, parse_session_config
from shared.sessions.pipeline import check_config
from shared.sessions.tts import ConfiguredVoiceResolver, VoiceChoice
from shared.store.sqlite import SqliteDocumentStore
from tests.sessions.test_sessions_domain import services_for


def cached(store, voice_id, *, account, ttl):
    entry = VoiceCloneCache.for_new_clone(
        caller_id="+14155550100",
        cloned_voice_id=voice_id,
        now=utcnow() - timedelta(hours=1),
        ttl=ttl,
        account_id=account,
        provider="espeak",
        provider_voice_id="en-US+f3",
    )
    store.create(CLONE_CACHE, entry.id, entry.to_document())


def test_clone_voices_resolve_through_the_cache_and_expired_ones_are_refused(tmp_path):
    store = SqliteDocumentStore(tmp_path / "s.sqlite3")
    cached(store, "pm-live", account="u1", ttl=timedelta(hours=24))
    cached(store, "pm-old", account="u1", ttl=timedelta(minutes=30))
    resolver = CloneVoiceResolver(store, ConfiguredVoiceResolver("espeak", "en-US"))
    assert asyncio.run(resolver.resolve("u1", "clone:pm-live")) == VoiceChoice("espeak", "en-US+f3")
    with pytest.raises(CloneExpiredError):
        asyncio.run(resolver.resolve("u1", "clone:pm-old"))
    with pytest.raises(CloneNotFoundError):
        asyncio.run(resolver.resolve("someone-else", "clone:pm-live"))
    assert asyncio.run(resolver.resolve("u1", "espeak:en-GB")) == VoiceChoice("espeak", "en-GB")
    assert asyncio.run(resolver.resolve("u1", None)) == VoiceChoice("espeak", "en-US")


def test_a_session_config_may_name_a_clone_voice(tmp_path, whisper):
    services = services_for(tmp_path, whisper)
    config = parse_session_config({"voice": "clone:pm-live"}, SessionDefaults())
    check_config(config, services)
