"""Sessions speak with pre-call clones: ``clone:{id}`` resolves through the clone cache."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from shared.blobs.local import LocalObjectStorage
from shared.config import Settings
from shared.model import utcnow
from shared.precall.errors import CloneExpiredError, CloneNotFoundError
from shared.precall.model import VoiceCloneCache
from shared.precall.repository import CLONE_CACHE
from shared.providers.espeak import EspeakProvider
from shared.providers.registry import ProviderRegistry
from shared.sessions.config import SessionDefaults, parse_session_config
from shared.sessions.pipeline import check_config
from shared.sessions.tts import VoiceChoice
from shared.sessions.voices import VoiceModelResolver
from shared.store.sqlite import SqliteDocumentStore
from shared.voice_models.deps import VoiceModelDeps
from tests.sessions.test_sessions_domain import services_for
from tests.support.ports import FixedPorts


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
    settings = Settings(_env_file=None, data_dir=tmp_path)
    blobs = LocalObjectStorage(
        tmp_path / "blobs", signing_key=b"k" * 32, public_base_url="http://x", max_upload_bytes=9999
    )
    resolver = VoiceModelResolver(
        lambda: VoiceModelDeps(FixedPorts(store, blobs, settings)),
        ProviderRegistry.of([EspeakProvider(variant_languages=[])]),
        default_provider="espeak",
        default_voice="en-US",
    )
    assert asyncio.run(resolver.resolve("u1", "clone:pm-live")) == VoiceChoice("espeak", "en-US+f3")
    with pytest.raises(CloneExpiredError):
        asyncio.run(resolver.resolve("u1", "clone:pm-old"))
    with pytest.raises(CloneNotFoundError):
        asyncio.run(resolver.resolve("someone-else", "clone:pm-live"))
    assert asyncio.run(resolver.resolve("u1", "espeak:en-GB")) == VoiceChoice("espeak", "en-GB")


def test_a_session_config_may_name_a_clone_voice(tmp_path, whisper):
    services = services_for(tmp_path, whisper)
    config = parse_session_config({"voice": "clone:pm-live"}, SessionDefaults())
    check_config(config, services)
