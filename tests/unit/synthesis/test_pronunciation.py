"""Rendering with pronunciation lexicons: each provider's form, and word timestamps that stay
on the words the user wrote (plain text and SSML; eSpeak's and Piper's timing paths)."""

from __future__ import annotations

import pytest

from shared.lexicons.apply import Pronouncer
from shared.lexicons.lexicons import LexiconSelection
from shared.lexicons.model import LexiconRule
from shared.providers.base import AudioSettings, SynthesisRequest, SynthesisResult
from shared.providers.espeak import EspeakProvider
from shared.providers.piper import PiperProvider
from shared.providers.piper_voices import packaged_voice
from shared.synthesis.model import ResolvedVoice
from shared.synthesis.render import render_piece

ESPEAK = ResolvedVoice("espeak", "en-US", "en-US")
PIPER = ResolvedVoice("piper", "en_US-joe-medium", "en-US")


def rule(grapheme: str, **fields: object) -> LexiconRule:
    return LexiconRule.model_validate({"grapheme": grapheme, **fields})


LEXICONS = LexiconSelection(
    ("lx@1",),
    Pronouncer(
        [
            rule("Nguyen", phoneme="ˈwɪn"),
            rule("W3C", alias="World Wide Web Consortium"),
            rule("New York", phoneme="nuː ˈjɔːk"),
        ]
    ),
)
TEXT = "Mister Nguyen of the W3C flew to New York today."
WORDS = ["Mister", "Nguyen", "of", "the", "W3C", "flew", "to", "New", "York", "today"]


class Recording(EspeakProvider):
    def __init__(self) -> None:
        super().__init__(variant_languages=[])
        self.requests: list[SynthesisRequest] = []

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        self.requests.append(request)
        return super().synthesize(request)


@pytest.fixture(scope="module")
def piper() -> PiperProvider:
    return PiperProvider.from_files(
        [packaged_voice()], fallback=EspeakProvider(variant_languages=[])
    )


def spans(words):
    return {word.text: (word.start, word.end) for word in words}


def check_monotonic(rendered):
    previous = 0.0
    for word in rendered.words:
        assert previous <= word.start <= word.end <= rendered.duration + 1e-9
        previous = word.end


def test_espeak_says_the_rules_and_times_the_written_words():
    espeak = Recording()
    plain = render_piece(espeak, ESPEAK, TEXT, AudioSettings())
    ruled = render_piece(espeak, ESPEAK, TEXT, AudioSettings(), lexicons=LEXICONS)
    sent = espeak.requests[-1]
    assert sent.phonemes
    assert sent.text == (
        "Mister [['wIn]] of the World Wide Web Consortium flew to [['nu: 'jO:k]] today."
    )
    assert [w.text for w in ruled.words] == [w.text for w in plain.words] == WORDS
    assert [(w.char_start, w.char_end) for w in ruled.words] == [
        (w.char_start, w.char_end) for w in plain.words
    ]
    check_monotonic(ruled)
    timed, before = spans(ruled.words), spans(plain.words)
    # The alias of four words is one timing on "W3C", as long as those words take.
    w3c = timed["W3C"][1] - timed["W3C"][0]
    assert w3c > 2 * (before["W3C"][1] - before["W3C"][0]) - 0.3
    assert w3c > 1.0
    # "New York", said from one IPA rule, is shared by its two words.
    assert timed["New"][1] <= timed["York"][0] + 1e-9
    assert timed["York"][1] - timed["York"][0] > 0.15


def test_espeak_times_the_written_words_of_ssml_with_rules():
    espeak = Recording()
    ssml = (
        '<speak>Mister <emphasis>Nguyen</emphasis> of the W3C <break time="400ms"/>'
        "flew to New York today.</speak>"
    )
    ruled = render_piece(espeak, ESPEAK, ssml, AudioSettings(), ssml=True, lexicons=LEXICONS)
    sent = espeak.requests[-1]
    assert (sent.ssml, sent.phonemes) == (True, True)
    assert "<emphasis>[['wIn]]</emphasis>" in sent.text
    assert [w.text for w in ruled.words] == WORDS
    check_monotonic(ruled)
    timed = spans(ruled.words)
    assert timed["W3C"][1] - timed["W3C"][0] > 1.0
    # The author's break lies between "W3C" and "flew".
    assert timed["flew"][0] - timed["W3C"][1] > 0.3


def test_piper_says_the_ipa_and_times_the_written_words(piper):
    plain = render_piece(piper, PIPER, TEXT, AudioSettings())
    ruled = render_piece(piper, PIPER, TEXT, AudioSettings(), lexicons=LEXICONS)
    assert [w.text for w in ruled.words] == [w.text for w in plain.words] == WORDS
    check_monotonic(ruled)
    timed, before = spans(ruled.words), spans(plain.words)
    # Piper spells "W3C" out in about 0.9 s; the four words of its alias take longer.
    assert timed["W3C"][1] - timed["W3C"][0] > before["W3C"][1] - before["W3C"][0] + 0.2
    # "Nguyen" said as "win" is shorter than Piper's own reading of the name.
    nguyen = timed["Nguyen"][1] - timed["Nguyen"][0]
    assert nguyen < before["Nguyen"][1] - before["Nguyen"][0]
    assert timed["York"][1] - timed["York"][0] > 0.1


def test_without_rules_in_the_text_the_request_is_the_users():
    espeak = Recording()
    render_piece(espeak, ESPEAK, "Nothing to change here.", AudioSettings(), lexicons=LEXICONS)
    sent = espeak.requests[-1]
    assert (sent.text, sent.phonemes, sent.pronunciations) == (
        "Nothing to change here.",
        False,
        (),
    )
