"""Applying pronunciation rules to what a provider is asked to say.

Rules match on word boundaries, longest grapheme first, each place once (a replacement is
never matched again, so rules cannot loop at synthesis time); the words of a phrase match
however many spaces or tabs are between them, and accents composed or decomposed (NFC or
NFD), as the synthesis cache key does not tell those apart either (a decomposed accent is
part of its word: "cafe" is not the start of "café"). A case-insensitive rule matches its
word in any case as its lexicon's language cases it (``fold_case``: Turkish dotted and
dotless i). Each provider gets the best form it understands (``Form``), rule by rule:

* ``espeak``: eSpeak's own phoneme input, ``[[...]]`` in its mnemonics (``ipa.to_espeak``);
* ``ipa``: IPA phoneme input, ``[[...]]`` in IPA itself (Piper reads it so);
* ``ssml``: ``<phoneme alphabet="ipa" ph="...">word</phoneme>`` (or ``<sub alias>``), for
  providers whose SSML takes IPA (Google, Azure, Polly); the word inside stays the user's;
* ``alias``: the alias as plain words, for providers without phoneme input.

A rule with IPA is said by its IPA wherever the form takes phonemes, else by its alias; a
rule with IPA and no alias has nothing to say in the ``alias`` form and is left unapplied
(``Applied.unapplied`` names it). Plain text goes through ``apply``; an SSML document
through ``apply_ssml``, which rewrites its text nodes in place (outside ``<phoneme>``,
``<sub>`` and ``<say-as>``, whose words the author already decided) and leaves the rest of
the document byte for byte as written.

``Applied.spans`` maps each replacement back to the user's text (or document), so word
timings computed on the provider's text land on the words the user wrote: an alias that
turns one word into two still yields one timing for that word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from shared.lexicons.ipa import to_espeak
from shared.lexicons.model import Casing, Lexicon, LexiconRule, casing_of, fold_case

Form = Literal["espeak", "ipa", "ssml", "alias"]
PHONEME_FORMS: frozenset[Form] = frozenset({"espeak", "ipa", "ssml"})
_WORD = re.compile(r"\w")
# Spaces between a phrase's words: any run of them but a line break, as the cache key counts
# them (``normalise_text``: such a run is one space, one holding a line break ends a sentence).
_SPACES_PATTERN = r"[^\S\n]+"
_SPACES = re.compile(_SPACES_PATTERN)
# Any of the four i's, and a decomposed İ: which of them are one letter is the casing's
# to say (``fold_case``), once a match is found.
_I_LETTERS = "iI\u0130\u0131"
_ANY_I = f"[{_I_LETTERS}]\u0307?"
# Elements whose words the SSML author pronounced already.
_DECIDED = frozenset({"phoneme", "sub", "say-as"})


@dataclass(frozen=True)
class Match:
    """A rule found in the text: ``text[start:end]`` is its grapheme as written."""

    start: int
    end: int
    rule: LexiconRule


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
    """Rules compiled for matching: one alternation, longest grapheme first.

    When two rules have the same grapheme (two lexicons), the first one given wins.
    """

    def __init__(self, rules: Sequence[LexiconRule], *, language: str = "") -> None:
        """Compile the rules of one lexicon, cased as ``language`` (a language tag)."""
        self._compile([(rule, casing_of(language)) for rule in rules])

    @classmethod
    def of_lexicons(cls, lexicons: Sequence[Lexicon]) -> Pronouncer:
        """Return the rules of ``lexicons`` compiled, each cased as its lexicon's language."""
        pronouncer = cls([])
        pronouncer._compile(
            [(rule, casing_of(lexicon.language)) for lexicon in lexicons for rule in lexicon.rules]
        )
        return pronouncer

    def _compile(self, rules: Sequence[tuple[LexiconRule, Casing]]) -> None:
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
        # either way and the cache key does not tell them apart; a case-insensitive one
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
        # Word boundaries that also hold around graphemes ending in punctuation ("C++").
        self._pattern = (
            re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if graphemes else None
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
            if start > 0 and _is_mark(text[start - 1]):
                position = start + 1  # inside a word: after a letter's decomposed accent
                continue
            rule = None if _continues_word(text, end) else self._rule_for(match.group(0))
            if rule is None:
                # A case-sensitive grapheme met in another case, another casing's letter,
                # or a word going on (a decomposed accent): a shorter one may fit.
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
            if _continues_word(text, stop):
                continue  # not a word boundary
            match = self._pattern.fullmatch(text, start, stop)
            if match is not None and (rule := self._rule_for(match.group(0))) is not None:
                return Match(start, stop, rule)
        return None

    def apply(self, text: str, form: Form) -> Applied:
        """Return plain ``text`` with every rule applied in ``form``.

        For ``ssml`` the result is SSML body text (escaped); for ``espeak`` and ``ipa`` any
        bracket the user wrote becomes a parenthesis once phonemes are in the text, so no
        ``[[`` of theirs is read as phonemes.
        """
        matches = self.matches(text)
        chosen = [(match, _choose(match.rule, form)) for match in matches]
        phonemes = form in ("espeak", "ipa") and any(kind == "phoneme" for _, kind in chosen)

        def plain(piece: str) -> str:
            if form == "ssml":
                return escape(piece)
            return _no_brackets(piece) if phonemes else piece

        pieces: list[str] = []
        spans: list[Replacement] = []
        unapplied: list[str] = []
        position = length = 0
        for match, kind in chosen:
            if kind is None:
                unapplied.append(match.rule.grapheme)
                continue
            written = text[match.start : match.end]
            replacement = _replacement(
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
        for start, end in _text_nodes(document, eligible_only=True):
            decoded, offsets = _decode(document, start, end)
            for match in self.matches(decoded):
                found.append(
                    (
                        offsets[match.start],
                        offsets[match.end],
                        decoded[match.start : match.end],
                        match.rule,
                    )
                )
        chosen = [(item, _choose(item[3], form)) for item in found]
        phonemes = form in ("espeak", "ipa") and any(kind == "phoneme" for _, kind in chosen)
        if phonemes:
            # No "[[" the author wrote is read as phonemes (same length: offsets hold).
            document = _text_without_brackets(document)
        pieces: list[str] = []
        spans: list[Replacement] = []
        unapplied: list[str] = []
        position = length = 0
        for (start, end, written, rule), kind in chosen:
            if kind is None:
                unapplied.append(rule.grapheme)
                continue
            replacement = _replacement(
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
        names = [m.rule.grapheme for m in self.matches(text) if _choose(m.rule, form) is None]
        return tuple(dict.fromkeys(names))


def _word_pattern(word: str) -> str:
    return "".join(_ANY_I if char in _I_LETTERS else re.escape(char) for char in word)


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M")


def _continues_word(text: str, position: int) -> bool:
    """Return whether ``text[position]`` is of the word before it: a letter, digit or
    underscore, or a combining mark (an accent typed decomposed), which ``\\w`` is not."""
    return position < len(text) and (
        _WORD.match(text, position) is not None or _is_mark(text[position])
    )


def _key(phrase: str) -> str:
    """Return ``phrase`` as rules are looked up: each run of spaces (a line break aside) as
    one space, accents composed (NFC), as the synthesis cache key counts text."""
    return unicodedata.normalize("NFC", _SPACES.sub(" ", phrase))


def _choose(rule: LexiconRule, form: Form) -> Literal["phoneme", "alias"] | None:
    if rule.phoneme is not None and form in PHONEME_FORMS:
        return "phoneme"
    return "alias" if rule.alias is not None else None


def _replacement(
    rule: LexiconRule,
    kind: Literal["phoneme", "alias"],
    form: Form,
    written_markup: str,
    *,
    phonemes: bool,
    markup: bool,
) -> str:
    """Return what replaces a match; ``written_markup`` is the match as SSML text, and
    ``markup`` says the result goes into SSML (escaped)."""
    if form == "ssml":
        if kind == "phoneme":
            ph = quoteattr(rule.phoneme or "")
            return f'<phoneme alphabet="ipa" ph={ph}>{written_markup}</phoneme>'
        return f"<sub alias={quoteattr(rule.alias or '')}>{written_markup}</sub>"
    if kind == "alias":
        alias = _no_brackets(rule.alias or "") if phonemes else rule.alias or ""
        return escape(alias) if markup else alias
    ipa = rule.phoneme or ""
    return f"[[{espeak_phonemes(ipa)}]]" if form == "espeak" else piper_phonemes(ipa)


def espeak_phonemes(ipa: str) -> str:
    """Return ``ipa`` as eSpeak mnemonics, each word stressed on its first syllable when
    the IPA marks no stress (eSpeak says an unstressed phoneme word reduced)."""
    words = [to_espeak(word) for word in ipa.split()]
    return " ".join(word if any(c in "',%" for c in word) else f"'{word}" for word in words)


# Piper's voices know eSpeak's IPA: script g (U+0261) for the ASCII one, "\u025c\u02de" for
# "\u025d"; a syllable dot would be a pause.
_PIPER_IPA = str.maketrans({"g": "\u0261", "\u025d": "\u025c\u02de", ".": None})


def piper_phonemes(ipa: str) -> str:
    """Return ``ipa`` as Piper's phoneme input: one ``[[...]]`` per word (each a word of
    its own to Piper's timing), in the symbols Piper's voices know."""
    words = [word.translate(_PIPER_IPA) for word in ipa.split()]
    return " ".join(f"[[{word}]]" for word in words if word)


def _no_brackets(text: str) -> str:
    return text.replace("[", "(").replace("]", ")")


# -- SSML text nodes -----------------------------------------------------------------------

_MARKUP = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.DOTALL
)
_TAG_NAME = re.compile(r"<\s*(/?)\s*([^\s/>]+)")
_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _text_nodes(document: str, *, eligible_only: bool) -> Iterator[tuple[int, int]]:
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


def _text_without_brackets(document: str) -> str:
    pieces: list[str] = []
    position = 0
    for start, end in _text_nodes(document, eligible_only=False):
        pieces.append(document[position:start])
        pieces.append(_no_brackets(document[start:end]))
        position = end
    pieces.append(document[position:])
    return "".join(pieces)


def _decode(document: str, start: int, end: int) -> tuple[str, list[int]]:
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
