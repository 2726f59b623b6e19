"""Syllable timestamps: each timed word split into syllables sharing the word's time.

Chinese and Japanese characters (ideographs, kana) and Korean Hangul blocks are one
syllable each; what stands between them is split as a word alone would be (so a number
there, "2024" in "2024年", is one syllable of its own), and punctuation or marks join the
syllable before them. A word whose letters do not spell what is said is one syllable over
its whole time: a number or a word with digits or signs ("42", "3.14", "$5", "50%", "C++":
the signs ``tokenize_words`` keeps on a word), and an abbreviation written without a
vowel letter ("Dr", "km", "TV"; in the Latin, Greek and Cyrillic alphabets, whose vowels
are known here). Letters written each with a dot ("U.S", "e.g", "i.e", "z.B") are read
letter by letter, as eSpeak reads them in every language it was asked ("e.g" is "ee-jee",
not "for example"): a syllable per letter, its dot with it ("U.|S"), whatever its name
sounds like ("W" is one too). Other alphabetic words are split by an orthographic rule
(vowel groups, with the English silent final e, "-ed"/"-es" endings and consonant + "le";
consonants between vowels go with the following vowel, clusters split after their first
consonant, digraphs like "th" kept whole). When the phonemes of the word are known
(eSpeak's IPA or ASCII mnemonics from ``espeak_TextToPhonemes``, which
``shared.synthesis.phonemes`` asks the eSpeak provider for, only for the words
``uses_phonemes`` names) their vowel nuclei decide the count, and the spelled syllables
are merged or split to match. A word's [start, end] is shared among its syllables in
proportion to their length, or where the provider timed the word inside (a Chinese clause,
character by character) by those times (``TimedWord.time_at``); its character span is cut
where they are (``syllable_span``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, NamedTuple

from shared.audio.timestamps import TimedWord
from shared.audio.timing import is_character_syllabic, is_sentence_punctuation

# IPA vowels, and eSpeak's ASCII phoneme mnemonics for vowels. The lookalike letters in
# these sets (IPA, Cyrillic, Greek) are meant: each is a different character to match.
_IPA_VOWELS = frozenset("aeiouyæɑɒɐəɘɚɛɜɝɞɪʊʌɔøœɤɯʉɨɵʏɶ")  # noqa: RUF001
_MNEMONIC_VOWELS = frozenset("aeiouyAEIOUVY03@&")
_SYLLABIC_MARK = "\u0329"  # combining vertical line below: a syllabic consonant (n̩)
# Length, stress and syllable marks end a nucleus.
_NUCLEUS_BREAKS = frozenset("ː:ˈˌ',.%=_|- ")  # noqa: RUF001
_LETTER_VOWELS = frozenset("aeiouyаеёиоуыэюяіїєαεηιουω")  # noqa: RUF001
# Every vowel letter of the Latin, Greek and Cyrillic alphabets, to tell an abbreviation
# ("Dr", "km") from a word: the ones above, the IPA's (African alphabets write ɛ and ɔ,
# Danish ø, Azerbaijani ə), Turkish dotless i, the Cyrillic vowels of Kazakh, Tatar and
# Ossetian; Welsh adds w ("cwrw").
_ANY_VOWEL_LETTERS = _LETTER_VOWELS | _IPA_VOWELS | frozenset("ıәөүұӕ")
_WELSH_VOWEL_LETTERS = _ANY_VOWEL_LETTERS | {"w"}
_ALPHABETS_WITH_VOWEL_LETTERS = ("LATIN ", "GREEK ", "CYRILLIC ")
_DIGRAPHS = frozenset({"ch", "sh", "th", "ph", "wh", "gh", "ck", "ng", "qu"})
_SILENT_ED = re.compile(r"[^td]ed$")
_SOUNDED_ES = re.compile(r"([sxzcg]|ch|sh)es$")  # "boxes", "places", "wishes"
# Two or more letters each written with a dot; the tokenizer leaves the last dot out.
_INITIALISM = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]\.?")
_INITIAL = re.compile(r"[^\W\d_]\.?")


class TimedSyllable(NamedTuple):
    """A syllable with its time (seconds), its span in the input (end exclusive, as its
    word's) and the index of its word."""

    text: str
    start: float
    end: float
    word_index: int
    char_start: int
    char_end: int

    def to_api(self) -> dict[str, Any]:
        """Return ``{text, start, end, charStart, charEnd, wordIndex}``."""
        return {
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "charStart": self.char_start,
            "charEnd": self.char_end,
            "wordIndex": self.word_index,
        }


def syllable_span(
    word_span: tuple[int, int], word_text: str, offset: int, length: int
) -> tuple[int, int]:
    """Return the span of the syllable ``length`` characters long that starts ``offset``
    characters into a word spanning ``word_span``: its slice of the word's span, or the
    whole span when the span holds more than the word's characters (SSML written with an
    entity or markup inside the word, ``caf&#233;``, where no slice is the syllable)."""
    start, end = word_span
    if end - start != len(word_text):
        return word_span
    return start + offset, start + offset + length


def phoneme_syllable_count(phonemes: str) -> int:
    """Return the number of vowel nuclei in eSpeak phonemes (IPA or ASCII mnemonics)."""
    vowels = _IPA_VOWELS if any(ord(char) > 127 for char in phonemes) else _MNEMONIC_VOWELS
    count, in_nucleus = 0, False
    for char in unicodedata.normalize("NFD", phonemes):
        if char in vowels or char == _SYLLABIC_MARK:
            # A syllabic mark makes the consonant before it a nucleus of its own.
            count += 0 if in_nucleus else 1
            in_nucleus = True
        elif char in _NUCLEUS_BREAKS or char.isalpha():
            in_nucleus = False
    return count


def split_syllables(
    word: str, language: str | None = None, phonemes: str | None = None
) -> list[str]:
    """Return ``word`` cut into syllables; joined again they spell ``word``.

    ``language`` (BCP-47) turns on English spelling rules when it is English or unknown;
    ``phonemes`` (eSpeak output for this word) set the number of syllables when given
    (``uses_phonemes`` says for which words). A number, a word with digits or signs, or
    an abbreviation is one syllable; letters written each with a dot are one each.
    """
    if not word:
        return []
    english = language is None or language.lower().startswith("en")
    welsh = _is_welsh(language)
    if any(is_character_syllabic(char) for char in word):
        return _by_character(word, english=english, welsh=welsh)
    as_read = _as_read(word, welsh=welsh)
    if as_read is not None:
        return as_read
    parts = _orthographic(word, english=english)
    if phonemes:
        wanted = phoneme_syllable_count(phonemes)
        if wanted > 0:
            parts = _to_count(parts, wanted)
    return parts


def uses_phonemes(word: str, language: str | None = None) -> bool:
    """Return whether ``split_syllables`` counts ``word``'s syllables by its phonemes: not
    for a Chinese, Japanese or Korean word (a syllable per character), letters written
    each with a dot (one per letter), a number, a word with signs or an abbreviation
    (read whole)."""
    if any(is_character_syllabic(char) for char in word):
        return False
    return _as_read(word, welsh=_is_welsh(language)) is None


def _is_welsh(language: str | None) -> bool:
    return language is not None and language.lower().startswith("cy")


def _as_read(word: str, *, welsh: bool) -> list[str] | None:
    # The syllables of a word whose letters do not spell its sounds, or None.
    if _INITIALISM.fullmatch(word):
        return _INITIAL.findall(word)
    if _is_read_whole(word, welsh=welsh):
        return [word]
    return None


def _is_read_whole(word: str, *, welsh: bool) -> bool:
    # "42" is "forty-two" and "Dr" is "doctor": their letters and signs do not spell the
    # syllables said, so no piece of them would mark one (eSpeak's count split "42" as "4|2").
    if any(_is_digit_or_sign(char) for char in word):
        return True
    vowels = _WELSH_VOWEL_LETTERS if welsh else _ANY_VOWEL_LETTERS
    return all(
        unicodedata.name(char, "").startswith(_ALPHABETS_WITH_VOWEL_LETTERS)
        and unicodedata.normalize("NFD", char.lower())[0] not in vowels
        for char in word
        if char.isalpha()
    )


def _is_digit_or_sign(char: str) -> bool:
    # Signs are what the word tokenizer keeps on a word ("$", "+", "%", "#", "°"); hyphens,
    # apostrophes and the Catalan middle dot are sentence punctuation to it, and spelling here.
    kind = unicodedata.category(char)[0]
    return kind == "N" or (kind in ("S", "P") and not is_sentence_punctuation(char))


def _by_character(word: str, *, english: bool, welsh: bool) -> list[str]:
    # Each syllabic character stands alone; a run of other characters is read as a word
    # alone would be ("OK" in "卡拉OK" by spelling, "2024" in "2024年" whole); marks and
    # punctuation join the syllable before them.
    parts: list[str] = []
    run = ""
    for char in [*word, ""]:
        if char and not is_character_syllabic(char):
            run += char
            continue
        said = _said_from(run) if parts else 0
        if said:
            parts[-1] += run[:said]
        rest = run[said:]
        if rest:
            parts.extend(_as_read(rest, welsh=welsh) or _orthographic(rest, english=english))
        run = ""
        if char:
            parts.append(char)
    return parts


def _said_from(run: str) -> int:
    # Where the run's letters, digits and signs start ("・" in "京・" is said with 京);
    # a run of punctuation and marks alone is all the syllable before's.
    if not any(char.isalnum() for char in run):
        return len(run)
    return next(i for i, char in enumerate(run) if char.isalpha() or _is_digit_or_sign(char))


def _is_plain_vowel(char: str) -> bool:
    return unicodedata.normalize("NFD", char.lower())[0] in _LETTER_VOWELS


def _is_vowel(word: str, index: int) -> bool:
    if word[index].lower() != "y":
        return _is_plain_vowel(word[index])
    # "y" starting a syllable before a vowel is a consonant ("yes", "beyond").
    before_vowel = index + 1 < len(word) and _is_plain_vowel(word[index + 1])
    return not (before_vowel and (index == 0 or _is_plain_vowel(word[index - 1])))


def _orthographic(word: str, *, english: bool) -> list[str]:
    groups: list[tuple[int, int]] = []  # vowel groups as [start, end)
    index = 0
    while index < len(word):
        if _is_vowel(word, index):
            start = index
            while index < len(word) and _is_vowel(word, index):
                index += 1
            groups.append((start, index))
        else:
            index += 1
    if english:
        groups = _drop_silent_endings(word.lower(), groups)
    if len(groups) <= 1:
        return [word]
    cuts = [_cut_between(word, groups[i][1], groups[i + 1][0]) for i in range(len(groups) - 1)]
    bounds = [0, *cuts, len(word)]
    return [word[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]


def _drop_silent_endings(lower: str, groups: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if len(groups) < 2 or groups[-1][1] < len(lower) - 1:
        return groups
    last_start, last_end = groups[-1]
    ending = lower[last_start:]
    consonant_le = re.search(r"[^aeiouy]le$", lower) is not None
    silent = (
        (ending == "e" and not consonant_le)
        or (ending == "ed" and _SILENT_ED.search(lower) is not None)
        or (ending == "es" and _SOUNDED_ES.search(lower) is None)
    )
    return groups[:-1] if silent and last_end - last_start == 1 else groups


def _cut_between(word: str, vowel_end: int, next_vowel: int) -> int:
    # Where the consonants between two vowel groups split: "ba|na|na", "hel|lo", "ta|ble".
    consonants = word[vowel_end:next_vowel].lower()
    for offset, char in enumerate(consonants):
        if not char.isalpha():
            return vowel_end + offset + 1  # after a hyphen or apostrophe: "well-|known"
    if len(consonants) <= 1:
        return vowel_end
    if consonants[-1] == "l" and word[next_vowel:].lower() == "e":
        return next_vowel - 2  # consonant + le: "ta|ble", "lit|tle"
    if consonants[:2] in _DIGRAPHS and len(consonants) == 2:
        return vowel_end if consonants != "ck" else next_vowel
    return vowel_end + 1


def _to_count(parts: list[str], wanted: int) -> list[str]:
    parts = list(parts)
    while len(parts) > wanted:
        # Merge the shortest neighbouring pair.
        index = min(range(len(parts) - 1), key=lambda i: len(parts[i]) + len(parts[i + 1]))
        parts[index : index + 2] = [parts[index] + parts[index + 1]]
    while len(parts) < wanted:
        index = max(range(len(parts)), key=lambda i: len(parts[i]))
        longest = parts[index]
        if len(longest) < 2:
            break
        # Cut after a vowel nearest the middle ("rhy|thm", "de|a"), else at the middle.
        after_vowel = [i for i in range(1, len(longest)) if _is_vowel(longest, i - 1)]
        middle = min(after_vowel or [len(longest) // 2], key=lambda i: abs(2 * i - len(longest)))
        parts[index : index + 1] = [longest[:middle], longest[middle:]]
    return parts


# The same words come back in text after text; cutting one is pure, so remember the latest.
@functools.lru_cache(maxsize=16_384)
def _syllables_of(text: str, language: str | None, phonemes: str | None) -> tuple[str, ...]:
    return tuple(split_syllables(text, language, phonemes) or [text])


def syllables_for_word(
    word: TimedWord,
    word_index: int,
    language: str | None = None,
    phonemes: str | None = None,
) -> list[TimedSyllable]:
    """Return the syllables of ``word`` sharing its [start, end] by syllable length, or
    by the provider's times inside the word where it gave some (``TimedWord.time_at``)."""
    parts = _syllables_of(word.text, language, phonemes)
    syllables: list[TimedSyllable] = []
    elapsed = 0
    for number, part in enumerate(parts, 1):
        start = word.time_at(elapsed)
        chars = syllable_span((word.char_start, word.char_end), word.text, elapsed, len(part))
        elapsed += len(part)
        end = word.end if number == len(parts) else word.time_at(elapsed)
        syllables.append(TimedSyllable(part, start, end, word_index, *chars))
    return syllables


def syllable_timestamps(
    words: Sequence[TimedWord],
    language: str | None = None,
    phonemes: Sequence[str | None] | None = None,
) -> list[TimedSyllable]:
    """Return the syllables of every word in order; ``phonemes[i]`` belongs to ``words[i]``.

    Raises:
        ValueError: ``phonemes`` is given with a length other than ``len(words)``.
    """
    if phonemes is not None and len(phonemes) != len(words):
        raise ValueError("give one phoneme string (or None) per word")
    syllables: list[TimedSyllable] = []
    for index, word in enumerate(words):
        word_phonemes = phonemes[index] if phonemes is not None else None
        syllables.extend(syllables_for_word(word, index, language, word_phonemes))
    return syllables
