"""Phonemes for syllable timestamps, from eSpeak NG whichever provider spoke.

Syllables of alphabetic words are counted from eSpeak's phonemes (its vowel nuclei) when
eSpeak is enabled here; CJK words need none (one syllable per character). A language
eSpeak does not speak, or any eSpeak failure, leaves the spelling rules to decide.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from shared.audio.syllables import is_character_syllabic
from shared.providers.base import ProviderError
from shared.providers.registry import ProviderRegistry
from shared.services.synthesis_render import Phonemizer

logger = logging.getLogger(__name__)
DEFAULT_LANGUAGE = "en-US"


def espeak_phonemizer(registry: ProviderRegistry) -> Phonemizer | None:
    """Return a phonemizer backed by the registry's eSpeak, or None when it is not enabled."""
    if "espeak" not in registry:
        return None

    def phonemize(words: Sequence[str], language: str | None) -> list[str | None]:
        from shared.providers.espeak import EspeakProvider  # noqa: PLC0415 - eSpeak is optional

        provider = registry.get("espeak")
        if not isinstance(provider, EspeakProvider):
            return [None] * len(words)
        wanted = [i for i, w in enumerate(words) if not any(map(is_character_syllabic, w))]
        found: list[str | None] = [None] * len(words)
        if not wanted:
            return found
        try:
            phonemes = provider.phonemes([words[i] for i in wanted], language or DEFAULT_LANGUAGE)
        except ProviderError:
            logger.debug("eSpeak has no voice for %s; syllables from spelling", language)
            return found
        for index, value in zip(wanted, phonemes, strict=True):
            found[index] = value
        return found

    return phonemize
