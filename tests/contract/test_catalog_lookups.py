"""shared.catalog.lookups over both stores: what voice resolution reads, remembered.

The embedded store tells when anything was written (``change_token``), so an answer there
is never stale; Firestore cannot, so an answer is reused for the TTL, and a catalog write
of this process (a sync) is seen at once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.catalog import lookups as lookups_module
from shared.catalog.lookups import CatalogLookups, catalog_lookups
from shared.catalog.repository import VOICES, VoiceFilters, VoiceRepository, voice_document
from shared.catalog.sync import sync_provider_voices
from shared.errors import ServiceUnavailableError
from shared.providers.voices import Gender
from shared.store.base import DocumentStore
from tests.support.fake_provider import FakeProvider, make_voice

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
EN_US = VoiceFilters(provider="acme", language="en-US")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _tells_changes(store: DocumentStore) -> bool:
    return store.change_token() is not None


def test_lookups_answer_what_the_catalog_holds(store: DocumentStore) -> None:
    VoiceRepository(store).upsert([make_voice("acme", 0, language="en-US"), make_voice("acme", 1)])
    lookups = CatalogLookups(store, ttl_seconds=60)
    assert lookups.voice("ACME:Voice-0000") == VoiceRepository(store).get("acme:voice-0000")
    assert lookups.voice("acme:nobody") is None
    assert lookups.voice("acme:voice-0000", exact=True) == lookups.voice("acme:voice-0000")
    assert lookups.voice("ACME:Voice-0000", exact=True) is None  # one read, no query by case
    assert [voice.id for voice in lookups.voices(EN_US, limit=10)] == ["acme:voice-0000"]


def test_a_remembered_answer_lasts_only_as_long_as_the_store_allows(
    store: DocumentStore,
) -> None:
    repository = VoiceRepository(store)
    repository.upsert([make_voice("acme", 0, language="en-US", gender="female")])
    clock = Clock()
    lookups = CatalogLookups(store, ttl_seconds=60, clock=clock)
    assert lookups.voice("acme:voice-0000").gender is Gender.FEMALE  # type: ignore[union-attr]
    assert len(lookups.voices(EN_US, limit=10)) == 1

    # Written by another instance: the documents change, this process wrote nothing.
    for written in (
        make_voice("acme", 0, language="en-US", gender="male"),
        make_voice("acme", 1, language="en-US"),
    ):
        store.set(VOICES, written.id, voice_document(written))
    voice = lookups.voice("acme:voice-0000")
    assert voice is not None
    if _tells_changes(store):  # the embedded store: never stale
        assert voice.gender is Gender.MALE
        assert len(lookups.voices(EN_US, limit=10)) == 2
        return
    # Firestore: remembered (no read), until the TTL has passed.
    assert voice.gender is Gender.FEMALE
    assert len(lookups.voices(EN_US, limit=10)) == 1
    clock.now += 59
    assert lookups.voice("acme:voice-0000").gender is Gender.FEMALE  # type: ignore[union-attr]
    clock.now += 2
    assert lookups.voice("acme:voice-0000").gender is Gender.MALE  # type: ignore[union-attr]
    assert len(lookups.voices(EN_US, limit=10)) == 2


def test_a_catalog_write_of_this_process_is_seen_at_once(store: DocumentStore) -> None:
    repository = VoiceRepository(store)
    repository.upsert([make_voice("acme", 0, gender="female")])
    lookups = CatalogLookups(store, ttl_seconds=3600)
    assert lookups.voice("acme:voice-0000").gender is Gender.FEMALE  # type: ignore[union-attr]
    repository.upsert([make_voice("acme", 0, gender="male")])
    assert lookups.voice("acme:voice-0000").gender is Gender.MALE  # type: ignore[union-attr]
    assert repository.deprecate(["acme:voice-0000"]) == 1
    assert lookups.voice("acme:voice-0000").is_deprecated  # type: ignore[union-attr]


def test_a_catalog_write_whose_answer_is_lost_still_ends_remembered_answers(
    store: DocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A commit whose answer never came back (a timeout) may have landed: counted anyway.
    repository = VoiceRepository(store)
    repository.upsert([make_voice("acme", 0, gender="female")])
    lookups = CatalogLookups(store, ttl_seconds=3600)
    assert lookups.voice("acme:voice-0000").gender is Gender.FEMALE  # type: ignore[union-attr]
    committed = store.run_transaction

    def answer_lost(*args: Any, **kwargs: Any) -> Any:
        committed(*args, **kwargs)
        raise ServiceUnavailableError("the commit's answer was lost")

    monkeypatch.setattr(store, "run_transaction", answer_lost)
    with pytest.raises(ServiceUnavailableError):
        repository.upsert([make_voice("acme", 0, gender="male")])
    assert lookups.voice("acme:voice-0000").gender is Gender.MALE  # type: ignore[union-attr]


def test_the_oldest_answers_are_dropped_beyond_the_bound(
    store: DocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookups_module, "MAX_ANSWERS", 2)
    VoiceRepository(store).upsert([make_voice("acme", index) for index in range(3)])
    lookups = CatalogLookups(store, ttl_seconds=3600)
    for index in range(3):
        lookups.voice(f"acme:voice-{index:04d}")
    assert [key[1] for key in lookups._answers] == ["acme:voice-0001", "acme:voice-0002"]


def test_a_ttl_of_zero_reads_every_time(store: DocumentStore) -> None:
    VoiceRepository(store).upsert([make_voice("acme", 0, gender="female")])
    lookups = CatalogLookups(store, ttl_seconds=0)
    assert lookups.voice("acme:voice-0000").gender is Gender.FEMALE  # type: ignore[union-attr]
    male = make_voice("acme", 0, gender="male")
    store.set(VOICES, male.id, voice_document(male))  # by another instance
    assert lookups.voice("acme:voice-0000").gender is Gender.MALE  # type: ignore[union-attr]


def test_a_sync_in_this_process_is_seen_by_its_lookups_at_once(store: DocumentStore) -> None:
    provider = FakeProvider("acme", [make_voice("acme", 0, language="en-US")])
    sync_provider_voices(store=store, provider=provider, now=NOW)
    lookups = catalog_lookups(store, ttl_seconds=3600)
    assert lookups.voice("acme:voice-0000") is not None
    assert len(lookups.voices(EN_US, limit=10)) == 1

    provider.voices = [make_voice("acme", 1, language="en-US")]  # voice 0 is dropped
    sync_provider_voices(store=store, provider=provider, now=NOW)
    gone = lookups.voice("acme:voice-0000")
    assert gone is not None
    assert gone.is_deprecated
    assert [voice.id for voice in lookups.voices(EN_US, limit=10)] == ["acme:voice-0001"]
    assert catalog_lookups(store, ttl_seconds=1) is lookups  # one per store and process
