"""BCP-47 language tags as the platform stores them.

Providers and clients spell languages many ways (``en_us``, ``ZH-tw``, ``zh-hant-tw``); the
catalog filters by exact match, so every tag is normalised to the canonical BCP-47 casing
(language lower-case, script title-case, region upper-case) before it is stored or compared.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_SUBTAG = re.compile(r"^[A-Za-z0-9]{1,8}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}$|^[A-Za-z]{5,8}$")
_MAX_TAG_LENGTH = 35


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
