"""Where each timed word is in what the request sent: ``charStart`` and ``charEnd``.

Spans are Python string offsets (Unicode code points, end exclusive) into the request's
own text: plain text as sent (a render's words index the text it spoke, each chunk's moved
by the chunk's offset), an SSML document's source (``in_source``: the written words mapped
onto it, ``shared.providers.ssml_source``), or a dialogue turn's text. Request parsing
strips the whitespace around a text, so renders (and what is stored) index the stripped
text and every answer is ``shifted`` by what was stripped before it. The synthesis cache
shares a render among texts that differ in whitespace only (``shared.synthesis.cache``),
so a hit, and the job it made, answer with the stored words ``placed`` on the request's
own text: such texts have the same words, as the same strings in the same order, so each
word is found where the request wrote it, after the word before it, and its syllables
move with it (``shared.audio.syllables.syllable_span``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.audio.syllables import syllable_span
from shared.audio.timestamps import TimedWord
from shared.lazy import lazy_module

if TYPE_CHECKING:
    from shared.providers import ssml as markup
    from shared.providers import ssml_source
else:
    # Only SSML loads them (a cold instance's first plain speech does not).
    markup = lazy_module("shared.providers.ssml")
    ssml_source = lazy_module("shared.providers.ssml_source")


def shifted(timestamps: dict[str, Any], leads: Sequence[int]) -> dict[str, Any]:
    """Return ``timestamps`` with every span moved on by ``leads``: the whitespace the
    request sent before its text (or before each turn's, by ``turnIndex``), which request
    parsing strips, so that the spans index what was sent."""
    if not any(leads):
        return timestamps

    def moved(item: dict[str, Any]) -> dict[str, Any]:
        lead = leads[item.get("turnIndex") or 0]
        return {**item, "charStart": item["charStart"] + lead, "charEnd": item["charEnd"] + lead}

    return {name: [moved(item) for item in items] for name, items in timestamps.items()}


class UnplacedWordsError(ValueError):
    """A stored render's words are not, in order, the words of the text it would answer."""


def in_source(words: Sequence[TimedWord], ssml: str, written: str) -> list[TimedWord]:
    """Return ``words``, whose spans index ``written`` (the written text of the SSML
    document ``ssml``), with their spans in ``ssml`` itself.

    Raises:
        ValueError: ``written`` is not the written text of ``ssml``.
    """
    source = ssml_source.SsmlSource(ssml, written)
    moved: list[TimedWord] = []
    for word in words:
        start, end = source.span(word.char_start, word.char_end)
        moved.append(word._replace(char_start=start, char_end=end))
    return moved


def placed(
    timestamps: dict[str, Any] | None,
    text: str,
    *,
    ssml: bool = False,
    turns: Sequence[str] = (),
) -> dict[str, Any] | None:
    """Return ``timestamps`` (``{words, syllables}``, either may be absent) with the span
    of every word and syllable in ``text``: plain text, or an SSML document (``ssml``); a
    dialogue's words (which carry ``turnIndex``) in their own turn's text of ``turns``.

    Raises:
        UnplacedWordsError: a word is not in its text after the word before it, or a
            dialogue's words come without the turns.
    """
    if timestamps is None:
        return None
    words = _words_of(timestamps)
    document = markup.ssml_text(markup.validate_ssml(text)).written if ssml else text
    cursors: dict[int | None, int] = {}
    spans: list[tuple[int, int]] = []
    for word, turn in words:
        if turn is None and not turns:
            within = document
        elif turn is not None and 0 <= turn < len(turns):
            within = turns[turn]
        else:
            raise UnplacedWordsError("a dialogue's words are placed on its turns only")
        start = within.find(word, cursors.get(turn, 0)) if word else -1
        if start < 0:
            raise UnplacedWordsError(f"word {len(spans)} is not in the text after the one before")
        cursors[turn] = start + len(word)
        spans.append((start, start + len(word)))
    if ssml:
        source = ssml_source.SsmlSource(text, document)
        spans = [source.span(start, end) for start, end in spans]
    shown = dict(timestamps)
    if "words" in timestamps:
        shown["words"] = [
            {**word, "charStart": start, "charEnd": end}
            for word, (start, end) in zip(timestamps["words"], spans, strict=True)
        ]
    if "syllables" in timestamps:
        shown["syllables"] = _syllables_placed(timestamps["syllables"], words, spans)
    return shown


def _words_of(timestamps: dict[str, Any]) -> list[tuple[str, int | None]]:
    """Return each word's text and turn: the words', or spelled by their syllables (a
    request for syllables only stores no words)."""
    if "words" in timestamps:
        return [(word["text"], word.get("turnIndex")) for word in timestamps["words"]]
    words: list[tuple[str, int | None]] = []
    for syllable in timestamps.get("syllables", []):
        index = syllable["wordIndex"]
        if index == len(words):
            words.append(("", syllable.get("turnIndex")))
        elif index != len(words) - 1:
            raise UnplacedWordsError("the syllables do not name their words in order")
        text, turn = words[index]
        words[index] = (text + syllable["text"], turn)
    return words


def _syllables_placed(
    syllables: Sequence[dict[str, Any]],
    words: Sequence[tuple[str, int | None]],
    spans: Sequence[tuple[int, int]],
) -> list[dict[str, Any]]:
    # A word's syllables spell it, in order: each starts where the one before it ended.
    offsets: dict[int, int] = {}
    shown: list[dict[str, Any]] = []
    for syllable in syllables:
        index = syllable["wordIndex"]
        if not 0 <= index < len(spans):
            raise UnplacedWordsError("a syllable names no word")
        offset = offsets.get(index, 0)
        offsets[index] = offset + len(syllable["text"])
        start, end = syllable_span(spans[index], words[index][0], offset, len(syllable["text"]))
        shown.append({**syllable, "charStart": start, "charEnd": end})
    return shown
