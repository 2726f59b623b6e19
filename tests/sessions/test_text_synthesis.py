"""``/v1/synthesize/ws``: text in pieces (as an LLM writes it), audio with timings back."""

from __future__ import annotations

import collections
import json
import socket
import time
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from shared import voice_models
from shared.catalog.repository import VoiceRepository
from shared.voice_models.usage import usage_stats
from tests.functions.test_synthesis_spans import assert_placed
from tests.sessions.support import Client, counted_by_code
from tests.sessions.test_session_voice import give_active_model
from tests.support.fake_http import FakeHttpServer
from tests.support.fake_tts_servers import ELEVENLABS_KEY, SECONDS_PER_CHAR, elevenlabs_app


@pytest.fixture
def start_service(start_service):
    """Session services whose catalog holds eSpeak's voices (as the daily sync leaves it)."""

    def start(**overrides):
        service = start_service(**overrides)
        espeak = service.container.providers.get("espeak")
        VoiceRepository(service.container.store).upsert(espeak.list_voices())
        return service

    return start


RACHEL = "21m00Tcm4TlvDq8ikWAM"  # a voice of the fake ElevenLabs


def synth_url(service) -> str:
    return f"ws://127.0.0.1:{service.port}/v1/synthesize/ws"


def closed_code(client: Client, timeout: float = 30) -> int | None:
    """Read until the server closes; return its close code."""
    return close_code_of(lambda: client.receive_one(timeout))


def close_code_of(receive) -> int | None:
    """Call ``receive`` until the connection closes; return the code the server sent."""
    try:
        while True:
            receive()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def test_text_in_pieces_comes_back_as_audio_sentence_by_sentence_with_timings(start_service):
    service = start_service()
    client = Client(synth_url(service), service.token("lena"))
    client.send({"type": "start", "voice": "en-US", "sampleRate": 16000})
    started = client.wait_for("synthesis.started")
    assert (started["voice"], started["sampleRate"], started["format"]) == (
        "espeak:en-US",
        16000,
        "pcm",
    )
    for piece in ["Hel", "lo there", ". How are", " you to", "day? And the", " rest"]:
        client.send({"type": "text", "text": piece})
    # The first sentence is spoken before the text has ended.
    first = client.wait_for("segment.started")
    assert first["text"] == "Hello there."
    assert [word["text"] for word in first["words"]] == ["Hello", "there"]
    assert first["startSeconds"] == 0
    first_end = client.wait_for("segment.ended")
    second = client.wait_for("segment.started")
    assert second["text"] == "How are you today?"
    # Timings run on the whole text's clock: the second sentence starts where the first ended.
    assert second["startSeconds"] == pytest.approx(first_end["durationSeconds"], abs=1e-3)
    assert second["words"][0]["start"] >= second["startSeconds"]
    client.wait_for("segment.ended")
    # "And the rest" has no sentence end: it waits for the flush.
    client.drain(0.3)
    assert len(client.received.of("segment.started")) == 2
    client.send({"type": "flush"})
    third = client.wait_for("segment.started")
    assert third["text"] == "And the rest"
    client.wait_for("segment.ended")
    assert client.wait_for("flushed")["segments"] == 3
    client.send({"type": "end"})
    ended = client.wait_for("synthesis.ended")
    assert ended["segments"] == 3
    assert ended["characters"] == len("Hello there.How are you today?And the rest")
    audio = bytes(client.received.audio)
    assert ended["durationSeconds"] == pytest.approx(len(audio) / 32000, abs=1e-2)
    assert rms(audio) > 300  # speech, not silence
    assert closed_code(client) == 1000


def test_each_word_is_placed_in_the_whole_text_sent(start_service):
    service = start_service()
    client = Client(synth_url(service), service.token("nina"))
    client.send({"type": "start", "voice": "en-US", "sampleRate": 16000})
    client.wait_for("synthesis.started")
    # Cut anywhere, spaces kept: a leading one, a repeated word, signs, an emoji, Chinese.
    pieces = [
        " Hello 🎉 wor",
        "ld, hello world!   It costs $5",
        " to learn C++. 😀Smi",
        "le, hello.  你好\uff0c世界。",
        " Hello again",
    ]
    for piece in pieces:
        client.send({"type": "text", "text": piece})
    client.send({"type": "end"})
    client.wait_for("synthesis.ended")
    segments = client.received.of("segment.started")
    assert len(segments) > 2
    words = [word for segment in segments for word in segment["words"]]
    assert [w["text"] for w in words][:4] == ["Hello", "world", "hello", "world"]
    assert_placed("".join(pieces), {"words": words})
    assert closed_code(client) == 1000


def test_the_token_may_come_as_a_subprotocol_and_a_bad_token_closes_4001(start_service):
    service = start_service()
    token = service.token("mona")
    client = Client(synth_url(service), None, subprotocols=["voice-synthesis", f"bearer.{token}"])
    assert client.ws.subprotocol == "voice-synthesis"
    # No voice is the user's active voice model, as for POST /synthesize: mona has none.
    client.send({"type": "start"})
    assert client.wait_for("error")["code"] == "VOICE_REQUIRED"
    client.send({"type": "start", "voice": "en-US"})
    assert client.wait_for("synthesis.started")["voice"] == "espeak:en-US"
    client.close()
    for bad in (None, "not-a-token"):
        refused = Client(synth_url(service), bad)
        error = refused.wait_for("error")
        assert (error["code"], error["fatal"]) == ("UNAUTHENTICATED", True)
        assert closed_code(refused) == 4001


def test_bad_messages_get_error_events_and_the_connection_stays_open(start_service):
    service = start_service()
    client = Client(synth_url(service), service.token("nina"))

    def error_for(frame: str | bytes) -> dict:
        client.ws.send(frame)
        return client.wait_for("error")

    assert error_for('{"type": "text", "text": "Hi."}')["code"] == "NOT_STARTED"
    assert error_for("{nope")["code"] == "MALFORMED_JSON"
    assert error_for('{"type": "sing"}')["code"] == "UNKNOWN_MESSAGE_TYPE"
    assert error_for('{"type": "start", "sampleRate": 7}')["code"] == "INVALID_MESSAGE"
    assert error_for('{"type": "start", "format": "mp3"}')["code"] == "INVALID_MESSAGE"
    assert error_for(b"\x00\x01")["code"] == "INVALID_MESSAGE"
    # A voice that /synthesize would refuse is refused with its code, before any text.
    unknown = error_for('{"type": "start", "voice": "espeak:xx-nowhere"}')
    assert unknown["code"] not in ("INVALID_MESSAGE", "INTERNAL")
    assert error_for(json.dumps({"type": "start", "voice": "missing-model-id"}))["code"]
    client.send({"type": "start", "voice": "espeak:en-GB-x-rp"})
    assert client.wait_for("synthesis.started")["voice"] == "espeak:en-GB-x-rp"
    assert error_for('{"type": "start"}')["code"] == "ALREADY_STARTED"
    assert error_for('{"type": "text", "text": ""}')["code"] == "INVALID_MESSAGE"
    client.send({"type": "ping", "id": "p1"})
    assert client.wait_for("pong")["id"] == "p1"
    client.send({"type": "text", "text": "Still here.", "flush": True})
    assert client.wait_for("segment.started")["text"] == "Still here."
    client.close()


def test_a_voice_model_speaks_and_its_use_is_counted_like_synthesis(start_service):
    service = start_service()
    model_id = give_active_model(service, "olga", "espeak:en-GB-x-rp")
    client = Client(synth_url(service), service.token("olga"))
    client.send({"type": "start", "voice": model_id})
    assert client.wait_for("synthesis.started")["voice"] == "espeak:en-GB-x-rp"
    # No voice at all is the user's active model, as in POST /synthesize.
    active = Client(synth_url(service), service.token("olga"))
    active.send({"type": "start"})
    assert active.wait_for("synthesis.started")["voice"] == "espeak:en-GB-x-rp"
    active.close()
    client.send({"type": "text", "text": "One sentence. And another one."})
    client.send({"type": "end"})
    client.wait_for("synthesis.ended")
    deps = service.container.platform.deps(voice_models.CAPABILITY)
    stats = usage_stats(deps.store, model_id, shards=deps.settings.usage_counter_shards)
    assert stats.usage_count == 2
    assert stats.characters == len("One sentence.") + len("And another one.")


def test_a_client_that_stops_reading_is_closed_with_4009(start_service):
    service = start_service(sessions_outbound_buffer_bytes=64 * 1024)
    sock = socket.create_connection(("127.0.0.1", service.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    # max_queue=1: the client library stops reading the socket once one message waits;
    # no keepalive, which would give up on unread pongs and close the connection itself.
    slow = connect(
        synth_url(service),
        sock=sock,
        additional_headers={"Authorization": f"Bearer {service.token('pia')}"},
        max_queue=1,
        ping_interval=None,
        legacy=True,
    )
    slow.send(json.dumps({"type": "start", "voice": "en-US", "sampleRate": 48000}))
    while not service.app.state.service.connections:
        time.sleep(0.01)
    sentence = "This sentence is long enough to make a good second of audio at least. "
    slow.send(json.dumps({"type": "text", "text": sentence * 3}))
    # The server gives up on the client once its outbound buffer overflows...
    deadline = time.monotonic() + 60
    while service.app.state.service.connections:
        assert time.monotonic() < deadline, (
            "the server kept buffering for a client that never reads"
        )
        time.sleep(0.02)
    # ...and its close frame, behind the unread audio, says why.
    assert close_code_of(lambda: slow.recv(timeout=30)) == 4009


def with_elevenlabs(start_service, elevenlabs: FakeHttpServer, **overrides: Any):
    """Start the service with ElevenLabs (the fake ``elevenlabs``) beside eSpeak, its voices
    in the catalog."""
    service = start_service(
        providers="espeak,elevenlabs",
        elevenlabs_base_url=elevenlabs.url,
        elevenlabs_api_key=ELEVENLABS_KEY,
        **overrides,
    )
    VoiceRepository(service.container.store).upsert(
        service.container.providers.get("elevenlabs").list_voices()
    )
    return service


def test_without_timings_a_streaming_provider_sends_audio_as_it_produces_it(start_service):
    """ElevenLabs (a fake speaking its wire format) streams each segment in many pieces."""
    with FakeHttpServer(elevenlabs_app()) as elevenlabs:
        service = with_elevenlabs(start_service, elevenlabs)
        client = Client(synth_url(service), service.token("rosa"))
        client.send(
            {
                "type": "start",
                "voice": f"elevenlabs:{RACHEL}",
                "sampleRate": 24000,
                "timings": False,
            }
        )
        assert client.wait_for("synthesis.started")["timings"] is False
        client.send({"type": "text", "text": "A streamed sentence. "})
        client.send({"type": "end"})
        started = client.wait_for("segment.started")
        assert "words" not in started
        ended = client.wait_for("segment.ended")
        client.wait_for("synthesis.ended")
        # The fake sends 60 ms of tone per character, in pieces: they arrive as they came.
        assert len(client.received.audio_chunks) > 2
        assert ended["durationSeconds"] == pytest.approx(
            len("A streamed sentence.") * SECONDS_PER_CHAR, abs=0.01
        )
        paths = [request.path for request in elevenlabs.requests]
        assert f"/v1/text-to-speech/{RACHEL}/stream" in paths
        assert not any(path.endswith("/with-timestamps") for path in paths)
        # A provider failure is an error event with its category; the next text is spoken.
        elevenlabs.fail_next(
            429, {"detail": {"status": "too_many_concurrent_requests", "message": "Busy"}}
        )
        retry = Client(synth_url(service), service.token("rosa"))
        retry.send({"type": "start", "voice": f"elevenlabs:{RACHEL}", "timings": False})
        retry.wait_for("synthesis.started")
        retry.send({"type": "text", "text": "Refused once.", "flush": True})
        failed = retry.wait_for("error")
        assert (failed["code"], failed["category"], failed["retryable"]) == (
            "TTS_FAILED",
            "rate_limited",
            True,
        )
        assert failed["text"] == "Refused once."
        retry.send({"type": "text", "text": "Spoken now.", "flush": True})
        assert retry.wait_for("segment.started")["text"] == "Spoken now."
        retry.close()
        # With timings the same voice is rendered whole, with its words.
        timed = Client(synth_url(service), service.token("rosa"))
        timed.send({"type": "start", "voice": f"elevenlabs:{RACHEL}", "sampleRate": 24000})
        timed.wait_for("synthesis.started")
        timed.send({"type": "text", "text": "Timed words.", "flush": True})
        assert [w["text"] for w in timed.wait_for("segment.started")["words"]] == ["Timed", "words"]
        timed.close()


def test_a_client_that_goes_quiet_is_closed_with_4008_but_not_while_it_listens(start_service):
    service = start_service(sessions_idle_timeout_seconds=1.0)
    client = Client(synth_url(service), service.token("sven"))
    client.send({"type": "start", "voice": "en-US", "sampleRate": 48000})
    client.wait_for("synthesis.started")
    # Several seconds of speech take longer to render and send than the idle timeout at
    # times, but a client waiting for audio it asked for is not idle.
    client.send({"type": "text", "text": "A sentence to listen to. " * 6, "flush": True})
    client.wait_for("flushed")
    error = client.wait_for("error", timeout=30)
    assert (error["code"], error["fatal"]) == ("IDLE_TIMEOUT", True)
    assert closed_code(client) == 4008
    assert len(client.received.of("segment.ended")) == 6


def test_every_error_event_sent_is_counted_once_by_its_code(start_service):
    # Nothing counted them: an operator alerting on errors saw none of this endpoint's.
    with FakeHttpServer(elevenlabs_app()) as elevenlabs:
        service = with_elevenlabs(start_service, elevenlabs, sessions_idle_timeout_seconds=2.0)
        anonymous = Client(synth_url(service), None)
        anonymous.wait_for("error")
        assert closed_code(anonymous) == 4001
        client = Client(synth_url(service), service.token("tess"))
        client.ws.send("{nope")
        client.wait_for("error")
        client.send({"type": "text", "text": "Too early."})
        client.wait_for("error")
        client.send({"type": "start"})  # tess has no active voice model
        client.wait_for("error")
        client.send({"type": "start", "voice": f"elevenlabs:{RACHEL}", "timings": False})
        client.wait_for("synthesis.started")
        elevenlabs.fail_next(
            429, {"detail": {"status": "too_many_concurrent_requests", "message": "Busy"}}
        )
        client.send({"type": "text", "text": "Refused once.", "flush": True})
        client.wait_for("error")
        client.wait_for("flushed")
        client.wait_for("error", timeout=10)  # then nothing more: idle
        assert closed_code(client) == 4008

    sent = collections.Counter(
        error["code"] for each in (anonymous, client) for error in each.received.of("error")
    )
    assert set(sent) == {
        "UNAUTHENTICATED",
        "MALFORMED_JSON",
        "NOT_STARTED",
        "VOICE_REQUIRED",
        "TTS_FAILED",
        "IDLE_TIMEOUT",
    }
    assert counted_by_code(service, "voice_synthesize_ws_errors_total") == {
        code: float(count) for code, count in sent.items()
    }
    # Counted once: not also as a voice session's error.
    assert counted_by_code(service, "voice_session_errors_total") == {}


def test_an_unexpected_failure_is_an_internal_error_counted_and_closed_1011(
    start_service, monkeypatch
):
    # The same code as the session endpoint's and every HTTP route's: a client handling
    # INTERNAL_ERROR once saw an INTERNAL here that it did not know.
    service = start_service()
    espeak = service.container.providers.get("espeak")

    def broken(request):
        raise RuntimeError("the engine fell over")

    monkeypatch.setattr(espeak, "synthesize", broken)
    client = Client(synth_url(service), service.token("una"))
    client.send({"type": "start", "voice": "espeak:en-GB-x-rp"})
    client.wait_for("synthesis.started")
    client.send({"type": "text", "text": "This will not be said.", "flush": True})
    error = client.wait_for("error")
    assert (error["code"], error["fatal"]) == ("INTERNAL_ERROR", True)
    assert "fell over" not in error["message"]  # the cause is logged, not sent
    assert closed_code(client) == 1011
    assert counted_by_code(service, "voice_synthesize_ws_errors_total") == {"INTERNAL_ERROR": 1.0}
