"""A rule takes a whole word as the user wrote it, cut as word timestamps cut words
(``shared.audio.timing.tokenize_words``): the signs written on a word are of it ("C++",
"$5", "50%"), the punctuation around it is not ("C,", "(C)")."""

from __future__ import annotations

import unicodedata

import pytest

from shared.audio.timing import tokenize_words
from shared.lexicons.apply import Pronouncer
from shared.lexicons.model import LexiconRule


def rule(grapheme: str, **fields: object) -> LexiconRule:
    return LexiconRule.model_validate({"grapheme": grapheme, **fields})


def said(pronouncer: Pronouncer, text: str) -> str:
    return pronouncer.apply(text, "alias").text


@pytest.mark.parametrize(
    "word",
    [
        "C++", "C+", "C#", "#C", "@C", "C°", "$5", "€5", "5€", "50%", "50‰", "-5", "-5°", "§5",
        "5′", "$-5", "€-5", "#-5", "+-5",
    ],
)  # fmt: skip
def test_a_rule_does_not_take_a_word_with_signs_written_on_it(word):
    pronouncer = Pronouncer(
        [rule("C", alias="see"), rule("5", alias="five"), rule("50", alias="fifty")]
    )
    for text in (f"in {word} now", f"in ({word}), now", f"{word}."):
        assert said(pronouncer, text) == text, text


@pytest.mark.parametrize(
    "written",
    [
        "C,", "(C)", "C.", "C!", "C?", "C;", "C:", '"C"', "'C'", "“C”", "«C»", "[C]", "{C}",
        "C…", "—C—", "¿C?", "`C´", "C's", "C/D", "C-D",
    ],
)  # fmt: skip
def test_punctuation_around_a_word_is_no_part_of_it(written):
    pronouncer = Pronouncer([rule("C", alias="see")])
    text = f"in {written} now"

    applied = pronouncer.apply(text, "alias")

    assert applied.text == f"in {written.replace('C', 'see')} now"
    start = text.index("C")
    assert [(s.start, s.end) for s in applied.spans] == [(start, start + 1)]


def test_a_rule_with_signs_takes_its_word_and_only_that():
    pronouncer = Pronouncer(
        [
            rule("C", alias="see"),
            rule("C++", alias="see plus plus"),
            rule("C#", alias="see sharp"),
            rule("$5", alias="five dollars"),
            rule("50%", alias="half"),
            rule("-5°", alias="minus five degrees"),
            rule("#tag", alias="hashtag"),
        ]
    )
    assert said(pronouncer, "C, C++ and C# cost $5 (50% off), at -5°: #tag.") == (
        "see, see plus plus and see sharp cost five dollars (half off), at minus five "
        "degrees: hashtag."
    )
    # A longer word is another word: neither "C++" nor "C" is "C+++" or "C#x".
    for text in ("C+++", "C#x", "$50", "x#tag", "50%%"):
        assert said(pronouncer, text) == text, text
    document = "<speak>C++ and C&#43; and C</speak>"
    assert pronouncer.apply_ssml(document, "alias").text == (
        "<speak>see plus plus and C&#43; and see</speak>"
    )


def test_a_hyphen_between_words_is_punctuation_and_one_before_a_number_a_minus():
    pronouncer = Pronouncer([rule("15", alias="fifteen"), rule("COVID", alias="covid")])
    assert said(pronouncer, "pages 10-15, COVID-19") == "pages 10-fifteen, covid-19"
    for text in ("at -15", "(-15)", "--15"):
        assert said(pronouncer, text) == text, text


def test_a_minus_after_signs_alone_is_of_the_number_and_after_a_word_a_hyphen():
    """Signs alone before a hyphen make it a minus sign of the number after it ("$-5" and
    "€-5" are one word each, as word timestamps cut them); a word before it ("10", "50%")
    makes it a hyphen between words."""
    pronouncer = Pronouncer(
        [rule("5", alias="five"), rule("$", alias="dollars"), rule("60%", alias="sixty")]
    )
    for text in ("at $-5", "($-5)", "€-5 and #-5", "+-5"):
        assert said(pronouncer, text) == text, text
    assert said(pronouncer, "from 50%-60%, 4-5 or $4-5") == "from 50%-sixty, 4-five or $4-five"
    assert said(Pronouncer([rule("$-5", alias="minus five dollars")]), "at $-5.") == (
        "at minus five dollars."
    )


TRICKY = [
    "It costs $5, that is 50% off C++ books.",
    "I code C#, F# and C++. Follow #voices and @ann: 24/7.",
    "Pay €10, or 5€ (£3.50)! From -5° to +3%; up 2‰ (-4) --7 10-15 $-5 (€-5) 50%-60%.",
    "'C++' — [$5] +(5) e-mail 5- -- AT&T's rock'n'roll 6′ §5 ¿Qué? ¡C#!",
    "Wait… really?! `yes´ «C» “C++” snake_case_ x-ray 東京、大阪。「C++」と",
    unicodedata.normalize("NFD", "un café, Ünïcödé! (naïve)"),
]


@pytest.mark.parametrize("text", TRICKY)
def test_a_rule_for_each_word_the_tokenizer_cuts_takes_exactly_that_word(text):
    for token in tokenize_words(text):
        matches = Pronouncer([rule(token.text, alias="x", case_sensitive=True)]).matches(text)
        assert (token.start, token.end) in [(m.start, m.end) for m in matches], token
        # Without the signs written on it, the word is not the rule's.
        core = token.text.strip("".join(c for c in token.text if not c.isalnum()))
        if core and core != token.text:
            bare = Pronouncer([rule(core, alias="x", case_sensitive=True)]).matches(text)
            assert all(m.end <= token.start or m.start >= token.end for m in bare), token


def test_every_character_next_to_a_word_is_of_it_or_not_as_the_tokenizer_says():
    pronouncer = Pronouncer([rule("x", alias="y"), rule("5", alias="five")])
    for code in range(0x10000):
        char = chr(code)
        if char.isspace() or unicodedata.category(char) == "Cs":
            continue
        for text, word in ((f"x{char}", "x"), (f"{char}x", "x"), (f"{char}5", "5")):
            of_word = [t.text for t in tokenize_words(text)] != [word]
            matched = [text[m.start : m.end] for m in pronouncer.matches(text)] == [word]
            assert matched != of_word, (hex(code), text)
