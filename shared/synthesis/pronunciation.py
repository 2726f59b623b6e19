"""Pronunciation lexicons in synthesis: the rules a request names, said in each provider's
best form, with the word timings kept on the words the user wrote.

``prepare`` resolves a request's ``lexiconIds`` (``shared.lexicons.select_lexicons``: each
lexicon pinned to the version read, which the cache key and an async job carry), and every
rendering path (whole texts, sentence chunks, job chunks, dialogue turns, streams) asks
``pronounced_request`` for the provider request of its piece of text:

* a provider whose SSML takes IPA (``ssml``: Google, Polly, Azure) gets plain text as it is
  with ``pronunciations`` (the rules' spans), which it puts in its own SSML as
  ``<phoneme alphabet="ipa">`` around the user's words; SSML gets those elements in its
  text nodes;
* eSpeak gets ``[[...]]`` in its mnemonics, Piper ``[[...]]`` in IPA (``phonemes``);
* the others get aliases in place of the words (a rule with IPA and no alias is left
  unapplied there, and the response says so in ``unappliedRules``).

``original_words`` maps the provider's word timings back: a timing on a replacement
becomes a timing of the words it replaced, so an alias of two words still times the one
word the user wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from shared.audio.timing import WordTiming, tokenize_words
from shared.providers.base import AudioSettings, Pronunciation, SynthesisRequest, TTSProvider
from shared.synthesis.model import ResolvedVoice

if TYPE_CHECKING:  # a request without lexicons loads none of their code
    from shared.lexicons.apply import Applied, Form, Replacement
    from shared.lexicons.lexicons import LexiconSelection


def form_of(provider: TTSProvider, *, ssml: bool = False) -> Form:
    """Return the form ``provider`` takes pronunciation rules in (for SSML input when
    ``ssml``: IPA phoneme input is plain text only)."""
    form = provider.capabilities.pronunciation
    return "alias" if ssml and form == "ipa" else form


def unapplied_rules(
    lexicons: LexiconSelection | None, provider: TTSProvider, text: str, *, ssml: bool
) -> tuple[str, ...]:
    """Return the graphemes in ``text`` whose rule ``provider`` cannot say (IPA only, on a
    provider without phoneme input)."""
    if lexicons is None or not lexicons.pronouncer:
        return ()
    return lexicons.pronouncer.unapplied(text, form_of(provider, ssml=ssml), ssml=ssml)


class Spoken(NamedTuple):
    """The provider request for a piece of text, and how its text maps to the user's
    (``applied`` is None when the provider gets the user's text itself)."""

    request: SynthesisRequest
    applied: Applied | None = None


def pronounced_request(
    provider: TTSProvider,
    voice: ResolvedVoice,
    text: str,
    settings: AudioSettings,
    *,
    ssml: bool,
    lexicons: LexiconSelection | None,
) -> Spoken:
    """Return the request that says ``text`` with ``lexicons``' rules in ``provider``'s
    best form."""
    common = {
        "voice_id": voice.voice_id,
        "ssml": ssml,
        "language": voice.language,
        "settings": settings,
    }
    if lexicons is None or not lexicons.pronouncer:
        return Spoken(SynthesisRequest(text=text, **common))
    pronouncer = lexicons.pronouncer
    form = form_of(provider, ssml=ssml)
    if form == "ssml" and not ssml:
        pronunciations = tuple(
            Pronunciation(
                start=match.start,
                end=match.end,
                phoneme=match.rule.phoneme,
                alias=None if match.rule.phoneme is not None else match.rule.alias,
            )
            for match in pronouncer.matches(text)
        )
        return Spoken(SynthesisRequest(text=text, pronunciations=pronunciations, **common))
    applied = pronouncer.apply_ssml(text, form) if ssml else pronouncer.apply(text, form)
    request = SynthesisRequest(text=applied.text, phonemes=applied.phonemes, **common)
    return Spoken(request, applied)


def original_words(
    applied: Applied | None, text: str, words: Sequence[WordTiming], *, ssml: bool
) -> list[WordTiming]:
    """Return the provider's word timings on the user's ``text``.

    Plain text: timings with character spans get the user's span (a span on a replacement
    covers the words it replaced). SSML: timings carry their words only (to be matched to
    the document's spoken words); those on one replacement become one timing shared by
    the words the user wrote there. ``applied`` is how the provider's text came from
    ``text`` (None: it is ``text``).
    """
    if ssml:
        return _ssml_words(applied, words)
    if applied is None or not applied.spans:
        return list(words)
    mapped: list[WordTiming] = []
    for word in words:
        if word.char_start is None or word.char_end is None:
            mapped.append(word)
            continue
        start, end = applied.original_span(word.char_start, word.char_end)
        previous = mapped[-1] if mapped else None
        if previous is not None and (previous.char_start, previous.char_end) == (start, end):
            # Several provider words said one replacement: one timing, shared later by
            # the user's words there in proportion to their length.
            mapped[-1] = WordTiming(
                previous.text,
                previous.start_seconds,
                max(previous.end_seconds, word.end_seconds),
                start,
                end,
            )
            continue
        mapped.append(WordTiming(text[start:end], word.start_seconds, word.end_seconds, start, end))
    return mapped


def _ssml_words(applied: Applied | None, words: Sequence[WordTiming]) -> list[WordTiming]:
    groups: list[tuple[Replacement | None, WordTiming]] = []
    for word in words:
        replacement = (
            applied.replacement_at(word.char_start, word.char_end or word.char_start + 1)
            if applied is not None and applied.spans and word.char_start is not None
            else None
        )
        if replacement is not None and groups and groups[-1][0] is replacement:
            first = groups[-1][1]
            end = max(first.end_seconds, word.end_seconds)
            groups[-1] = (replacement, WordTiming(first.text, first.start_seconds, end))
            continue
        groups.append((replacement, WordTiming(word.text, word.start_seconds, word.end_seconds)))
    timed: list[WordTiming] = []
    for replacement, word in groups:
        if replacement is None:
            timed.append(word)
            continue
        tokens = tokenize_words(replacement.written) or []
        total = sum(len(token.text) for token in tokens) or 1
        start, span = word.start_seconds, word.end_seconds - word.start_seconds
        elapsed = 0
        for token in tokens:
            begin = start + span * elapsed / total
            elapsed += len(token.text)
            timed.append(WordTiming(token.text, begin, start + span * elapsed / total))
    return timed
