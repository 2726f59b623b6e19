"""Text before synthesis: the normal form for cache keys, and sentence chunks for long texts.

``normalise_text`` gives two texts that differ in whitespace only one spelling (runs of
spaces and tabs as one space, runs holding a line break as one line break, ends stripped),
so the synthesis cache does not miss on invisible differences. Line breaks stay distinct
from spaces because they end sentences, and so change where long texts are chunked. Other
characters stay as written, not composed (NFC): word timestamps name the text's words as
strings of its own characters, and a decomposed "é" is two of them.
``split_sentences`` cuts a long text into chunks of at most ``max_chars`` at sentence ends
(``. ! ?`` followed by a space, the CJK full stop, exclamation and question marks
anywhere, line breaks), merging short sentences
and cutting over-long ones at clause punctuation or spaces, never inside a word. Each chunk
keeps its exact character span in the original text, so word timings map back to it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

_SPACE_RUN = re.compile(r"\s+")
_WHITESPACE = re.compile(r"\s")
# A sentence ends after terminal punctuation (plus closing quotes or brackets) followed by
# whitespace, after CJK terminal punctuation wherever it is, or at a line break.
# The lookalike characters below are exactly the punctuation being matched.
_LATIN_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s|$)")  # noqa: RUF001
_CJK_END = re.compile(r"[。！？｡]+[」』”’）》〉】]*")  # noqa: RUF001
_LINE_BREAK = re.compile(r"\n")
_CLAUSE = re.compile(r"[，、；：]|[,;:—–](?=\s)")  # noqa: RUF001
# Words whose full stop is an abbreviation, not a sentence end ("Dr. Smith").
_ABBREVIATIONS = frozenset(
    (  # noqa: SIM905 - a word list reads better as one string
        "mr mrs ms dr prof sr jr st vs etc e.g i.e fig approx dept est inc ltd co jan feb mar "
        "apr jun jul aug sep sept oct nov dec mt ft rev gen col lt sgt capt u.s a.m p.m"
    ).split()
)


class TextChunk(NamedTuple):
    """A piece of the input: ``text == original[start:end]`` (end exclusive)."""

    text: str
    start: int
    end: int


def normalise_text(text: str) -> str:
    """Return ``text`` with its whitespace collapsed (line breaks kept as one), stripped."""
    return _SPACE_RUN.sub(lambda match: "\n" if "\n" in match.group() else " ", text).strip()


def split_sentences(text: str, max_chars: int, *, merge: bool = True) -> list[TextChunk]:
    """Return ``text`` cut into chunks of at most ``max_chars`` characters, in order.

    Chunks hold whole sentences where they fit (several short ones merged, unless
    ``merge`` is False: then one sentence each), never begin or end with whitespace, and
    never cut a word: a single word longer than ``max_chars`` (a long URL, say) is a chunk
    of its own and is the only chunk that may exceed the limit. Text that is all
    whitespace gives no chunks.

    Raises:
        ValueError: ``max_chars`` is below 1.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    pieces: list[tuple[int, int]] = []
    for start, end in _sentences(text):
        pieces.extend(_cut_long(text, start, end, max_chars))
    spans = _merge(pieces, max_chars) if merge else pieces
    return [TextChunk(text[start:end], start, end) for start, end in spans]


def _sentences(text: str) -> list[tuple[int, int]]:
    cuts = {match.end() for match in _CJK_END.finditer(text)}
    cuts.update(match.start() for match in _LINE_BREAK.finditer(text))
    for match in _LATIN_END.finditer(text):
        if not _continues_sentence(text, match.start(), match.group()):
            cuts.add(match.end())
    spans: list[tuple[int, int]] = []
    begin = 0
    for cut in [*sorted(cuts), len(text)]:
        span = _trimmed(text, begin, cut)
        if span is not None:
            spans.append(span)
        begin = cut
    return spans


def _continues_sentence(text: str, mark: int, punctuation: str) -> bool:
    following = text[mark + len(punctuation) :].lstrip()
    if following and following[0].islower():
        return True  # "approx. ten", "Wait... what"
    if punctuation != ".":
        return False
    word_start = mark
    while word_start > 0 and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:mark].lstrip("\"'“‘«([").lower()  # noqa: RUF001 - opening quotes
    if word == "no":
        return following[:1].isdigit()  # "No. 5", but not "I said no. Then"
    # An abbreviation ("Dr. Smith") or an initial ("J. Smith").
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _cut_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        cut = _best_cut(text, start, start + max_chars, end)
        head = _trimmed(text, start, cut)
        if head is not None:
            pieces.append(head)
        rest = _trimmed(text, cut, end)
        if rest is None:
            return pieces
        start, end = rest
    pieces.append((start, end))
    return pieces


def _best_cut(text: str, start: int, limit: int, end: int) -> int:
    # Prefer the last clause mark, then the last space, then the last boundary between
    # CJK characters (each one a word) that leaves punctuation with its character; a word
    # longer than the limit stays whole. The window sees one character past the limit so
    # that a space or a clause mark's following space right at the limit counts.
    window = text[start : limit + 1]
    reach = limit - start
    clauses = [m.end() for m in _CLAUSE.finditer(window) if m.end() <= reach]
    if clauses and clauses[-1] > reach // 3:
        return start + clauses[-1]
    space = max(window.rfind(" "), window.rfind("\t"), window.rfind("\n"))
    if space > 0:
        return start + space
    for position in range(limit, start, -1):
        cjk = _is_cjk(text[position - 1]) or _is_cjk(text[position])
        if cjk and not _is_punctuation(text[position]):
            return position
    following = _WHITESPACE.search(text, limit, end)
    return following.start() if following else end


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


def _is_cjk(char: str) -> bool:
    return unicodedata.name(char, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL"))


def _merge(pieces: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in pieces:
        if merged and end - merged[-1][0] <= max_chars:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
