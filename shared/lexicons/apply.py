"""Applying pronunciation rules to what a provider is asked to say.

``Pronouncer`` finds where rules apply (``matching``: whole words as word timestamps cut
them, longest grapheme first, each place once; phrases across spaces, accents composed or
decomposed, case as the lexicon's language folds it) and says each in the best form the
provider understands (``forms``), rule by rule. A rule with IPA and no alias has nothing
to say in the ``alias`` form and is left unapplied (``Applied.unapplied`` names it). Plain
text goes through ``apply``; an SSML document through ``apply_ssml``, which rewrites its
text nodes in place (outside ``<phoneme>``, ``<sub>`` and ``<say-as>``, whose words the
author already decided) and leaves the rest of the document byte for byte as written.

``Applied.spans`` maps each replacement back to the user's text (or document), so word
timings computed on the provider's text land on the words the user wrote: an alias that
turns one word into two still yields one timing for that word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from shared.lexicons.forms import (
    PHONEME_FORMS,
    Form,
    choose,
    espeak_phonemes,
    no_brackets,
    piper_phonemes,
    rendered,
)
from shared.lexicons.matching import Match, Matcher
from shared.lexicons.model import Lexicon, LexiconRule, casing_of
from shared.lexicons.ssml_text import decode_text, text_nodes, text_without_brackets

__all__ = [
    "PHONEME_FORMS",
    "Applied",
    "Form",
    "Match",
    "Pronouncer",
    "Replacement",
    "espeak_phonemes",
    "join_applied",
    "piper_phonemes",
]


@dataclass(frozen=True)
class Replacement:
    """One place a rule applied: the user's span, the provider text's span, and the
    words the user wrote there (entities decoded, in SSML)."""

    start: int
    end: int
    new_start: int
    new_end: int
    grapheme: str
    written: str = ""


@dataclass(frozen=True)
class Applied:
    """The text the provider says, where it differs from the user's, and what was skipped.

    ``phonemes`` is True when the text holds ``[[...]]`` phoneme input (eSpeak, Piper).
    """

    text: str
    spans: tuple[Replacement, ...] = ()
    unapplied: tuple[str, ...] = field(default=())
    phonemes: bool = False

    def replacement_at(self, start: int, end: int) -> Replacement | None:
        """Return the replacement the provider text's ``start``..``end`` overlaps, if any."""
        for span in self.spans:
            if span.new_start >= max(end, start + 1):
                break
            if start < span.new_end and max(end, start + 1) > span.new_start:
                return span
        return None

    def to_original(self, position: int) -> int:
        """Return the position in the user's text of ``position`` in ``text``.

        A position inside a replacement maps to the start of the words it replaced.
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
        """Return the user's span of the provider text's ``start``..``end`` (end exclusive).

        A span touching a replacement covers the whole of the words it replaced.
        """
        last = max(end - 1, start)
        first_span = self.replacement_at(start, start + 1)
        last_span = self.replacement_at(last, last + 1)
        first = first_span.start if first_span else self.to_original(start)
        final = last_span.end if last_span else self.to_original(last) + 1
        return first, max(final, first)


def join_applied(parts: Sequence[tuple[Applied, int]], separator: str) -> Applied:
    """Return one ``Applied`` for texts joined with ``separator``.

    ``parts`` pairs each text's ``Applied`` with the length of the user's text it came from.
    """
    spans: list[Replacement] = []
    unapplied: list[str] = []
    original = provided = 0
    for applied, length in parts:
        spans.extend(
            Replacement(
                s.start + original,
                s.end + original,
                s.new_start + provided,
                s.new_end + provided,
                s.grapheme,
                s.written,
            )
            for s in applied.spans
        )
        unapplied.extend(applied.unapplied)
        original += length + len(separator)
        provided += len(applied.text) + len(separator)
    return Applied(
        separator.join(applied.text for applied, _ in parts),
        tuple(spans),
        tuple(dict.fromkeys(unapplied)),
        any(applied.phonemes for applied, _ in parts),
    )


class Pronouncer:
    """Rules compiled for saying: found as ``Matcher`` finds them, said in a provider's form.

    When two rules have the same grapheme (two lexicons), the first one given wins.
    """

    def __init__(self, rules: Sequence[LexiconRule], *, language: str = "") -> None:
        """Compile the rules of one lexicon, cased as ``language`` (a language tag)."""
        self._matcher = Matcher([(rule, casing_of(language)) for rule in rules])

    @classmethod
    def of_lexicons(cls, lexicons: Sequence[Lexicon]) -> Pronouncer:
        """Return the rules of ``lexicons`` compiled, each cased as its lexicon's language."""
        pronouncer = cls([])
        pronouncer._matcher = Matcher(
            [(rule, casing_of(lexicon.language)) for lexicon in lexicons for rule in lexicon.rules]
        )
        return pronouncer

    def __bool__(self) -> bool:
        return bool(self._matcher)

    def matches(self, text: str) -> list[Match]:
        """Return every place a rule applies in plain ``text``, in order, never overlapping."""
        return self._matcher.matches(text)

    def apply(self, text: str, form: Form) -> Applied:
        """Return plain ``text`` with every rule applied in ``form``.

        For ``ssml`` the result is SSML body text (escaped); for ``espeak`` and ``ipa`` any
        bracket the user wrote becomes a parenthesis once phonemes are in the text, so no
        ``[[`` of theirs is read as phonemes.
        """
        matches = self.matches(text)
        chosen = [(match, choose(match.rule, form)) for match in matches]
        phonemes = form in ("espeak", "ipa") and any(kind == "phoneme" for _, kind in chosen)

        def plain(piece: str) -> str:
            if form == "ssml":
                return escape(piece)
            return no_brackets(piece) if phonemes else piece

        pieces: list[str] = []
        spans: list[Replacement] = []
        unapplied: list[str] = []
        position = length = 0
        for match, kind in chosen:
            if kind is None:
                unapplied.append(match.rule.grapheme)
                continue
            written = text[match.start : match.end]
            replacement = rendered(
                match.rule, kind, form, escape(written), phonemes=phonemes, markup=form == "ssml"
            )
            before = plain(text[position : match.start])
            pieces.append(before)
            length += len(before)
            spans.append(
                Replacement(
                    match.start,
                    match.end,
                    length,
                    length + len(replacement),
                    match.rule.grapheme,
                    written,
                )
            )
            pieces.append(replacement)
            length += len(replacement)
            position = match.end
        pieces.append(plain(text[position:]))
        return Applied("".join(pieces), tuple(spans), tuple(dict.fromkeys(unapplied)), phonemes)

    def apply_ssml(self, document: str, form: Form) -> Applied:
        """Return the SSML ``document`` (already validated) with rules applied to its text.

        Spans index the document as given and the document returned.
        """
        found: list[tuple[int, int, str, LexiconRule]] = []
        for start, end in text_nodes(document, eligible_only=True):
            decoded, offsets = decode_text(document, start, end)
            for match in self.matches(decoded):
                found.append(
                    (
                        offsets[match.start],
                        offsets[match.end],
                        decoded[match.start : match.end],
                        match.rule,
                    )
                )
        chosen = [(item, choose(item[3], form)) for item in found]
        phonemes = form in ("espeak", "ipa") and any(kind == "phoneme" for _, kind in chosen)
        if phonemes:
            # No "[[" the author wrote is read as phonemes (same length: offsets hold).
            document = text_without_brackets(document)
        pieces: list[str] = []
        spans: list[Replacement] = []
        unapplied: list[str] = []
        position = length = 0
        for (start, end, written, rule), kind in chosen:
            if kind is None:
                unapplied.append(rule.grapheme)
                continue
            replacement = rendered(
                rule, kind, form, document[start:end], phonemes=phonemes, markup=True
            )
            before = document[position:start]
            pieces.append(before)
            length += len(before)
            spans.append(
                Replacement(start, end, length, length + len(replacement), rule.grapheme, written)
            )
            pieces.append(replacement)
            length += len(replacement)
            position = end
        pieces.append(document[position:])
        return Applied("".join(pieces), tuple(spans), tuple(dict.fromkeys(unapplied)), phonemes)

    def unapplied(self, text: str, form: Form, *, ssml: bool) -> tuple[str, ...]:
        """Return the graphemes found in ``text`` whose rule ``form`` cannot say."""
        if ssml:
            return self.apply_ssml(text, form).unapplied
        names = [m.rule.grapheme for m in self.matches(text) if choose(m.rule, form) is None]
        return tuple(dict.fromkeys(names))
