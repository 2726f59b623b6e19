"""ElevenLabs instant voice cloning through the provider, against a fake in its wire format.

``ElevenLabsProvider.add_voice`` and ``delete_voice`` are the one client both cloning
callers use (training's ElevenLabs trainer and pre-call cloning). The fake
(``tests.support.fake_elevenlabs_cloning``) parses the multipart body as ElevenLabs does
and answers its error shapes; the errors' categories decide retry, and their messages
carry ElevenLabs' own ``status: message`` (or ``loc: msg``) and never the key.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import pytest
from werkzeug.formparser import parse_form_data
from werkzeug.test import EnvironBuilder

from shared.providers.base import ErrorCategory, ProviderError
from shared.providers.elevenlabs import ElevenLabsProvider
from tests.support.fake_elevenlabs_cloning import ClonedVoices, cloning_app
from tests.support.fake_http import FakeHttpServer
from tests.support.fake_tts_servers import ELEVENLABS_KEY

WAV = ("take.wav", b"RIFF-not-really-audio", "audio/wav")


@pytest.fixture
def fake() -> Iterator[tuple[FakeHttpServer, ClonedVoices]]:
    state = ClonedVoices()
    with FakeHttpServer(cloning_app(state)) as server:
        yield server, state


def provider(server: FakeHttpServer, *, key: str = ELEVENLABS_KEY, timeout: float = 5.0):
    return ElevenLabsProvider(api_key=key, base_url=server.url, model_id="m", timeout=timeout)


def test_add_voice_sends_the_multipart_form_elevenlabs_documents(fake):
    server, state = fake
    voice_id = provider(server).add_voice(
        "Ann", [WAV, ("b.flac", b"fLaC...", "audio/flac")], description="d", labels={"a": "b"}
    )
    assert state.voices[voice_id]["name"] == "Ann"
    (sent,) = server.requests
    assert (sent.method, sent.path) == ("POST", "/v1/voices/add")
    assert sent.headers["Xi-Api-Key"] == ELEVENLABS_KEY
    environ = EnvironBuilder(
        method="POST",
        input_stream=io.BytesIO(sent.body),
        content_type=sent.headers["Content-Type"],
        content_length=len(sent.body),
    ).get_environ()
    _, form, files = parse_form_data(environ)
    assert (form["name"], form["description"], form["remove_background_noise"]) == (
        "Ann",
        "d",
        "false",
    )
    assert json.loads(form["labels"]) == {"a": "b"}
    parts = files.getlist("files")
    assert [(p.filename, p.read(), p.mimetype) for p in parts] == [
        WAV,
        ("b.flac", b"fLaC...", "audio/flac"),
    ]


def test_delete_voice_says_whether_elevenlabs_still_had_it(fake):
    server, state = fake
    client = provider(server)
    voice_id = client.add_voice("Ann", [WAV])
    assert client.delete_voice(voice_id) is True
    assert voice_id not in state.voices
    assert client.delete_voice(voice_id) is False  # 404 voice_not_found: already gone
    server.fail_next(500, {"detail": {"status": "internal", "message": "try later"}})
    with pytest.raises(ProviderError) as caught:
        client.delete_voice("v")
    assert (caught.value.category, caught.value.status) == (ErrorCategory.TRANSIENT, 500)


def test_refusals_carry_elevenlabs_own_status_and_message(fake):
    server, state = fake
    state.voice_limit = 0
    with pytest.raises(ProviderError) as full:
        provider(server).add_voice("Ann", [WAV])
    assert (full.value.category, full.value.status) == (ErrorCategory.PERMANENT, 400)
    assert "HTTP 400: voice_limit_reached: You have reached" in full.value.message

    with pytest.raises(ProviderError) as malformed:
        provider(server).add_voice("Ann", [])  # no files part: ElevenLabs' 422
    assert malformed.value.status == 422
    assert "body.files: Field required" in malformed.value.message

    with pytest.raises(ProviderError) as wrong_key:
        provider(server, key="wrong-secret").add_voice("Ann", [WAV])
    assert wrong_key.value.category is ErrorCategory.AUTH
    assert "invalid_api_key: Invalid API key" in wrong_key.value.message
    assert "wrong-secret" not in wrong_key.value.message + repr(wrong_key.value)

    server.fail_next(429, {"detail": {"status": "too_many_concurrent_requests"}})
    with pytest.raises(ProviderError) as busy:
        provider(server).add_voice("Ann", [WAV])
    assert busy.value.category is ErrorCategory.RATE_LIMITED
    assert busy.value.message.endswith("HTTP 429: too_many_concurrent_requests")


def test_a_slow_clone_is_a_transient_timeout_naming_its_limit(fake):
    server, state = fake
    state.delay = 1.0
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        provider(server, timeout=0.3).add_voice("Ann", [WAV])
    assert time.monotonic() - started < 1.0
    assert caught.value.category is ErrorCategory.TRANSIENT
    assert "did not answer within 0.3 s" in caught.value.message
