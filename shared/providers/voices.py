"""How providers describe their voices, and what they are asked to say in a dialogue.

A ``VoiceProfile`` is one provider voice as the catalog stores it, keyed
``provider:voice_id``: language, gender, age group, styles and use cases (a lower-cased
vocabulary that filters match), free-form tags, provider metadata (its keys camelCase,
like every field), and whether the provider has deprecated it. A ``DialogueTurn`` is one
line of a multi-role dialogue: who speaks it, in which voice, and what they say.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from shared.model import (
    DomainModel,
    LanguageTag,
    RequestModel,
    UtcDatetime,
    with_changes,
)


class Gender(StrEnum):
    """The gender a voice presents as."""

    MALE = "male"
    FEMALE = "female"
    NEUTRAL = "neutral"


class AgeGroup(StrEnum):
    """The age a voice sounds."""

    CHILD = "child"
    YOUNG = "young"
    ADULT = "adult"
    SENIOR = "senior"


_SNAKE_KEY = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def camel_case_keys(value: Any) -> Any:
    """Return ``value`` with every snake_case mapping key, at any depth, in camelCase.

    Provider metadata reaches clients as every other field does; keys that are not
    snake_case (``Name``, ``use case``) stay as the provider wrote them.
    """
    if isinstance(value, dict):
        return {
            (to_camel(key) if isinstance(key, str) and _SNAKE_KEY.match(key) else key): (
                camel_case_keys(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [camel_case_keys(item) for item in value]
    return value


def voice_profile_id(provider: str, voice_id: str) -> str:
    """Return the catalog id of a provider's voice, ``provider:voice_id``."""
    return f"{provider}:{voice_id}"


def _labels(values: tuple[str, ...], *, lower: bool) -> tuple[str, ...]:
    cleaned: list[str] = []
    for value in values:
        label = value.strip().lower() if lower else value.strip()
        if not label:
            raise ValueError("labels cannot be blank")
        if label not in cleaned:
            cleaned.append(label)
    return tuple(cleaned)


def _vocabulary(values: tuple[str, ...]) -> tuple[str, ...]:
    return _labels(values, lower=True)


def _free_labels(values: tuple[str, ...]) -> tuple[str, ...]:
    return _labels(values, lower=False)


VocabularyLabels = Annotated[tuple[str, ...], AfterValidator(_vocabulary)]
"""Labels filtered on (styles, use cases): trimmed, lower-cased, de-duplicated."""


FreeLabels = Annotated[tuple[str, ...], AfterValidator(_free_labels)]
"""Free-form labels (tags): trimmed and de-duplicated, case kept."""


ProviderName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=50)]


class VoiceProfile(DomainModel):
    """One provider voice in the catalog; immutable, change it by building a new one.

    ``id`` defaults to ``provider:voice_id`` and, when given, must equal it.
    """

    model_config = ConfigDict(frozen=True)

    id: Annotated[str, Field(max_length=255)] = ""
    provider: ProviderName
    voice_id: Annotated[str, Field(min_length=1, max_length=128)]
    display_name: Annotated[str, Field(min_length=1, max_length=255)]
    language: LanguageTag
    gender: Gender | None = None
    age_group: AgeGroup | None = None
    styles: VocabularyLabels = ()
    use_cases: VocabularyLabels = ()
    description: str = ""
    sample_audio_url: str | None = None
    is_deprecated: bool = False
    tags: FreeLabels = ()
    metadata: dict[str, Any] = Field(default_factory=dict)
    synced_at: UtcDatetime | None = None
    supports_multi_speaker: bool = False

    @field_validator("metadata", mode="before")
    @classmethod
    def _camel_case_metadata(cls, value: Any) -> Any:
        return camel_case_keys(value)

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("id"):
            provider = data.get("provider")
            voice_id = data.get("voice_id", data.get("voiceId"))
            if isinstance(provider, str) and isinstance(voice_id, str):
                return {**data, "id": voice_profile_id(provider, voice_id)}
        return data

    @model_validator(mode="after")
    def _id_matches_provider_and_voice(self) -> Self:
        expected = voice_profile_id(self.provider, self.voice_id)
        if self.id != expected:
            raise ValueError(f"id must be 'provider:voice_id' ({expected!r}), got {self.id!r}")
        return self

    def deprecated(self) -> Self:
        """Return this voice marked deprecated (the provider no longer offers it)."""
        return with_changes(self, is_deprecated=True)


class DialogueTurn(RequestModel):
    """One line of a multi-role dialogue: who speaks it, in which voice, and what they say."""

    model_config = ConfigDict(frozen=True)

    speaker: Annotated[str, Field(min_length=1, max_length=100)]
    voice: Annotated[str, Field(min_length=1, max_length=255)]
    text: Annotated[str, Field(min_length=1)]
