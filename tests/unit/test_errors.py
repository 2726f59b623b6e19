"""An error message repeats the caller's text as Unicode text: cut short, never a lone surrogate.

JSON text may escape a lone surrogate (``"\\ud800"``), which is no Unicode character: a
message holding one cannot be written as UTF-8 (a log line, another system's API), so
``echoed`` shows it by that escape, as a field path shows such a key.
"""

from __future__ import annotations

import json

import pytest

from shared.errors import ECHO_LIMIT, echoed, echoed_key, field_path


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("\ud800abc", "\\ud800abc"),
        ("ab\udfffc", "ab\\udfffc"),
        ("abc\udbff", "abc\\udbff"),
        ("\udc00\ud800", "\\udc00\\ud800"),  # a low then a high surrogate is no pair
        ("\ud800", "\\ud800"),
    ],
    ids=["start", "middle", "end", "reversed-pair", "alone"],
)
def test_a_lone_surrogate_in_a_value_is_shown_by_its_escape(sent, shown):
    assert echoed(sent) == shown
    echoed(sent).encode("utf-8")  # Unicode text: no surrogate left in it


def test_a_surrogate_pair_is_the_character_it_names():
    # JSON's escaped pair decodes to one astral character, which is Unicode text.
    sent = json.loads('"a\\ud83d\\ude00b\\ud800"')
    assert sent == "a\U0001f600b\ud800"
    assert echoed(sent) == "a\U0001f600b\\ud800"


def test_a_nul_is_shown_by_its_escape():
    # A NUL ends a C string: a message naming a key that holds one must not hold one.
    assert echoed("a\x00b") == "a\\u0000b"


def test_the_limit_counts_the_characters_sent_and_never_cuts_an_escape():
    assert echoed("x" * (ECHO_LIMIT - 1) + "\ud800") == "x" * (ECHO_LIMIT - 1) + "\\ud800"
    assert echoed("x" * (ECHO_LIMIT - 1) + "\ud800y") == "x" * (ECHO_LIMIT - 1) + "\\ud800\u2026"
    assert echoed("\ud800" * 1000) == "\\ud800" * ECHO_LIMIT + "\u2026"


def test_a_key_and_a_value_are_shown_alike():
    for text in ["\ud800", "k" * 100 + "\udfff", "a\x00b", "plain"]:
        assert echoed_key(text) == echoed(text)
    assert field_path(["metadata", "a\x00b", 0, "\ud800"]) == "metadata.a\\u0000b.0.\\ud800"
