"""Applying pronunciation rules to what a provider is asked to say.

Rules match on word boundaries, longest grapheme first, each place once (a replacement is
never matched again, so rules cannot loop at synthesis time). Each provider gets the best
form it understands (``Form``):

* ``espeak``: eSpeak's own phoneme input, ``[[...]]`` in its mnemonics (``ipa.to_espeak``);
* ``ssml``: ``<phoneme alphabet="ipa" ph="...">word</phoneme>``, for providers whose SSML
  takes IPA (Google, Azure, Polly); the word inside stays the user's;
* ``alias``: the alias as plain words, for providers without phoneme input; a phoneme rule
  has no alias, so it is left unapplied there (and reported).

``Applied.spans`` maps each replacement back to the user's text, so word timings computed
on the provider's text land on the words the user wrote: an alias that turns one word into
two still yields one timing for that word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from shared.lexicons.ipa import to_espeak
from shared.lexicons.model import LexiconRule

Form = Literal["espeak", "ssml", "alias"]


@dataclass(frozen=True)
class Replacement:
    """One place a rule applied: the user's span and the provider text's span."""

    start: int
    end: int
    new_start: int
    new_end: int
    grapheme: str


@dataclass(frozen=True)
class Applied:
    """The text the provider says, where it differs from the user's, and what was skipped."""

    text: str
    spans: tuple[Replacement, ...] = ()
    unapplied: tuple[str, ...] = field(default=())

    def to_original(self, position: int) -> int:
        """Return the position in the user's text of ``position`` in ``text``.

        A position inside a replacement maps to the start of the word it replaced.
        """
        shift = 0
        for span in self.spans:
            if position < span.new_start:
                break
            if position < span.new_end:
                return span.start
            shift = span.end - span.new_end
        return position + shift

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Return the user's span of the provider text's ``start``..``end`` (end exclusive)."""
        for span in self.spans:
            if start < span.new_end and end > span.new_start:
                first = min(span.start, self.to_original(start))
                last = max(span.end, self.to_original(max(end - 1, start)) + 1)
                return first, last
        return self.to_original(start), self.to_original(max(end - 1, start)) + 1


class Pronouncer:
    """Rules compiled for matching: one alternation, longest grapheme first."""

    def __init__(self, rules: Sequence[LexiconRule]) -> None:
        ordered = sorted(rules, key=lambda rule: len(rule.grapheme), reverse=True)
        self._exact = {rule.grapheme: rule for rule in ordered if rule.case_sensitive}
        self._folded = {
            rule.grapheme.casefold(): rule for rule in ordered if not rule.case_sensitive
        }
        alternatives = "|".join(re.escape(rule.grapheme) for rule in ordered)
        # Word boundaries that also hold around graphemes ending in punctuation ("C++").
        self._pattern = (
            re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if ordered else None
        )

    def _rule_for(self, found: str) -> LexiconRule | None:
        return self._exact.get(found) or self._folded.get(found.casefold())

    def apply(self, text: str, form: Form) -> Applied:
        """Return ``text`` with every rule applied in ``form``.

        For ``ssml``, ``text`` is plain and the result is SSML body text (escaped).
        """
        if self._pattern is None:
            return Applied(escape(text) if form == "ssml" else text)
        pieces: list[str] = []
        spans: list[Replacement] = []
        unapplied: list[str] = []
        position = 0
        length = 0
        for match in self._pattern.finditer(text):
            rule = self._rule_for(match.group(0))
            if rule is None:  # a case-sensitive grapheme met in another case
                continue
            replacement = _form(rule, match.group(0), form)
            if replacement is None:
                unapplied.append(rule.grapheme)
                continue
            before = text[position : match.start()]
            before = escape(before) if form == "ssml" else before
            pieces.append(before)
            length += len(before)
            spans.append(
                Replacement(
                    match.start(), match.end(), length, length + len(replacement), rule.grapheme
                )
            )
            pieces.append(replacement)
            length += len(replacement)
            position = match.end()
        rest = text[position:]
        pieces.append(escape(rest) if form == "ssml" else rest)
        return Applied("".join(pieces), tuple(spans), tuple(dict.fromkeys(unapplied)))


def _form(rule: LexiconRule, written: str, form: Form) -> str | None:
    if form == "espeak":
        if rule.phoneme is not None:
            return f"[[{to_espeak(rule.phoneme)}]]"
        return rule.alias
    if form == "ssml":
        if rule.phoneme is not None:
            return (
                f'<phoneme alphabet="ipa" ph={quoteattr(rule.phoneme)}>{escape(written)}</phoneme>'
            )
        return f"<sub alias={quoteattr(rule.alias or '')}>{escape(written)}</sub>"
    return rule.alias
