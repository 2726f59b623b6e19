"""Where the words written in an SSML document are in its source.

``ssml_text`` (``shared.providers.ssml``) builds the written text from ElementTree's parse,
which keeps no positions. ``SsmlSource`` parses the document again with expat, the parser
ElementTree runs on, and keeps for each character of the document's text (its text nodes,
CDATA included) the span of the source it is written as: the character itself, or a whole
entity or character reference (``&amp;``, ``&#x1F600;``). The written text holds those
characters in order, its whitespace collapsed and a space added around blocks, so its
n-th character that is not whitespace is the document text's n-th: ``span`` maps a span of
the written text (a word) onto the source, from its first character's start to its last
character's end, markup written inside the word included.
"""

from __future__ import annotations

import bisect
from xml.parsers import expat

from shared.audio.timing import utf8_byte_to_char_offsets


class SsmlSource:
    """The source spans of the characters of ``written``, the written text of ``ssml``."""

    def __init__(self, ssml: str, written: str) -> None:
        """Parse ``ssml`` (a document ``validate_ssml`` accepted) again, with positions.

        Raises:
            ValueError: the characters of ``written`` are not the document's.
        """
        spans, characters = _text_spans(ssml)
        shown = [char for char in written if not char.isspace()]
        if shown != characters:
            raise ValueError("the written text is not the text of this document")
        self._spans = spans
        # Where each character of ``written`` that is not whitespace is, in order.
        self._shown = [index for index, char in enumerate(written) if not char.isspace()]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Return the source span (end exclusive) of ``written[start:end]``, a word (it
        neither starts nor ends with whitespace)."""
        first = bisect.bisect_left(self._shown, start)
        last = bisect.bisect_left(self._shown, end - 1)
        return self._spans[first][0], self._spans[last][1]


def _text_spans(ssml: str) -> tuple[list[tuple[int, int]], list[str]]:
    """Return the source span of each character of the document's text that is not
    whitespace, and those characters, in order."""
    # expat reports where each piece of text starts as a byte offset of the UTF-8 document
    # (a str is parsed as UTF-8, whatever its declaration says, as ElementTree parses it).
    chars_at = utf8_byte_to_char_offsets(ssml)
    parser = expat.ParserCreate()
    spans: list[tuple[int, int]] = []
    characters: list[str] = []
    in_cdata = [False]

    def text(data: str) -> None:
        position = chars_at[parser.CurrentByteIndex]
        for char in data:
            if ssml[position] == "&" and not in_cdata[0]:
                end = ssml.index(";", position) + 1  # a reference, decoded as one character
            elif ssml.startswith("\r\n", position):
                end = position + 2  # XML reads a CR LF as one line feed
            else:
                end = position + 1
            if not char.isspace():
                spans.append((position, end))
                characters.append(char)
            position = end

    def cdata(inside: bool) -> None:
        in_cdata[0] = inside

    parser.CharacterDataHandler = text
    parser.StartCdataSectionHandler = lambda: cdata(True)
    parser.EndCdataSectionHandler = lambda: cdata(False)
    parser.Parse(ssml, True)
    return spans, characters
