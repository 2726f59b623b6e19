"""Finding where pronunciation rules apply in a text.

Rules match whole words, longest grapheme first, each place once (a replacement is never
matched again, so rules cannot loop at synthesis time). A word is cut as word timestamps
cut it (``shared.audio.timing.is_of_word``): the signs written on it are of it, so a
rule for "C" does not take "C++" or "C#" and one for "5" not "$5", "-5" or "$-5", while
the punctuation around it is not ("C," and "(C)" are "C", "10-15" two words). The words
of a phrase match however many spaces or tabs are between them, and accents composed or
decomposed (NFC or NFD), which are the same words to a reader (a decomposed accent is
part of its word: "cafe" is not the start of "café"). A
case-insensitive rule matches its word in any case as its lexicon's language cases it
(``fold_case``: Turkish dotted and dotless i).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from shared.audio.timing import is_of_word
from shared.lexicons.model import Casing, LexiconRule, fold_case

# Spaces between a phrase's words: any run of them but a line break, as the cache key counts
# them (``normalise_text``: such a run is one space, one holding a line break ends a sentence).
_SPACES_PATTERN = r"[^\S\n]+"
_SPACES = re.compile(_SPACES_PATTERN)
# Any of the four i's, and a decomposed İ: which of them are one letter is the casing's
# to say (``fold_case``), once a match is found.
_I_LETTERS = "iI\u0130\u0131"
_ANY_I = f"[{_I_LETTERS}]\u0307?"


@dataclass(frozen=True)
class Match:
    """A rule found in the text: ``text[start:end]`` is its grapheme as written."""

    start: int
    end: int
    rule: LexiconRule


class Matcher:
    """Rules compiled for matching: one alternation, longest grapheme first.

    When two rules have the same grapheme (two lexicons), the first one given wins.
    """

    def __init__(self, rules: Sequence[tuple[LexiconRule, Casing]]) -> None:
        """Compile ``rules``, each with the casing of its lexicon's language."""
        exact: dict[str, LexiconRule] = {}
        # By casing and folded grapheme, each with its place in the order given.
        folded: dict[tuple[Casing, str], tuple[int, LexiconRule]] = {}
        for index, (rule, casing) in enumerate(rules):
            grapheme = _key(rule.grapheme)
            if rule.case_sensitive:
                exact.setdefault(grapheme, rule)
            else:
                folded.setdefault((casing, fold_case(grapheme, casing)), (index, rule))
        self._exact, self._folded = exact, folded
        self._casings = tuple(dict.fromkeys(casing for casing, _ in folded))
        # Each grapheme composed and decomposed (NFC, NFD), as a text may write accents
        # either way; a case-insensitive one
        # also case-folded, which the pattern's IGNORECASE does not do ("straße" is
        # "STRASSE", its folded "strasse" in any case).
        spellings = {_key(rule.grapheme) for rule in exact.values()} | {
            spelling
            for (_, folded_grapheme), (_, rule) in folded.items()
            for spelling in (_key(rule.grapheme), folded_grapheme)
        }
        graphemes = sorted(
            {unicodedata.normalize(form, g) for g in spellings for form in ("NFC", "NFD")},
            key=lambda grapheme: (-len(grapheme), grapheme),
        )
        alternatives = "|".join(
            dict.fromkeys(
                _SPACES_PATTERN.join(_word_pattern(word) for word in grapheme.split(" "))
                for grapheme in graphemes
            )
        )
        # No letter or digit either side, whatever the grapheme's own first and last
        # characters ("C++", "#tag"); a sign or mark next to it is ``matches``'s to refuse.
        self._pattern = (
            re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)
            if graphemes
            else None
        )

    def __bool__(self) -> bool:
        return self._pattern is not None

    def _rule_for(self, found: str) -> LexiconRule | None:
        found = _key(found)
        exact = self._exact.get(found)
        if exact is not None:
            return exact
        hits = [
            hit
            for casing in self._casings
            if (hit := self._folded.get((casing, fold_case(found, casing)))) is not None
        ]
        return min(hits, key=lambda hit: hit[0])[1] if hits else None

    def matches(self, text: str) -> list[Match]:
        """Return every place a rule applies in plain ``text``, in order, never overlapping."""
        if self._pattern is None:
            return []
        found: list[Match] = []
        position = 0
        while (match := self._pattern.search(text, position)) is not None:
            start, end = match.span()
            if _joins(text, start - 1):
                position = start + 1  # inside a word: after a sign, minus or decomposed accent
                continue
            rule = None if _joins(text, end) else self._rule_for(match.group(0))
            if rule is None:
                # A case-sensitive grapheme met in another case, another casing's letter,
                # or a word going on (a sign, a decomposed accent): a shorter one may fit.
                rule_match = self._shorter_match(text, start, end)
                if rule_match is None:
                    position = start + 1
                    continue
                found.append(rule_match)
                position = rule_match.end
                continue
            found.append(Match(start, end, rule))
            position = end
        return found

    def _shorter_match(self, text: str, start: int, end: int) -> Match | None:
        assert self._pattern is not None
        for stop in range(end - 1, start, -1):
            if _joins(text, stop):
                continue  # not a word boundary
            match = self._pattern.fullmatch(text, start, stop)
            if match is not None and (rule := self._rule_for(match.group(0))) is not None:
                return Match(start, stop, rule)
        return None


def _word_pattern(word: str) -> str:
    return "".join(_ANY_I if char in _I_LETTERS else re.escape(char) for char in word)


def _joins(text: str, position: int) -> bool:
    """Return whether ``text[position]`` is of the word next to it, as word timestamps cut
    words (``shared.audio.timing.is_of_word``): a letter, digit, mark (an accent typed
    decomposed), sign written on it ("C++", "$5", "50%", "#tag") or minus sign ("-5",
    "$-5"), not a space or the punctuation around words (``.,!?;:``, quotes, brackets,
    dashes, "_", the hyphen in "10-15")."""
    return 0 <= position < len(text) and is_of_word(text, position)


def _key(phrase: str) -> str:
    """Return ``phrase`` as rules are looked up: each run of spaces (a line break aside) as
    one space, accents composed (NFC), as the synthesis cache key counts text."""
    return unicodedata.normalize("NFC", _SPACES.sub(" ", phrase))
