"""The catalog reads every synthesis repeats, remembered by this instance for a short while.

Each synthesis request resolves its voice name before anything else (its cache key names
the voice): ``provider:voiceId`` is a catalog read, a language tag or an OpenAI voice name
one or two queries per provider (``shared.synthesis.voices``). On Firestore each is a
round trip, paid by every request, cache hits included, for data that changes when the
catalog is synced (daily, or when an admin asks). ``CatalogLookups`` answers those reads
from memory:

- on a store that can tell that nothing was written since a read (``change_token``: the
  embedded store), an answer is reused only until the next write anywhere: never stale;
- on one that cannot (Firestore), for ``catalog_lookup_cache_seconds`` (60 s by default;
  0 reads every time). A voice that a sync adds, changes or deprecates reaches the other
  instances at most that much later.

Either way a catalog write made through ``VoiceRepository`` in this process ends every
answer read before it (``catalog_writes``): the instance that syncs sees its sync at once.

Only these lookups are remembered; ``GET /voices`` and every write read the store itself.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

from shared.catalog.repository import VoiceFilters, VoiceRepository, catalog_writes
from shared.providers.voices import VoiceProfile
from shared.store.base import DocumentStore

MAX_ANSWERS = 1024
"""Answers kept per store, the least recently used dropped first."""


class _Answer(NamedTuple):
    value: Any
    token: object | None  # the store's change token before the read; None: it has none
    writes: int  # this process's catalog writes on the store before the read
    expires: float


class CatalogLookups:
    """The voice and voice-list reads of the synthesis path on ``store``, remembered."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._repository = VoiceRepository(store)
        self._ttl = ttl_seconds
        self._clock = clock
        self._answers: OrderedDict[tuple[Any, ...], _Answer] = OrderedDict()
        self._lock = threading.Lock()

    def voice(self, voice_id: str, *, exact: bool = False) -> VoiceProfile | None:
        """Return ``VoiceRepository.get(voice_id, exact=exact)``: the voice (in any case
        unless ``exact``: one read, no query), or None."""
        answer: VoiceProfile | None = self._answer(
            ("voice", voice_id, exact), lambda: self._repository.get(voice_id, exact=exact)
        )
        return answer

    def voices(self, filters: VoiceFilters, *, limit: int) -> list[VoiceProfile]:
        """Return the first ``limit`` voices matching ``filters``, by id."""
        answer: list[VoiceProfile] = self._answer(
            ("voices", filters, limit), lambda: self._repository.find(filters, limit=limit)[0]
        )
        return list(answer)

    def _answer(self, key: tuple[Any, ...], read: Callable[[], Any]) -> Any:
        # Both before reading: a write ending after either changes it.
        token = self._store.change_token()
        writes = catalog_writes(self._store)
        now = self._clock()
        with self._lock:
            known = self._answers.get(key)
            if known is not None and self._current(known, token, writes, now):
                self._answers.move_to_end(key)
                return known.value
        value = read()
        if token is None and self._ttl <= 0:
            return value
        with self._lock:
            self._answers[key] = _Answer(value, token, writes, now + self._ttl)
            self._answers.move_to_end(key)
            while len(self._answers) > MAX_ANSWERS:
                self._answers.popitem(last=False)
        return value

    @staticmethod
    def _current(answer: _Answer, token: object | None, writes: int, now: float) -> bool:
        if writes != answer.writes:  # this process wrote the catalog since
            return False
        if answer.token is not None:  # the store tells: current while nothing was written
            return token == answer.token
        return token is None and now < answer.expires


_by_store: weakref.WeakKeyDictionary[DocumentStore, CatalogLookups] = weakref.WeakKeyDictionary()
_by_store_lock = threading.Lock()


def catalog_lookups(store: DocumentStore, *, ttl_seconds: float) -> CatalogLookups:
    """Return this process's lookups on ``store`` (made with ``ttl_seconds`` the first time)."""
    with _by_store_lock:
        lookups = _by_store.get(store)
        if lookups is None:
            lookups = _by_store[store] = CatalogLookups(store, ttl_seconds=ttl_seconds)
        return lookups
