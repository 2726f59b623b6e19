"""What a provider is given for a rule: the best form of it that the provider understands.

* ``espeak``: eSpeak's own phoneme input, ``[[...]]`` in its mnemonics (``ipa.to_espeak``);
* ``ipa``: IPA phoneme input, ``[[...]]`` in IPA itself (Piper reads it so);
* ``ssml``: ``<phoneme alphabet="ipa" ph="...">word</phoneme>`` (or ``<sub alias>``), for
  providers whose SSML takes IPA (Google, Azure, Polly); the word inside stays the user's;
* ``alias``: the alias as plain words, for providers without phoneme input.

A rule with IPA is said by its IPA wherever the form takes phonemes, else by its alias; a
rule with IPA and no alias has nothing to say in the ``alias`` form (``choose``: None).
"""

from __future__ import annotations

from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from shared.lexicons.ipa import to_espeak
from shared.lexicons.model import LexiconRule

Form = Literal["espeak", "ipa", "ssml", "alias"]
PHONEME_FORMS: frozenset[Form] = frozenset({"espeak", "ipa", "ssml"})


def choose(rule: LexiconRule, form: Form) -> Literal["phoneme", "alias"] | None:
    """Return how ``rule`` is said in ``form``, or None when ``form`` cannot say it."""
    if rule.phoneme is not None and form in PHONEME_FORMS:
        return "phoneme"
    return "alias" if rule.alias is not None else None


def rendered(
    rule: LexiconRule,
    kind: Literal["phoneme", "alias"],
    form: Form,
    written_markup: str,
    *,
    phonemes: bool,
    markup: bool,
) -> str:
    """Return what replaces a match; ``written_markup`` is the match as SSML text,
    ``phonemes`` says the text holds phoneme input (so an alias's brackets become
    parentheses), and ``markup`` says the result goes into SSML (escaped)."""
    if form == "ssml":
        if kind == "phoneme":
            ph = quoteattr(rule.phoneme or "")
            return f'<phoneme alphabet="ipa" ph={ph}>{written_markup}</phoneme>'
        return f"<sub alias={quoteattr(rule.alias or '')}>{written_markup}</sub>"
    if kind == "alias":
        alias = no_brackets(rule.alias or "") if phonemes else rule.alias or ""
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


def no_brackets(text: str) -> str:
    """Return ``text`` with its square brackets as parentheses, so none is read as the
    ``[[`` of phoneme input."""
    return text.replace("[", "(").replace("]", ")")
