"""Pronunciation rules: IPA for eSpeak, PLS documents, checks, and applying them to text."""

from __future__ import annotations

import time

import pytest

from shared.errors import InvalidRequestError
from shared.lexicons.apply import Pronouncer
from shared.lexicons.checks import check_rules
from shared.lexicons.ipa import UnknownIpaSymbolError, to_espeak
from shared.lexicons.model import LexiconRule
from shared.lexicons.pls import parse_pls
from shared.lexicons.references import parse_reference
from shared.providers.base import AudioSettings, SynthesisRequest
from shared.providers.espeak import EspeakProvider

PLS = """<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon"
         alphabet="ipa" xml:lang="en-us">
  <lexeme><grapheme>Nguyen</grapheme><phoneme>wɪn</phoneme></lexeme>
  <lexeme><grapheme>W3C</grapheme><grapheme>w3c</grapheme>
          <alias>World Wide Web Consortium</alias></lexeme>
</lexicon>"""


def rule(grapheme: str, **fields: object) -> LexiconRule:
    return LexiconRule.model_validate({"grapheme": grapheme, **fields})


@pytest.mark.parametrize(
    ("ipa", "espeak"),
    [("wɪn", "wIn"), ("ˈtʃɜːtʃ", "'tS3:tS"), ("dʒʌdʒ", "dZVdZ"), ("ˈθɪŋk", "'TINk"), ("aɪ", "aI")],
)
def test_ipa_becomes_espeak_mnemonics(ipa, espeak):
    assert to_espeak(ipa) == espeak


def test_an_unknown_ipa_symbol_is_named():
    with pytest.raises(UnknownIpaSymbolError, match="U\\+0298"):
        to_espeak("ʘa")


def test_espeak_says_the_converted_phonemes():
    """The phonemes eSpeak reports for the rule's text are the rule's, not the spelling's."""
    engine = EspeakProvider(variant_languages=[])
    [spelled] = engine.phonemes(["Nguyen"], "en-US")
    assert spelled
    assert "w" not in spelled
    audio = engine.synthesize(
        SynthesisRequest(
            text=f"Mister [[{to_espeak('wɪn')}]] came",
            voice_id="en-US",
            settings=AudioSettings(),
            phonemes=True,
        )
    )
    plain = engine.synthesize(
        SynthesisRequest(text="Mister Nguyen came", voice_id="en-US", settings=AudioSettings())
    )
    assert abs(audio.duration_seconds - plain.duration_seconds) > 0.05


def test_pls_documents_become_rules():
    language, rules = parse_pls(PLS)
    assert language == "en-US"
    assert [(r.grapheme, r.phoneme, r.alias) for r in rules] == [
        ("Nguyen", "wɪn", None),
        ("W3C", None, "World Wide Web Consortium"),
        ("w3c", None, "World Wide Web Consortium"),
    ]


def test_a_pls_lexeme_keeps_its_first_phoneme_and_its_first_alias():
    _, [kept] = parse_pls(
        '<lexicon xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" xml:lang="en">'
        "<lexeme><grapheme>SQL</grapheme><phoneme>ˈsiːkwəl</phoneme><phoneme>ɛs</phoneme>"
        "<alias>sequel</alias><alias>S Q L</alias></lexeme></lexicon>"
    )
    assert (kept.grapheme, kept.phoneme, kept.alias) == ("SQL", "ˈsiːkwəl", "sequel")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("<lexicon", "not well-formed"),
        ("<speak/>", "<lexicon>"),
        ('<lexicon alphabet="x-sampa" xml:lang="en"/>', "alphabet"),
        ("<lexicon/>", "xml:lang"),
        ('<!DOCTYPE l [<!ENTITY a "b">]><lexicon xml:lang="en"/>', "DOCTYPE"),
        ('<lexicon xml:lang="en"><lexeme><grapheme>x</grapheme></lexeme></lexicon>', "lexeme 1"),
        ('<lexicon xml:lang="en"><lexeme><phoneme>a</phoneme></lexeme></lexicon>', "no grapheme"),
        (
            '<lexicon xml:lang="en"><lexeme><grapheme>x</grapheme>'
            '<phoneme alphabet="x-sampa">{</phoneme></lexeme></lexicon>',
            "lexeme 1 \\('x'\\): phoneme alphabet 'x-sampa'",
        ),
    ],
)
def test_bad_pls_is_refused_naming_the_problem(document, message):
    with pytest.raises(InvalidRequestError, match=message):
        parse_pls(document)


def test_rules_are_checked_before_saving():
    with pytest.raises(InvalidRequestError, match="appears twice"):
        check_rules([rule("SQL", alias="sequel"), rule("sql", alias="S Q L")])
    with pytest.raises(UnknownIpaSymbolError):
        check_rules([rule("Xi", phoneme="ʘi")])
    with pytest.raises(InvalidRequestError, match="loops"):
        check_rules([rule("alpha", alias="beta"), rule("beta", alias="gamma alpha")])
    check_rules([rule("alpha", alias="the alphabet"), rule("beta", alias="gamma")])
    with pytest.raises(ValueError, match="needs an alias or a phoneme"):
        rule("x")
    with pytest.raises(ValueError, match="at least 1 character"):
        rule("x", alias="  ")
    # IPA for providers that take phonemes, the alias for the others.
    both = rule("Nguyen", phoneme="wɪn", alias="win")
    check_rules([both])


def test_aliases_that_share_words_are_checked_for_loops_at_once():
    """Each rule's alias names both rules of the next layer: no loop, but a path through
    every pair of layers; the check visits each rule once rather than every path."""
    layers = 40
    rules = [
        rule(f"w{layer}x{side}", alias=f"w{layer + 1}x0 w{layer + 1}x1")
        for layer in range(layers)
        for side in (0, 1)
    ]
    started = time.monotonic()
    check_rules(rules)
    assert time.monotonic() - started < 2.0
    looped = [*rules, rule(f"w{layers}x1", alias="w3x0")]
    with pytest.raises(InvalidRequestError, match=r"'w3x0' loops .*w3x0 -> w4x0 -> "):
        check_rules(looped)
    assert time.monotonic() - started < 4.0


def test_an_alias_is_a_loop_only_where_its_grapheme_is_a_word_of_it():
    """Loops are found as rules are applied (whole words, signs written on a word of it):
    "C" is no word of "C++", so saying C as C++ ends; "C++" is a word of "the C++ way"."""
    ends = [rule("C", alias="C++"), rule("F", alias="F#"), rule("5", alias="$-5")]
    check_rules(ends, "en")
    assert Pronouncer(ends).apply("C, F and 5", "alias").text == "C++, F# and $-5"
    for rules, named in (
        ([rule("a", alias="b"), rule("b", alias="a")], r"'a' loops .*\(a -> b -> a\)"),
        ([rule("x", alias="x y")], r"'x' loops .*\(x -> x\)"),
        ([rule("C", alias="C ++")], r"'C' loops .*\(C -> C\)"),
        ([rule("C++", alias="the C++ way")], r"'C\+\+' loops"),
        ([rule("AT&T", alias="at&t inc")], r"'AT&T' loops"),
        ([rule("$5", alias="five"), rule("five", alias="$5")], r"'\$5' loops"),
    ):
        with pytest.raises(InvalidRequestError, match=named):
            check_rules(rules, "en")


def test_an_unknown_ipa_symbol_names_its_rule():
    with pytest.raises(UnknownIpaSymbolError) as raised:
        check_rules([rule("Nguyen", phoneme="wɪn"), rule("Xhosa", phoneme="ǁʰosa")])
    assert "'Xhosa'" in raised.value.message
    assert "U+01C1" in raised.value.message
    assert raised.value.code == "UNKNOWN_IPA_SYMBOL"


def test_longest_match_on_word_boundaries_case_rules_and_spans():
    pronouncer = Pronouncer(
        [
            rule("New York", alias="the big apple"),
            rule("New", alias="novel"),
            rule("NASA", alias="nasa agency", case_sensitive=True),
        ]
    )
    applied = pronouncer.apply("New York loves new Newton and NASA, not nasa.", "alias")
    assert applied.text == "the big apple loves novel Newton and nasa agency, not nasa."
    # The three words of "the big apple" all map back to "New York".
    for word in ("the", "big", "apple"):
        start = applied.text.index(word)
        assert applied.original_span(start, start + len(word)) == (0, 8)
    loves = applied.text.index("loves")
    assert applied.to_original(loves) == 9


def test_each_provider_gets_its_best_form():
    rules = [rule("Nguyen", phoneme="wɪn"), rule("W3C", alias="World Wide Web")]
    pronouncer = Pronouncer(rules)
    # eSpeak says an unstressed phoneme word reduced: the word gets its stress.
    assert pronouncer.apply("Nguyen & W3C", "espeak").text == "[['wIn]] & World Wide Web"
    assert pronouncer.apply("Nguyen & W3C", "ipa").text == "[[wɪn]] & World Wide Web"
    assert pronouncer.apply("Nguyen & W3C", "ssml").text == (
        '<phoneme alphabet="ipa" ph="wɪn">Nguyen</phoneme> &amp; '
        '<sub alias="World Wide Web">W3C</sub>'
    )
    aliased = pronouncer.apply("Nguyen & W3C", "alias")
    assert aliased.text == "Nguyen & World Wide Web"
    assert aliased.unapplied == ("Nguyen",)


def test_lexicon_references_may_pin_a_version():
    assert parse_reference("abc123") == ("abc123", None)
    assert parse_reference("abc123@4") == ("abc123", 4)
    for bad in ("", "a@0", "a@x", "a b", "a@1@2"):
        with pytest.raises(InvalidRequestError):
            parse_reference(bad)


def test_graphemes_are_told_apart_as_the_lexicons_language_cases_them():
    def twice(graphemes: list[str], language: str) -> bool:
        try:
            check_rules([rule(g, alias=f"say {n}") for n, g in enumerate(graphemes)], language)
        except InvalidRequestError as exc:
            return "appears twice" in exc.message
        return False

    # Turkish: istanbul is İstanbul in small letters, ILIK the capitals of a dotless word.
    assert twice(["İstanbul", "istanbul"], "tr")
    assert twice(["ILIK", "ılık"], "az")
    assert not twice(["Istanbul", "istanbul"], "tr")
    # Elsewhere the dot on an i makes no other letter.
    for same in (["Istanbul", "istanbul"], ["İstanbul", "istanbul"], ["ILIK", "ılık"]):
        assert twice(same, "en"), same
    with pytest.raises(InvalidRequestError, match="loops"):
        check_rules([rule("İzmir", alias="old İZMİR")], "en")
