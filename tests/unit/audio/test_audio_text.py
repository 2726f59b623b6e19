"""Text for synthesis: cache-key normal form, and sentence chunks that map back exactly."""

# ruff: noqa: RUF001 - the full-width CJK punctuation in these texts is what is under test

from __future__ import annotations

import pytest

from shared.audio.text import normalise_text, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Hello   world  ", "Hello world"),
        ("Hello\tworld", "Hello world"),
        ("Hello \n\n  world", "Hello\nworld"),
        ("Cafe\u0301", "Cafe\u0301"),  # not composed: its words' spans count two characters
        ("你好\u3000世界", "你好 世界"),  # ideographic space
        ("\n\n", ""),
    ],
)
def test_normalise_text(text, expected):
    assert normalise_text(text) == expected


def test_texts_that_differ_in_whitespace_only_share_a_normal_form():
    assert normalise_text("Café  au lait ") == normalise_text(" Café au\tlait")
    # The same sound in other characters is another text: its words are other strings.
    assert normalise_text("Café") != normalise_text("Cafe\u0301")


def chunk_texts(text: str, max_chars: int) -> list[str]:
    return [chunk.text for chunk in split_sentences(text, max_chars)]


@pytest.mark.parametrize(
    ("text", "max_chars", "expected"),
    [
        ("One. Two! Three?", 4, ["One.", "Two!", "Three?"]),
        ("One. Two! Three?", 100, ["One. Two! Three?"]),
        ("Dr. Smith met Mr. Jones. They talked.", 25, ["Dr. Smith met Mr. Jones.", "They talked."]),
        (
            "J. R. R. Tolkien wrote it. Then slept.",
            27,
            ["J. R. R. Tolkien wrote it.", "Then slept."],
        ),
        ("It costs 3.50 dollars. OK.", 23, ["It costs 3.50 dollars.", "OK."]),
        ("你好。我很好！你呢？", 4, ["你好。", "我很好！", "你呢？"]),
        ("你好。我很好！你呢？", 3, ["你好。", "我很", "好！", "你呢？"]),
        ("你好。我很好！你呢？", 7, ["你好。我很好！", "你呢？"]),
        ("First line\nSecond line", 15, ["First line", "Second line"]),
        ("Hi 👋 there. Bye 🎉!", 13, ["Hi 👋 there.", "Bye 🎉!"]),
        ('He said "Stop." Then left.', 16, ['He said "Stop."', "Then left."]),
        ("Wait... what happened? Nothing.", 23, ["Wait... what happened?", "Nothing."]),
        (
            "No. 5 is mine. I said no. Then left.",
            15,
            ["No. 5 is mine.", "I said no.", "Then left."],
        ),
    ],
)
def test_split_at_sentence_boundaries(text, max_chars, expected):
    assert chunk_texts(text, max_chars) == expected


@pytest.mark.parametrize(
    ("text", "max_chars", "expected"),
    [
        (
            "When the rain stopped, the children ran outside, and the dogs followed them",
            40,
            ["When the rain stopped,", "the children ran outside,", "and the dogs followed them"],
        ),
        ("one two three four five six", 10, ["one two", "three four", "five six"]),
        ("这是一个非常长的句子没有标点符号", 5, ["这是一个非", "常长的句子", "没有标点符", "号"]),
        ("我们今天去公园，然后回家吃饭", 8, ["我们今天去公园，", "然后回家吃饭"]),
        ("It was 1,000,000 dollars and more", 12, ["It was", "1,000,000", "dollars and", "more"]),
    ],
)
def test_over_long_sentences_split_at_clauses_then_spaces(text, max_chars, expected):
    assert chunk_texts(text, max_chars) == expected


def test_a_word_longer_than_the_limit_stays_whole():
    text = "See https://example.com/a/very/long/path/indeed for more."

    chunks = chunk_texts(text, 10)

    assert "https://example.com/a/very/long/path/indeed" in chunks
    assert all(len(chunk) <= 10 for chunk in chunks if "https" not in chunk)


LONG_TEXTS = [
    "Dr. Smith arrived at 10 a.m. on Monday. He said: “Everything is fine!” Was it? "
    "Nobody knew, and nobody asked; the meeting went on for hours.\n\nThe end.",
    "台北今天天氣很好。我們去陽明山散步，看了很多花！你要一起來嗎？" * 5,
    "Emoji 🎉🎉🎉 and flags 🇹🇼 and families 👨‍👩‍👧 stay intact. " * 8,
    "word " * 400,
]


@pytest.mark.parametrize("text", LONG_TEXTS)
@pytest.mark.parametrize("max_chars", [1, 7, 40, 200, 5000])
def test_chunks_map_back_to_the_original_exactly(text, max_chars):
    chunks = split_sentences(text, max_chars)

    position = 0
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert chunk.start >= position
        assert not text[position : chunk.start].strip()  # nothing spoken is skipped
        position = chunk.end
    assert not text[position:].strip()


@pytest.mark.parametrize("text", LONG_TEXTS)
@pytest.mark.parametrize("max_chars", [7, 40, 200])
def test_chunks_respect_the_limit_and_never_cut_a_word(text, max_chars):
    chunks = split_sentences(text, max_chars)
    words = text.split()

    assert all(len(chunk.text) <= max_chars or " " not in chunk.text for chunk in chunks)
    if " " in text:
        assert [word for chunk in chunks for word in chunk.text.split()] == words


def test_blank_text_has_no_chunks_and_the_limit_must_be_positive():
    assert split_sentences("   \n ", 10) == []
    with pytest.raises(ValueError, match="max_chars"):
        split_sentences("Hi.", 0)
