"""Pronunciation rules at the providers: ``<phoneme alphabet="ipa">`` in the SSML of those
that take it (marks and speech-mark offsets staying on the user's words), phoneme input for
eSpeak and Piper, and requests that cannot carry them refused."""

from __future__ import annotations

import json

import pytest
from google.auth.credentials import AnonymousCredentials

from shared.lexicons.apply import piper_phonemes
from shared.providers.azure import AzureSpeechProvider
from shared.providers.base import (
    AudioSettings,
    Pronunciation,
    ProviderError,
    SynthesisRequest,
)
from shared.providers.espeak import EspeakProvider
from shared.providers.gcp import GoogleTTSProvider
from shared.providers.piper import PiperProvider
from shared.providers.piper_voices import packaged_voice
from shared.providers.polly import PollyProvider
from shared.providers.ssml import pronounced_pieces
from tests.support.fake_http import FakeHttpServer
from tests.support.fake_tts_servers import AZURE_KEY, SECONDS_PER_CHAR, azure_app, gcp_app
from tests.unit.providers.test_polly import stream, stub_client

TEXT = "Nguyen & the W3C"
SAID = (
    Pronunciation(start=0, end=6, phoneme="ˈwɪn"),
    Pronunciation(start=13, end=16, alias="World Wide Web"),
)
PHONEME = '<phoneme alphabet="ipa" ph="ˈwɪn">Nguyen</phoneme>'
SUB = '<sub alias="World Wide Web">W3C</sub>'


def request(**fields: object) -> SynthesisRequest:
    return SynthesisRequest.model_validate(
        {"text": TEXT, "voice_id": "v", "pronunciations": SAID, **fields}
    )


def test_pronunciations_are_spans_of_plain_text_in_order():
    for bad in (
        {"ssml": True, "text": "<speak>Nguyen</speak>"},
        {"pronunciations": (SAID[1], SAID[0])},
        {"pronunciations": (Pronunciation(start=10, end=40, alias="x"),)},
    ):
        with pytest.raises(ValueError, match="pronunciations"):
            request(**bad)
    with pytest.raises(ValueError, match="phoneme or an alias"):
        Pronunciation(start=0, end=1)


def test_the_ssml_body_wraps_each_span_and_marks_only_words_outside_them():
    pieces = pronounced_pieces("New York & Nguyen", [Pronunciation(start=0, end=8, phoneme="x")])
    assert "".join(p for p, _ in pieces) == (
        '<phoneme alphabet="ipa" ph="x">New York</phoneme> &amp; Nguyen'
    )
    # Each piece stands for a character of the text: tags for the span's edges.
    assert [i for p, i in pieces if p.startswith("<")] == [0, 8]


def test_google_gets_phoneme_elements_with_a_mark_before_each_of_the_users_words():
    with FakeHttpServer(gcp_app) as server:
        provider = GoogleTTSProvider(
            endpoint=server.url, transport="rest", credentials=AnonymousCredentials(), timeout=5
        )
        result = provider.synthesize(request(voice_id="en-US-Neural2-C"))
        provider.close()
    ssml = server.requests[-1].json()["input"]["ssml"]
    assert ssml == (
        f'<speak><mark name="w0"/>{PHONEME} &amp; <mark name="w1"/>the '
        f'<mark name="w2"/>{SUB}</speak>'
    )
    assert [(w.text, w.char_start) for w in result.words] == [
        ("Nguyen", 0),
        ("the", 9),
        ("W3C", 13),
    ]


def test_azure_gets_phoneme_elements_inside_its_prosody():
    with FakeHttpServer(azure_app()) as server:
        provider = AzureSpeechProvider(key=AZURE_KEY, base_url=server.url)
        result = provider.synthesize(request(voice_id="en-US-JennyNeural"))
        provider.close()
    ssml = server.requests[-1].body.decode()
    assert f">{PHONEME} &amp; the {SUB}</prosody></voice></speak>" in ssml
    # The fake speaks the characters inside the markup: the user's words.
    assert result.duration_seconds == pytest.approx(len(TEXT) * SECONDS_PER_CHAR, abs=0.01)


def test_polly_gets_phoneme_elements_and_its_marks_map_to_the_users_words():
    provider = PollyProvider(region="us-east-1", access_key_id="a", secret_access_key="b")
    _client, stubber = stub_client(provider)
    head = '<speak><prosody rate="100%">'
    sent = f"{head}{PHONEME} &amp; the {SUB}</prosody></speak>"
    # Polly marks the words inside the elements, by byte offsets of the SSML it received.
    offsets = [(sent.index("Nguyen<"), "Nguyen"), (sent.index("the"), "the")]
    offsets.append((sent.index("W3C<"), "W3C"))
    marks = "\n".join(
        json.dumps(
            {
                "time": 300 * i,
                "type": "word",
                "start": len(sent[:at].encode()),
                "end": len(sent[:at].encode()) + len(word),
                "value": word,
            }
        )
        for i, (at, word) in enumerate(offsets)
    ).encode()
    stubber.add_response(
        "describe_voices",
        {"Voices": [{"Id": "Joanna", "LanguageCode": "en-US", "SupportedEngines": ["neural"]}]},
    )
    stubber.add_response(
        "synthesize_speech",
        {"AudioStream": stream(b"\x01\x00" * 16_000), "ContentType": "audio/pcm"},
        {
            "Text": sent,
            "TextType": "ssml",
            "VoiceId": "Joanna",
            "Engine": "neural",
            "OutputFormat": "pcm",
            "SampleRate": "16000",
        },
    )
    stubber.add_response(
        "synthesize_speech",
        {"AudioStream": stream(marks), "ContentType": "application/x-json-stream"},
    )
    with stubber:
        result = provider.synthesize(
            request(voice_id="Joanna", settings=AudioSettings(sample_rate=16_000))
        )
    assert [(w.text, w.char_start, w.char_end) for w in result.words] == [
        ("Nguyen", 0, 6),
        ("the", 9, 12),
        ("W3C", 13, 16),
    ]


def test_providers_without_ssml_phonemes_refuse_pronunciations():
    with pytest.raises(ProviderError, match="SSML providers only"):
        EspeakProvider(variant_languages=[]).synthesize(request(voice_id="en-US"))


def test_espeak_times_its_phoneme_input_inside_the_brackets():
    espeak = EspeakProvider(variant_languages=[])
    text = "Mister [['wIn]] came"
    result = espeak.synthesize(SynthesisRequest(text=text, voice_id="en-US", phonemes=True))
    timed = {w.text: (w.char_start, w.char_end) for w in result.words}
    start, end = timed["wIn"] if "wIn" in timed else timed["'wIn"]
    assert text.index("[[") < start < end <= text.index("]]")
    said = espeak.spoken_phonemes(SynthesisRequest(text=text, voice_id="en-US", phonemes=True))
    assert said.split() == ["m'Ist3", "w'In", "k'eIm"]
    # Without the flag brackets are text, not phonemes.
    literal = espeak.spoken_phonemes(SynthesisRequest(text=text, voice_id="en-US"))
    assert "w'In" not in literal


@pytest.fixture(scope="module")
def piper() -> PiperProvider:
    return PiperProvider.from_files(
        [packaged_voice()], fallback=EspeakProvider(variant_languages=[])
    )


def test_piper_reads_ipa_phoneme_input_and_times_it(piper, monkeypatch):
    import shared.providers.piper as piper_module

    rendered: list[list[str]] = []
    real_render = piper_module._render

    def watched(voice, phonemes, settings):
        rendered.append(list(phonemes))
        return real_render(voice, phonemes, settings)

    monkeypatch.setattr(piper_module, "_render", watched)
    text = "Mister [[wɪn]] came, θ [[θiːtə]] too."
    result = piper.synthesize(
        SynthesisRequest(text=text, voice_id="en_US-joe-medium", phonemes=True)
    )
    spoken = "".join(p for sentence in rendered for p in sentence)
    assert " wɪn " in spoken
    assert "θiːtə" in spoken
    timed = [(w.text, w.char_start) for w in result.words]
    assert ("wɪn", text.index("wɪn")) in timed
    assert ("θiːtə", text.index("θiːtə")) in timed
    assert [w for w, _ in timed][:3] == ["Mister", "wɪn", "came"]
    # IPA's Greek letter is no Greek text: nothing went to the eSpeak fallback.
    assert result.provider == "piper"
    rendered.clear()
    plain = piper.synthesize(
        SynthesisRequest(text="Mister [[wɪn]] came", voice_id="en_US-joe-medium")
    )
    spoken = "".join(p for sentence in rendered for p in sentence)
    assert "wɪn" not in spoken.replace(" ", "")  # not phoneme input: the user's brackets
    assert plain.duration_seconds > 0


def test_every_ipa_symbol_a_lexicon_accepts_is_one_piper_says(piper):
    from shared.lexicons.ipa import _TABLE

    [voice] = piper._voices.values()
    id_map = voice.engine.config.phoneme_id_map
    given = {char for symbol in _TABLE for char in piper_phonemes(symbol) if char not in "[]"}
    assert given - set(id_map) == set()
