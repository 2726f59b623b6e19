"""Syllable timestamps: sensible counts, characters for CJK, times inside each word."""

# ruff: noqa: RUF001 - IPA letters and stress marks are what is under test

from __future__ import annotations

import itertools
import unicodedata

import numpy as np
import pytest

from shared.audio.syllables import (
    TimedSyllable,
    is_character_syllabic,
    phoneme_syllable_count,
    split_syllables,
    syllable_timestamps,
    syllables_for_word,
)
from shared.audio.timestamps import (
    TimedWord,
    align_words,
    fit_to_speech,
    in_order,
    offset_timings,
)
from shared.audio.timing import WordTiming


def word(text: str, start: float = 1.0, end: float = 2.0) -> TimedWord:
    return TimedWord(text, start, end, 0, len(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", ["hel", "lo"]),
        ("banana", ["ba", "na", "na"]),
        ("strength", ["strength"]),
        ("make", ["make"]),
        ("table", ["ta", "ble"]),
        ("little", ["lit", "tle"]),
        ("people", ["peo", "ple"]),
        ("jumped", ["jumped"]),
        ("wanted", ["wan", "ted"]),
        ("makes", ["makes"]),
        ("boxes", ["bo", "xes"]),
        ("yes", ["yes"]),
        ("beyond", ["be", "yond"]),
        ("mother", ["mo", "ther"]),
        ("chicken", ["chick", "en"]),
        ("Syllable", ["Syl", "la", "ble"]),
        ("well-known", ["well-", "known"]),
        ("1984", ["1984"]),
    ],
)
def test_english_words_split_by_spelling(text, expected):
    assert split_syllables(text, "en-US") == expected


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("你好世界", 4),
        ("台北", 2),
        ("こんにちは", 5),
        ("カラオケ", 4),
        ("한국어", 3),
        ("卡拉OK", 3),
    ],
)
def test_cjk_characters_are_one_syllable_each(text, count):
    parts = split_syllables(text, "zh-TW")

    assert len(parts) == count
    assert "".join(parts) == text


@pytest.mark.parametrize(
    ("phonemes", "count"),
    [
        ("həlˈoʊ", 2),  # eSpeak IPA for "hello"
        ("bənˈænə", 3),
        ("stɹˈɛŋθ", 1),
        ("h@l'oU", 2),  # eSpeak's ASCII mnemonics
        ("b@n'an@", 3),
        ("bˈʌʔn̩", 2),  # "button": a syllabic n
    ],
)
def test_phoneme_nuclei_count_syllables(phonemes, count):
    assert phoneme_syllable_count(phonemes) == count


def test_phonemes_override_the_spelling_count():
    assert split_syllables("rhythm", "en", "ɹˈɪðəm") == ["rhy", "thm"]
    assert split_syllables("every", "en", "ˈɛvɹi") == ["eve", "ry"]
    assert split_syllables("idea", "en", "aɪdˈiːə") == ["i", "de", "a"]


# eSpeak's own phonemes for each word (its ASCII mnemonics), which ask for more pieces
# than a number, a word with signs or an abbreviation has letters that spell them.
@pytest.mark.parametrize(
    ("text", "language", "phonemes", "expected"),
    [
        ("42", "en-US", "f'o@t#i t'u:", ["42"]),
        ("3.14", "en-US", "Tr'i: pOInt w'Vn f'o@", ["3.14"]),
        ("Dr", "en-US", "d'0kt3", ["Dr"]),
        ("$5", "en-US", "d'0l3 f'aIv", ["$5"]),
        ("50%", "en-US", "f'Ifti p3s'Ent", ["50%"]),
        ("C++", "en-US", "s'i: pl'Vspl'Vs", ["C++"]),
        ("km", "en-US", "k,eI'Em", ["km"]),
        ("COVID-19", "en-US", "k'0vId _ n'aInti:n", ["COVID-19"]),
        ("км", "ru", "k,A'Em", ["км"]),  # an abbreviation in Cyrillic too
        ("NASA", "en-US", "n'asa#", ["NA", "SA"]),
        ("hello", "en-US", "h@l'oU", ["hel", "lo"]),
        ("你好", "zh", None, ["你", "好"]),
    ],
)
def test_words_not_spelled_as_said_are_one_syllable_over_the_whole_word(
    text, language, phonemes, expected
):
    syllables = syllables_for_word(word(text), 3, language, phonemes)

    assert [s.text for s in syllables] == expected
    assert "".join(s.text for s in syllables) == text
    assert (syllables[0].start, syllables[-1].end) == (1.0, 2.0)
    for before, after in itertools.pairwise(syllables):
        assert before.end == pytest.approx(after.start)


# A word is an abbreviation only when no letter is a vowel in any language of its
# alphabet; hyphens, apostrophes and the Catalan middle dot are spelling, not signs.
@pytest.mark.parametrize(
    ("text", "language", "phonemes", "expected"),
    [
        ("молоко", "ru", "mVlVk'o", ["мо", "ло", "ко"]),
        ("kırmızı", "tr", "k'@Rm@z@", ["kır", "mı", "zı"]),  # Turkish dotless i is a vowel
        ("həmən", "az", "h&m'&n", ["hə", "mən"]),
        ("cwrw", "cy", "k'UrU", ["cw", "rw"]),  # Welsh w is a vowel
        ("col·lecció", "ca", "kull@ksi'o", ["co", "l·", "lec", "ció"]),
        ("don't", "en", "d'oUnt", ["don't"]),
        ("well-known", "en", "w'Eln'oUn", ["well-", "known"]),
    ],
)
def test_words_of_other_alphabets_and_joined_words_keep_their_syllables(
    text, language, phonemes, expected
):
    assert split_syllables(text, language, phonemes) == expected


def test_scripts_without_vowel_letters_still_count_syllables_by_phonemes():
    parts = split_syllables("नमस्ते", "hi", "n@m'Vste:")

    assert len(parts) == 3
    assert "".join(parts) == "नमस्ते"


# eSpeak reads letters written each with a dot letter by letter, whatever the phonemes of
# the letter's name (its own phonemes here: "e.g" is ",i:dZ'i:", "ee-jee", not "for
# example"; "i.e" is "'aIi:_!", "eye-ee"): a syllable per letter, its dot with it. The word
# tokenizer leaves out the last dot ("U.S." is the word "U.S"); a word given with it keeps it.
@pytest.mark.parametrize(
    ("text", "language", "phonemes", "expected"),
    [
        ("U.S", "en-US", "j,u:'Es", ["U.", "S"]),
        ("U.S.", "en-US", "j,u:'Es", ["U.", "S."]),
        ("e.g", "en-US", ",i:dZ'i:", ["e.", "g"]),
        ("i.e", "en-US", "'aIi:_!", ["i.", "e"]),
        ("U.S.A", "en-US", "j,u:,Es'eI", ["U.", "S.", "A"]),
        ("D.C", "en-US", "d,i:s'i:", ["D.", "C"]),
        ("p.m", "en-US", "p,i:;'Em", ["p.", "m"]),
        ("z.B", "de", "ts,Etb'e:", ["z.", "B"]),
        ("т.е", "ru", "t,Ej'e", ["т.", "е"]),
        ("U.S", None, None, ["U.", "S"]),  # the same without phonemes or a language
        # Not a letter each: an abbreviation without a vowel, read whole; a word by phonemes.
        ("Ph.D", "en-US", "p,i:;'eItS d'0t d'i:", ["Ph.D"]),
        ("et.al", "en-US", "'Et d'0t 'al", ["e", "t.", "al"]),
    ],
)
def test_dotted_abbreviations_are_a_syllable_per_letter(text, language, phonemes, expected):
    syllables = syllables_for_word(word(text), 3, language, phonemes)

    assert [s.text for s in syllables] == expected
    assert (syllables[0].start, syllables[-1].end) == (1.0, 2.0)
    for before, after in itertools.pairwise(syllables):
        assert before.end == pytest.approx(after.start)
    assert [text[s.char_start : s.char_end] for s in syllables] == expected


# A number in a Chinese or Japanese word is read as a number is anywhere: one syllable over
# its stretch (the word's time shared by length), not joined to the character before it.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3月", ["3", "月"]),
        ("第3回", ["第", "3", "回"]),
        ("2024年3月", ["2024", "年", "3", "月"]),
        ("平成31年", ["平", "成", "31", "年"]),
        ("第３回", ["第", "３", "回"]),  # fullwidth digits
        ("1,000円", ["1,000", "円"]),
        ("約3.5キロ", ["約", "3.5", "キ", "ロ"]),
        ("二〇二四年", ["二", "〇", "二", "四", "年"]),  # the ideographic zero is a numeral
        ("iPhone15发布", ["iPhone15", "发", "布"]),  # a word with digits, as alone
        ("A4サイズ", ["A4", "サ", "イ", "ズ"]),
        ("卡拉OK", ["卡", "拉", "OK"]),
        ("東京・大阪", ["東", "京・", "大", "阪"]),  # punctuation joins the syllable before
        ("你好,3个", ["你", "好,", "3", "个"]),  # the number's own syllable starts at it
    ],
)
def test_a_number_in_a_cjk_word_is_a_syllable_of_its_own(text, expected):
    assert split_syllables(text, "ja") == expected
    syllables = syllables_for_word(word(text), 0, "zh")
    assert [s.text for s in syllables] == expected
    assert (syllables[0].start, syllables[-1].end) == (1.0, 2.0)


def test_other_languages_skip_english_silent_e():
    assert split_syllables("Rose", "en") == ["Rose"]
    assert split_syllables("Rose", "de") == ["Ro", "se"]
    assert split_syllables("Ceci", "fr") == ["Ce", "ci"]


@pytest.mark.parametrize("text", ["hello", "banana", "strength", "你好世界", "extraordinary"])
def test_syllables_fill_their_word_in_order(text):
    syllables = syllables_for_word(word(text), 7, "en")

    assert "".join(s.text for s in syllables) == text
    assert syllables[0].start == 1.0
    assert syllables[-1].end == 2.0
    for before, after in itertools.pairwise(syllables):
        assert before.end == pytest.approx(after.start)
    assert all(1.0 <= s.start <= s.end <= 2.0 and s.word_index == 7 for s in syllables)


def test_syllable_timestamps_cover_a_sentence_with_word_indexes():
    text = "你好世界 hello banana"
    words = align_words(text, [], duration=3.0)

    syllables = syllable_timestamps(words, "zh-TW")

    assert [s.text for s in syllables] == ["你", "好", "世", "界", "hel", "lo", "ba", "na", "na"]
    assert [s.word_index for s in syllables] == [0, 0, 0, 0, 1, 1, 2, 2, 2]
    starts = [s.start for s in syllables]
    assert starts == sorted(starts)
    assert syllables[-1].end == 3.0
    assert syllables[4].to_api() == {
        "text": "hel",
        "start": pytest.approx(words[1].start),
        "end": pytest.approx(syllables[5].start),
        "charStart": 5,
        "charEnd": 8,
        "wordIndex": 1,
    }
    # Each syllable's span is its slice of its word's span in the text.
    assert all(text[s.char_start : s.char_end] == s.text for s in syllables)


def test_a_word_whose_span_is_not_its_text_gives_each_syllable_the_whole_span():
    # SSML's "caf&#233;": the word "café" written as nine characters of the source.
    written = TimedWord("café", 1.0, 2.0, 40, 49)

    syllables = syllable_timestamps([written], "en")

    assert [s.text for s in syllables] == ["ca", "fé"]
    assert [(s.char_start, s.char_end) for s in syllables] == [(40, 49), (40, 49)]


def test_phonemes_must_match_the_words():
    with pytest.raises(ValueError, match="one phoneme string"):
        syllable_timestamps([word("hi")], "en", phonemes=["h'aI", "x"])


def _named_syllabic(char: str) -> bool:
    """The rule by Unicode name alone (what ``is_character_syllabic`` answers)."""
    name = unicodedata.name(char, "")
    return name.startswith(("CJK UNIFIED", "CJK COMPATIBILITY IDEOGRAPH", "HANGUL SYLLABLE")) or (
        name.startswith(("HIRAGANA LETTER", "KATAKANA LETTER")) and "SMALL" not in name
    )


def test_syllabic_characters_are_told_by_name_and_none_below_hiragana_is_looked_up() -> None:
    # The quick answer below U+3040 must not change any answer of the name rule.
    plane = [chr(code) for code in range(0x10000) if not 0xD800 <= code <= 0xDFFF]
    assert [c for c in plane if is_character_syllabic(c) != _named_syllabic(c)] == []
    assert not any(_named_syllabic(c) for c in plane if c < "\u3040")
    assert all(map(is_character_syllabic, "あカ中한"))
    assert not any(map(is_character_syllabic, "aéж\u0e01ぁ"))


# Chinese timed by a provider character by character, unevenly: 们 takes 0.4 s, 今 0.1 s.
UNEVEN = "我们今天"
UNEVEN_TIMINGS = [
    WordTiming("我", 0.0, 0.1, 0, 1),
    WordTiming("们", 0.1, 0.5, 1, 2),
    WordTiming("今", 0.5, 0.6, 2, 3),
    WordTiming("天", 0.6, 1.0, 3, 4),
]


def _times(syllables: list[TimedSyllable]) -> list[tuple[float, float]]:
    return [(round(s.start, 9), round(s.end, 9)) for s in syllables]


def test_syllables_take_the_providers_times_inside_their_word():
    # One word (no space or punctuation parts the clause), but the provider timed each
    # character: its syllables keep those times rather than an even share of the word.
    words = align_words(UNEVEN, UNEVEN_TIMINGS, duration=1.0)

    assert [(w.text, w.start, w.end) for w in words] == [(UNEVEN, 0.0, 1.0)]
    syllables = syllable_timestamps(words, "zh")
    assert [s.text for s in syllables] == list(UNEVEN)
    assert _times(syllables) == [(0.0, 0.1), (0.1, 0.5), (0.5, 0.6), (0.6, 1.0)]


def test_a_word_timed_in_part_shares_the_rest_by_length():
    # Only 今 timed inside the word: 我们 share 0-0.5, 今天 from 0.5 to the end.
    timings = [WordTiming("我们", 0.0, 0.5, 0, 2), WordTiming("今天", 0.5, 0.7, 2, 4)]
    words = align_words(UNEVEN, timings, duration=1.0)

    syllables = syllable_timestamps(words, "zh")

    assert _times(syllables) == [(0.0, 0.25), (0.25, 0.5), (0.5, 0.6), (0.6, 0.7)]


def test_the_providers_times_inside_a_word_follow_it_when_it_moves():
    words = align_words(UNEVEN, UNEVEN_TIMINGS, duration=1.0)

    moved = offset_timings(words, 2.0, 10)
    assert _times(syllable_timestamps(moved, "zh")) == [
        (2.0, 2.1),
        (2.1, 2.5),
        (2.5, 2.6),
        (2.6, 3.0),
    ]
    # Cut at its start (a joined timeline's overlap): the times inside stay where they were,
    # and one now before the word's start (们's) is dropped, its characters sharing by length.
    late = in_order([TimedWord("x", 0.0, 0.3, 0, 1), *words], duration=1.0)[1]
    assert _times(syllable_timestamps([late], "zh")) == [
        (0.3, 0.4),
        (0.4, 0.5),
        (0.5, 0.6),
        (0.6, 1.0),
    ]


def test_the_providers_times_inside_a_word_stay_when_its_silence_is_cut():
    # 50 ms of silence, then sound to the end: the word starts with its sound, and the
    # characters after the first keep the provider's starts.
    rate = 16_000
    silence = np.zeros(800, dtype="<i2")
    tone = (8000 * np.sin(np.arange(rate - 800) * 2 * np.pi * 220 / rate)).astype("<i2")
    pcm = np.concatenate([silence, tone]).tobytes()
    words = align_words(UNEVEN, UNEVEN_TIMINGS, duration=1.0)

    fitted = fit_to_speech(words, pcm, rate)

    assert fitted[0].start == pytest.approx(0.05)
    assert _times(syllable_timestamps(fitted, "zh")) == [
        (0.05, 0.1),
        (0.1, 0.5),
        (0.5, 0.6),
        (0.6, 1.0),
    ]


def test_a_word_named_piece_by_piece_takes_the_providers_times():
    # SSML: eSpeak's timings carry their text only, and it names a Chinese clause (one
    # word here) character by character; the pieces are placed on the word in turn.
    named = [WordTiming(t.text, t.start_seconds, t.end_seconds) for t in UNEVEN_TIMINGS]
    text = "你好。" + UNEVEN + "，走吧"  # a Chinese comma
    timings = [
        WordTiming("你好", 0.0, 0.3),
        *[
            t._replace(start_seconds=t.start_seconds + 0.5, end_seconds=t.end_seconds + 0.5)
            for t in named
        ],
        WordTiming("走", 1.6, 1.8),
    ]

    words = align_words(text, timings, duration=2.0)

    assert [(w.text, w.start) for w in words] == [("你好", 0.0), (UNEVEN, 0.5), ("走吧", 1.6)]
    assert words[1].end == pytest.approx(1.5)
    assert _times(syllable_timestamps(words[1:2], "zh")) == [
        (0.5, 0.6),
        (0.6, 1.0),
        (1.0, 1.1),
        (1.1, 1.5),
    ]


def test_a_piece_goes_on_naming_its_word_before_a_word_it_equals_nearby():
    # The clause's last character, 天, is also the next word: it is the clause's first.
    text = UNEVEN + "，天。"  # a Chinese comma
    named = [WordTiming(t.text, t.start_seconds, t.end_seconds) for t in UNEVEN_TIMINGS]

    words = align_words(text, [*named, WordTiming("天", 1.2, 1.4)], duration=1.5)

    assert [(w.text, w.start, w.end) for w in words] == [(UNEVEN, 0.0, 1.0), ("天", 1.2, 1.4)]
    assert _times(syllable_timestamps(words[:1], "zh"))[-1] == (0.6, 1.0)


def test_times_inside_a_word_out_of_order_are_dropped():
    # A provider's times that go back inside a word (天 before 今) are not kept: the
    # syllables stay in order, sharing by length where no time is kept.
    timings = [
        WordTiming("我", 0.0, 0.1, 0, 1),
        WordTiming("们", 0.1, 0.5, 1, 2),
        WordTiming("今", 0.5, 0.6, 2, 3),
        WordTiming("天", 0.3, 1.0, 3, 4),
    ]
    words = align_words(UNEVEN, timings, duration=1.0)

    assert words[0].inner == ((1, 0.1), (2, 0.5))
    syllables = syllable_timestamps(words, "zh")
    assert _times(syllables) == [(0.0, 0.1), (0.1, 0.5), (0.5, 0.75), (0.75, 1.0)]
