"""Phonemes for syllable timestamps, from eSpeak NG whichever provider spoke.

Syllables of alphabetic words are counted from eSpeak's phonemes (its vowel nuclei) when
eSpeak is enabled here. eSpeak is asked only for the words whose count its phonemes decide
(``uses_phonemes``): not CJK words (one syllable per character), nor numbers, words with
signs, abbreviations or letters written each with a dot (read whole, or a letter each). A
language eSpeak does not speak, or any eSpeak failure, leaves the spelling rules to decide.
Each word is asked for once per language and remembered (a bounded, least-recently-used set).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.audio.syllables import uses_phonemes
from shared.providers.base import ProviderError
from shared.providers.registry import ProviderRegistry

if TYPE_CHECKING:
    from shared.synthesis.render import Phonemizer

logger = logging.getLogger(__name__)
DEFAULT_LANGUAGE = "en-US"
# A word's phonemes depend only on the word and the language (eSpeak is one engine per
# process), and most words of any text are common ones: remember the latest words.
_REMEMBERED_WORDS = 16_384
_remembered: OrderedDict[tuple[str, str], str | None] = OrderedDict()
_remembered_lock = threading.Lock()


def espeak_phonemizer(registry: ProviderRegistry) -> Phonemizer | None:
    """Return a phonemizer backed by the registry's eSpeak, or None when it is not enabled."""
    if "espeak" not in registry:
        return None

    def phonemize(words: Sequence[str], language: str | None) -> list[str | None]:
        from shared.providers.espeak import EspeakProvider  # noqa: PLC0415 - eSpeak is optional

        provider = registry.get("espeak")
        if not isinstance(provider, EspeakProvider):
            return [None] * len(words)
        wanted = [i for i, word in enumerate(words) if uses_phonemes(word, language)]
        language = language or DEFAULT_LANGUAGE
        found: list[str | None] = [None] * len(words)
        missing = []
        with _remembered_lock:
            for index in wanted:
                key = (language, words[index])
                if key in _remembered:
                    _remembered.move_to_end(key)
                    found[index] = _remembered[key]
                else:
                    missing.append(index)
        if not missing:
            return found
        asked = list(dict.fromkeys(words[i] for i in missing))  # a word repeated: asked once
        try:
            phonemes = dict(zip(asked, provider.phonemes(asked, language), strict=True))
        except ProviderError:
            logger.debug("eSpeak has no voice for %s; syllables from spelling", language)
            return found
        with _remembered_lock:
            for index in missing:
                found[index] = phonemes[words[index]]
                _remembered[(language, words[index])] = found[index]
            while len(_remembered) > _REMEMBERED_WORDS:
                _remembered.popitem(last=False)
        return found

    return phonemize
