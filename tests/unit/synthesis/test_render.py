"""Rendering text to timed PCM: chunk joins offset every word exactly, SSML words, volume."""

from __future__ import annotations

from unittest.mock import ANY

import pytest

from shared.audio.stitch import stitch
from shared.audio.text import split_sentences
from shared.providers.base import AudioSettings
from shared.providers.espeak import EspeakProvider
from shared.providers.registry import ProviderRegistry
from shared.synthesis.model import ResolvedVoice, TimestampGranularity
from shared.synthesis.phonemes import espeak_phonemizer
from shared.synthesis.render import (
    PieceJoiner,
    join_pieces,
    render_piece,
    render_text,
    timestamps_body,
)

VOICE = ResolvedVoice("espeak", "en-US", "en-US")
TEXT = "First sentence is here. The second one follows it. And a third closes the text."


@pytest.fixture(scope="module")
def engine() -> EspeakProvider:
    return EspeakProvider(variant_languages=[])


def test_join_shifts_each_chunk_by_its_exact_offset(engine):
    chunks = split_sentences(TEXT, 30)
    assert len(chunks) == 3
    pieces = [render_piece(engine, VOICE, chunk.text, AudioSettings()) for chunk in chunks]
    joined = join_pieces(pieces, chunks)
    offsets = stitch([p.pcm for p in pieces], pieces[0].sample_rate).offsets
    assert len(joined.pcm) == len(stitch([p.pcm for p in pieces], 22_050).pcm)
    position = 0
    for piece, chunk, offset in zip(pieces, chunks, offsets, strict=True):
        for word in piece.words:
            moved = joined.words[position]
            assert moved.text == word.text
            assert moved.char_start == word.char_start + chunk.start
            assert TEXT[moved.char_start : moved.char_end] == word.text
            # Exact shift, except where in_order nudges a crossfaded boundary (< 10 ms).
            assert moved.start == pytest.approx(word.start + offset, abs=0.01)
            position += 1
    assert position == len(joined.words) == len(TEXT.split())


@pytest.mark.parametrize("limit", [30, len(TEXT)])  # three chunks, and one alone
def test_joining_a_piece_at_a_time_gives_join_pieces_audio_and_words(engine, limit):
    chunks = split_sentences(TEXT, limit)
    pieces = [render_piece(engine, VOICE, chunk.text, AudioSettings()) for chunk in chunks]
    whole = join_pieces(pieces, chunks)

    joiner = PieceJoiner(pieces[0].sample_rate)
    pcm = b"".join(joiner.add(piece, chunk) for piece, chunk in zip(pieces, chunks, strict=True))
    rest = joiner.finish()

    assert pcm + rest.pcm == whole.pcm
    assert rest.words == whole.words  # every offset exactly as before
    assert rest.unapplied == whole.unapplied
    assert rest.duration == whole.duration


def test_render_text_chunks_only_beyond_the_providers_limit(engine):
    whole = render_text(engine, VOICE, TEXT, AudioSettings(), ssml=False, chunk_chars=30)
    assert [w.text for w in whole.words] == [w.strip(".") for w in TEXT.split()]
    assert whole.words[-1].end <= whole.duration


def test_ssml_words_are_the_written_words(engine):
    ssml = '<speak>One <break time="500ms"/> two <sub alias="three">3</sub></speak>'
    rendered = render_piece(engine, VOICE, ssml, AudioSettings(), ssml=True)
    assert [w.text for w in rendered.words] == ["One", "two", "3"]
    gap = rendered.words[1].start - rendered.words[0].end
    assert gap >= 0.0


def test_timestamps_body_uses_espeak_phonemes(engine):
    rendered = render_piece(engine, VOICE, "Extraordinary rhythm", AudioSettings())
    phonemizer = espeak_phonemizer(ProviderRegistry.of([engine]))
    with_phonemes = timestamps_body(
        rendered.words, TimestampGranularity.SYLLABLE, language="en-US", phonemizer=phonemizer
    )
    spelled = timestamps_body(rendered.words, TimestampGranularity.SYLLABLE, language="en-US")
    counts = [
        sum(1 for s in body["syllables"] if s["wordIndex"] == 1)
        for body in (with_phonemes, spelled)
    ]
    # "rhythm" has two spoken syllables but one vowel letter group.
    assert counts == [2, 1]
    assert "words" not in with_phonemes


class CountingEspeak(EspeakProvider):
    """The real engine, counting the words it is asked to phonemize."""

    def __init__(self) -> None:
        super().__init__(variant_languages=[])
        self.asked: list[str] = []

    def phonemes(self, words: list[str], voice_id: str) -> list[str | None]:
        self.asked.extend(words)
        return super().phonemes(words, voice_id)


def test_each_word_is_phonemized_once_per_language():
    engine = CountingEspeak()
    phonemize = espeak_phonemizer(ProviderRegistry.of([engine]))
    assert phonemize is not None
    words = ["Zephyrine", "quokkas", "Zephyrine", "早安"]
    first = phonemize(words, "en-US")
    assert engine.asked == ["Zephyrine", "quokkas"]  # once each; CJK needs none
    assert first[0]
    assert first[0] == first[2]
    assert first[3] is None
    again = espeak_phonemizer(ProviderRegistry.of([engine]))  # a later request's phonemizer
    assert again is not None
    assert again(["quokkas", "Zephyrine", "wombats"], "en-US") == [first[1], first[0], ANY]
    assert engine.asked[2:] == ["wombats"]
    again(["quokkas"], "en-GB")  # another language: asked again
    assert engine.asked[3:] == ["quokkas"]


def test_words_read_whole_or_letter_by_letter_are_not_phonemized():
    engine = CountingEspeak()
    phonemize = espeak_phonemizer(ProviderRegistry.of([engine]))
    assert phonemize is not None
    # Numbers, words with signs, abbreviations and initialisms: their syllables never
    # come from phonemes (the words here are asked nowhere else, so none is remembered).
    unasked = ["8317", "$946", "71.5%", "Blvd", "Q.X.Z", "e.g", "C#7", "第7回"]
    found = phonemize([*unasked, "Quillifer"], "en-US")
    assert engine.asked == ["Quillifer"]
    assert found[:-1] == [None] * len(unasked)
    assert found[-1]
