"""ElevenLabs, Azure and OpenAI-compatible adapters against local fakes of their REST APIs.

Each fake speaks the API's real wire format; the error cases (401, 429 with Retry-After,
500, malformed bodies, unreachable servers) check the error category that decides retry.
"""

from __future__ import annotations

import base64
import logging

import pytest

from shared.audio.timestamps import align_words
from shared.providers.azure import AzureSpeechProvider
from shared.providers.base import AudioSettings, ErrorCategory, ProviderError, SynthesisRequest
from shared.providers.elevenlabs import ElevenLabsProvider
from shared.providers.openai_compatible import OpenAICompatibleProvider
from shared.providers.voices import AgeGroup, Gender
from tests.support.fake_http import FakeHttpServer
from tests.support.fake_tts_servers import (
    AZURE_KEY,
    ELEVENLABS_KEY,
    OPENAI_KEY,
    SECONDS_PER_CHAR,
    azure_app,
    elevenlabs_app,
    openai_app,
)
from tests.support.processes import free_port
from tests.support.signed_words import SIGNED_TEXT, SIGNED_WORDS


@pytest.fixture
def elevenlabs_server():
    with FakeHttpServer(elevenlabs_app()) as server:
        yield server


@pytest.fixture
def elevenlabs(elevenlabs_server):
    return ElevenLabsProvider(
        api_key=ELEVENLABS_KEY, base_url=elevenlabs_server.url, model_id="eleven_multilingual_v2"
    )


@pytest.fixture
def azure_server():
    with FakeHttpServer(azure_app()) as server:
        yield server


@pytest.fixture
def azure(azure_server):
    return AzureSpeechProvider(key=AZURE_KEY, base_url=azure_server.url)


@pytest.fixture
def openai_server():
    with FakeHttpServer(openai_app) as server:
        yield server


@pytest.fixture
def openai(openai_server):
    return OpenAICompatibleProvider(
        api_key=OPENAI_KEY,
        base_url=openai_server.url,
        model="gpt-4o-mini-tts",
        voices=["alloy", "nova"],
        language="en",
    )


# -- ElevenLabs --------------------------------------------------------------------------------


def test_elevenlabs_voices_are_normalised(elevenlabs, elevenlabs_server):
    voices = {v.display_name: v for v in elevenlabs.list_voices()}
    rachel, george, clyde = voices["Rachel"], voices["George"], voices["Clyde"]
    assert rachel.id == "elevenlabs:21m00Tcm4TlvDq8ikWAM"
    assert (rachel.language, rachel.gender, rachel.age_group) == (
        "en-US",
        Gender.FEMALE,
        AgeGroup.YOUNG,
    )
    assert rachel.use_cases == ("narration",)
    assert rachel.styles == ("calm",)
    assert rachel.sample_audio_url.endswith("preview.mp3")
    assert "accent:american" in rachel.tags
    assert (george.language, george.age_group, george.use_cases) == (
        "en-GB",
        AgeGroup.ADULT,
        ("narration",),
    )
    # Clyde has no gender label: unknown stays unknown. He is legacy: deprecated, not gone.
    assert clyde.gender is None
    assert clyde.age_group is AgeGroup.SENIOR
    assert clyde.use_cases == ("character",)
    assert clyde.is_deprecated
    assert clyde.metadata["languageSource"] == "default"
    request = elevenlabs_server.requests[-1]
    assert request.path == "/v1/voices"
    assert request.headers["Xi-Api-Key"] == ELEVENLABS_KEY


def test_elevenlabs_synthesis_turns_character_alignment_into_words(elevenlabs, elevenlabs_server):
    text = "Hi there, friend!"
    result = elevenlabs.synthesize(
        SynthesisRequest(
            text=text,
            voice_id="21m00Tcm4TlvDq8ikWAM",
            settings=AudioSettings(sample_rate=22_050, speed=1.1, pitch=1.2),
        )
    )
    assert [(w.text, w.char_start, w.char_end) for w in result.words] == [
        ("Hi", 0, 2),
        ("there", 3, 8),
        ("friend", 10, 16),
    ]
    assert result.words[1].start_seconds == pytest.approx(3 * SECONDS_PER_CHAR)
    assert result.words[1].end_seconds == pytest.approx(8 * SECONDS_PER_CHAR)
    assert result.duration_seconds == pytest.approx(len(text) * SECONDS_PER_CHAR, abs=0.01)
    assert result.unapplied == ("pitch",)
    sent = elevenlabs_server.requests[-1]
    assert sent.args["output_format"] == "pcm_22050"
    assert sent.json()["voice_settings"] == {"speed": 1.1}


def test_elevenlabs_words_keep_the_signs_written_on_them(elevenlabs):
    text = SIGNED_TEXT
    result = elevenlabs.synthesize(SynthesisRequest(text=text, voice_id="21m00Tcm4TlvDq8ikWAM"))

    words = align_words(text, result.words, result.duration_seconds)

    assert [(w.text, w.char_start, w.char_end) for w in result.words] == SIGNED_WORDS
    assert [(w.text, w.char_start, w.char_end) for w in words] == [
        (w.text, w.char_start, w.char_end) for w in result.words
    ]
    # The fake speaks each character in turn: "$5" runs from its "$" to its "5".
    assert (words[2].start, words[2].end) == pytest.approx(
        (9 * SECONDS_PER_CHAR, 11 * SECONDS_PER_CHAR)
    )


def test_elevenlabs_resamples_to_rates_it_does_not_offer(elevenlabs):
    result = elevenlabs.synthesize(
        SynthesisRequest(
            text="abc", voice_id="21m00Tcm4TlvDq8ikWAM", settings=AudioSettings(sample_rate=32_000)
        )
    )
    assert result.sample_rate == 32_000
    assert result.duration_seconds == pytest.approx(3 * SECONDS_PER_CHAR, abs=0.005)


def test_elevenlabs_unknown_voice_is_permanent(elevenlabs):
    with pytest.raises(ProviderError) as caught:
        elevenlabs.synthesize(SynthesisRequest(text="hi", voice_id="nope"))
    assert caught.value.category is ErrorCategory.PERMANENT
    assert caught.value.status == 404


def test_elevenlabs_wrong_key_is_auth_and_never_logged(elevenlabs_server, caplog):
    provider = ElevenLabsProvider(
        api_key="wrong-secret-key", base_url=elevenlabs_server.url, model_id="m"
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError) as caught:
        provider.list_voices()
    assert caught.value.category is ErrorCategory.AUTH
    assert "Invalid API key" in caught.value.message
    assert "wrong-secret-key" not in caplog.text + repr(provider) + repr(caught.value)


def test_elevenlabs_malformed_alignment_is_permanent(elevenlabs, elevenlabs_server):
    elevenlabs_server.fail_next(
        200,
        {
            "audio_base64": base64.b64encode(b"\x00\x00").decode(),
            "alignment": {
                "characters": ["a"],
                "character_start_times_seconds": [],
                "character_end_times_seconds": [],
            },
        },
    )
    with pytest.raises(ProviderError) as caught:
        elevenlabs.synthesize(SynthesisRequest(text="a", voice_id="21m00Tcm4TlvDq8ikWAM"))
    assert caught.value.category is ErrorCategory.PERMANENT


# -- error categories, the same for every REST adapter -----------------------------------------


@pytest.fixture(params=["elevenlabs", "azure", "openai"])
def adapter(request):
    name = request.param
    provider = request.getfixturevalue(name)
    server = request.getfixturevalue(f"{name}_server")
    if name == "openai":
        call = lambda: provider.synthesize(SynthesisRequest(text="hello", voice_id="alloy"))  # noqa: E731
    else:
        call = provider.list_voices
    return server, call


@pytest.mark.parametrize(
    ("status", "body", "headers", "category", "retry_after"),
    [
        (
            401,
            {"detail": {"status": "invalid_api_key", "message": "bad key"}},
            {},
            ErrorCategory.AUTH,
            None,
        ),
        (403, {"error": {"message": "forbidden"}}, {}, ErrorCategory.AUTH, None),
        (
            429,
            {"detail": {"status": "too_many_concurrent_requests"}},
            {"Retry-After": "7"},
            ErrorCategory.RATE_LIMITED,
            7,
        ),
        (500, {"error": {"message": "boom"}}, {}, ErrorCategory.TRANSIENT, None),
        (503, b"Service Unavailable", {"Retry-After": "2"}, ErrorCategory.TRANSIENT, 2),
        (400, {"error": {"message": "bad input"}}, {}, ErrorCategory.PERMANENT, None),
        (422, {"detail": [{"msg": "field required"}]}, {}, ErrorCategory.PERMANENT, None),
    ],
)
def test_http_errors_map_to_categories(adapter, status, body, headers, category, retry_after):
    server, call = adapter
    server.fail_next(status, body, headers)
    with pytest.raises(ProviderError) as caught:
        call()
    assert caught.value.category is category
    assert caught.value.retryable is category.retryable
    assert caught.value.retry_after == retry_after
    assert caught.value.status == status


def test_malformed_bodies_are_permanent(adapter):
    server, call = adapter
    server.fail_next(200, b"{not json", {"Content-Type": "application/json"})
    with pytest.raises(ProviderError) as caught:
        call()
    assert caught.value.category is ErrorCategory.PERMANENT


def test_unreachable_server_is_transient():
    provider = ElevenLabsProvider(
        api_key="k", base_url=f"http://127.0.0.1:{free_port()}", model_id="m"
    )
    with pytest.raises(ProviderError) as caught:
        provider.list_voices()
    assert caught.value.category is ErrorCategory.TRANSIENT


def test_timeout_is_transient(elevenlabs_server):
    import time

    from tests.support.fake_http import FakeHttpServer as Server

    def slow(request):
        time.sleep(1.0)
        return elevenlabs_app()(request)

    with Server(slow) as server:
        provider = ElevenLabsProvider(
            api_key=ELEVENLABS_KEY, base_url=server.url, model_id="m", timeout=0.2
        )
        with pytest.raises(ProviderError) as caught:
            provider.list_voices()
    assert caught.value.category is ErrorCategory.TRANSIENT


def test_retry_after_as_http_date(elevenlabs, elevenlabs_server):
    elevenlabs_server.fail_next(
        429, {"detail": "slow down"}, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )
    with pytest.raises(ProviderError) as caught:
        elevenlabs.list_voices()
    assert caught.value.retry_after == 0  # a date in the past: retry now


# -- Azure -------------------------------------------------------------------------------------


def test_azure_voices_are_normalised(azure, azure_server):
    voices = {v.voice_id: v for v in azure.list_voices()}
    jenny = voices["en-US-JennyNeural"]
    assert (jenny.language, jenny.gender, jenny.age_group) == ("en-US", Gender.FEMALE, None)
    assert jenny.styles == ("assistant", "chat", "customerservice", "newscast", "angry", "cheerful")
    assert jenny.use_cases == ("conversation", "assistant", "customer_service")
    assert {"Warm", "Friendly", "Neural"} <= set(jenny.tags)
    assert jenny.supports_multi_speaker
    assert voices["en-US-AnaNeural"].age_group is AgeGroup.CHILD
    assert voices["en-US-AnaNeural"].use_cases == ("audiobook",)
    assert voices["zh-TW-HsiaoChenNeural"].language == "zh-TW"
    assert voices["en-GB-HollieNeural"].is_deprecated, "Azure's own Deprecated status"
    assert azure_server.requests[-1].headers["Ocp-Apim-Subscription-Key"] == AZURE_KEY


def test_azure_wraps_text_in_ssml_with_prosody(azure, azure_server):
    result = azure.synthesize(
        SynthesisRequest(
            text="Tom & Jerry <3",
            voice_id="en-US-JennyNeural",
            settings=AudioSettings(sample_rate=16_000, speed=1.5, pitch=2.0, volume=0.5),
        )
    )
    assert result.sample_rate == 16_000
    assert result.duration_seconds == pytest.approx(
        len("Tom & Jerry <3") * SECONDS_PER_CHAR, abs=0.01
    )
    assert result.words == ()
    assert result.unapplied == ()
    sent = azure_server.requests[-1]
    ssml = sent.body.decode()
    assert sent.headers["Content-Type"] == "application/ssml+xml"
    assert '<voice name="en-US-JennyNeural">' in ssml
    assert "Tom &amp; Jerry &lt;3" in ssml
    assert 'rate="1.50"' in ssml
    assert 'pitch="+12.00st"' in ssml
    assert 'volume="-50%"' in ssml


def test_azure_passes_ssml_through(azure, azure_server):
    ssml = (
        "<speak version='1.0' xml:lang='en-US'><voice name='en-US-JennyNeural'>Hi</voice>"
        "<voice name='en-US-AnaNeural'>Hello</voice></speak>"
    )
    azure.synthesize(SynthesisRequest(text=ssml, voice_id="en-US-JennyNeural", ssml=True))
    assert azure_server.requests[-1].body.decode() == ssml


# -- OpenAI-compatible ------------------------------------------------------------------------


def test_openai_voices_come_from_configuration(openai):
    voices = openai.list_voices()
    assert [v.id for v in voices] == ["openai:alloy", "openai:nova"]
    assert all(v.language == "en" and v.gender is None for v in voices)


def test_openai_synthesis(openai_server):
    provider = OpenAICompatibleProvider(
        api_key=OPENAI_KEY,
        base_url=openai_server.url,
        model="tts-1",
        voices=["nova"],
        language="en",
    )
    result = provider.synthesize(
        SynthesisRequest(
            text="Good morning", voice_id="nova", settings=AudioSettings(speed=2.0, pitch=1.5)
        )
    )
    assert result.sample_rate == 22_050
    assert result.duration_seconds == pytest.approx(
        len("Good morning") * SECONDS_PER_CHAR / 2, abs=0.01
    )
    assert result.words == ()
    assert result.unapplied == ("pitch",)
    body = openai_server.requests[-1].json()
    assert body == {
        "model": "tts-1",
        "input": "Good morning",
        "voice": "nova",
        "response_format": "pcm",
        "speed": 2.0,
    }
    assert openai_server.requests[-1].headers["Authorization"] == f"Bearer {OPENAI_KEY}"


def test_openai_gpt_4o_mini_tts_takes_no_speed_and_says_so(openai, openai_server):
    # OpenAI's reference: speed "Does not work with gpt-4o-mini-tts".
    result = openai.synthesize(
        SynthesisRequest(text="Good morning", voice_id="nova", settings=AudioSettings(speed=2.0))
    )
    assert result.duration_seconds == pytest.approx(
        len("Good morning") * SECONDS_PER_CHAR, abs=0.01
    )
    assert result.unapplied == ("speed",)
    assert "speed" not in openai_server.requests[-1].json()
    assert "speed" not in openai.capabilities.native_controls


@pytest.mark.parametrize(
    "error",
    [
        {
            "message": "You exceeded your current quota",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        },
        {
            "message": "No credits left",
            "type": "insufficient_quota",
            "code": "credit_balance_exhausted",
        },
    ],
)
def test_openai_exhausted_quota_is_permanent_not_rate_limited(openai, openai_server, error):
    # The same 429 as a rate limit, but waiting does not bring the credit back.
    openai_server.fail_next(429, {"error": error}, {"Retry-After": "1"})
    with pytest.raises(ProviderError) as caught:
        openai.synthesize(SynthesisRequest(text="hello", voice_id="alloy"))
    assert caught.value.category is ErrorCategory.PERMANENT
    assert not caught.value.retryable
    assert caught.value.status == 429


def test_openai_rate_limit_is_still_retried(openai, openai_server):
    openai_server.fail_next(
        429,
        {
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
        },
        {"Retry-After": "2"},
    )
    with pytest.raises(ProviderError) as caught:
        openai.synthesize(SynthesisRequest(text="hello", voice_id="alloy"))
    assert caught.value.category is ErrorCategory.RATE_LIMITED
    assert caught.value.retry_after == 2


def test_openai_compatible_server_answering_wav(openai_server):
    from tests.support.fake_tts_servers import tone, wav_bytes

    openai_server.fail_next(
        200, wav_bytes(tone(0.5, 16_000), 16_000), {"Content-Type": "audio/wav"}
    )
    provider = OpenAICompatibleProvider(
        api_key=OPENAI_KEY, base_url=openai_server.url, model="m", voices=["a"], language="en"
    )
    result = provider.synthesize(SynthesisRequest(text="hi", voice_id="a"))
    assert result.duration_seconds == pytest.approx(0.5, abs=0.01)


def test_text_too_long_is_refused_before_sending(openai, openai_server):
    with pytest.raises(ProviderError) as caught:
        openai.synthesize(SynthesisRequest(text="x" * 5000, voice_id="alloy"))
    assert caught.value.category is ErrorCategory.PERMANENT
    assert openai_server.requests == []
