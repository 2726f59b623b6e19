"""One timing model for every provider: ``WordTiming`` from characters, marks or events.

Providers report timing three ways: per character (ElevenLabs' alignment), as named marks
placed before each word (Google's SSML marks, Polly's speech marks), or as word events
(eSpeak). These helpers turn each into words with start and end seconds and the word's
character span in the input text. A word ends where the next begins unless the provider
says otherwise; the last word ends with the audio.

A word is what the user wrote between spaces, as ``tokenize_words`` cuts it: from its first
to its last letter or digit, with the signs written on it ("$5", "50%", "C++", "C#",
"#tag", "@user", "-5°"; their fullwidth forms too), without the punctuation around it
(``.,!?;:``, quotes, brackets, dashes, ellipses). Signs or punctuation alone ("&", "--")
are no word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

# Punctuation that is said with the word it is written on ("50%", "C#", "#tag", "@user",
# "&c", "§5", and primes for feet and inches, "6\u2032"): it belongs to the word, as
# symbols ("$", "€", "+", "°") do.
_SIGNS = frozenset("%\u2030\u2031#@&§\u2032\u2033\u2034")


def _is_sign(char: str) -> bool:
    # Chinese and Japanese text writes the signs fullwidth ("50\uff05", "\uff03tag") or
    # small ("\ufe6a"): what NFKC makes of them is the sign.
    return char in _SIGNS or unicodedata.normalize("NFKC", char) in _SIGNS


def _wide_punctuation() -> str:
    """Return, escaped for a character class, the punctuation of Chinese and Japanese text
    (the ideographic full stop 。 and comma 、, corner brackets 「」, fullwidth ! and ?):
    CJK Symbols and Punctuation, the vertical and small forms and the fullwidth forms,
    punctuation only (the iteration mark 々 is a letter), and not the fullwidth signs."""
    blocks = ((0x3000, 0x303F), (0xFE10, 0xFE6F), (0xFF00, 0xFF65))
    return "".join(
        re.escape(chr(code))
        for first, last in blocks
        for code in range(first, last + 1)
        if unicodedata.category(chr(code))[0] == "P" and not _is_sign(chr(code))
    )


# A word: a run of anything but whitespace and the punctuation of Chinese and Japanese,
# which part words as spaces do there (those scripts put no space between sentences).
_TOKEN = re.compile(rf"[^\s{_wide_punctuation()}]+")


# Hiragana's block: the scripts that spell a syllable per character (kana, CJK, Hangul
# syllables) all lie at or above it, so a character below needs no name lookup.
_FIRST_SYLLABIC_SCRIPT = "\u3040"


def is_character_syllabic(char: str) -> bool:
    """Return whether ``char`` is a syllable by itself (CJK ideograph, kana, Hangul)."""
    if char < _FIRST_SYLLABIC_SCRIPT:
        return False
    name = unicodedata.name(char, "")
    return name.startswith(("CJK UNIFIED", "CJK COMPATIBILITY IDEOGRAPH", "HANGUL SYLLABLE")) or (
        name.startswith(("HIRAGANA LETTER", "KATAKANA LETTER")) and "SMALL" not in name
    )


class Token(NamedTuple):
    """A word of the input text and its span (end exclusive)."""

    text: str
    start: int
    end: int


# The grave and acute accents written as quotes around a word: outside it, as quotes are.
_QUOTING_SYMBOLS = frozenset("`\u00b4")


def _kind(char: str) -> str:
    # The major Unicode category; a provider's "character" may be empty or longer.
    return unicodedata.category(char[0])[0] if char else "C"


def _is_core(char: str) -> bool:
    return _kind(char) in ("L", "N")


def is_sentence_punctuation(char: str) -> bool:
    """Return whether ``char`` parts words rather than being written on one (``.,!?;:``,
    quotes, brackets, dashes; not the signs ``%#@&§``, fullwidth too, and primes); a
    hyphen may still be a minus sign, of the word after it (``is_of_word``)."""
    if _kind(char) == "P":
        return not _is_sign(char)
    return char in _QUOTING_SYMBOLS


def is_of_word(chars: Sequence[str], index: int) -> bool:
    """Return whether ``chars[index]`` is of the word it is next to, not what parts words:
    a letter, digit, mark, sign or symbol, or a minus sign; not a space or sentence
    punctuation. Lexicon rules match whole words by this (``shared.lexicons.matching``).

    A hyphen right before a digit is a minus sign, of the number ("-5", "(-5)", and "$-5"
    one word), unless it follows a word, a letter or digit with only signs between: then
    it parts two words ("10-15", "COVID-19", "50%-60%").
    """
    char = chars[index]
    if char.isspace():
        return False
    if not is_sentence_punctuation(char):
        return True
    if char != "-" or index + 1 >= len(chars) or not chars[index + 1].isdigit():
        return False
    before = index - 1
    while before >= 0 and not chars[before].isspace():
        if is_sentence_punctuation(chars[before]):
            break
        if _is_core(chars[before]):
            return False
        before -= 1
    return True


def _word_span(chars: Sequence[str], start: int, end: int) -> tuple[int, int] | None:
    """Return the span (end exclusive) of the word among ``chars[start:end]``, a piece of
    text without spaces, or None when it holds no letter or digit.

    The word runs from the first letter or digit to the last, and on outwards over what is
    written on it (``is_of_word``): signs, symbols, marks and a minus sign ("-5", "$-5"),
    not sentence punctuation.
    """
    first, last = start, end
    while first < last and not _is_core(chars[first]):
        first += 1
    if first == last:
        return None
    while not _is_core(chars[last - 1]):
        last -= 1
    while first > start and is_of_word(chars, first - 1):
        first -= 1
    while last < end and is_of_word(chars, last):
        last += 1
    return first, last


def tokenize_words(text: str) -> list[Token]:
    """Return the words of ``text``: whitespace-separated, the signs written on each kept
    ("$5", "50%", "C++") and the punctuation around it left out (``_word_span``).

    Chinese and Japanese text is also cut at its own punctuation (``_TOKEN``), so a
    paragraph without spaces is timed clause by clause, not as one word.
    """
    tokens: list[Token] = []
    for match in _TOKEN.finditer(text):
        span = _word_span(text, *match.span())
        if span is not None:
            tokens.append(Token(text[span[0] : span[1]], *span))
    return tokens


def words_from_marks(
    tokens: Sequence[Token], starts: Sequence[float], total_seconds: float
) -> list[WordTiming]:
    """Return timings for ``tokens`` given each one's start time (a mark before each word).

    ``starts[i]`` belongs to ``tokens[i]``; words without a mark are skipped. Each word
    ends where the next marked word starts, the last at ``total_seconds``.
    """
    paired = list(zip(tokens, starts, strict=False))
    words: list[WordTiming] = []
    for index, (token, start) in enumerate(paired):
        end = paired[index + 1][1] if index + 1 < len(paired) else total_seconds
        start_s = max(0.0, float(start))
        words.append(
            WordTiming(token.text, start_s, max(start_s, float(end)), token.start, token.end)
        )
    return words


def words_from_characters(
    text: str,
    characters: Sequence[str],
    starts: Sequence[float],
    ends: Sequence[float],
) -> list[WordTiming]:
    """Return word timings from per-character times (ElevenLabs' ``alignment``): a timing
    per word between spaces, and per character in Chinese and Japanese.

    ``characters`` normally spell ``text`` exactly; where they differ (the provider
    normalised the text) the characters are matched to ``text`` in order, and words whose
    characters cannot be found get no character span.

    Raises:
        ValueError: the three lists differ in length.
    """
    if not (len(characters) == len(starts) == len(ends)):
        raise ValueError("alignment lists differ in length")
    offsets = _align_characters(text, characters)
    words: list[WordTiming] = []
    current: list[int] = []

    def add(first: int, last: int) -> None:
        word = "".join(characters[first : last + 1])
        start_char, end_char = offsets[first], offsets[last]
        span_ok = start_char is not None and end_char is not None
        words.append(
            WordTiming(
                word,
                max(0.0, float(starts[first])),
                max(float(starts[first]), float(ends[last])),
                start_char if span_ok else None,
                end_char + len(characters[last]) if span_ok and end_char is not None else None,
            )
        )

    def flush() -> None:
        # The word among the characters since the last space, as tokenize_words cuts it;
        # Chinese and Japanese, without spaces, character by character (``align_words``
        # puts them together into its words, keeping their times inside).
        span = _word_span(characters, current[0], current[-1] + 1) if current else None
        current.clear()
        if span is None:
            return
        if not any(is_character_syllabic(char) for char in characters[span[0] : span[1]]):
            add(span[0], span[1] - 1)
            return
        for index in range(*span):
            if characters[index].isalnum() or _is_sign(characters[index]):
                add(index, index)

    for index, char in enumerate(characters):
        if char.isspace():
            flush()
        else:
            current.append(index)
    flush()
    return words


def _align_characters(text: str, characters: Sequence[str]) -> list[int | None]:
    offsets: list[int | None] = []
    position = 0
    for char in characters:
        found = text.find(char, position, position + 8) if char else -1
        if found < 0:
            offsets.append(None)
            continue
        offsets.append(found)
        position = found + len(char)
    return offsets


def utf8_byte_to_char_offsets(text: str) -> list[int]:
    """Return, for each UTF-8 byte offset of ``text`` (and its end), the char offset."""
    table: list[int] = []
    for index, char in enumerate(text):
        table.extend([index] * len(char.encode("utf-8")))
    table.append(len(text))
    return table


class WordTiming(NamedTuple):
    """Where one word sits in the audio and in the input text.

    Seconds count from the start of the returned audio; ``char_start``/``char_end`` are
    Python string offsets into ``SynthesisRequest.text`` (end exclusive), or None when the
    provider does not say where the word came from.
    """

    text: str
    start_seconds: float
    end_seconds: float
    char_start: int | None = None
    char_end: int | None = None
