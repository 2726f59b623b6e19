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

from shared.providers.base import AudioSettings, ErrorCategory, ProviderError, SynthesisRequest
from shared.providers.elevenlabs import ElevenLabsProvider
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


def openai_at(server, key: str = OPENAI_KEY) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        api_key=key, base_url=server.url, model="gpt-4o-mini-tts", voices=["alloy"], language="en"
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
    provider = openai_at(openai_server)
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
