"""Reading W3C Pronunciation Lexicon Specification (PLS 1.0) documents into rules.

A PLS document is ``<lexicon alphabet="ipa" xml:lang="en-US">`` holding ``<lexeme>``
elements, each with one or more ``<grapheme>`` and ``<phoneme>`` or ``<alias>``
pronunciations. A lexeme's first phoneme and first alias make one rule per grapheme: the
phoneme is said where the provider takes phonemes, the alias elsewhere (the specification
lets a processor pick the first pronunciation it can use). Only the IPA alphabet is
accepted, on the lexicon and on any ``<phoneme alphabet>`` (the others would need their
own converters). Documents with a DOCTYPE or entity declaration
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
    for child in lexeme:
        if _local(child.tag) in ("grapheme", "phoneme", "alias") and len(child):
            # Its text would end at the markup and the rest be lost without a word.
            raise InvalidRequestError(
                f"PLS lexeme {index + 1}: <{_local(child.tag)}> holds markup; it takes text only"
            )
    graphemes = [(child.text or "").strip() for child in lexeme if _local(child.tag) == "grapheme"]
    if not graphemes or not all(graphemes):
        raise InvalidRequestError(f"PLS lexeme {index + 1} has no grapheme")
    said: dict[str, str] = {}
    for child in lexeme:
        kind = _local(child.tag)
        if kind not in ("phoneme", "alias") or kind in said:
            continue
        alphabet = child.get("alphabet", "ipa").lower()
        if kind == "phoneme" and alphabet != "ipa":
            raise InvalidRequestError(
                f"PLS lexeme {index + 1} ({graphemes[0]!r}): phoneme alphabet {alphabet!r} "
                "is not supported; use ipa"
            )
        value = (child.text or "").strip()
        if value:
            said[kind] = value
    if not said:
        raise InvalidRequestError(
            f"PLS lexeme {index + 1} ({graphemes[0]!r}) has no phoneme or alias"
        )
    rules = []
    for grapheme in graphemes:
        try:
            rules.append(
                LexiconRule.model_validate({"grapheme": grapheme, **said, "caseSensitive": True})
            )
        except ValueError as exc:
            raise InvalidRequestError(f"PLS lexeme {index + 1} ({grapheme!r}): {exc}") from None
    return rules
