"""Streaming through the local gateway (waitress, as ``make run`` serves it) over real sockets,
and the real ``openai`` SDK's streaming speech against it.

Orderings, not timings: a provider held at a sentence proves the first chunk reached the
client before that sentence was synthesized (a buffering server would never deliver it).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest
import soundfile  # type: ignore[import-untyped]

from local.gateway import Gateway, gateway_server
from local.serving import Served
from shared.bootstrap import get_container
from shared.files.cache import SYNTHESIS_CACHE
from shared.files.repository import AUDIO_FILES
from shared.providers.base import SynthesisRequest, SynthesisResult
from shared.providers.registry import ProviderRegistry
from shared.synthesis.repository import SYNTHESIS_JOBS
from tests.functions import test_synthesis_streaming as streaming
from tests.functions.test_synthesis_fixtures import CountingEspeak

espeak = streaming.espeak  # one sentence per chunk, two chunks ahead
SENTENCES, TEXT, AHEAD = streaming.SENTENCES, streaming.TEXT, streaming.AHEAD
GUARD = 30.0  # a deadlock guard, never a measured time


class HeldEspeak(CountingEspeak):
    """eSpeak that holds the synthesis of sentence ``hold_at`` (1-based) until released."""

    def __init__(self, hold_at: int) -> None:
        super().__init__()
        self.hold_at = hold_at
        self.release = threading.Event()
        self.held_done = threading.Event()

    def synthesize(self, request: SynthesisRequest) -> SynthesisResult:
        number = self.calls + 1
        if number == self.hold_at and not self.release.wait(GUARD):
            raise AssertionError("the test never released the held sentence")
        result = super().synthesize(request)
        if number == self.hold_at:
            self.held_done.set()
        return result


def serve(container: Any) -> Iterator[str]:
    served = Served(Gateway(container), threads=4, build=gateway_server)
    yield f"http://127.0.0.1:{served.port}"
    served.close()


@pytest.fixture
def gateway(espeak: CountingEspeak) -> Iterator[str]:
    yield from serve(get_container())


def held(at: int) -> HeldEspeak:
    provider = HeldEspeak(at)
    get_container().use_provider_registry(ProviderRegistry.of([provider]))
    return provider


def post_stream(gateway: str, token: str, **fields: Any) -> http.client.HTTPResponse:
    parts = urlsplit(gateway)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=GUARD)
    body = json.dumps({"text": TEXT, "voice": "espeak:en-US", **fields})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection.request("POST", "/synthesize/stream", body=body, headers=headers)
    return connection.getresponse()


def test_the_first_chunk_reaches_the_client_before_the_last_sentence_is_made(gateway, token):
    provider = held(len(SENTENCES))
    response = post_stream(gateway, token("ann"), outputFormat="mp3")
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    first = response.read1(1 << 20)  # arrives although the last sentence is held
    assert first
    assert not provider.held_done.is_set()
    provider.release.set()
    whole = first + response.read()
    samples, rate = soundfile.read(io.BytesIO(whole), dtype="int16")
    assert len(samples) / rate > len(SENTENCES) * 1.0
    assert provider.calls == len(SENTENCES)


def test_a_client_that_goes_away_stops_the_work_and_nothing_is_stored(gateway, token, caplog):
    caplog.set_level(logging.INFO, logger="shared.synthesis.streaming")
    provider = held(4)
    response = post_stream(gateway, token("ann"), outputFormat="pcm")
    assert response.read1(1 << 16)
    response.close()  # the client hangs up (its socket closes)
    provider.release.set()
    streaming.wait_for(
        lambda: any("stopped before its end" in r.getMessage() for r in caplog.records),
        "the server noticed the client went away",
    )
    # Stopped where the server noticed: a few sentences on, never the whole text.
    assert provider.calls <= 4 + AHEAD + 2 < len(SENTENCES)
    counts = [streaming.count(name) for name in (AUDIO_FILES, SYNTHESIS_JOBS, SYNTHESIS_CACHE)]
    assert counts == [0, 0, 0]


@pytest.fixture
def sdk(gateway: str, token: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=token("ann"), max_retries=0) as client:
        yield client


def test_openai_sdk_streams_audio_as_it_is_produced(sdk, espeak):
    provider = held(len(SENTENCES))
    with sdk.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="wav", stream_format="audio"
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        pieces = response.iter_bytes()
        first = next(pieces)  # before the last sentence exists
        assert not provider.held_done.is_set()
        provider.release.set()
        whole = first + b"".join(pieces)
    # The streaming WAV header (sizes unknown) is followed by all of the speech.
    seconds = (len(whole) - 44) / 2 / 22_050
    assert seconds > len(SENTENCES) * 1.0
    assert streaming.count(AUDIO_FILES) == 0  # OpenAI-style calls keep nothing by default


def test_openai_sdk_reads_speech_audio_delta_events(sdk, espeak):
    with sdk.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format="mp3", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [
            json.loads(line.removeprefix("data: "))
            for line in response.iter_lines()
            if line.startswith("data: ")
        ]
    *deltas, done = events
    assert {event["type"] for event in deltas} == {"speech.audio.delta"}
    assert len(deltas) >= len(SENTENCES)
    assert done["type"] == "speech.audio.done"
    assert done["usage"]["input_tokens"] == len(TEXT)
    audio = b"".join(base64.b64decode(event["audio"]) for event in deltas)
    samples, rate = soundfile.read(io.BytesIO(audio), dtype="int16")
    assert len(samples) / rate > len(SENTENCES) * 1.0


def test_openai_streaming_errors_before_the_first_byte_are_openai_errors(sdk, espeak):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.audio.speech.create(
            model="tts-1",
            voice="alloy",
            input="Hi.",
            stream_format="video",  # type: ignore[arg-type]
        )
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]
