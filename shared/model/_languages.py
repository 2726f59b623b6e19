"""Language tags: BCP-47 tags in canonical casing, and the codes naming the same language.

Tags are normalised (``en_us`` -> ``en-US``) before they are stored or compared, so a
voice tagged ``zh-tw`` is found by ``zh-TW``; ``equivalent_languages`` lists the other
codes of a language (Chinese is ``zh``, ``cmn`` or ``yue``).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_SUBTAG = re.compile(r"^[A-Za-z0-9]{1,8}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}$|^[A-Za-z]{5,8}$")
_MAX_TAG_LENGTH = 35


_CHINESE_REGIONS_OF_CANTONESE = frozenset({"HK", "MO"})


def equivalent_languages(tag: str) -> tuple[str, ...]:
    """Return the tags naming ``tag``'s language in another code, in order of preference.

    Chinese is tagged two ways: the macrolanguage ``zh`` (``zh-CN``, as apps and most
    engines write it) and its languages ``cmn`` (Mandarin) and ``yue`` (Cantonese), as
    Google's voices and eSpeak NG's are. ``zh`` is Mandarin, or Cantonese in Hong Kong and
    Macau (``zh-HK``); a bare ``zh`` is both, Mandarin first. ``cmn`` and ``yue`` with a
    region are ``zh`` with it. A tag keeps its shape: bare stays bare. Other languages
    have none. ``tag`` is in canonical form (``normalize_language_tag``).
    """
    primary, _, rest = tag.partition("-")
    subtags = rest.split("-") if rest else []
    if primary == "zh":
        if not subtags:
            return ("cmn", "yue")
        cantonese = any(s in _CHINESE_REGIONS_OF_CANTONESE for s in subtags)
        return ("-".join(["yue" if cantonese else "cmn", *subtags]),)
    if primary in ("cmn", "yue") and subtags:
        return ("-".join(["zh", *subtags]),)
    if primary == "cmn":
        return ("zh",)
    return ()


def normalize_language_tag(tag: str) -> str:
    """Return ``tag`` in canonical BCP-47 form, e.g. ``en_us`` -> ``en-US``.

    Underscores become hyphens; the language subtag is lower-cased, a four-letter script
    title-cased, a two-letter region upper-cased; subtags after a singleton (``x-...``,
    ``u-...``) are lower-cased.

    Raises:
        ValueError: ``tag`` is not a well-formed language tag.
    """
    cleaned = tag.strip().replace("_", "-")
    subtags = cleaned.split("-")
    if (
        len(cleaned) > _MAX_TAG_LENGTH
        or not _LANGUAGE.match(subtags[0])
        or not all(_SUBTAG.match(subtag) for subtag in subtags)
    ):
        raise ValueError(f"not a BCP-47 language tag: {tag!r}")
    normalised = [subtags[0].lower()]
    after_singleton = False
    for subtag in subtags[1:]:
        if after_singleton or len(subtag) == 1:
            after_singleton = True
            normalised.append(subtag.lower())
        elif len(subtag) == 4 and subtag.isalpha():
            normalised.append(subtag.title())
        elif len(subtag) == 2 and subtag.isalpha():
            normalised.append(subtag.upper())
        else:
            normalised.append(subtag.lower())
    return "-".join(normalised)


LanguageTag = Annotated[str, AfterValidator(normalize_language_tag)]
"""A BCP-47 language tag, normalised on input (``zh-tw`` -> ``zh-TW``)."""
