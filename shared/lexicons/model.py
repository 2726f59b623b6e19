"""Pronunciation lexicons: rules that say how a written word is to be spoken.

A rule maps a grapheme (a word or phrase as written) to an alias (other words to say
instead), to IPA phonemes, or to both (the IPA where the provider takes phonemes, the
alias elsewhere), case-sensitively or not. A lexicon holds a user's rules for
one language and is versioned: every change makes a new version, the old ones stay
readable, and a synthesis request may pin one (``id@3``). Rules are checked when saved
(``checks``).

Case-insensitive rules compare words as their lexicon's language cases them
(``fold_case``): Turkish and Azerbaijani pair dotted İ with i and I with dotless i
(U+0131), so "istanbul" is "İSTANBUL" there, not "ISTANBUL", and so do the Latin alphabets
of Crimean Tatar and Gagauz, and of Kazakh and Tatar in lexicons tagged Latin (``kk-Latn``,
``tt-Latn``: untagged, those are Cyrillic, and a Latin word in them a foreign one, as in
any lexicon tagged Cyrillic, ``az-Cyrl`` say);
elsewhere the dot on an i makes no other letter (an English "Izmir" is "İzmir"), and
Python's ``casefold`` spelling İ as i plus a combining dot never splits a word.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from shared.model import (
    DomainModel,
    LanguageTag,
    RequestModel,
    RequiredId,
    UtcDatetime,
    new_id,
    utcnow,
)

MAX_RULES = 1000
MAX_PLS_BYTES = 256 * 1024


def _pls_fits(document: str) -> str:
    size = len(document.encode("utf-8", "surrogatepass"))
    if size > MAX_PLS_BYTES:
        raise ValueError(f"a PLS document is at most {MAX_PLS_BYTES} bytes of UTF-8, not {size}")
    return document


# The limit is in bytes, as the README says: 256 Ki characters of CJK text are 768 KiB.
PlsDocument = Annotated[
    str,
    Field(min_length=1, description=f"A W3C PLS document, at most {MAX_PLS_BYTES} bytes of UTF-8"),
    AfterValidator(_pls_fits),
]
Grapheme = Annotated[str, Field(min_length=1, max_length=100)]
Alias = Annotated[str, Field(min_length=1, max_length=200)]
Phoneme = Annotated[str, Field(min_length=1, max_length=200)]


class LexiconRule(RequestModel):
    """One rule: say ``grapheme`` as the IPA ``phoneme`` where the provider takes
    phonemes, and as ``alias`` (other words) elsewhere; at least one of the two."""

    model_config = ConfigDict(frozen=True)

    grapheme: Grapheme
    alias: Alias | None = None
    phoneme: Annotated[
        Phoneme | None,
        Field(description="IPA, e.g. \u02c8w\u026an; stress and length marks allowed"),
    ] = None
    case_sensitive: bool = False

    @model_validator(mode="after")
    def _alias_or_phoneme(self) -> Self:
        if self.alias is None and self.phoneme is None:
            raise ValueError(f"rule {self.grapheme!r} needs an alias or a phoneme (or both)")
        if not self.grapheme.strip():
            raise ValueError("a grapheme cannot be blank")
        return self

    def to_document(self) -> dict[str, Any]:
        """Return the rule as stored."""
        return self.model_dump(mode="json", by_alias=False)


Casing = Literal["turkic", "default"]
# The languages whose I is the capital of dotless i, and İ that of i, by their two- and
# three-letter codes: Turkish and Azerbaijani (as Unicode's SpecialCasing has them), and
# Crimean Tatar and Gagauz, whose Latin alphabets took both i's from Turkish.
_TURKIC = frozenset({"tr", "tur", "az", "aze", "crh", "gag"})
# Kazakh (its 2021 Latin alphabet) and Tatar have both i's in their Latin alphabets only;
# they are written in Cyrillic unless the tag says Latin.
_TURKIC_IN_LATIN = frozenset({"kk", "kaz", "tt", "tat"})
_TURKIC_CAPITALS = str.maketrans({"I": "\u0131", "\u0130": "i"})
_DOTTED_I = "i\u0307"  # casefold()'s İ: i and a combining dot above


def casing_of(language: str) -> Casing:
    """Return how the language tagged ``language`` pairs capital and small letters."""
    subtags = language.lower().replace("_", "-").split("-")
    script = subtags[1] if len(subtags) > 1 else ""
    if script == "cyrl":  # a Latin word in a Cyrillic lexicon is a foreign one
        return "default"
    if subtags[0] in _TURKIC or (subtags[0] in _TURKIC_IN_LATIN and script == "latn"):
        return "turkic"
    return "default"


def fold_case(text: str, casing: Casing = "default") -> str:
    """Return ``text`` as case-insensitive rules compare it (accents composed).

    ``turkic``: İ and i are one letter, I and dotless i another. ``default``: all four
    are one letter, as the dot makes no other letter outside those languages.
    """
    composed = unicodedata.normalize("NFC", text)
    if casing == "turkic":
        return composed.translate(_TURKIC_CAPITALS).casefold().replace(_DOTTED_I, "i")
    return composed.casefold().replace(_DOTTED_I, "i").replace("\u0131", "i")


class Lexicon(DomainModel):
    """One version of a user's lexicon."""

    id: RequiredId = Field(default_factory=new_id)
    user_id: RequiredId
    name: Annotated[str, Field(min_length=1, max_length=100)]
    language: LanguageTag
    version: Annotated[int, Field(ge=1)] = 1
    rules: list[LexiconRule] = Field(default_factory=list)
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)


class LexiconPublic(DomainModel):
    """A lexicon as the API shows it."""

    id: str
    name: str
    language: str
    version: int
    rules: list[LexiconRule]
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def from_entity(cls, lexicon: Lexicon) -> LexiconPublic:
        """Return the public view of ``lexicon``."""
        return cls.model_validate(lexicon.model_dump(exclude={"user_id"}))


class LexiconCreate(RequestModel):
    """Body of ``POST /lexicons``: JSON ``rules`` or a W3C PLS document in ``pls``."""

    # The document says what the validator below checks, for clients that check bodies
    # with it (generated SDKs): rules with a language, or a PLS document, never both.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["rules", "language"],
                    "properties": {
                        "rules": {"type": "array"},
                        "language": {"type": "string"},
                        "pls": {"type": "null"},
                    },
                },
                {
                    "required": ["pls"],
                    "properties": {"pls": {"type": "string"}, "rules": {"type": "null"}},
                },
            ]
        }
    )

    name: Annotated[str, Field(min_length=1, max_length=100)]
    language: LanguageTag | None = None
    rules: list[LexiconRule] | None = Field(default=None, max_length=MAX_RULES)
    pls: PlsDocument | None = None

    @model_validator(mode="after")
    def _rules_or_pls(self) -> Self:
        if (self.rules is None) == (self.pls is None):
            raise ValueError("give exactly one of rules or pls")
        if self.rules is not None and self.language is None:
            raise ValueError("JSON rules need a language")
        return self


class LexiconUpdate(RequestModel):
    """Body of ``PATCH /lexicons/{id}``: any of name, language, and new rules or PLS."""

    # As for LexiconCreate: new rules or a new PLS document, not both.
    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["rules", "pls"],
                "properties": {"rules": {"type": "array"}, "pls": {"type": "string"}},
            }
        }
    )

    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    language: LanguageTag | None = None
    rules: list[LexiconRule] | None = Field(default=None, max_length=MAX_RULES)
    pls: PlsDocument | None = None

    @model_validator(mode="after")
    def _one_source_of_rules(self) -> Self:
        if self.rules is not None and self.pls is not None:
            raise ValueError("give rules or pls, not both")
        return self


class LexiconPage(DomainModel):
    """One page of the caller's lexicons."""

    lexicons: list[LexiconPublic]
    next_cursor: str | None = None
