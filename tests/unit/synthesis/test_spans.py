"""Stored words placed on a request's own text (``shared.synthesis.spans``)."""

from __future__ import annotations

import pytest

from shared.synthesis.spans import UnplacedWordsError, placed, shifted


def test_syllables_alone_are_placed_by_the_words_they_spell():
    stored = {
        "syllables": [
            {"text": "hel", "start": 0.0, "end": 0.1, "wordIndex": 0, "charStart": 0, "charEnd": 3},
            {"text": "lo", "start": 0.1, "end": 0.2, "wordIndex": 0, "charStart": 3, "charEnd": 5},
            {"text": "hel", "start": 0.3, "end": 0.4, "wordIndex": 1, "charStart": 6, "charEnd": 9},
            {"text": "lo", "start": 0.4, "end": 0.5, "wordIndex": 1, "charStart": 9, "charEnd": 11},
        ]
    }

    shown = placed(stored, "hello,   hello")

    assert shown is not None
    spans = [(s["charStart"], s["charEnd"]) for s in shown["syllables"]]
    assert spans == [(0, 3), (3, 5), (9, 12), (12, 14)]


def test_words_that_are_not_the_texts_are_not_placed():
    stored = {"words": [{"text": "Hello", "start": 0.0, "end": 0.5}]}
    with pytest.raises(UnplacedWordsError):
        placed(stored, "Hallo")
    dialogue = {"words": [{"text": "Hi", "start": 0.0, "end": 0.5, "turnIndex": 0}]}
    with pytest.raises(UnplacedWordsError):
        placed(dialogue, "Hi")  # a dialogue's words go on its turns only
    placed_on_turns = placed(dialogue, "Hi", turns=["  Hi"])
    assert placed_on_turns is not None
    assert placed_on_turns["words"][0]["charStart"] == 2


def test_spans_shift_by_the_whitespace_sent_before_each_text():
    stored = {
        "words": [
            {"text": "Hi", "start": 0, "end": 1, "charStart": 0, "charEnd": 2, "turnIndex": 0},
            {"text": "Yo", "start": 1, "end": 2, "charStart": 0, "charEnd": 2, "turnIndex": 1},
        ]
    }

    shown = shifted(stored, [1, 3])

    assert shown is not None
    assert [(w["charStart"], w["charEnd"]) for w in shown["words"]] == [(1, 3), (3, 5)]
    assert shifted(stored, [0, 0]) is stored
