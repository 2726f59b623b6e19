"""The text of an SSML document that pronunciation rules may change, found in place.

A document is scanned, not parsed (it was validated before), so every offset found indexes
the document as written and the rest of it stays byte for byte as it was. Text inside
``<phoneme>``, ``<sub>`` and ``<say-as>`` is the author's decision and no rule's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from shared.lexicons.forms import no_brackets

# Elements whose words the SSML author pronounced already.
_DECIDED = frozenset({"phoneme", "sub", "say-as"})

_MARKUP = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.DOTALL
)
_TAG_NAME = re.compile(r"<\s*(/?)\s*([^\s/>]+)")
_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def text_nodes(document: str, *, eligible_only: bool) -> Iterator[tuple[int, int]]:
    """Yield the spans of the document's text inside its root element; ``eligible_only``:
    only the text a rule may change (not within an element whose words the author
    pronounced)."""
    stack: list[str] = []
    position = 0
    for markup in _MARKUP.finditer(document):
        eligible = not eligible_only or not _DECIDED.intersection(stack)
        if markup.start() > position and stack and eligible:
            yield position, markup.start()
        position = markup.end()
        tag = markup.group(0)
        name = _TAG_NAME.match(tag)
        if name is None or tag.startswith(("<!", "<?")):
            continue
        local = name.group(2).rsplit(":", 1)[-1]
        if name.group(1):
            if stack:
                stack.pop()
        elif not tag[:-1].rstrip().endswith("/"):
            stack.append(local)


def text_without_brackets(document: str) -> str:
    """Return ``document`` with the square brackets of all its text as parentheses (the
    same length, so offsets hold), so no ``[[`` the author wrote is read as phonemes."""
    pieces: list[str] = []
    position = 0
    for start, end in text_nodes(document, eligible_only=False):
        pieces.append(document[position:start])
        pieces.append(no_brackets(document[start:end]))
        position = end
    pieces.append(document[position:])
    return "".join(pieces)


def decode_text(document: str, start: int, end: int) -> tuple[str, list[int]]:
    """Return the text of ``document[start:end]`` with entities decoded, and for each of
    its characters (and its end) the offset in ``document``."""
    chars: list[str] = []
    offsets: list[int] = []
    position = start
    for entity in _ENTITY.finditer(document, start, end):
        for index in range(position, entity.start()):
            chars.append(document[index])
            offsets.append(index)
        name = entity.group(1)
        if name.startswith("#x"):
            chars.append(chr(int(name[2:], 16)))
        elif name.startswith("#"):
            chars.append(chr(int(name[1:])))
        else:
            chars.append(_NAMED[name])
        offsets.append(entity.start())
        position = entity.end()
    for index in range(position, end):
        chars.append(document[index])
        offsets.append(index)
    offsets.append(end)
    return "".join(chars), offsets
