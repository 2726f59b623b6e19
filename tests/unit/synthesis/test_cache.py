"""The synthesis cache key and its single-flight, on both document store adapters."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from shared.audio.formats import OutputFormat
from shared.files.cache import SYNTHESIS_CACHE, CachedAudio, Lease, SingleFlight
from shared.model import utcnow
from shared.providers.base import AudioSettings
from shared.store.base import DocumentStore
from shared.store.firestore import FirestoreDocumentStore
from shared.store.leases import Heartbeat
from shared.store.sqlite import SqliteDocumentStore
from shared.synthesis.cache import cache_key
from shared.synthesis.model import ResolvedVoice, TimestampGranularity
from shared.voice_models.model import VoiceModel
from tests.conftest import new_firestore_client, reset_firestore

VOICE = ResolvedVoice("espeak", "en-US", "en-US")
ENTRY = CachedAudio("audio/u/f.wav", "wav", 100, 1.5, 22_050, "sha256:" + "0" * 64, None)


def key(**changes: object) -> str:
    fields: dict[str, object] = {
        "text": "Hello world.",
        "ssml": False,
        "voice": VOICE,
        "settings": AudioSettings(),
        "output_format": OutputFormat.WAV,
        "include_timestamps": True,
        "granularity": TimestampGranularity.BOTH,
        "owner": "ann",
    }
    fields.update(changes)
    return cache_key(**fields)  # type: ignore[arg-type]


def model(version: int = 1) -> VoiceModel:
    return VoiceModel(
        id="m1", user_id="u", provider="espeak", model_path="models/u/m", version=version
    )


def test_key_ignores_invisible_differences():
    assert key() == key(text="  Hello   world. ") == key(text="Hello\tworld.")


def test_key_tells_composed_from_decomposed_accents():
    # Word timestamps name the text's own characters: "Café" is not "Cafe" + U+0301.
    assert key(text="Café au lait.") != key(text="Cafe\u0301 au lait.")


@pytest.mark.parametrize(
    "change",
    [
        {"text": "Hello world!"},
        {"text": "Hello\nworld."},
        {"ssml": True},
        {"voice": ResolvedVoice("espeak", "en-US+f3", "en-US")},
        {"voice": ResolvedVoice("gcp", "en-US", "en-US")},
        {"voice": ResolvedVoice("espeak", "en-US", "en-US", model())},
        {"settings": AudioSettings(speed=1.5)},
        {"settings": AudioSettings(pitch=0.9)},
        {"settings": AudioSettings(volume=0.5)},
        {"settings": AudioSettings(sample_rate=16_000)},
        {"output_format": OutputFormat.MP3},
        {"include_timestamps": False},
        {"granularity": TimestampGranularity.WORD},
        {"owner": "bob"},
        {"owner": None},
    ],
)
def test_key_changes_with_everything_that_changes_the_audio(change):
    assert key(**change) != key()


def test_key_changes_with_the_models_version():
    first = key(voice=ResolvedVoice("espeak", "en-US", "en-US", model(1)))
    assert first != key(voice=ResolvedVoice("espeak", "en-US", "en-US", model(2)))


@pytest.fixture(params=["sqlite", "firestore"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    if request.param == "sqlite":
        adapter: DocumentStore = SqliteDocumentStore(tmp_path / "store.sqlite3")
    else:
        reset_firestore(request.getfixturevalue("firestore_emulator"))
        adapter = FirestoreDocumentStore(new_firestore_client())
    yield adapter
    adapter.close()


def flight(store: DocumentStore, wait: float = 5.0, lease: float = 30.0) -> SingleFlight:
    return SingleFlight(store, wait_seconds=wait, lease_seconds=lease)


def test_first_claim_leases_and_waiters_get_the_published_entry(store):
    cache = flight(store)
    lease = cache.claim("k1")
    assert isinstance(lease, Lease)
    assert lease.cached
    results: list[object] = []
    waiters = [threading.Thread(target=lambda: results.append(cache.claim("k1"))) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.3)
    assert results == []  # still waiting on the pending entry
    cache.publish(lease, ENTRY)
    for waiter in waiters:
        waiter.join(timeout=10)
    assert results == [ENTRY, ENTRY, ENTRY]
    assert cache.lookup("k1") == ENTRY


def test_an_abandoned_entry_lets_the_next_caller_synthesize(store):
    cache = flight(store)
    lease = cache.claim("k2")
    assert isinstance(lease, Lease)
    cache.abandon(lease)
    assert store.get(SYNTHESIS_CACHE, "k2") is None
    again = cache.claim("k2")
    assert isinstance(again, Lease)
    assert again.owner != lease.owner


def test_a_stale_lease_is_taken_over(store):
    cache = flight(store, lease=30)
    dead = cache.claim("k3")
    assert isinstance(dead, Lease)
    store.update(SYNTHESIS_CACHE, "k3", {"lease_until": utcnow() - timedelta(seconds=1)})
    taken = cache.claim("k3")
    assert isinstance(taken, Lease)
    assert taken.cached
    assert taken.owner != dead.owner
    cache.abandon(dead)  # the dead holder's late abandon does not drop the new lease
    assert store.get(SYNTHESIS_CACHE, "k3") is not None


def test_a_stale_lease_is_taken_over_by_one_of_many_waiters(store):
    cache = flight(store, wait=0.5, lease=30)
    assert isinstance(cache.claim("k5"), Lease)
    store.update(SYNTHESIS_CACHE, "k5", {"lease_until": utcnow() - timedelta(seconds=1)})
    count = 8 if isinstance(store, SqliteDocumentStore) else 4
    barrier = threading.Barrier(count)
    claims: list[CachedAudio | Lease] = []

    def claim() -> None:
        barrier.wait()
        claims.append(cache.claim("k5"))

    threads = [threading.Thread(target=claim) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each saw the stale lease; one took it over, the others waited and then gave up.
    taken = [c for c in claims if isinstance(c, Lease) and c.cached]
    assert len(taken) == 1, claims
    assert store.get(SYNTHESIS_CACHE, "k5").data["owner"] == taken[0].owner


def test_a_waiter_gives_up_after_the_wait_and_synthesizes_uncached(store):
    cache = flight(store, wait=0.2)
    assert isinstance(cache.claim("k4"), Lease)
    started = time.monotonic()
    fallback = cache.claim("k4")
    assert isinstance(fallback, Lease)
    assert not fallback.cached
    assert 0.2 <= time.monotonic() - started < 2
    cache.publish(fallback, ENTRY)  # an uncached lease publishes nothing
    assert cache.lookup("k4") is None


def test_forget_path_drops_entries_naming_a_deleted_object(store):
    cache = flight(store)
    for name in ("a", "b"):
        lease = cache.claim(name)
        assert isinstance(lease, Lease)
        cache.publish(lease, ENTRY)
    assert cache.forget_path(ENTRY.file_path) == 2
    assert cache.lookup("a") is None


def test_a_holder_that_renews_keeps_its_lease_and_a_dead_one_loses_it_within_one(store):
    cache = flight(store, wait=10, lease=1.0)
    live = cache.claim("k5")
    dead = cache.claim("k6")
    assert isinstance(live, Lease)
    assert isinstance(dead, Lease)
    with Heartbeat(lambda: cache.renew(live), cache.renew_every, name="live"):
        started = time.monotonic()
        taken = cache.claim("k6")  # waits for the dead holder's lease to lapse, then takes it
        assert isinstance(taken, Lease)
        assert taken.cached
        assert time.monotonic() - started < 2.0
        time.sleep(1.5)  # longer than a lease: only the renewals keep the live one
        waiter = flight(store, wait=0.5, lease=1.0).claim("k5")
        assert isinstance(waiter, Lease)
        assert not waiter.cached  # it waited on the live holder, then gave up
        assert cache.renew(live)
        assert not cache.renew(dead)
    cache.publish(live, ENTRY)
    assert cache.lookup("k5") == ENTRY
