"""The voice catalog's read side: filtered listing, one voice, and the providers' summary.

Deprecated voices stay in the catalog (a synthesis job or a saved preference may name
one) but are listed only when asked for. The providers' summary joins what each enabled
provider can do with what the catalog knows of it: active voices, the last successful
sync, and the last sync job's status.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator

from shared.catalog.repository import VoiceFilters, VoiceRepository
from shared.catalog.sync_repository import VoiceSyncJobRepository
from shared.errors import ConfigurationError
from shared.model import RequestModel, normalize_language_tag
from shared.providers.base import TTSProvider
from shared.providers.registry import ProviderRegistry
from shared.providers.voices import AgeGroup, Gender, VoiceProfile
from shared.store.base import DocumentStore

MAX_PAGE = 100


class VoiceListQuery(RequestModel):
    """Query string of ``GET /voices``."""

    provider: Annotated[str, Field(max_length=50)] | None = None
    language: Annotated[str, Field(max_length=35)] | None = None
    gender: Gender | None = None
    age_group: AgeGroup | None = None
    style: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    use_case: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    include_deprecated: bool = False
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 50
    cursor: Annotated[str, Field(max_length=2000)] | None = None

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
            include_deprecated=self.include_deprecated,
        )


def list_voices(
    *, store: DocumentStore, query: VoiceListQuery
) -> tuple[list[VoiceProfile], str | None]:
    """Return one page of voices matching ``query``, by id, and the next page's cursor."""
    return VoiceRepository(store).find(query.filters(), limit=query.limit, cursor=query.cursor)


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
