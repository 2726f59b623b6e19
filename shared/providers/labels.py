"""Normalising provider metadata into the catalog's vocabulary.

Each provider labels voices its own way (``"Female"``, ``"FEMALE"``, ``"middle aged"``,
``"CustomerService"``, ``"conversational"``). These functions map the labels a provider
actually gives onto ``Gender``, ``AgeGroup`` and snake_case styles and use cases. A label
that maps to nothing gives None: the catalog leaves what it does not know empty rather than
guessing, and adapters keep the raw label in ``metadata`` for reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shared.model import normalize_language_tag
from shared.providers.voices import AgeGroup, Gender

_GENDERS = {
    "male": Gender.MALE,
    "m": Gender.MALE,
    "man": Gender.MALE,
    "female": Gender.FEMALE,
    "f": Gender.FEMALE,
    "woman": Gender.FEMALE,
    "neutral": Gender.NEUTRAL,
    "gender_neutral": Gender.NEUTRAL,
    "non_binary": Gender.NEUTRAL,
    "nonbinary": Gender.NEUTRAL,
}

_AGE_LABELS = {
    "child": AgeGroup.CHILD,
    "children": AgeGroup.CHILD,
    "kid": AgeGroup.CHILD,
    "girl": AgeGroup.CHILD,
    "boy": AgeGroup.CHILD,
    "young": AgeGroup.YOUNG,
    "teen": AgeGroup.YOUNG,
    "teenage": AgeGroup.YOUNG,
    "teenager": AgeGroup.YOUNG,
    "young_adult": AgeGroup.YOUNG,
    "youngadult": AgeGroup.YOUNG,
    "adult": AgeGroup.ADULT,
    "middle_aged": AgeGroup.ADULT,
    "middleaged": AgeGroup.ADULT,
    "old": AgeGroup.SENIOR,
    "older": AgeGroup.SENIOR,
    "older_adult": AgeGroup.SENIOR,
    "olderadult": AgeGroup.SENIOR,
    "senior": AgeGroup.SENIOR,
    "elderly": AgeGroup.SENIOR,
}

# Provider spellings of the same use case, folded onto one catalog label.
_USE_CASE_SYNONYMS = {
    "conversational": "conversation",
    "chat": "conversation",
    "customerservice": "customer_service",
    "customer_support": "customer_service",
    "e_learning": "education",
    "elearning": "education",
    "informative_educational": "education",
    "educational": "education",
    "narrative_story": "narration",
    "narrative": "narration",
    "characters": "character",
    "characters_animation": "character",
    "audiobooks": "audiobook",
    "video_games": "gaming",
    "games": "gaming",
    "newscast": "news",
    "advertisement": "advertising",
    "ads": "advertising",
    "social_media": "social_media",
    "entertainment_tv": "entertainment",
}

_NOT_WORD = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def slug(label: str) -> str:
    """Return ``label`` as lower snake_case (``CustomerService`` -> ``customer_service``)."""
    spaced = _CAMEL.sub("_", label.strip())
    return _NOT_WORD.sub("_", spaced.lower()).strip("_")


def gender_from(label: str | None) -> Gender | None:
    """Return the gender a provider label names, or None when it names none."""
    if not label:
        return None
    return _GENDERS.get(slug(label))


def age_group_from(label: str | None) -> AgeGroup | None:
    """Return the age group a provider label names (``"middle aged"`` -> adult), or None."""
    if not label:
        return None
    key = slug(label)
    return _AGE_LABELS.get(key) or _AGE_LABELS.get(key.replace("_", ""))


def age_group_from_years(years: int | None) -> AgeGroup | None:
    """Return the age group of an age in years; 0 or None means unspecified."""
    if not years or years <= 0:
        return None
    if years < 13:
        return AgeGroup.CHILD
    if years < 30:
        return AgeGroup.YOUNG
    if years < 60:
        return AgeGroup.ADULT
    return AgeGroup.SENIOR


def use_case_from(label: str) -> str | None:
    """Return the catalog use case of a provider's scenario label, or None when blank."""
    key = slug(label)
    if not key:
        return None
    return _USE_CASE_SYNONYMS.get(key, _USE_CASE_SYNONYMS.get(key.replace("_", ""), key))


def use_cases_from(labels: Iterable[str | None]) -> tuple[str, ...]:
    """Return the distinct catalog use cases of ``labels``, in order."""
    found: list[str] = []
    for label in labels:
        mapped = use_case_from(label) if label else None
        if mapped and mapped not in found:
            found.append(mapped)
    return tuple(found)


def styles_from(labels: Iterable[str | None]) -> tuple[str, ...]:
    """Return the distinct style labels (lower snake_case) of ``labels``, in order."""
    found: list[str] = []
    for label in labels:
        key = slug(label) if label else ""
        if key and key not in found:
            found.append(key)
    return tuple(found)


def language_or_none(tag: str | None) -> str | None:
    """Return ``tag`` normalised to BCP-47, or None when it is missing or malformed."""
    if not tag:
        return None
    try:
        return normalize_language_tag(tag)
    except ValueError:
        return None
