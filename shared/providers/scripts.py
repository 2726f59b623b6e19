"""Which writing system each part of a text is in, for voices that read only one.

A neural voice reads the script its language is written in: Piper's US English voice turns
Cyrillic or Chinese into letter names ("Chinese letter"), never into words. ``script_runs``
cuts a text into runs of one script each, at whitespace, so that such a voice speaks its own
runs and hands the others to an engine that reads them (eSpeak NG, one voice per script:
``ESPEAK_VOICE_BY_SCRIPT``). A script is named by the first word of its letters' Unicode
names (``CYRILLIC``, ``GREEK``, ``HAN`` for CJK ideographs, ``KANA`` for both kana sets).
Digits, punctuation, symbols and emoji belong to no script: they join the run around them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

LATIN = "LATIN"

# Scripts whose letters a voice of another script cannot read. Letters named otherwise
# (MODIFIER LETTER APOSTROPHE, MICRO SIGN, FEMININE ORDINAL INDICATOR) count as no script.
_SCRIPTS = frozenset(
    (  # noqa: SIM905 - a word list reads better as one string
        "LATIN CYRILLIC GREEK ARMENIAN HEBREW ARABIC SYRIAC THAANA NKO DEVANAGARI BENGALI "
        "GURMUKHI GUJARATI ORIYA TAMIL TELUGU KANNADA MALAYALAM SINHALA THAI LAO TIBETAN "
        "MYANMAR GEORGIAN HANGUL ETHIOPIC CHEROKEE CANADIAN OGHAM RUNIC TAGALOG KHMER "
        "MONGOLIAN HAN KANA BOPOMOFO YI TIFINAGH JAVANESE BALINESE SUNDANESE VAI BAMUM "
        "ADLAM OL CHAM TAI GLAGOLITIC COPTIC GOTHIC SAMARITAN MANDAIC LIMBU LEPCHA"
    ).split()
)
_ALIASES = {"CJK": "HAN", "HIRAGANA": "KANA", "KATAKANA": "KANA", "KANGXI": "HAN"}

ESPEAK_VOICE_BY_SCRIPT: dict[str, str] = {
    "LATIN": "en-US",
    "CYRILLIC": "ru",
    "GREEK": "el",
    "ARMENIAN": "hy",
    "HEBREW": "he",
    "ARABIC": "ar",
    "DEVANAGARI": "hi",
    "BENGALI": "bn",
    "GURMUKHI": "pa",
    "GUJARATI": "gu",
    "ORIYA": "or",
    "TAMIL": "ta",
    "TELUGU": "te",
    "KANNADA": "kn",
    "MALAYALAM": "ml",
    "SINHALA": "si",
    "THAI": "th",
    "MYANMAR": "my",
    "GEORGIAN": "ka",
    "HANGUL": "ko",
    "KANA": "ja",
    "HAN": "cmn",
    "ETHIOPIC": "am",
    "CHEROKEE": "chr",
}
"""The eSpeak NG voice that reads each script (its language voice)."""

# Languages written in a script other than Latin (primary subtag -> script).
_LANGUAGE_SCRIPTS = {
    "ru": "CYRILLIC",
    "uk": "CYRILLIC",
    "bg": "CYRILLIC",
    "sr": "CYRILLIC",
    "mk": "CYRILLIC",
    "be": "CYRILLIC",
    "kk": "CYRILLIC",
    "el": "GREEK",
    "hy": "ARMENIAN",
    "he": "HEBREW",
    "ar": "ARABIC",
    "fa": "ARABIC",
    "ur": "ARABIC",
    "hi": "DEVANAGARI",
    "ne": "DEVANAGARI",
    "mr": "DEVANAGARI",
    "bn": "BENGALI",
    "ta": "TAMIL",
    "te": "TELUGU",
    "ka": "GEORGIAN",
    "ko": "HANGUL",
    "ja": "KANA",
    "zh": "HAN",
    "cmn": "HAN",
    "yue": "HAN",
    "th": "THAI",
    "am": "ETHIOPIC",
}

_CHUNK = re.compile(r"\S+")


@dataclass(frozen=True)
class ScriptRun:
    """``text[start:end]`` is in ``script`` (None: digits, punctuation and symbols only)."""

    start: int
    end: int
    script: str | None


def script_of(char: str) -> str | None:
    """Return the script of a letter or mark (``"CYRILLIC"``), or None for anything else."""
    if unicodedata.category(char)[0] not in "LM":
        return None
    first = unicodedata.name(char, "").split(" ", 1)[0]
    first = _ALIASES.get(first, first)
    return first if first in _SCRIPTS else None


def script_of_language(language: str | None) -> str:
    """Return the script a language is written in (Latin unless known otherwise)."""
    primary = (language or "").replace("_", "-").split("-", 1)[0].lower()
    return _LANGUAGE_SCRIPTS.get(primary, LATIN)


def script_runs(text: str) -> list[ScriptRun]:
    """Return ``text`` as consecutive runs of one script each, covering all of it.

    Each whitespace-separated word takes the script most of its letters are in; words of no
    script (numbers, punctuation) and the whitespace between words join the run before them
    (the first run when they open the text). A run spans from its first character to the
    start of the next run, so the runs tile ``text`` exactly.
    """
    runs: list[ScriptRun] = []
    for match in _CHUNK.finditer(text):
        script = _majority_script(match.group())
        if not runs:
            runs.append(ScriptRun(0, match.end(), script))
        elif script is None or script == runs[-1].script or runs[-1].script is None:
            previous = runs[-1]
            runs[-1] = ScriptRun(previous.start, match.end(), previous.script or script)
        else:
            runs[-1] = ScriptRun(runs[-1].start, match.start(), runs[-1].script)
            runs.append(ScriptRun(match.start(), match.end(), script))
    if not runs:
        return [ScriptRun(0, len(text), None)] if text else []
    last = runs[-1]
    runs[-1] = ScriptRun(last.start, len(text), last.script)
    return runs


def _majority_script(word: str) -> str | None:
    counts: dict[str, int] = {}
    for char in word:
        script = script_of(char)
        if script is not None:
            counts[script] = counts.get(script, 0) + 1
    return max(counts, key=lambda name: counts[name]) if counts else None
