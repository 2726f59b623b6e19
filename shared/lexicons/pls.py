"""Reading W3C Pronunciation Lexicon Specification (PLS 1.0) documents into rules.

A PLS document is ``<lexicon alphabet="ipa" xml:lang="en-US">`` holding ``<lexeme>``
elements, each with one or more ``<grapheme>`` and a ``<phoneme>`` or an ``<alias>``
(the first one wins, as the specification says). Only the IPA alphabet is accepted (the
others would need their own converters). Documents with a DOCTYPE or entity declaration
are refused before parsing (no XXE, no entity expansion), as user SSML is.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from shared.errors import InvalidRequestError
from shared.lexicons.model import LexiconRule
from shared.model import normalize_language_tag

PLS_NAMESPACE = "http://www.w3.org/2005/01/pronunciation-lexicon"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else "#comment"


def parse_pls(document: str) -> tuple[str, list[LexiconRule]]:
    """Return the language and the rules of a PLS ``document``.

    Raises InvalidRequestError: not well-formed, not a PLS lexicon, another alphabet than
    IPA, a lexeme without grapheme or pronunciation (named by its position).
    """
    if _DECLARATION.search(document):
        raise InvalidRequestError("PLS must not contain DOCTYPE or ENTITY declarations")
    try:
        root = ET.fromstring(document)  # noqa: S314 - declarations refused above
    except ET.ParseError as exc:
        line, column = exc.position
        raise InvalidRequestError(
            f"PLS is not well-formed XML (line {line}, column {column + 1})"
        ) from None
    if _local(root.tag) != "lexicon":
        raise InvalidRequestError("PLS must have <lexicon> as its root element")
    alphabet = root.get("alphabet", "ipa").lower()
    if alphabet != "ipa":
        raise InvalidRequestError(f"PLS alphabet {alphabet!r} is not supported; use ipa")
    language = root.get(_XML_LANG)
    if not language:
        raise InvalidRequestError("PLS <lexicon> needs an xml:lang")
    try:
        language = normalize_language_tag(language)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    rules: list[LexiconRule] = []
    lexemes = [element for element in root if _local(element.tag) == "lexeme"]
    for index, lexeme in enumerate(lexemes):
        rules.extend(_lexeme_rules(index, lexeme))
    return language, rules


def _lexeme_rules(index: int, lexeme: ET.Element) -> list[LexiconRule]:
    graphemes = [(child.text or "").strip() for child in lexeme if _local(child.tag) == "grapheme"]
    pronunciations = [child for child in lexeme if _local(child.tag) in ("phoneme", "alias")]
    if not graphemes or not all(graphemes):
        raise InvalidRequestError(f"PLS lexeme {index + 1} has no grapheme")
    if not pronunciations or not (pronunciations[0].text or "").strip():
        raise InvalidRequestError(
            f"PLS lexeme {index + 1} ({graphemes[0]!r}) has no phoneme or alias"
        )
    first = pronunciations[0]
    value = (first.text or "").strip()
    kind = "phoneme" if _local(first.tag) == "phoneme" else "alias"
    rules = []
    for grapheme in graphemes:
        try:
            rules.append(
                LexiconRule.model_validate(
                    {"grapheme": grapheme, kind: value, "caseSensitive": True}
                )
            )
        except ValueError as exc:
            raise InvalidRequestError(f"PLS lexeme {index + 1} ({grapheme!r}): {exc}") from None
    return rules
