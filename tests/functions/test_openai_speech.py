"""The OpenAI-compatible speech API, driven by the real ``openai`` package.

The local gateway (every function, as ``make run`` serves them) runs in this process on a
free port; the OpenAI client is pointed at it with a dev token as its API key.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import soundfile  # type: ignore[import-untyped]
from waitress import wasyncore
from waitress.server import create_server

from local.gateway import Gateway
from shared.audio.encode import decode_duration
from shared.bootstrap import get_container
from tests.functions import test_synthesis_fixtures as fx
from tests.functions.test_synthesis_fixtures import CountingEspeak
from tests.support.processes import free_port

espeak = fx.espeak  # the shared fixture, registered in this module


@pytest.fixture
def gateway(espeak: CountingEspeak) -> Iterator[str]:
    port = free_port()
    server = create_server(Gateway(get_container()), host="127.0.0.1", port=port, threads=4)
    stop = threading.Event()

    def serve() -> None:
        # Polled here and closed by this thread, so closing never races the select().
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)  # its own map
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    stop.set()
    thread.join(timeout=5)


@pytest.fixture
def client(gateway: str, token: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=token("ann"), max_retries=0) as sdk:
        yield sdk


TEXT = "Existing OpenAI clients work against this platform unchanged."


@pytest.mark.parametrize(
    ("response_format", "kind", "rate"),
    [
        ("mp3", "mp3", None),
        ("opus", "ogg_opus", None),
        ("flac", "flac", None),
        ("wav", "wav", None),
        ("pcm", "pcm", 24_000),
    ],
)
def test_speech_in_every_supported_format(client, response_format, kind, rate):
    audio = client.audio.speech.create(
        model="tts-1", voice="alloy", input=TEXT, response_format=response_format
    )
    data = audio.read()
    assert decode_duration(data, kind, sample_rate=rate) > 2.0
    if kind in ("wav", "flac", "ogg_opus"):
        assert soundfile.info(io.BytesIO(data)).channels == 1


def test_speed_voice_and_cache(client, espeak):
    normal = client.audio.speech.create(
        model="tts-1", voice="nova", input=TEXT, response_format="wav"
    )
    fast = client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="nova", input=TEXT, response_format="wav", speed=2.0
    )
    assert decode_duration(fast.read(), "wav") < 0.7 * decode_duration(normal.read(), "wav")
    calls = espeak.calls
    again = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="nova", input=TEXT, response_format="wav"
    )
    assert again.headers["x-cache-hit"] == "true"
    assert espeak.calls == calls
    catalog = client.audio.speech.create(
        model="tts-1", voice="espeak:en-US", input="Catalog voices work too.", response_format="mp3"
    )
    assert decode_duration(catalog.read(), "mp3") > 0.5


def test_aac_is_refused_with_400(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="aac")
    assert "aac is not supported" in caught.value.response.json()["error"]


def test_errors_reach_the_sdk_as_openai_errors(client, gateway):
    with pytest.raises(openai.BadRequestError):
        client.audio.speech.create(model="tts-1", voice="alloy", input="   ")
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="tts-1", voice="espeak:xx-none", input=TEXT)
    stranger = openai.OpenAI(base_url=f"{gateway}/v1", api_key="wrong", max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError):
        stranger.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)


def test_voices_are_listed(client):
    # The SDK's generic GET reaches routes it has no method for.
    body = client.get("/audio/voices", cast_to=object)
    names = {voice["id"] for voice in body["voices"]}
    assert {"alloy", "nova", "shimmer"} <= names
