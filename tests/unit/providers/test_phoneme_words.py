"""Mapping a phonemizer's output back to the written words, and scripts of a text.

The phonemizer here is a table of what eSpeak says for each chunk alone, so each case
shows one rule: expansions, joined words, words said differently in a sentence, chunks
of punctuation only, and where a text changes script.
"""

# ruff: noqa: RUF001, RUF003 - IPA phonemes (look-alike letters) are this module's test data

from __future__ import annotations

from collections.abc import Sequence

import pytest

from shared.providers.phoneme_words import chunks_of, label_phonemes, sentence_word_timings
from shared.providers.scripts import ScriptRun, script_of_language, script_runs

ALONE = {
    "A": "ˈeɪ",
    "book": "bˈʊk",
    "of": "ˈʌv",
    "the": "ðə",
    "year.": "jˈɪɹ.",
    "Pay": "pˈeɪ",
    "$5": "fˈaɪv dˈɑːlɚz",
    "&": "ænd",
    "go": "ɡˈoʊ",
    "now!": "nˈaʊ!",
}


def alone(chunk: str) -> Sequence[str]:
    return list(ALONE[chunk])


def words_of(text: str, sentences: list[str]) -> list[tuple[str, str]]:
    """Return each chunk of ``text`` with the phonemes labelled as its own (breaks left out)."""
    chunks = chunks_of(text)
    phonemes = [list(sentence) for sentence in sentences]
    labels = label_phonemes(text, chunks, phonemes, alone)
    found: dict[int, list[str]] = {}
    for sentence, sentence_labels in zip(phonemes, labels, strict=True):
        for phoneme, label in zip(sentence, sentence_labels, strict=True):
            if label is not None:
                found.setdefault(label, []).append(phoneme)
    return [(text[chunks[i].start : chunks[i].end], "".join(found[i])) for i in sorted(found)]


def test_joined_words_are_split_and_a_word_said_differently_keeps_its_place() -> None:
    # In the sentence "A" is /ɐ/ (alone, its letter name) and "of the" is one word.
    assert words_of("A book of the year.", ["ɐ bˈʊk ʌvðə jˈɪɹ."]) == [
        ("A", "ɐ"),
        ("book", "bˈʊk"),
        ("of", "ʌv"),
        ("the", "ðə"),
        ("year.", "jˈɪɹ"),
    ]


def test_an_expansion_belongs_to_its_chunk_even_one_without_a_word() -> None:
    assert words_of("Pay $5 & go now!", ["pˈeɪ fˈaɪv dˈɑːlɚz ænd ɡˈoʊ nˈaʊ!"]) == [
        ("Pay", "pˈeɪ"),
        ("$5", "fˈaɪvdˈɑːlɚz"),
        ("&", "ænd"),
        ("go", "ɡˈoʊ"),
        ("now!", "nˈaʊ"),
    ]


def test_two_sentences_map_as_one_text() -> None:
    assert words_of("Pay $5 now!", ["pˈeɪ.", "fˈaɪv dˈɑːlɚz nˈaʊ!"]) == [
        ("Pay", "pˈeɪ"),
        ("$5", "fˈaɪvdˈɑːlɚz"),
        ("now!", "nˈaʊ"),
    ]


def test_timings_sum_the_samples_of_each_words_phonemes() -> None:
    text = "Pay $5 now!"
    chunks = chunks_of(text)
    sentence = list("pˈeɪ fˈaɪv dˈɑːlɚz nˈaʊ!")
    labels = label_phonemes(text, chunks, [sentence], alone)[0]
    timed: set[int] = set()
    words = sentence_word_timings(
        text,
        chunks,
        labels,
        samples=[100] * len(sentence),
        lead_samples=1000,
        samples_per_second=1000.0,
        timed=timed,
    )
    assert [(w.text, w.char_start, w.char_end) for w in words] == [
        ("Pay", 0, 3),
        ("$5", 4, 6),
        ("now", 7, 10),
    ]
    # "pˈeɪ" is phonemes 0-3, after 1,000 samples of silence; "fˈaɪv dˈɑːlɚz" 5-17.
    assert (words[0].start_seconds, words[0].end_seconds) == (1.0, 1.4)
    assert (words[1].start_seconds, words[1].end_seconds) == (1.5, 2.8)
    assert timed == {0, 1, 2}


@pytest.mark.parametrize(
    ("text", "runs"),
    [
        ("Hello world", [ScriptRun(0, 11, "LATIN")]),
        (
            "Hi Привет мир, ok",
            [ScriptRun(0, 3, "LATIN"), ScriptRun(3, 15, "CYRILLIC"), ScriptRun(15, 17, "LATIN")],
        ),
        ("42 你好 and 3", [ScriptRun(0, 6, "HAN"), ScriptRun(6, 11, "LATIN")]),
        ("...", [ScriptRun(0, 3, None)]),
    ],
)
def test_script_runs_tile_the_text_at_whitespace(text: str, runs: list[ScriptRun]) -> None:
    assert script_runs(text) == runs


def test_languages_name_their_script() -> None:
    assert script_of_language("en-US") == "LATIN"
    assert script_of_language("ru") == "CYRILLIC"
    assert script_of_language("zh_CN") == "HAN"
