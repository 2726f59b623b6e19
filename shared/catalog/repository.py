"""The voice catalog in the document store: ``voices/{provider:voice_id}``.

Each document is the ``VoiceProfile`` in JSON form plus fields that exist only to be
filtered on: ``language_base`` (``en`` for ``en-US``), ``id_key`` (the id in lower case, so
``espeak:en-us`` finds ``espeak:en-US``), ``is_base`` (not a variant such as eSpeak's
``en-US+f3``: a language's default voice is looked for among base voices first; a voice
stored before the field existed gets it at the next sync, which rewrites every voice),
``style_keys`` / ``use_case_keys`` maps
(``{"k_cheerful": true}``) and ``search_keys``, a map of every prefix of every word of the
display name, styles, use cases and tags (``{"s_engl": true}``). Firestore allows one
``array-contains`` per query, so these filters are map-key equalities instead; every list
filter is then an equality, which Firestore serves by merging single-field indexes (no
composite index).

Upserts run in transactions of at most 500 voices that read the stored documents first,
so two syncs racing over one provider never count a voice as added twice, and a voice is
"updated" only when its data changed (``synced_at`` and the index fields do not count).
``catalog_writes`` counts the writes this process made to a store's catalog, so what
remembers catalog reads (``shared.catalog.lookups``) sees its own process's writes at once.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from shared.errors import NotFoundError, echoed
from shared.model import equivalent_languages
from shared.providers.voices import AgeGroup, Gender, VoiceProfile
from shared.store.base import MAX_BATCH_WRITES, Document, DocumentStore, Query, Transaction

T = TypeVar("T")

VOICES = "voices"
_NOT_KEY = re.compile(r"[^a-z0-9]+")
_DERIVED = ("language_base", "id_key", "style_keys", "use_case_keys", "search_keys", "is_base")
_WORD = re.compile(r"\w+")
_MAX_PREFIX = 24
_UNCOMPARED = {"synced_at", *_DERIVED}


_writes: weakref.WeakKeyDictionary[DocumentStore, int] = weakref.WeakKeyDictionary()
_writes_lock = threading.Lock()


def catalog_writes(store: DocumentStore) -> int:
    """Return how many catalog writes this process has ended on ``store``."""
    with _writes_lock:
        return _writes.get(store, 0)


def _counted_write(store: DocumentStore, write: Callable[[Transaction], T]) -> T:
    """Run ``write`` in a transaction, then count it (``catalog_writes``), failed or not:
    a read that began before it ended is then never taken for current."""
    try:
        return store.run_transaction(write)
    finally:
        with _writes_lock:
            _writes[store] = _writes.get(store, 0) + 1


class VoiceNotFoundError(NotFoundError):
    code = "VOICE_NOT_FOUND"
    default_message = "Voice not found"


def label_key(label: str) -> str:
    """Return the map key a style or use case is filtered by (``customer-service`` -> ...)."""
    return "k_" + _NOT_KEY.sub("_", label.lower()).strip("_")


def search_key(prefix: str) -> str:
    """Return the map key a search word (or the prefix of one) is filtered by."""
    if prefix.isascii():
        return f"s_{prefix}"
    return f"s_x{prefix.encode().hex()}"


def search_words(text: str) -> list[str]:
    """Return the words of a search (or of a voice's names and labels), case-folded."""
    return [word.casefold() for word in _WORD.findall(text.replace("_", " "))]


def _search_keys(voice: VoiceProfile) -> dict[str, bool]:
    texts = [voice.display_name, *voice.styles, *voice.use_cases, *voice.tags]
    keys: dict[str, bool] = {}
    for word in (word for text in texts for word in search_words(text)):
        for end in range(1, min(len(word), _MAX_PREFIX) + 1):
            keys[search_key(word[:end])] = True
    return keys


def is_variant(voice: VoiceProfile) -> bool:
    """Return whether ``voice`` is a variant of a base voice (eSpeak's ``en-US+f3``)."""
    return "variant" in voice.tags or "+" in voice.voice_id


def voice_document(voice: VoiceProfile) -> dict[str, Any]:
    """Return the stored form of ``voice``: JSON values, a datetime, and the index fields."""
    data = voice.model_dump(mode="json", by_alias=False)
    data["synced_at"] = voice.synced_at
    data["language_base"] = voice.language.split("-")[0]
    data["id_key"] = voice.id.lower()
    data["is_base"] = not is_variant(voice)
    data["search_keys"] = _search_keys(voice)
    data["style_keys"] = {label_key(style): True for style in voice.styles}
    data["use_case_keys"] = {label_key(use_case): True for use_case in voice.use_cases}
    return data


def voice_from_document(data: dict[str, Any]) -> VoiceProfile:
    """Return the ``VoiceProfile`` of a stored document."""
    return VoiceProfile.model_validate({k: v for k, v in data.items() if k not in _DERIVED})


def _content(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in _UNCOMPARED}


class VoiceFilters(NamedTuple):
    """What ``GET /voices`` filters on; None means "any"."""

    provider: str | None = None
    language: str | None = None
    gender: Gender | None = None
    age_group: AgeGroup | None = None
    style: str | None = None
    use_case: str | None = None
    search: tuple[str, ...] = ()
    include_deprecated: bool = False
    # Base voices only (no variant). A voice stored before the field existed has none and
    # is not found this way until the next sync rewrites it.
    base_only: bool = False

    def query(self) -> Query:
        """Return the store query: equalities only, ordered by id."""
        query = Query(VOICES)
        if self.provider:
            query = query.where("provider", "==", self.provider)
        if self.language:
            # A bare language ("en") matches every region of it; a full tag matches exactly,
            # under any of its codes (zh-CN is cmn-CN: ``equivalent_languages``).
            field = "language" if "-" in self.language else "language_base"
            tags = [self.language, *equivalent_languages(self.language)]
            query = (
                query.where(field, "==", tags[0])
                if len(tags) == 1
                else query.where(field, "in", tags)
            )
        if self.gender:
            query = query.where("gender", "==", self.gender.value)
        if self.age_group:
            query = query.where("age_group", "==", self.age_group.value)
        if self.style:
            query = query.where(f"style_keys.{label_key(self.style)}", "==", True)
        if self.use_case:
            query = query.where(f"use_case_keys.{label_key(self.use_case)}", "==", True)
        for word in self.search:
            query = query.where(f"search_keys.{search_key(word[:_MAX_PREFIX])}", "==", True)
        if not self.include_deprecated:
            query = query.where("is_deprecated", "==", False)
        if self.base_only:
            query = query.where("is_base", "==", True)
        return query


@dataclass
class UpsertCounts:
    """What one upsert changed: new voices, changed ones, newly deprecated ones."""

    added: int = 0
    updated: int = 0
    deprecated: int = 0

    def __iadd__(self, other: UpsertCounts) -> UpsertCounts:
        self.added += other.added
        self.updated += other.updated
        self.deprecated += other.deprecated
        return self


class VoiceRepository:
    """Reads and writes catalog voices."""

    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    def get(self, voice_id: str, *, exact: bool = False) -> VoiceProfile | None:
        """Return the voice ``provider:voice_id`` (in any case, unless ``exact``) or None."""
        if not voice_id or "/" in voice_id:
            return None
        document = self._store.get(VOICES, voice_id)
        if document is None and not exact:
            # Ids and language tags are case-insensitive: espeak:en-us is espeak:en-US.
            query = Query(VOICES).where("id_key", "==", voice_id.lower()).take(1)
            found = self._store.query(query).documents
            document = found[0] if found else None
        return voice_from_document(document.data) if document else None

    def require(self, voice_id: str) -> VoiceProfile:
        """Return the voice; raise VoiceNotFoundError."""
        voice = self.get(voice_id)
        if voice is None:
            raise VoiceNotFoundError(f"Voice not found: {echoed(voice_id)}")
        return voice

    def find(
        self, filters: VoiceFilters, *, limit: int, cursor: str | None = None
    ) -> tuple[list[VoiceProfile], str | None]:
        """Return one page of matching voices (by id) and the next page's cursor."""
        page = self._store.query(filters.query().take(limit).after(cursor))
        return [voice_from_document(d.data) for d in page.documents], page.next_cursor

    def matching(self, filters: VoiceFilters, *, at_most: int) -> list[VoiceProfile] | None:
        """Return every matching voice, or None when there are more than ``at_most``."""
        page = self._store.query(filters.query().take(at_most + 1))
        if len(page.documents) > at_most:
            return None
        return [voice_from_document(d.data) for d in page.documents]

    def count(self, provider: str, *, include_deprecated: bool = False) -> int:
        """Return how many voices ``provider`` has in the catalog."""
        filters = VoiceFilters(provider=provider, include_deprecated=include_deprecated)
        return self._store.count(filters.query())

    def active_ids(self, provider: str) -> list[str]:
        """Return the ids of ``provider``'s voices that are not deprecated."""
        query = VoiceFilters(provider=provider).query()
        return [document.id for document in self._store.stream(query, page_size=500)]

    def upsert(self, voices: Sequence[VoiceProfile]) -> UpsertCounts:
        """Store ``voices`` (at most 500, one transaction) and return what changed.

        A new id is added; a stored voice whose data differs is updated, or counted as
        deprecated when this write deprecates it. Unchanged voices only get a new
        ``synced_at``.
        """
        if len(voices) > MAX_BATCH_WRITES:
            raise ValueError(f"upsert at most {MAX_BATCH_WRITES} voices at once")
        documents = {voice.id: voice_document(voice) for voice in voices}

        def write(tx: Transaction) -> UpsertCounts:
            counts = UpsertCounts()
            stored = tx.get_many(VOICES, list(documents))
            for voice_id, data in documents.items():
                old = stored.get(voice_id)
                if old is None or _content(old.data) != _content(data):
                    counts += _change(old, data)
                # An unchanged voice is rewritten whole too: only synced_at differs, and a
                # replace costs less than a field update on both adapters.
                tx.set(VOICES, voice_id, data)
            return counts

        return _counted_write(self._store, write)

    def deprecate(self, voice_ids: Iterable[str]) -> int:
        """Mark the voices deprecated (at most 500); return how many were not already."""
        ids = list(voice_ids)
        if len(ids) > MAX_BATCH_WRITES:
            raise ValueError(f"deprecate at most {MAX_BATCH_WRITES} voices at once")

        def write(tx: Transaction) -> int:
            changed = 0
            for document in tx.get_many(VOICES, ids).values():
                if not document.data.get("is_deprecated"):
                    tx.update(VOICES, document.id, {"is_deprecated": True})
                    changed += 1
            return changed

        return _counted_write(self._store, write) if ids else 0


def _change(old: Document | None, new: dict[str, Any]) -> UpsertCounts:
    if old is None:
        return UpsertCounts(added=1)
    if new.get("is_deprecated") and not old.data.get("is_deprecated"):
        return UpsertCounts(deprecated=1)
    return UpsertCounts(updated=1)
