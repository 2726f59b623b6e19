"""Google Cloud TTS through the real client library (REST transport) against a local fake."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials

from shared.audio.timestamps import align_words
from shared.providers.base import AudioSettings, ErrorCategory, ProviderError, SynthesisRequest
from shared.providers.gcp import GoogleTTSProvider
from shared.providers.voices import Gender
from tests.support.fake_http import FakeHttpServer
from tests.support.fake_tts_servers import SECONDS_PER_CHAR, gcp_app
from tests.support.signed_words import SIGNED_TEXT, SIGNED_WORDS


@pytest.fixture
def server():
    with FakeHttpServer(gcp_app) as fake:
        yield fake


@pytest.fixture
def gcp(server):
    provider = GoogleTTSProvider(
        endpoint=server.url, transport="rest", credentials=AnonymousCredentials(), timeout=5
    )
    yield provider
    provider.close()


def test_voices_are_normalised(gcp, server):
    voices = {v.voice_id: v for v in gcp.list_voices()}
    neural = voices["en-US-Neural2-C"]
    assert (neural.id, neural.language, neural.gender) == (
        "gcp:en-US-Neural2-C",
        "en-US",
        Gender.FEMALE,
    )
    assert neural.tags == ("Neural2",)
    assert neural.use_cases == ()
    assert voices["en-US-News-K"].use_cases == ("news",)
    multi = voices["en-US-Studio-MultiSpeaker"]
    assert multi.gender is None, "SSML_VOICE_GENDER_UNSPECIFIED is unknown, not a guess"
    assert multi.supports_multi_speaker
    assert not neural.supports_multi_speaker
    assert voices["cmn-TW-Wavenet-B"].language == "cmn-TW"
    assert server.requests[-1].path == "/v1beta1/voices"


def test_synthesis_marks_every_word_and_reads_timepoints(gcp, server):
    text = "Fish & chips, please!"
    result = gcp.synthesize(
        SynthesisRequest(
            text=text,
            voice_id="en-US-Neural2-C",
            settings=AudioSettings(sample_rate=24_000, speed=1.25, pitch=2.0, volume=0.5),
        )
    )
    assert [(w.text, w.char_start, w.char_end) for w in result.words] == [
        ("Fish", 0, 4),
        ("chips", 7, 12),
        ("please", 14, 20),
    ]
    assert result.words[1].start_seconds == pytest.approx(7 * SECONDS_PER_CHAR)
    assert result.words[0].end_seconds == result.words[1].start_seconds
    assert result.words[-1].end_seconds == pytest.approx(result.duration_seconds)
    assert result.sample_rate == 24_000
    assert result.duration_seconds == pytest.approx(len(text) * SECONDS_PER_CHAR, abs=0.01)
    sent = server.requests[-1].json()
    assert sent["input"]["ssml"].startswith('<speak><mark name="w0"/>Fish &amp; ')
    assert sent["voice"] == {"languageCode": "en-US", "name": "en-US-Neural2-C"}
    assert sent["enableTimePointing"] == ["SSML_MARK"]
    config = sent["audioConfig"]
    assert config["audioEncoding"] == "LINEAR16"
    assert config["sampleRateHertz"] == 24_000
    assert config["speakingRate"] == 1.25
    assert config["pitch"] == pytest.approx(12.0)
    assert config["volumeGainDb"] == pytest.approx(-6.02, abs=0.01)


def test_marks_go_before_the_signs_written_on_a_word(gcp, server):
    # Google reads "$5" as "five dollars" only when nothing parts "$" from "5".
    text = SIGNED_TEXT
    result = gcp.synthesize(SynthesisRequest(text=text, voice_id="en-US-Neural2-C"))

    words = align_words(text, result.words, result.duration_seconds)

    ssml = server.requests[-1].json()["input"]["ssml"]
    assert '<mark name="w2"/>$5, ' in ssml
    assert '<mark name="w5"/>50% ' in ssml
    assert '<mark name="w7"/>C++ ' in ssml
    assert [(w.text, w.char_start, w.char_end) for w in words] == SIGNED_WORDS
    assert [w.text for w in result.words] == [w.text for w in words]
    # The fake reaches each mark after the characters before it: "$5" starts at its "$".
    assert words[2].start == pytest.approx(9 * SECONDS_PER_CHAR)
    assert words[2].end == pytest.approx(13 * SECONDS_PER_CHAR)


def test_ssml_input_passes_through_without_timings(gcp, server):
    ssml = "<speak>Hello <break time='200ms'/> there</speak>"
    result = gcp.synthesize(SynthesisRequest(text=ssml, voice_id="en-US-Neural2-C", ssml=True))
    assert result.words == ()
    assert server.requests[-1].json()["input"]["ssml"] == ssml


@pytest.mark.parametrize(
    ("status", "grpc_status", "category"),
    [
        (401, "UNAUTHENTICATED", ErrorCategory.AUTH),
        (403, "PERMISSION_DENIED", ErrorCategory.AUTH),
        (429, "RESOURCE_EXHAUSTED", ErrorCategory.RATE_LIMITED),
        (500, "INTERNAL", ErrorCategory.TRANSIENT),
        (503, "UNAVAILABLE", ErrorCategory.TRANSIENT),
        (400, "INVALID_ARGUMENT", ErrorCategory.PERMANENT),
    ],
)
def test_errors_map_to_categories(gcp, server, status, grpc_status, category):
    headers = {"Retry-After": "3"} if status == 429 else {}
    server.fail_next(
        status, {"error": {"code": status, "message": "nope", "status": grpc_status}}, headers
    )
    with pytest.raises(ProviderError) as caught:
        gcp.list_voices()
    assert caught.value.category is category
    if status == 429:
        assert caught.value.retry_after == 3


def test_malformed_body_is_permanent(gcp, server):
    server.fail_next(200, b"<html>not json</html>", {"Content-Type": "text/html"})
    with pytest.raises(ProviderError) as caught:
        gcp.list_voices()
    assert caught.value.category is ErrorCategory.PERMANENT


def test_unreachable_endpoint_is_transient():
    from tests.support.processes import free_port

    provider = GoogleTTSProvider(
        endpoint=f"http://127.0.0.1:{free_port()}",
        transport="rest",
        credentials=AnonymousCredentials(),
    )
    with pytest.raises(ProviderError) as caught:
        provider.list_voices()
    assert caught.value.category is ErrorCategory.TRANSIENT


# -- the gRPC transport (production's) --------------------------------------------------------


@pytest.fixture
def grpc_gcp():
    import grpc
    from google.cloud import texttospeech_v1beta1 as tts
    from google.cloud.texttospeech_v1beta1.services.text_to_speech.transports import (
        TextToSpeechGrpcTransport,
    )

    from tests.support.fake_gcp_grpc import FakeGoogleTTSGrpc

    with FakeGoogleTTSGrpc() as fake:
        channel = grpc.insecure_channel(fake.host)
        client = tts.TextToSpeechClient(transport=TextToSpeechGrpcTransport(channel=channel))
        yield fake, GoogleTTSProvider(client=client, timeout=5)
        channel.close()


def test_grpc_voices_and_synthesis(grpc_gcp):
    _, gcp = grpc_gcp
    assert {v.voice_id for v in gcp.list_voices()} >= {"en-US-Neural2-C", "cmn-TW-Wavenet-B"}
    result = gcp.synthesize(SynthesisRequest(text="one two three", voice_id="en-US-Neural2-C"))
    assert [w.text for w in result.words] == ["one", "two", "three"]
    assert result.words[2].start_seconds == pytest.approx(8 * SECONDS_PER_CHAR)


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("UNAUTHENTICATED", ErrorCategory.AUTH),
        ("PERMISSION_DENIED", ErrorCategory.AUTH),
        ("RESOURCE_EXHAUSTED", ErrorCategory.RATE_LIMITED),
        ("UNAVAILABLE", ErrorCategory.TRANSIENT),
        ("INTERNAL", ErrorCategory.TRANSIENT),
        ("INVALID_ARGUMENT", ErrorCategory.PERMANENT),
    ],
)
def test_grpc_errors_map_to_categories(grpc_gcp, code, category):
    import grpc

    fake, gcp = grpc_gcp
    fake.fail_next(grpc.StatusCode[code])
    with pytest.raises(ProviderError) as caught:
        gcp.list_voices()
    assert caught.value.category is category


def test_plain_text_is_taken_as_far_as_its_marks_fit_and_ssml_by_its_bytes(gcp, server):
    # Google's limit is 5,000 bytes of input per request, the marks before each word included.
    assert gcp.capabilities.max_input_chars == 400, "callers cut text to fit"
    with pytest.raises(ProviderError) as caught:
        gcp.synthesize(SynthesisRequest(text="a " * 250, voice_id="en-US-Neural2-C"))
    assert caught.value.category is ErrorCategory.PERMANENT
    ssml = "<speak>" + "Long enough. " * 300 + "</speak>"  # 3,915 bytes
    gcp.synthesize(SynthesisRequest(text=ssml, voice_id="en-US-Neural2-C", ssml=True))
    with pytest.raises(ProviderError) as caught:
        gcp.synthesize(SynthesisRequest(text=ssml.replace(".", ". éé"), voice_id="x-Y", ssml=True))
    assert caught.value.category is ErrorCategory.PERMANENT
    assert [r.method for r in server.requests] == ["POST"]
