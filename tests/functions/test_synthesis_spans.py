"""Word timestamps say where each word is in the text sent: ``charStart``/``charEnd``.

An app that highlights the text as it is spoken slices the text it sent with them (end
exclusive, in Unicode code points: what Python's str indexes). These tests make requests
through the real synthesis function and the real eSpeak engine and slice the text with
each word's span: a repeated word is found at its own place, a word with signs whole, a
word after an emoji (two UTF-16 units, one code point) where it is, and a cache hit for a
text differing in whitespace only is placed on its own text, not on the one first rendered.
The helpers are shared with the streaming, job and dialogue tests.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Sequence
from typing import Any

from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis import say

# The shared fixtures, registered in this module.
ann = fx.ann
espeak = fx.espeak
synthesis_client = fx.synthesis_client

TEXT = " Hello 🎉 world, hello world! It costs $5 to learn C++ (not C#). 😀Smile. 你好\uff0c世界。"
WORDS = [
    "Hello",
    "world",
    "hello",
    "world",
    "It",
    "costs",
    "$5",
    "to",
    "learn",
    "C++",
    "not",
    "C#",
    "😀Smile",
    "你好",
    "世界",
]
CHINESE = "  你好\uff0c世界。今天天气很好。你好\uff01"
SSML = (
    ' <speak>Hello <sub alias="World Wide Web">WWW</sub> and AT&amp;T, hello'
    " <emphasis>WWW</emphasis>! It costs $5 for C++. 🎉 &#x1F600;Smile. 你好\uff0c世界。</speak>"
)
# What each word's span holds in the SSML source: the word as its author wrote it there.
SSML_SOURCES = [
    "Hello",
    "WWW",
    "and",
    "AT&amp;T",
    "hello",
    "WWW",
    "It",
    "costs",
    "$5",
    "for",
    "C++",
    "&#x1F600;Smile",
    "你好",
    "世界",
]


def found_in_order(text: str, words: Sequence[str]) -> list[tuple[int, int]]:
    """Return where each word is in ``text``, each found after the one before."""
    spans: list[tuple[int, int]] = []
    for word in words:
        start = text.index(word, spans[-1][1] if spans else 0)
        spans.append((start, start + len(word)))
    return spans


def spans_of(items: Sequence[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(item["charStart"], item["charEnd"]) for item in items]


def assert_placed(text: str, timestamps: dict[str, Any]) -> None:
    """Assert that every word and syllable of ``timestamps`` is its own slice of ``text``."""
    words = timestamps["words"]
    for word in words:
        assert text[word["charStart"] : word["charEnd"]] == word["text"], word
    assert spans_of(words) == found_in_order(text, [w["text"] for w in words])
    assert_syllables_placed(text, words, timestamps.get("syllables", []))


def assert_syllables_placed(
    text: str, words: Sequence[dict[str, Any]], syllables: Sequence[dict[str, Any]]
) -> None:
    """Assert that each word's syllables are consecutive slices of its span, spelling it."""
    for index, word in enumerate(words):
        assert_spelled_in_place(text, word, [s for s in syllables if s["wordIndex"] == index])


def assert_spelled_in_place(
    text: str, word: dict[str, Any], syllables: Sequence[dict[str, Any]]
) -> None:
    if not syllables:
        return
    assert syllables[0]["charStart"] == word["charStart"]
    assert syllables[-1]["charEnd"] == word["charEnd"]
    for before, after in itertools.pairwise(syllables):
        assert before["charEnd"] == after["charStart"]
    for syllable in syllables:
        assert text[syllable["charStart"] : syllable["charEnd"]] == syllable["text"]


def test_every_word_and_syllable_is_a_slice_of_the_text_sent(synthesis_client, ann):
    body = say(synthesis_client, ann, text=TEXT)
    timestamps = body["timestamps"]
    assert [w["text"] for w in timestamps["words"]] == WORDS
    assert_placed(TEXT, timestamps)
    # Code points: "world" after the emoji starts at 9 (10 in UTF-16), the first one, not
    # the second; the leading space counts.
    first_world = timestamps["words"][1]
    assert (first_world["charStart"], first_world["charEnd"]) == (9, 14)
    assert TEXT.encode("utf-16-le").index("world".encode("utf-16-le")) // 2 == 10
    assert len(timestamps["syllables"]) > len(WORDS)


def test_a_chinese_text_is_placed_clause_by_clause(synthesis_client, ann):
    body = say(synthesis_client, ann, text=CHINESE, voice="espeak:cmn", timestampGranularity="both")
    words = body["timestamps"]["words"]
    assert [w["text"] for w in words] == ["你好", "世界", "今天天气很好", "你好"]
    assert spans_of(words) == [(2, 4), (5, 7), (8, 14), (15, 17)]
    assert_placed(CHINESE, body["timestamps"])


def test_a_hit_for_a_text_differing_in_whitespace_is_placed_on_its_own_text(
    synthesis_client, ann, espeak
):
    first = say(synthesis_client, ann, text=TEXT)
    spaced = "\t" + TEXT.replace(" world,", "   world,").replace("! It", "!\u00a0\u00a0It")
    hit = say(synthesis_client, ann, text=spaced)
    assert (hit["cacheHit"], espeak.calls) == (True, 1)
    assert [w["text"] for w in hit["timestamps"]["words"]] == WORDS
    assert_placed(spaced, hit["timestamps"])
    assert spans_of(hit["timestamps"]["words"]) != spans_of(first["timestamps"]["words"])
    # The job shows the words of its own text too (the stored object is the first's).
    job = synthesis_client.get(f"/synthesis/jobs/{hit['jobId']}", headers=ann).get_json()
    assert job["timestamps"] == hit["timestamps"]
    again = synthesis_client.get(f"/synthesis/jobs/{first['jobId']}", headers=ann).get_json()
    assert again["timestamps"] == first["timestamps"]


def test_composed_and_decomposed_accents_are_two_renders_each_placed_on_its_text(
    synthesis_client, ann, espeak
):
    composed = say(synthesis_client, ann, text="Caf\u00e9 au lait, caf\u00e9.")
    decomposed = say(synthesis_client, ann, text="Cafe\u0301 au lait, cafe\u0301.")
    # An é of two code points makes other words (and spans): not the other's render.
    assert (decomposed["cacheHit"], espeak.calls) == (False, 2)
    assert_placed("Caf\u00e9 au lait, caf\u00e9.", composed["timestamps"])
    assert_placed("Cafe\u0301 au lait, cafe\u0301.", decomposed["timestamps"])
    assert decomposed["timestamps"]["words"][0]["text"] == "Cafe\u0301"


def source_of(ssml: str, item: dict[str, Any]) -> str:
    return ssml[item["charStart"] : item["charEnd"]]


def assert_ssml_placed(ssml: str, timestamps: dict[str, Any]) -> None:
    """Assert the SSML rule: each word's span holds it as written in the source (its
    references decoded and any markup inside left out, it is the word); a syllable's span is
    its slice of that, or the word's whole span when the word's source is not its text."""
    words = timestamps["words"]
    for word in words:
        written = html.unescape(re.sub(r"<[^>]*>", "", source_of(ssml, word)))
        assert written == word["text"], word
    starts = [w["charStart"] for w in words]
    assert starts == sorted(set(starts))
    for index, word in enumerate(words):
        own = [s for s in timestamps.get("syllables", []) if s["wordIndex"] == index]
        if source_of(ssml, word) == word["text"]:
            assert_spelled_in_place(ssml, word, own)
        else:
            assert all(spans_of([s]) == spans_of([word]) for s in own)


def test_ssml_words_are_placed_in_the_source_as_their_author_wrote_them(synthesis_client, ann):
    body = say(synthesis_client, ann, text=None, ssml=SSML)
    words = body["timestamps"]["words"]
    assert [source_of(SSML, w) for w in words] == SSML_SOURCES
    # The <sub>'s content, not its alias; the second WWW is the one in <emphasis>.
    assert words[1]["charStart"] == SSML.index("WWW</sub>")
    assert words[5]["charStart"] == SSML.index("WWW</emphasis>")
    assert words[3]["text"] == "AT&T"
    assert_ssml_placed(SSML, body["timestamps"])


def test_an_ssml_hit_differing_in_whitespace_is_placed_on_its_own_source(
    synthesis_client, ann, espeak
):
    say(synthesis_client, ann, text=None, ssml=SSML)
    spaced = "\n  " + SSML.replace(" and ", "   and ").replace("<emphasis>", "\t<emphasis>")
    hit = say(synthesis_client, ann, text=None, ssml=spaced)
    assert (hit["cacheHit"], espeak.calls) == (True, 1)
    assert [source_of(spaced, w) for w in hit["timestamps"]["words"]] == SSML_SOURCES
    assert_ssml_placed(spaced, hit["timestamps"])


def test_a_render_cached_before_words_had_spans_is_not_served(
    synthesis_client, ann, espeak, monkeypatch
):
    from shared.synthesis import cache

    # An instance still on key version 2 (its words without spans) caches a render...
    with monkeypatch.context() as older:
        older.setattr(cache, "KEY_VERSION", 2)
        say(synthesis_client, ann, text=TEXT)
    # ...which this version does not answer with: no answer mixes words with and without.
    body = say(synthesis_client, ann, text=TEXT)
    assert (body["cacheHit"], espeak.calls) == (False, 2)
    assert_placed(TEXT, body["timestamps"])
