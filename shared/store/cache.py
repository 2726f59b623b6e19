"""A cache kept in the document store, so every instance sees the same entries.

Seed 001 caches model metadata (1 h), usage statistics (5 min) and analytics (15 min) in
shared tables; here every entry is one document of ``cache_entries`` (its ``table`` field
names the seed's table) holding the value, its expiry and the versions of the *scopes* it
was computed from. A write invalidates by bumping its scopes' versions; a read is a hit
only while the entry's recorded versions equal the current ones. Versions are read
*before* the value is computed and bumped *after* the data is written, so a read that
follows a finished write never returns what was computed before it, even when a slow
reader stores its stale value after the bump (that entry carries the old versions and is
never served). A scope may be split into shards whose versions are summed: usage events
bump a random shard, so one hot model does not exceed Firestore's per-document write rate.

An entry is two documents: a small one (key, versions, expiry and the value's content
hash) and the value itself, stored under its hash. A read fetches the small one with the
scope versions; the value is fetched only when this instance does not already hold that
exact content (a bounded in-process memo keyed by content hash). The store alone decides
whether an entry is valid, so the memo can never make a read stale; it only saves
transferring and decoding the same bytes again.

A store that can tell cheaply that nothing was written since a read (``change_token``:
the embedded store can, Firestore cannot) saves the read itself: the documents a lookup
read are kept with the token seen before reading them, and reused while the token is the
same. Any write ending anywhere changes the token, so this too never makes a read stale.

Expired entries are simply ignored; in production a Firestore TTL policy on
``expires_at`` deletes them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from shared.model import utcnow
from shared.store.base import (
    DELETE_FIELD,
    MAX_BATCH_WRITES,
    Document,
    DocumentStore,
    Increment,
    Query,
    Transaction,
    WriteBatch,
)

CACHE_ENTRIES = "cache_entries"

_ENTRY = "e"
_SCOPE = "s"
_VALUE = "v"
_MEMO_SIZE = 256

# Values by content hash, shared by every cache of the process: a hash names one content
# whatever store or request it came from, so sharing it can never serve the wrong value.
_memo: OrderedDict[str, Any] = OrderedDict()
_memo_lock = threading.Lock()


# The documents of recent lookups per store, with the store's change token when read.
# Shared by every reader of the process: callers only read them.
_READS_SIZE = 1024
_reads: weakref.WeakKeyDictionary[
    DocumentStore, OrderedDict[tuple[str, ...], tuple[object, dict[str, Document]]]
] = weakref.WeakKeyDictionary()
_reads_lock = threading.Lock()


@functools.lru_cache(maxsize=4096)  # the same keys and scopes come back on every read
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Scope(NamedTuple):
    """A set of data an entry depends on; writes to that data bump the scope's version."""

    name: str
    shards: int = 1

    def doc_ids(self) -> list[str]:
        """Return the ids of the documents holding this scope's version (one per shard)."""
        base = f"{_SCOPE}{_digest(self.name)}"
        return [f"{base}_{shard}" for shard in range(self.shards)]


class Lookup(NamedTuple):
    """A read of the cache: the value when it was a hit, and the versions seen."""

    hit: bool
    value: Any
    versions: list[int]


class DocumentCache:
    """Read-through cache over the document store with versioned invalidation."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        enabled: bool = True,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self.enabled = enabled
        self._clock = clock

    @staticmethod
    def entry_id(key: str) -> str:
        """Return the document id of the entry for ``key``."""
        return f"{_ENTRY}{_digest(key)}"

    def lookup(self, key: str, scopes: Sequence[Scope]) -> Lookup:
        """Return the entry for ``key`` if fresh, with the scopes' current versions.

        Entry and versions come from one ``get_many``, so they are read together.
        """
        entry_id = self.entry_id(key)
        scope_ids = [scope.doc_ids() for scope in scopes]
        wanted = [entry_id] + [doc_id for ids in scope_ids for doc_id in ids]
        found = self._read(wanted)
        versions = [
            sum(int(found[doc_id].data.get("version", 0)) for doc_id in ids if doc_id in found)
            for ids in scope_ids
        ]
        entry = found.get(entry_id)
        if (
            entry is None
            or entry.data.get("key") != key
            or entry.data.get("versions") != versions
            or not _after(entry.data.get("expires_at"), self._clock())
        ):
            return Lookup(False, None, versions)
        etag = str(entry.data.get("etag", ""))
        with _memo_lock:
            if etag in _memo:
                _memo.move_to_end(etag)
                return Lookup(True, _memo[etag], versions)
        stored = self._store.get(CACHE_ENTRIES, f"{_VALUE}{etag}")
        if stored is None:
            return Lookup(False, None, versions)
        value = stored.data.get("value")
        self._remember(etag, value)
        return Lookup(True, value, versions)

    def _read(self, wanted: list[str]) -> dict[str, Document]:
        """Return the ``wanted`` documents: read again unless the store says none changed."""
        token = self._store.change_token()  # before reading: a write after it changes it
        if token is None:
            return self._store.get_many(CACHE_ENTRIES, wanted)
        key = tuple(wanted)
        with _reads_lock:
            reads = _reads.get(self._store)
            seen = reads.get(key) if reads is not None else None
            if reads is not None and seen is not None and seen[0] == token:
                reads.move_to_end(key)
                return seen[1]
        found = self._store.get_many(CACHE_ENTRIES, wanted)
        with _reads_lock:
            reads = _reads.setdefault(self._store, OrderedDict())
            reads[key] = (token, found)
            reads.move_to_end(key)
            while len(reads) > _READS_SIZE:
                reads.popitem(last=False)
        return found

    def _remember(self, etag: str, value: Any) -> None:
        with _memo_lock:
            _memo[etag] = value
            _memo.move_to_end(etag)
            while len(_memo) > _MEMO_SIZE:
                _memo.popitem(last=False)

    def put(self, key: str, value: Any, *, versions: list[int], ttl: timedelta, table: str) -> None:
        """Store ``value`` for ``key``, tagged with the versions read before computing it.

        Callers must not change ``value`` afterwards, nor a value a lookup returns (reads
        of one instance share it).
        """
        expires_at = self._clock() + ttl
        etag = hashlib.sha256(
            json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
        ).hexdigest()
        with self._store.batch() as batch:
            batch.set(CACHE_ENTRIES, f"{_VALUE}{etag}", {"value": value, "expires_at": expires_at})
            batch.set(
                CACHE_ENTRIES,
                self.entry_id(key),
                {
                    "key": key,
                    "table": table,
                    "etag": etag,
                    "versions": versions,
                    "expires_at": expires_at,
                },
            )
        self._remember(etag, value)

    def get_or_compute(
        self,
        key: str,
        *,
        scopes: Sequence[Scope],
        ttl: timedelta,
        table: str,
        compute: Callable[[], Any],
    ) -> tuple[Any, bool]:
        """Return ``(value, hit)``: the cached value, or ``compute()`` stored for next time.

        ``compute`` must return data the document store can hold (JSON-like, datetimes).
        """
        if not self.enabled:
            return compute(), False
        found = self.lookup(key, scopes)
        if found.hit:
            return found.value, True
        value = compute()
        self.put(key, value, versions=found.versions, ttl=ttl, table=table)
        return value, False

    def invalidate(self, scopes: Sequence[Scope]) -> None:
        """Bump the version of every scope (one random shard each) in one batch.

        A scope document holds its version only (its id is a hash of the name), so it
        names no user.
        """
        if not scopes:
            return
        with self._store.batch() as batch:
            self.invalidate_in(batch, scopes)

    def invalidate_in(self, writes: WriteBatch | Transaction, scopes: Sequence[Scope]) -> None:
        """Queue the bumps of ``scopes`` in ``writes``: they land with the data they cover."""
        now = self._clock()
        for scope in dict.fromkeys(scopes):
            doc_id = random.choice(scope.doc_ids())  # noqa: S311 - load spreading only
            writes.set(
                CACHE_ENTRIES,
                doc_id,
                {"version": Increment(1), "bumped_at": now},
                merge=True,
            )

    def purge(
        self, *, keys: Iterable[str], key_prefixes: Iterable[str], scopes: Sequence[Scope]
    ) -> int:
        """Forget data that must not outlive its owner; return how many entries went.

        Deletes the entries of ``keys`` and of every key starting with one of
        ``key_prefixes``, with their values, and bumps ``scopes`` so that no entry anywhere
        computed from that data is served again. Raises nothing for absent entries.
        """
        self.invalidate(scopes)
        # Scope documents written before they stopped holding their name still name it.
        scope_ids = [doc_id for scope in scopes for doc_id in scope.doc_ids()]
        for named in self._store.get_many(CACHE_ENTRIES, scope_ids).values():
            if "scope" in named.data:
                self._store.update(CACHE_ENTRIES, named.id, {"scope": DELETE_FIELD})
        ids = [self.entry_id(key) for key in keys]
        found = list(self._store.get_many(CACHE_ENTRIES, ids).values())
        for prefix in key_prefixes:
            query = Query(CACHE_ENTRIES).where("key", ">=", prefix)
            found.extend(self._store.stream(query.where("key", "<", prefix + "\uffff")))
        entries = list({entry.id: entry for entry in found}.values())
        for start in range(0, len(entries), MAX_BATCH_WRITES // 2):
            with self._store.batch() as batch:
                for entry in entries[start : start + MAX_BATCH_WRITES // 2]:
                    batch.delete(CACHE_ENTRIES, entry.id)
                    if etag := entry.data.get("etag"):
                        batch.delete(CACHE_ENTRIES, f"{_VALUE}{etag}")
        return len(entries)


def _after(value: Any, now: datetime) -> bool:
    return isinstance(value, datetime) and value > now
