"""Providers that stream (``stream_pcm``) against fakes of their real streaming wire formats.

Each fake sends the body chunked, in odd-sized pieces, and can hold everything after the
first piece until the test has seen it: a provider that buffered the whole body before
yielding would never see that gate open. Joined, the pieces are the non-streamed audio
(within resampling tolerance where the provider's rate is not the one asked for).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from werkzeug.wrappers import Request, Response

from shared.providers.base import (
    AudioSettings,
    ErrorCategory,
    ProviderError,
    SynthesisRequest,
    TTSProvider,
)
from shared.providers.elevenlabs import ElevenLabsProvider
from shared.providers.gcp import GoogleTTSProvider
from shared.providers.openai_compatible import OpenAICompatibleProvider
from tests.support.fake_http import FakeHttpServer
from tests.support.fake_tts_servers import (
    ELEVENLABS_KEY,
    OPENAI_KEY,
    STREAM_PIECE_BYTES,
    elevenlabs_app,
    openai_streaming_app,
    tone,
)

RACHEL = "21m00Tcm4TlvDq8ikWAM"
TEXT = "Streaming speech arrives piece by piece, long before the whole text is spoken."


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int32)


def first_then_rest(pieces, gate: threading.Event) -> list[bytes]:
    """Take the first piece while the server still holds the rest, then open the gate."""
    iterator = iter(pieces)
    got = [next(iterator)]
    assert not gate.is_set()
    gate.set()
    got.extend(iterator)
    return got


@pytest.fixture
def gate():
    event = threading.Event()
    yield event
    event.set()  # a failed test never leaves the fake server waiting


@pytest.fixture
def elevenlabs_server(gate):
    with FakeHttpServer(elevenlabs_app(gate=gate)) as server:
        yield server


def elevenlabs_at(server, key: str = ELEVENLABS_KEY) -> ElevenLabsProvider:
    return ElevenLabsProvider(api_key=key, base_url=server.url, model_id="eleven_multilingual_v2")


@pytest.fixture
def openai_server(gate):
    with FakeHttpServer(openai_streaming_app(gate)) as server:
        yield server


def openai_at(
    server, key: str = OPENAI_KEY, model: str = "gpt-4o-mini-tts"
) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        api_key=key, base_url=server.url, model=model, voices=["alloy"], language="en"
    )


def request_for(voice: str, rate: int, **settings: float) -> SynthesisRequest:
    return SynthesisRequest(
        text=TEXT,
        voice_id=voice,
        settings=AudioSettings(sample_rate=rate, **settings),
        want_timings=False,
    )


# -- ElevenLabs --------------------------------------------------------------------------------


def test_elevenlabs_streams_pcm_as_it_arrives_and_it_equals_the_whole_audio(
    elevenlabs_server, gate
):
    provider = elevenlabs_at(elevenlabs_server)
    request = request_for(RACHEL, 22_050)
    assert provider.streams(request)
    pieces = first_then_rest(provider.stream_pcm(request), gate)
    assert len(pieces) > 2
    assert all(len(piece) % 2 == 0 for piece in pieces)  # whole samples, though sent odd
    assert b"".join(pieces) == provider.synthesize(request).pcm
    sent = elevenlabs_server.requests[0]
    assert sent.path == f"/v1/text-to-speech/{RACHEL}/stream"
    assert sent.args["output_format"] == "pcm_22050"


def test_a_request_whose_settings_a_stream_would_drop_silently_does_not_stream(
    elevenlabs_server, openai_server
):
    elevenlabs, openai = elevenlabs_at(elevenlabs_server), openai_at(openai_server)
    assert not elevenlabs.streams(request_for(RACHEL, 22_050, pitch=1.5))
    assert not elevenlabs.streams(request_for(RACHEL, 22_050, speed=2.0))  # beyond its 1.2
    assert elevenlabs.streams(request_for(RACHEL, 22_050, speed=1.1, volume=0.5))
    assert not openai.streams(request_for("alloy", 24_000, pitch=0.8))
    assert not openai.streams(request_for("alloy", 24_000, speed=2.0))  # gpt-4o-mini-tts: none
    assert openai.streams(request_for("alloy", 24_000, volume=0.5))
    assert openai_at(openai_server, model="tts-1").streams(request_for("alloy", 24_000, speed=2.0))
    # synthesize reports what it left out, so callers go that way instead.
    assert elevenlabs.synthesize(request_for(RACHEL, 22_050, pitch=1.5)).unapplied == ("pitch",)


def test_elevenlabs_stream_is_resampled_to_a_rate_it_does_not_offer(elevenlabs_server, gate):
    gate.set()
    provider = elevenlabs_at(elevenlabs_server)
    request = request_for(RACHEL, 32_000, volume=0.5)
    streamed = samples(b"".join(provider.stream_pcm(request)))
    whole = samples(provider.synthesize(request).pcm)
    assert elevenlabs_server.requests[0].args["output_format"] == "pcm_44100"
    assert len(streamed) == len(whole)
    assert np.abs(streamed - whole).max() <= 8  # of a 6,500-peak tone at half volume


@pytest.mark.parametrize(
    ("key", "voice", "category"),
    [
        ("wrong-key", RACHEL, ErrorCategory.AUTH),
        (ELEVENLABS_KEY, "no-such-voice", ErrorCategory.PERMANENT),
    ],
)
def test_elevenlabs_stream_errors_have_categories(elevenlabs_server, key, voice, category):
    provider = elevenlabs_at(elevenlabs_server, key)
    with pytest.raises(ProviderError) as failed:
        list(provider.stream_pcm(request_for(voice, 22_050)))
    assert failed.value.category is category


def test_elevenlabs_rate_limit_on_a_stream_says_when_to_retry(elevenlabs_server):
    elevenlabs_server.fail_next(
        429,
        {"detail": {"status": "too_many_concurrent_requests", "message": "Busy"}},
        {"Retry-After": "7"},
    )
    with pytest.raises(ProviderError) as failed:
        list(elevenlabs_at(elevenlabs_server).stream_pcm(request_for(RACHEL, 22_050)))
    assert (failed.value.category, failed.value.retry_after) == (ErrorCategory.RATE_LIMITED, 7)


def broken_stream(request: Request) -> Response:
    def body():
        yield tone(0.5, 22_050)[:STREAM_PIECE_BYTES]
        raise ConnectionResetError("the provider went away mid-stream")

    return Response(body(), mimetype="application/octet-stream")


def test_a_stream_that_breaks_off_is_transient():
    with FakeHttpServer(broken_stream) as server:
        provider = elevenlabs_at(server)
        pieces = provider.stream_pcm(request_for(RACHEL, 22_050))
        with pytest.raises(ProviderError) as failed:
            list(pieces)
    assert failed.value.category is ErrorCategory.TRANSIENT


# -- OpenAI-compatible -------------------------------------------------------------------------


def test_openai_streams_pcm_resampled_piece_by_piece(openai_server, gate):
    provider = openai_at(openai_server, model="tts-1")
    request = request_for("alloy", 22_050, speed=1.25)
    assert provider.streams(request)
    pieces = first_then_rest(provider.stream_pcm(request), gate)
    assert len(pieces) > 2
    streamed = samples(b"".join(pieces))
    whole = samples(provider.synthesize(request).pcm)
    assert openai_server.requests[0].json()["response_format"] == "pcm"
    assert len(streamed) == len(whole)
    assert np.abs(streamed - whole).max() <= 8


def test_openai_stream_at_its_own_rate_is_the_bytes_sent(openai_server, gate):
    gate.set()
    provider = openai_at(openai_server)
    request = request_for("alloy", 24_000)
    assert b"".join(provider.stream_pcm(request)) == provider.synthesize(request).pcm


@pytest.mark.parametrize(
    ("status", "category"),
    [(401, ErrorCategory.AUTH), (500, ErrorCategory.TRANSIENT), (400, ErrorCategory.PERMANENT)],
)
def test_openai_stream_errors_have_categories(openai_server, status, category):
    openai_server.fail_next(status, {"error": {"message": "no", "type": "server_error"}})
    with pytest.raises(ProviderError) as failed:
        list(openai_at(openai_server).stream_pcm(request_for("alloy", 24_000)))
    assert failed.value.category is category


# -- Google Cloud TTS (StreamingSynthesize over gRPC) -------------------------------------------

CHIRP = "en-US-Chirp3-HD-Charon"


@pytest.fixture
def google(gate):
    import grpc
    from google.cloud import texttospeech_v1beta1 as tts
    from google.cloud.texttospeech_v1beta1.services.text_to_speech.transports import (
        TextToSpeechGrpcTransport,
    )

    from tests.support.fake_gcp_grpc import FakeGoogleTTSGrpc

    with FakeGoogleTTSGrpc(gate) as fake:
        channel = grpc.insecure_channel(fake.host)
        client = tts.TextToSpeechClient(transport=TextToSpeechGrpcTransport(channel=channel))
        yield fake, GoogleTTSProvider(client=client, timeout=10)
        channel.close()


def test_google_streams_chirp_voices_as_the_audio_arrives(google, gate):
    fake, provider = google
    request = request_for(CHIRP, 24_000)
    assert provider.streams(request)
    pieces = first_then_rest(provider.stream_pcm(request), gate)
    assert len(pieces) > 2
    assert all(len(piece) % 2 == 0 for piece in pieces)
    assert b"".join(pieces) == provider.synthesize(request).pcm
    [config] = fake.streamed
    assert (config.voice.name, config.voice.language_code) == (CHIRP, "en-US")
    assert config.streaming_audio_config.sample_rate_hertz == 24_000


def test_google_streams_only_what_its_streaming_api_takes(google):
    _, provider = google
    assert provider.streams(request_for("en-US-Journey-D", 24_000))
    assert not provider.streams(request_for("en-US-Neural2-C", 24_000))
    assert not provider.streams(request_for(CHIRP, 24_000, pitch=1.2))  # no pitch in a stream
    ssml = SynthesisRequest(text="<speak>Hi</speak>", voice_id=CHIRP, ssml=True)
    assert not provider.streams(ssml)
    with pytest.raises(ProviderError) as refused:
        provider.stream_pcm(request_for("en-US-Neural2-C", 24_000))
    assert refused.value.category is ErrorCategory.PERMANENT


def test_google_stream_applies_speed_and_volume(google, gate):
    gate.set()
    fake, provider = google
    normal = samples(b"".join(provider.stream_pcm(request_for(CHIRP, 16_000))))
    changed = samples(
        b"".join(provider.stream_pcm(request_for(CHIRP, 16_000, speed=2.0, volume=0.5)))
    )
    assert fake.streamed[1].streaming_audio_config.speaking_rate == 2.0
    assert len(changed) == pytest.approx(len(normal) / 2, abs=2)
    assert np.abs(changed).max() == pytest.approx(np.abs(normal).max() / 2, abs=1)


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("UNAUTHENTICATED", ErrorCategory.AUTH),
        ("RESOURCE_EXHAUSTED", ErrorCategory.RATE_LIMITED),
        ("UNAVAILABLE", ErrorCategory.TRANSIENT),
        ("INVALID_ARGUMENT", ErrorCategory.PERMANENT),
    ],
)
def test_google_stream_errors_have_categories_before_and_during_the_audio(
    google, gate, code, category
):
    import grpc

    gate.set()
    fake, provider = google
    fake.fail_next(grpc.StatusCode[code])
    with pytest.raises(ProviderError) as before:
        list(provider.stream_pcm(request_for(CHIRP, 24_000)))
    assert before.value.category is category
    fake.fail_mid_stream(grpc.StatusCode[code])
    pieces = provider.stream_pcm(request_for(CHIRP, 24_000))
    assert next(pieces)  # the first audio came before the failure
    with pytest.raises(ProviderError) as during:
        list(pieces)
    assert during.value.category is category


# -- every provider ----------------------------------------------------------------------------


def every_provider() -> list[TTSProvider]:
    from shared.providers.azure import AzureSpeechProvider
    from shared.providers.espeak import EspeakProvider
    from shared.providers.piper import PiperProvider
    from shared.providers.piper_voices import packaged_voice
    from shared.providers.polly import PollyProvider

    espeak = EspeakProvider(variant_languages=[])
    return [
        espeak,
        PiperProvider.from_files([packaged_voice()], fallback=espeak),
        AzureSpeechProvider(key="k", base_url="http://127.0.0.1:9"),
        PollyProvider(region="us-east-1"),
        ElevenLabsProvider(api_key="k", base_url="http://127.0.0.1:9", model_id="m"),
        OpenAICompatibleProvider(
            api_key="k", base_url="http://127.0.0.1:9", model="m", voices=["a"], language="en"
        ),
        GoogleTTSProvider(endpoint="127.0.0.1:9"),
    ]


def test_the_catalog_says_streaming_exactly_for_providers_that_stream():
    for provider in every_provider():
        streams = type(provider).stream_pcm is not TTSProvider.stream_pcm
        assert provider.capabilities.streaming is streams, provider.name
        assert provider.capabilities.to_api()["streaming"] is streams
