"""The voice catalog's read side: filtered listing, one voice, and the providers' summary.

Deprecated voices stay in the catalog (a synthesis job or a saved preference may name
one) but are listed only when asked for. ``language`` matches a whole tag exactly
(``en-GB``) and a bare language every region of it (``en``); ``search`` matches voices
whose display name or labels (styles, use cases, tags) have words starting with each
word searched. Lists come by id unless ``sort`` asks for name, language or provider:
those orders are computed over every matching voice (at most ``MAX_SORTED``), since the
store sorts only by id without a composite index per filter. The providers' summary
joins what each enabled provider can do with what the catalog knows of it: active
voices, the last successful sync, and the last sync job's status.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, field_validator

from shared.catalog.repository import VoiceFilters, VoiceRepository, search_words
from shared.catalog.sync_repository import VoiceSyncJobRepository
from shared.errors import ConfigurationError, InvalidRequestError
from shared.model import RequestModel, normalize_language_tag
from shared.providers.voices import AgeGroup, Gender, VoiceProfile
from shared.store.base import DocumentStore

if TYPE_CHECKING:  # listing voices needs no provider: only their summary builds them
    from shared.providers.base import TTSProvider
    from shared.providers.registry import ProviderRegistry

MAX_PAGE = 100
MAX_SORTED = 5000
MAX_SEARCH_WORDS = 5


class VoiceSort(StrEnum):
    """The orders ``GET /voices`` lists in."""

    ID = "id"
    NAME = "name"
    LANGUAGE = "language"
    PROVIDER = "provider"


_SORT_KEYS: dict[VoiceSort, Callable[[VoiceProfile], tuple[str, ...]]] = {
    VoiceSort.NAME: lambda v: (v.display_name.casefold(), v.id),
    VoiceSort.LANGUAGE: lambda v: (v.language, v.display_name.casefold(), v.id),
    VoiceSort.PROVIDER: lambda v: (v.provider, v.display_name.casefold(), v.id),
}


class VoiceListQuery(RequestModel):
    """Query string of ``GET /voices``."""

    provider: Annotated[str, Field(max_length=50)] | None = None
    language: Annotated[str, Field(max_length=35)] | None = None
    gender: Gender | None = None
    age_group: AgeGroup | None = None
    style: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    use_case: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    search: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    include_deprecated: bool = False
    sort: VoiceSort = VoiceSort.ID
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50
    cursor: Annotated[str, Field(max_length=2000)] | None = None

    @field_validator("search")
    @classmethod
    def _search(cls, value: str | None) -> str | None:
        if value is None:
            return None
        words = search_words(value)
        if not words:
            raise ValueError("search needs at least one letter or digit")
        if len(words) > MAX_SEARCH_WORDS:
            raise ValueError(f"search at most {MAX_SEARCH_WORDS} words")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return normalize_language_tag(value) if value else None

    @field_validator("provider", "style", "use_case")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else None

    def filters(self) -> VoiceFilters:
        """Return the repository filters of this query."""
        return VoiceFilters(
            provider=self.provider,
            language=self.language,
            gender=self.gender,
            age_group=self.age_group,
            style=self.style,
            use_case=self.use_case,
            search=tuple(dict.fromkeys(search_words(self.search or ""))),
            include_deprecated=self.include_deprecated,
        )


def list_voices(
    *, store: DocumentStore, query: VoiceListQuery
) -> tuple[list[VoiceProfile], str | None]:
    """Return one page of voices matching ``query``, in its order, and the next cursor.

    Raises InvalidRequestError for a bad cursor, or a sort over more than ``MAX_SORTED``
    matching voices.
    """
    repository = VoiceRepository(store)
    if query.sort is VoiceSort.ID:
        return repository.find(query.filters(), limit=query.limit, cursor=query.cursor)
    offset = _sorted_offset(query.cursor, query.sort) if query.cursor else 0
    voices = repository.matching(query.filters(), at_most=MAX_SORTED)
    if voices is None:
        raise InvalidRequestError(
            f"Sorting by {query.sort.value} reads every matching voice: narrow the query "
            f"(provider, language, search, ...) to at most {MAX_SORTED} voices, or sort by id"
        )
    voices.sort(key=_SORT_KEYS[query.sort])
    following = offset + query.limit
    cursor = _sorted_cursor(query.sort, following) if following < len(voices) else None
    return voices[offset:following], cursor


def _sorted_cursor(sort: VoiceSort, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{sort.value}:{offset}".encode()).decode().rstrip("=")


def _sorted_offset(cursor: str, sort: VoiceSort) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        label, _, number = text.partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequestError("Invalid cursor") from None
    if label != sort.value or not 0 <= offset <= MAX_SORTED:
        raise InvalidRequestError("Invalid cursor for this sort")
    return offset


def get_voice(*, store: DocumentStore, voice_id: str) -> VoiceProfile:
    """Return the voice ``provider:voice_id`` (deprecated ones too).

    Raises:
        VoiceNotFoundError: no such voice.
    """
    return VoiceRepository(store).require(voice_id)


def provider_summaries(
    *, store: DocumentStore, providers: ProviderRegistry
) -> list[dict[str, Any]]:
    """Return each enabled provider with its capabilities, voice count and last sync."""
    voices = VoiceRepository(store)
    states = VoiceSyncJobRepository(store).provider_states(providers.names)
    summaries: list[dict[str, Any]] = []
    for name in providers.names:
        state = states.get(name, {})
        active = voices.count(name)
        summaries.append(
            {
                "name": name,
                "capabilities": _capabilities(providers, name, state),
                "voiceCount": active,
                "deprecatedVoiceCount": voices.count(name, include_deprecated=True) - active,
                "lastSyncedAt": state.get("last_synced_at"),
                "lastJobId": state.get("last_job_id"),
                "lastJobStatus": state.get("last_job_status"),
            }
        )
    return summaries


def _capabilities(providers: ProviderRegistry, name: str, state: dict[str, Any]) -> Any:
    try:
        provider: TTSProvider = providers.get(name)
    except ConfigurationError as exc:
        # A misconfigured provider is listed with the reason, not hidden.
        return {"error": exc.message}
    capabilities = provider.capabilities.to_api()
    if not capabilities["languages"]:
        capabilities["languages"] = list(state.get("languages") or [])
    return capabilities
