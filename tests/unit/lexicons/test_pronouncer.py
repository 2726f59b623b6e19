"""Applying rules: every form, SSML text nodes, and the map back to the user's words."""

from __future__ import annotations

import unicodedata

import pytest

from shared.errors import InvalidRequestError
from shared.lexicons.apply import Applied, Pronouncer, join_applied
from shared.lexicons.checks import check_rules
from shared.lexicons.model import Lexicon, LexiconRule


def rule(grapheme: str, **fields: object) -> LexiconRule:
    return LexiconRule.model_validate({"grapheme": grapheme, **fields})


RULES = [
    rule("Nguyen", phoneme="wɪn"),
    rule("W3C", alias="World Wide Web Consortium"),
    rule("New York", phoneme="nuː ˈjɔːk", alias="the big apple"),
    rule("AT&T", alias="A T and T"),
]


def test_a_rule_with_ipa_and_an_alias_is_said_by_ipa_where_phonemes_go_else_by_alias():
    pronouncer = Pronouncer(RULES)
    text = "Visit New York"
    assert pronouncer.apply(text, "espeak").text == "Visit [['nu: 'jO:k]]"
    # Piper: one phoneme block per word, so each is a word to its timing.
    assert pronouncer.apply(text, "ipa").text == "Visit [[nuː]] [[ˈjɔːk]]"
    assert pronouncer.apply(text, "ssml").text == (
        'Visit <phoneme alphabet="ipa" ph="nuː ˈjɔːk">New York</phoneme>'
    )
    assert pronouncer.apply(text, "alias").text == "Visit the big apple"
    assert pronouncer.apply("Nguyen", "alias").unapplied == ("Nguyen",)
    assert pronouncer.unapplied("Nguyen and W3C", "alias", ssml=False) == ("Nguyen",)
    assert pronouncer.unapplied("Nguyen and W3C", "ssml", ssml=False) == ()


def test_a_users_brackets_are_never_read_as_phonemes():
    pronouncer = Pronouncer(RULES)
    applied = pronouncer.apply("Nguyen says [[h@'loU]]", "espeak")
    assert applied.phonemes
    assert applied.text == "[['wIn]] says ((h@'loU))"
    # Without phonemes in the text nothing needs changing (the flag stays off).
    untouched = pronouncer.apply("W3C says [[hi]]", "espeak")
    assert (untouched.text, untouched.phonemes) == ("World Wide Web Consortium says [[hi]]", False)
    sneaky = Pronouncer([rule("x", alias="[[h@'loU]]"), rule("y", phoneme="wɪn")])
    assert sneaky.apply("x y", "espeak").text == "((h@'loU)) [['wIn]]"


def test_case_rules_a_shorter_rule_and_the_first_lexicon_win():
    pronouncer = Pronouncer(
        [
            rule("New York", alias="NYC", case_sensitive=True),
            rule("new", alias="novel"),
            rule("nasa", alias="first"),
            rule("NASA", alias="second"),
        ]
    )
    # "new york" is not the case-sensitive "New York", but "new" still is a rule.
    assert pronouncer.apply("new york, New York", "alias").text == "novel york, NYC"
    # On the same grapheme the first rule given (the first lexicon named) wins.
    assert pronouncer.apply("NASA", "alias").text == "first"
    # Word boundaries: no rule applies inside a word.
    assert pronouncer.apply("newer renew", "alias").text == "newer renew"


def test_spans_map_every_provider_word_back_to_the_users_words():
    applied = Pronouncer(RULES).apply("Hi W3C and New York!", "alias")
    assert applied.text == "Hi World Wide Web Consortium and the big apple!"
    for word in ("World", "Wide", "Consortium"):
        start = applied.text.index(word)
        assert applied.original_span(start, start + len(word)) == (3, 6)
    big = applied.text.index("big")
    assert applied.original_span(big, big + 3) == (11, 19)
    hi = applied.text.index("and")
    assert applied.original_span(hi, hi + 3) == (7, 10)
    assert applied.original_span(0, 2) == (0, 2)
    assert applied.replacement_at(big, big + 3).written == "New York"
    assert applied.replacement_at(0, 2) is None


def test_ssml_text_nodes_change_and_nothing_else():
    document = (
        '<speak>Nguyen <mark name="W3C [[1]]"/>met <sub alias="x">W3C</sub> at AT&amp;T '
        '[[hi]] <say-as interpret-as="characters">Nguyen</say-as>'
        '<!-- Nguyen --> <phoneme alphabet="ipa" ph="x">New York</phoneme> new york</speak>'
    )
    pronouncer = Pronouncer(RULES)
    espeak = pronouncer.apply_ssml(document, "espeak")
    assert espeak.text == (
        '<speak>[[\'wIn]] <mark name="W3C [[1]]"/>met <sub alias="x">W3C</sub> at '
        'A T and T ((hi)) <say-as interpret-as="characters">Nguyen</say-as>'
        '<!-- Nguyen --> <phoneme alphabet="ipa" ph="x">New York</phoneme> '
        "[['nu: 'jO:k]]</speak>"
    )
    ssml = pronouncer.apply_ssml(document, "ssml")
    assert '<sub alias="A T and T">AT&amp;T</sub>' in ssml.text
    assert '<phoneme alphabet="ipa" ph="nuː ˈjɔːk">new york</phoneme></speak>' in ssml.text
    # Spans index the document as written (entities and all) and the one sent.
    written = [(document[s.start : s.end], s.written) for s in ssml.spans]
    assert written == [("Nguyen", "Nguyen"), ("AT&amp;T", "AT&T"), ("new york", "new york")]
    for span in ssml.spans:
        assert ssml.text[span.new_start : span.new_end].startswith(("<phoneme", "<sub"))
    assert pronouncer.apply_ssml(document, "alias").unapplied == ("Nguyen",)


def test_texts_joined_keep_their_maps():
    pronouncer = Pronouncer(RULES)
    first, second = "Hello W3C", "Bye New York"
    joined = join_applied(
        [(pronouncer.apply(first, "alias"), len(first)), (Applied(second), len(second))], "\n"
    )
    assert joined.text == "Hello World Wide Web Consortium\nBye New York"
    bye = joined.text.index("Bye")
    assert joined.original_span(bye, bye + 3) == (10, 13)
    web = joined.text.index("Web")
    assert joined.original_span(web, web + 3) == (6, 9)


@pytest.mark.parametrize("form", ["espeak", "ipa", "ssml", "alias"])
def test_no_rules_leave_the_text_as_it_is(form):
    applied = Pronouncer([]).apply("Nguyen [[x]]", form)
    assert applied.text == "Nguyen [[x]]"
    assert not applied.spans


def test_a_phrase_matches_across_any_run_of_spaces_but_not_a_line_break():
    pronouncer = Pronouncer([rule("new  york", alias="the big apple")])
    for text in ("in New York", "in New  York", "in New\tYork", "in New \u00a0York"):
        applied = pronouncer.apply(text, "alias")
        assert applied.text == "in the big apple", text
        assert applied.original_span(3, len(applied.text)) == (3, len(text))
    assert pronouncer.apply("in New\nYork", "alias").text == "in New\nYork"


@pytest.mark.parametrize("rule_form", ["NFC", "NFD"])
@pytest.mark.parametrize("text_form", ["NFC", "NFD"])
def test_accents_match_composed_or_decomposed(rule_form, text_form):
    # The cache key composes accents (NFC): the rule must not depend on how they were typed.
    grapheme = unicodedata.normalize(rule_form, "Nguyễn")
    text = unicodedata.normalize(text_form, "Mr Nguyễn called")
    applied = Pronouncer([rule(grapheme, alias="win")]).apply(text, "alias")
    assert applied.text == "Mr win called"
    assert applied.original_span(3, 6) == (3, len(text) - len(" called"))


def test_a_case_insensitive_rule_matches_every_case_of_its_word_folded_too():
    pronouncer = Pronouncer([rule("Straße", alias="shtrahsseh")])
    for text in ("Straße", "STRASSE", "strasse", "Strasse", "STRAẞE"):
        assert pronouncer.apply(f"the {text} ends", "alias").text == "the shtrahsseh ends", text
    exact = Pronouncer([rule("Straße", alias="x", case_sensitive=True)])
    assert exact.apply("the STRASSE ends", "alias").text == "the STRASSE ends"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def said(pronouncer: Pronouncer, word: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Return what ``in {word} now`` becomes, and the user's span of each replacement."""
    applied = pronouncer.apply(f"in {word} now", "alias")
    return applied.text, tuple((span.start, span.end) for span in applied.spans)


@pytest.mark.parametrize("grapheme", ["İstanbul", "istanbul", "İSTANBUL"])
def test_in_turkish_a_case_insensitive_rule_matches_dotted_and_dotless_i_as_turkish_cases_them(
    grapheme,
):
    # Turkish pairs İ with i, and I with dotless i: İstanbul's capitals are İSTANBUL.
    pronouncer = Pronouncer([rule(grapheme, alias="Constantinople")], language="tr")
    for word in ("İstanbul", "istanbul", "İSTANBUL", nfd("İstanbul"), nfd("İSTANBUL")):
        assert said(pronouncer, word) == ("in Constantinople now", ((3, 3 + len(word)),)), word
    # "ISTANBUL" is the capitals of another word in Turkish, with a dotless i.
    for word in ("Istanbul", "ISTANBUL", "ıstanbul"):
        assert said(pronouncer, word) == (f"in {word} now", ()), word


def test_in_turkish_dotless_i_is_a_letter_of_its_own():
    pronouncer = Pronouncer(
        [rule("ılık", alias="lukewarm"), rule("İlik", alias="marrow")], language="az"
    )
    for word, meaning in (("ılık", "lukewarm"), ("ILIK", "lukewarm"), ("Ilık", "lukewarm")):
        assert said(pronouncer, word) == (f"in {meaning} now", ((3, 7),)), word
    for word in ("ilik", "İLİK", nfd("İLİK")):
        assert said(pronouncer, word) == ("in marrow now", ((3, 3 + len(word)),)), word


@pytest.mark.parametrize(
    "language", ["tr", "tr-TR", "az-Latn-AZ", "crh", "gag-MD", "kk-Latn", "tt-Latn-RU"]
)
def test_turkish_case_rules_follow_the_lexicons_language_and_only_its_rules(language):
    lexicons = [
        Lexicon(user_id="u", name="tr", language=language, rules=[rule("istanbul", alias="X")]),
        Lexicon(user_id="u", name="en", language="en", rules=[rule("india", alias="Y")]),
    ]
    pronouncer = Pronouncer.of_lexicons(lexicons)
    assert pronouncer.apply("İSTANBUL INDIA", "alias").text == "X Y"
    assert pronouncer.apply("ISTANBUL", "alias").text == "ISTANBUL"


@pytest.mark.parametrize(
    ("language", "turkish"),
    [
        # Crimean Tatar and Gagauz write Latin letters, with Turkish dotted and dotless i.
        ("crh", True),
        ("crh-UA", True),
        ("gag", True),
        # Kazakh (the 2021 alphabet) and Tatar have them in their Latin alphabets; their
        # lexicons are Cyrillic unless tagged Latin, and a Latin word there a foreign one.
        ("kk-Latn", True),
        ("kaz-Latn-KZ", True),
        ("tt-Latn", True),
        ("kk", False),
        ("kk-Cyrl-KZ", False),
        ("tt-RU", False),
        # Tagged Cyrillic, Azerbaijani and Crimean Tatar are too (a Latin word there foreign).
        ("az-Cyrl", False),
        ("crh-Cyrl-UA", False),
        ("az-Latn-AZ", True),
    ],
)
def test_other_turkic_latin_alphabets_case_i_as_turkish_does(language, turkish):
    pronouncer = Pronouncer(
        [rule("istanbul", alias="X"), rule("ılık", alias="Y")], language=language
    )

    def says(word: str) -> str:
        return pronouncer.apply(word, "alias").text

    assert [says(w) for w in ("İSTANBUL", "istanbul", nfd("İstanbul"), "ILIK", "Ilık")] == [
        "X", "X", "X", "Y", "Y",
    ]  # fmt: skip
    # In Turkish casing I is the capital of dotless i: ISTANBUL is another word, and so is İLİK.
    others = ["ISTANBUL", "İLİK", "ilik"]
    assert [says(w) for w in others] == (others if turkish else ["X", "Y", "Y"])

    def twice(*graphemes: str) -> bool:
        try:
            check_rules([rule(g, alias=f"say {n}") for n, g in enumerate(graphemes)], language)
        except InvalidRequestError as exc:
            return "appears twice" in exc.message
        return False

    assert twice("İstanbul", "istanbul")
    assert twice("Istanbul", "istanbul") is not turkish


def test_in_other_languages_the_dot_on_an_i_is_no_other_letter_and_never_misfires():
    # Outside Turkish and Azerbaijani, the dotted and dotless i come in Turkish names:
    # Izmir is İzmir.
    pronouncer = Pronouncer(
        [rule("istanbul", alias="X"), rule("İzmir", alias="Y"), rule("I", alias="eye")],
        language="en",
    )
    for word in ("istanbul", "ISTANBUL", "İstanbul", "İSTANBUL", nfd("İstanbul"), "ıstanbul"):
        assert said(pronouncer, word) == ("in X now", ((3, 3 + len(word)),)), word
    for word in ("İzmir", "İZMİR", nfd("İzmir"), "i\u0307zmir", "Izmir", "IZMIR"):
        assert said(pronouncer, word) == ("in Y now", ((3, 3 + len(word)),)), word
    # A rule takes the whole of a decomposed İ, never its I without the dot.
    assert said(pronouncer, nfd("İ")) == ("in eye now", ((3, 5),))
    for word in (nfd("İş"), nfd("Bİ"), "Is"):
        assert said(pronouncer, word) == (f"in {word} now", ()), word


def test_a_rule_does_not_take_a_word_whose_last_letter_has_a_decomposed_accent():
    pronouncer = Pronouncer([rule("cafe", alias="coffee"), rule("bi", alias="by")])
    for text in (nfd("un café"), nfd("BİR")):
        assert pronouncer.apply(text, "alias").text == text
    assert pronouncer.apply("un cafe", "alias").text == "un coffee"
