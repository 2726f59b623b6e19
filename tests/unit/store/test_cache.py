"""The shared document-store cache: hits, expiry, and no stale read after a write."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.store.cache import DocumentCache, Scope
from shared.store.sqlite import SqliteDocumentStore

TTL = timedelta(minutes=5)
ROOT = Path(__file__).resolve().parents[3]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path):
    adapter = SqliteDocumentStore(tmp_path / "store.sqlite3")
    yield adapter
    adapter.close()


def test_second_read_is_a_hit_until_the_entry_expires(store):
    clock = Clock()
    cache = DocumentCache(store, clock=clock)
    calls = []

    def compute():
        calls.append(1)
        return {"n": len(calls), "at": clock.now}

    scope = Scope("voice_model:m1")
    first, hit = cache.get_or_compute(
        "voice_model:m1", scopes=[scope], ttl=TTL, table="t", compute=compute
    )
    assert (first["n"], hit) == (1, False)
    again, hit = cache.get_or_compute(
        "voice_model:m1", scopes=[scope], ttl=TTL, table="t", compute=compute
    )
    assert (again, hit) == (first, True)
    clock.now += TTL + timedelta(seconds=1)
    expired, hit = cache.get_or_compute(
        "voice_model:m1", scopes=[scope], ttl=TTL, table="t", compute=compute
    )
    assert (expired["n"], hit) == (2, False)


def test_a_read_after_invalidation_is_never_stale(store):
    cache = DocumentCache(store)
    data = {"value": 1}
    scope = Scope("voice_models:user:ann")

    def read():
        return cache.get_or_compute(
            "k", scopes=[scope], ttl=TTL, table="t", compute=lambda: dict(data)
        )

    assert read() == ({"value": 1}, False)
    assert read() == ({"value": 1}, True)
    data["value"] = 2  # the write...
    cache.invalidate([scope])  # ...then its invalidation
    assert read() == ({"value": 2}, False)


def test_a_slow_reader_cannot_plant_a_stale_value(store):
    cache = DocumentCache(store)
    scope = Scope("voice_stats:m1", shards=4)
    # A reader looks up (miss), then computes from the old data...
    before = cache.lookup("k", [scope])
    stale = {"usageCount": 1}
    # ...meanwhile a writer changes the data and bumps the scope...
    cache.invalidate([scope])
    # ...and only then does the slow reader store what it computed.
    cache.put("k", stale, versions=before.versions, ttl=TTL, table="t")
    fresh = cache.lookup("k", [scope])
    assert not fresh.hit
    assert sum(fresh.versions) == sum(before.versions) + 1


def test_sharded_scopes_count_every_bump(store):
    cache = DocumentCache(store)
    scope = Scope("voice_analytics:ann", shards=8)
    for _ in range(50):
        cache.invalidate([scope])
    assert cache.lookup("x", [scope]).versions == [50]


def test_entries_are_keyed_by_their_full_key_and_scopes(store):
    cache = DocumentCache(store)
    a, b = Scope("a"), Scope("b")
    cache.get_or_compute("k1", scopes=[a], ttl=TTL, table="t", compute=lambda: 1)
    cache.get_or_compute("k2", scopes=[b], ttl=TTL, table="t", compute=lambda: 2)
    cache.invalidate([a])
    assert cache.lookup("k1", [a]).hit is False
    assert cache.lookup("k2", [b]).value == 2


def test_disabled_cache_always_computes(store):
    cache = DocumentCache(store, enabled=False)
    values = iter([1, 2])
    assert cache.get_or_compute(
        "k", scopes=[], ttl=TTL, table="t", compute=lambda: next(values)
    ) == (1, False)
    assert cache.get_or_compute(
        "k", scopes=[], ttl=TTL, table="t", compute=lambda: next(values)
    ) == (2, False)


def _invalidate_in_another_process(path: Path, scope_name: str) -> None:
    code = (
        "import sys\n"
        "from shared.store.cache import DocumentCache, Scope\n"
        "from shared.store.sqlite import SqliteDocumentStore\n"
        "store = SqliteDocumentStore(sys.argv[1])\n"
        "DocumentCache(store).invalidate([Scope(sys.argv[2])])\n"
        "store.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), scope_name], check=True, cwd=ROOT)


@pytest.mark.parametrize("writer", ["another process", "another store on the file"])
def test_a_write_elsewhere_is_never_read_stale(tmp_path, writer):
    # Hits reuse the documents of an earlier read while the store's change token stays
    # the same: a write by any other instance must change it.
    path = tmp_path / "store.sqlite3"
    store = SqliteDocumentStore(path)
    cache = DocumentCache(store)
    data = {"value": 1}
    scope = Scope("voice_models:user:ann")

    def read():
        return cache.get_or_compute(
            "k", scopes=[scope], ttl=TTL, table="t", compute=lambda: dict(data)
        )

    assert read() == ({"value": 1}, False)
    assert read() == ({"value": 1}, True)
    assert read() == ({"value": 1}, True)
    data["value"] = 2
    if writer == "another process":
        _invalidate_in_another_process(path, scope.name)
    else:
        other = SqliteDocumentStore(path)
        DocumentCache(other).invalidate([scope])
        other.close()
    assert read() == ({"value": 2}, False)
    store.close()
