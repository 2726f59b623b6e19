"""Word timestamps: every input word timed, inside the audio, in order, shiftable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.audio.pcm import frame_swings
from shared.audio.respelling import Respelling, words_as_written
from shared.audio.stitch import match_loudness, speech_level_dbfs, stitch
from shared.audio.text import split_sentences
from shared.audio.timestamps import TimedWord, align_words, in_order, offset_timings
from shared.audio.timing import WordTiming, tokenize_words
from shared.providers.base import AudioSettings, SynthesisRequest
from shared.providers.espeak import EspeakProvider
from tests.support.signed_words import SIGNED_TEXT, SIGNED_WORDS


def assert_well_formed(words: list[TimedWord], duration: float) -> None:
    previous_end = 0.0
    for word in words:
        # Offsets add float seconds: a last word may end a rounding error past the audio.
        assert 0.0 <= word.start <= word.end <= duration + 1e-9
        assert word.start >= previous_end
        previous_end = word.end


def test_every_word_is_timed_even_when_the_provider_skips_some():
    text = "Hello brave new world, said Dr. Smith."
    timings = [WordTiming("Hello", 0.1, 0.4, 0, 5), WordTiming("world", 1.0, 1.4, 16, 21)]

    words = align_words(text, timings, duration=3.0)

    assert [w.text for w in words] == ["Hello", "brave", "new", "world", "said", "Dr", "Smith"]
    assert_well_formed(words, 3.0)
    assert (words[0].start, words[0].end) == (0.1, 0.4)
    assert (words[3].start, words[3].end) == (1.0, 1.4)
    # "brave" (5 letters) and "new" (3) share the gap 0.4-1.0 in proportion.
    assert words[1].end - words[1].start == pytest.approx(0.6 * 5 / 8)
    assert words[2].end - words[2].start == pytest.approx(0.6 * 3 / 8)


def test_a_word_ending_where_the_next_timed_word_starts_shares_its_span():
    # Mark-based providers end each marked word where the next mark begins.
    text = "one two three"
    timings = [WordTiming("one", 0.0, 1.0, 0, 3), WordTiming("three", 1.0, 1.5, 8, 13)]

    words = align_words(text, timings, duration=1.5)

    assert words[1].text == "two"
    assert words[1].end - words[1].start > 0.3
    assert words[0].end == pytest.approx(words[1].start)
    assert_well_formed(words, 1.5)


def test_timings_without_character_spans_are_matched_by_text_in_order():
    text = "The cat sat on the mat."
    timings = [
        WordTiming("the", 0.0, 0.2),
        WordTiming("cat", 0.2, 0.5),
        WordTiming("the", 1.0, 1.2),
    ]

    words = align_words(text, timings, duration=2.0)

    assert (words[0].start, words[1].start, words[4].start) == (0.0, 0.2, 1.0)
    assert_well_formed(words, 2.0)


def test_without_any_timing_the_words_share_the_whole_audio():
    words = align_words("aa bbbb aa", [], duration=1.6)

    assert [w.start for w in words] == pytest.approx([0, 0.4, 1.2])
    assert [w.end for w in words] == pytest.approx([0.4, 1.2, 1.6])


def test_times_outside_the_audio_or_out_of_order_are_repaired():
    text = "alpha beta gamma"
    timings = [
        WordTiming("alpha", -0.5, 0.8, 0, 5),
        WordTiming("beta", 0.6, 0.7, 6, 10),  # starts before alpha ends
        WordTiming("gamma", 1.9, 9.0, 11, 16),  # ends after the audio
    ]

    words = align_words(text, timings, duration=2.0)

    assert_well_formed(words, 2.0)
    assert words[-1].end == 2.0


def test_one_timing_spanning_two_words_is_shared_between_them():
    words = align_words("New-York rocks", [WordTiming("New York", 0.0, 1.0, 0, 8)], 2.0)

    assert [w.text for w in words] == ["New-York", "rocks"]
    assert (words[0].start, words[0].end) == (0.0, 1.0)


def test_a_word_named_again_after_untimed_words_gives_them_its_earlier_timings():
    # eSpeak's events for "Visit <sub alias='World Wide Web'>WWW</sub> today".
    timings = [
        WordTiming("Visit", 0.0, 0.4),
        *(WordTiming("today", start, end) for start, end in [(0.4, 0.7), (0.7, 1.0), (1.0, 1.3)]),
        WordTiming("today", 1.3, 2.0),
    ]

    words = align_words("Visit World Wide Web today", timings, duration=2.0)

    assert [(w.text, w.start, w.end) for w in words] == [
        ("Visit", 0.0, 0.4),
        ("World", 0.4, 0.7),
        ("Wide", 0.7, 1.0),
        ("Web", 1.0, 1.3),
        ("today", 1.3, 2.0),
    ]


def test_fewer_repeated_names_than_untimed_words_are_shared_from_the_word_before():
    timings = [WordTiming("The", 0.0, 0.1), WordTiming("says", 0.5, 0.8)]
    timings += [WordTiming("says", 0.8, 1.2)]

    words = align_words("The aa bbbb says", timings, duration=1.2)

    # "aa" and "bbbb" share from where "The" ends to where the earlier "says" does.
    assert [w.text for w in words] == ["The", "aa", "bbbb", "says"]
    assert [(w.start, w.end) for w in words] == [
        (0.0, 0.1),
        (0.1, pytest.approx(0.1 + 0.7 * 2 / 6)),
        (pytest.approx(0.1 + 0.7 * 2 / 6), 0.8),
        (0.8, 1.2),
    ]


def test_a_repeated_word_after_a_timed_one_keeps_all_its_timings():
    timings = [WordTiming("go", 0.0, 0.3), WordTiming("go", 0.3, 0.6), WordTiming("now", 0.6, 1)]

    words = align_words("go go now", timings, duration=1.0)

    assert [(w.start, w.end) for w in words] == [(0.0, 0.3), (0.3, 0.6), (0.6, 1.0)]


def test_words_said_for_others_time_the_words_written_there():
    said = "Visit World Wide Web and the W3C today"
    written = "Visit WWW and the World Wide Web Consortium today"
    respellings = [Respelling(6, 20, 6, 9), Respelling(29, 32, 18, 43)]
    timings = [
        WordTiming(token.text, index * 0.5, index * 0.5 + 0.5, token.start, token.end)
        for index, token in enumerate(tokenize_words(said))
    ]
    words = words_as_written(align_words(said, timings, 4.0), written, respellings, 4.0)

    assert [w.text for w in words] == written.split()
    assert [(w.char_start, w.char_end) for w in words] == [
        (t.start, t.end) for t in tokenize_words(written)
    ]
    timed = {w.text: (w.start, w.end) for w in words}
    # One word written for three said takes their time; four for one share its time.
    assert timed["WWW"] == (0.5, 2.0)
    assert timed["World"] == pytest.approx((3.0, 3.0 + 0.5 * 5 / 22))
    assert timed["Consortium"] == pytest.approx((3.5 - 0.5 * 10 / 22, 3.5))
    assert (timed["and"], timed["the"], timed["today"]) == ((2.0, 2.5), (2.5, 3.0), (3.5, 4.0))


def test_character_spans_point_into_the_input():
    text = "  Hi, there!  "

    words = align_words(text, [], duration=1.0)

    assert [text[w.char_start : w.char_end] for w in words] == ["Hi", "there"]


def test_offset_timings_moves_a_chunk_into_the_whole_and_tags_the_turn():
    words = align_words("Good morning", [], duration=1.1)  # 4 + 7 letters: 0.4 s + 0.7 s

    moved = offset_timings(words, 2.5, 100, speaker="Alice", turn_index=3)

    assert [w.start for w in moved] == pytest.approx([2.5, 2.9])
    assert [w.end for w in moved] == pytest.approx([2.9, 3.6])
    assert [(w.char_start, w.char_end) for w in moved] == [(100, 104), (105, 112)]
    assert moved[0].to_api() == {
        "text": "Good",
        "start": 2.5,
        "end": pytest.approx(2.9),
        "charStart": 100,
        "charEnd": 104,
        "speaker": "Alice",
        "turnIndex": 3,
    }
    assert words[1].to_api() == {
        "text": "morning",
        "start": pytest.approx(0.4),
        "end": pytest.approx(1.1),
        "charStart": 5,
        "charEnd": 12,
    }


def test_in_order_repairs_a_joined_timeline_that_overlaps_at_a_crossfade():
    first = TimedWord("end", 0.8, 1.008, 0, 3)  # ran into the 8 ms overlap
    second = TimedWord("start", 1.0, 1.4, 4, 9)

    repaired = in_order([first, second], duration=1.3)

    assert (repaired[1].start, repaired[1].end) == (1.008, 1.3)
    assert repaired[0] is first


@pytest.fixture(scope="module")
def espeak() -> EspeakProvider:
    return EspeakProvider(variant_languages=[])


@pytest.mark.parametrize(
    ("text", "voice"),
    [
        ("Dr. Smith paid $3.50 for 12 apples, didn't he? Yes & no.", "en-US"),
        ("台北今天天氣很好，我們去散步。", "cmn"),  # noqa: RUF001 - a Chinese comma
        ("Ceci n'est pas une pipe. C'est l'été!", "fr"),
    ],
)
def test_espeak_audio_gets_a_time_for_every_word_inside_its_duration(espeak, text, voice):
    result = espeak.synthesize(SynthesisRequest(text=text, voice_id=voice))

    words = align_words(text, result.words, result.duration_seconds)

    assert [w.text for w in words] == [t.text for t in tokenize_words(text)]
    assert_well_formed(words, result.duration_seconds)
    assert words[-1].end > 0.5 * result.duration_seconds


def test_chunked_espeak_timestamps_shift_into_the_stitched_timeline(espeak):
    text = "The first sentence is here. The second one follows it. A third ends the text."
    settings = AudioSettings(sample_rate=16_000)
    chunks = split_sentences(text, 30)
    results = [
        espeak.synthesize(SynthesisRequest(text=c.text, voice_id="en-US", settings=settings))
        for c in chunks
    ]

    stitched = stitch([r.pcm for r in results], 16_000)
    timeline: list[TimedWord] = []
    for chunk, result, offset in zip(chunks, results, stitched.offsets, strict=True):
        words = align_words(chunk.text, result.words, result.duration_seconds)
        timeline += offset_timings(words, offset, chunk.start)
    timeline = in_order(timeline, stitched.duration_seconds)

    assert [text[w.char_start : w.char_end] for w in timeline] == [w.text for w in timeline]
    assert [w.text for w in timeline] == [t.text for t in tokenize_words(text)]
    assert_well_formed(timeline, stitched.duration_seconds)
    second = next(w for w in timeline if w.char_start == chunks[1].start)
    assert second.start >= stitched.offsets[1]


def test_dialogue_turns_are_timed_per_speaker_after_matching_and_pauses(espeak):
    turns = [("Alice", "en-US", "Hello Bob, how are you?"), ("Bob", "en-GB-x-rp", "Fine, thanks.")]
    loud = AudioSettings(volume=2.0)
    results = [
        espeak.synthesize(SynthesisRequest(text=text, voice_id=voice, settings=settings))
        for (_, voice, text), settings in zip(turns, [AudioSettings(), loud], strict=True)
    ]

    matched = match_loudness([r.pcm for r in results], results[0].sample_rate)
    joined = stitch(matched, results[0].sample_rate, pause_ms=400)
    timeline: list[TimedWord] = []
    for index, ((speaker, _, text), result) in enumerate(zip(turns, results, strict=True)):
        words = align_words(text, result.words, result.duration_seconds)
        timeline += offset_timings(words, joined.offsets[index], speaker=speaker, turn_index=index)

    assert_well_formed(timeline, joined.duration_seconds)
    assert joined.offsets[1] >= results[0].duration_seconds + 0.4 - 1e-6
    assert [w.to_api()["speaker"] for w in timeline] == ["Alice"] * 5 + ["Bob"] * 2
    assert timeline[-1].to_api()["turnIndex"] == 1
    levels = [speech_level_dbfs(pcm, results[0].sample_rate) for pcm in matched]
    assert abs(levels[0] - levels[1]) < 1.0


def test_chinese_and_japanese_words_part_at_their_own_punctuation():
    comma, stop = "\uff0c", "\u3002"  # fullwidth comma, ideographic full stop
    text = f"你好{comma}世界{stop}今天天气很好{stop}"
    assert [t.text for t in tokenize_words(text)] == ["你好", "世界", "今天天气很好"]
    assert [(t.start, t.end) for t in tokenize_words(text)] == [(0, 2), (3, 5), (6, 12)]
    # The iteration mark is a letter; Latin words keep their inner punctuation.
    assert [t.text for t in tokenize_words(f"\u300c人々\u300dと{stop}")] == ["人々", "と"]
    latin = "Don't stop, e.g. 3.14 well-known (yes)"
    assert [t.text for t in tokenize_words(latin)] == [
        "Don't",
        "stop",
        "e.g",
        "3.14",
        "well-known",
        "yes",
    ]


def test_a_sign_written_on_a_word_is_part_of_it():
    tokens = tokenize_words(SIGNED_TEXT)

    assert [(t.text, t.start, t.end) for t in tokens] == SIGNED_WORDS


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Pay €10, or 5€ (£3.50)!", ["Pay", "€10", "or", "5€", "£3.50"]),
        ("I code C#, F# and C++.", ["I", "code", "C#", "F#", "and", "C++"]),
        ("Follow #voices and @ann: 24/7.", ["Follow", "#voices", "and", "@ann", "24/7"]),
        ("From -5° to +3%; up 2‰.", ["From", "-5°", "to", "+3%", "up", "2‰"]),
        ('"$42.50," she said ("50%").', ["$42.50", "she", "said", "50%"]),
        # Quotes, brackets and dashes around a word, or between it and a sign, stay out.
        ("'C++' — [$5] +(5) e-mail 5- --", ["C++", "$5", "5", "e-mail", "5"]),
        # A sign alone is not a word; an apostrophe or hyphen inside one still is.
        ("Tom & Jerry + rock'n'roll - don't", ["Tom", "Jerry", "rock'n'roll", "don't"]),
        ("Wait… really?! `yes`", ["Wait", "really", "yes"]),
    ],
)
def test_signs_join_their_word_and_sentence_punctuation_does_not(text, words):
    tokens = tokenize_words(text)

    assert [t.text for t in tokens] == words
    assert all(text[t.start : t.end] == t.text for t in tokens)


def test_chinese_and_japanese_punctuation_still_parts_words_next_to_signs():
    text = "价格是$5，打折50%。「C++」と"  # noqa: RUF001 - a fullwidth comma

    assert [t.text for t in tokenize_words(text)] == ["价格是$5", "打折50%", "C++", "と"]


# The signs as Chinese and Japanese text writes them, and a fullwidth exclamation mark.
WIDE = str.maketrans({"%": "\uff05", "#": "\uff03", "@": "\uff20", "&": "\uff06", "!": "\uff01"})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("売上50%、次", ["売上50%", "次"]),
        ("Up 50% today, #tag @ann R&D", ["Up", "50%", "today", "#tag", "@ann", "R&D"]),
        # Fullwidth punctuation still parts words, and a sign alone is none.
        ("50%! & (#)", ["50%"]),
    ],
)
def test_fullwidth_signs_are_of_their_word_as_the_ascii_signs_are(text, words):
    wide = text.translate(WIDE)

    tokens = tokenize_words(wide)

    assert [t.text for t in tokens] == [word.translate(WIDE) for word in words]
    assert all(wide[t.start : t.end] == t.text for t in tokens)


def test_espeak_times_signed_words_whole(espeak):
    # eSpeak sends a word event for "$" and another for "5": the word "$5" spans both.
    result = espeak.synthesize(SynthesisRequest(text=SIGNED_TEXT, voice_id="en-US"))
    by_span = {(w.char_start, w.char_end): w for w in result.words}

    words = align_words(SIGNED_TEXT, result.words, result.duration_seconds)

    assert [(w.text, w.char_start, w.char_end) for w in words] == [
        (t.text, t.start, t.end) for t in tokenize_words(SIGNED_TEXT)
    ]
    dollar = next(w for w in words if w.text == "$5")
    assert dollar.start == pytest.approx(by_span[(9, 10)].start_seconds)
    assert dollar.end == pytest.approx(by_span[(10, 11)].end_seconds)
    assert_well_formed(words, result.duration_seconds)


@pytest.mark.parametrize(
    ("length", "frame"),
    [(0, 220), (219, 220), (220, 220), (22_050 * 3 + 7, 220), (1_000, 1), (441, 441)],
)
def test_frame_swings_are_each_whole_frames_peak_to_peak(length: int, frame: int) -> None:
    # numpy's max - min over each whole frame is the reference; extremes included.
    rng = np.random.default_rng(length + frame)
    samples = rng.integers(-32_768, 32_768, size=length, dtype=np.int16)
    samples[: min(length, 2)] = [-32_768, 32_767][: min(length, 2)]
    pcm = samples.astype("<i2").tobytes() + b"\x01"  # an odd last byte is no sample

    count = length // frame
    frames = samples[: count * frame].reshape(count, frame).astype(np.int32)
    assert frame_swings(pcm, frame) == (frames.max(axis=1) - frames.min(axis=1)).tolist()


def test_a_word_stored_as_a_row_reads_back_with_the_times_inside_it():
    # An async job stores each chunk's words as JSON rows until its assembly.
    timings = [WordTiming(c, 0.2 * i, 0.2 * i + 0.2, i, i + 1) for i, c in enumerate("你好世界")]
    word = align_words("你好世界", timings, duration=0.8)[0]
    assert word.inner  # timed inside, character by character

    row = json.loads(json.dumps(word.to_row()))

    assert TimedWord.from_row(row) == word
    # A row stored before the times inside a word were: five fields, none inside.
    assert TimedWord.from_row(row[:5]) == word._replace(inner=())
